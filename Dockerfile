# syntax=docker/dockerfile:1
# Build stage: build a wheel of the project and its dependencies.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY events ./events
COPY projections ./projections
COPY service ./service
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# Run stage: only the wheels, installed for an unprivileged user.
FROM python:3.11-slim
RUN groupadd --gid 10001 ledger && useradd --create-home --uid 10001 --gid 10001 ledger
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER 10001:10001
WORKDIR /home/ledger
ENV LEDGER_HOST=0.0.0.0 \
    LEDGER_PORT=8000 \
    PYTHONUNBUFFERED=1
EXPOSE 8000
# Liveness: the process answers (/health/ready also needs the database; see docs/operations.md).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('LEDGER_PORT', '8000') + '/health/live', timeout=2)"]
# Configure with DATABASE_URL; without it the embedded PostgreSQL keeps its data in
# LEDGER_DATA_DIR inside the container, which suits a trial, not production.
CMD ["ledger", "serve"]
