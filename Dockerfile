# The worker image: one image for the worker, the topic init job, the seeder and the consumer.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY worker ./worker
COPY topics ./topics
COPY seeds ./seeds
RUN pip install . && useradd --create-home ingest && mkdir -p /app/.cache && chown ingest /app/.cache
USER ingest
EXPOSE 6066
CMD ["ingest", "worker"]
