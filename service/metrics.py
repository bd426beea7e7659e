"""Re-export of the stream-cache counter for the read side's modules that import it here."""

from service.http.metrics import STREAM_READS

__all__ = ["STREAM_READS"]
