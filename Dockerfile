# The gateway image: one image for the API replicas, the dispatcher, the migration job and the simulators.
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    GATEWAY_GRAPHQL_OPERATIONS_DIR=/app/graphql/operations
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY connectors ./connectors
COPY kpi ./kpi
COPY graphql ./graphql
RUN pip install --no-cache-dir .
USER nobody
EXPOSE 8000
CMD ["gateway", "serve", "--host", "0.0.0.0", "--port", "8000"]
