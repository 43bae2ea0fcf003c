# The gateway image: one image for the API replicas, the dispatcher, the sync, the migration and unit-tree jobs
# and the simulators. Base image pinned to an exact version; Python packages to deploy/constraints.txt.
FROM python:3.11.10-slim-bookworm
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GATEWAY_GRAPHQL_OPERATIONS_DIR=/app/graphql/operations
COPY pyproject.toml README.md ./
COPY deploy/constraints.txt ./deploy/constraints.txt
COPY gateway ./gateway
COPY connectors ./connectors
COPY kpi ./kpi
COPY graphql ./graphql
RUN pip install --no-cache-dir -c deploy/constraints.txt .
USER nobody
EXPOSE 8000
# Every role checks its database and schema; docker-compose.yml gives the API replicas an HTTP /readyz check.
HEALTHCHECK --interval=15s --timeout=10s --start-period=20s --retries=3 CMD ["gateway", "health"]
CMD ["gateway", "serve", "--host", "0.0.0.0", "--port", "8000"]
