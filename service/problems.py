"""Re-export of the problem-details helper for the read side's modules that import it here."""

from service.http.problems import problem

__all__ = ["problem"]
