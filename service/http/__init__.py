"""The HTTP edge: routes, authentication, limits, logs, metrics and problem details."""
