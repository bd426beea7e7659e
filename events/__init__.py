"""The event vocabulary and the append-only log."""
