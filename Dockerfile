# The worker image: one image for the worker, the topic init job, the seeder and the consumer.
#
# Two stages. `build` turns the project and its dependencies into wheels and installs them into
# a virtualenv (/opt/venv); the final stage is the bare base image plus that virtualenv, the
# seeds and a non-root user: no pip cache, no wheels, no compiler or build tool in its layers.
# Without an image registry, `bash scripts/offline-images.sh` makes python:3.11-slim locally.
# Build with `docker build --network host -t news-ingest-worker:latest .` (or `make compose-test`).

FROM python:3.11-slim AS build
# The OS bundle (which, in the offline stand-in, is the host's, corporate CAs included).
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_CERT=/etc/ssl/certs/ca-certificates.crt
WORKDIR /src
COPY pyproject.toml README.md ./
COPY worker ./worker
COPY topics ./topics
# A current pip in the venv (the base's may predate the normalised extra names some dependencies
# use, e.g. lxml[html_clean]); every dependency as a wheel (sdists such as langdetect are built
# here), then installed from those wheels only; pip itself is not kept.
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install -q --upgrade pip \
 && /opt/venv/bin/pip wheel -q --wheel-dir /wheels . \
 && /opt/venv/bin/pip install -q --no-index --find-links /wheels /wheels/*.whl \
 && /opt/venv/bin/pip uninstall -y -q pip setuptools wheel

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PATH=/opt/venv/bin:$PATH
RUN useradd --create-home --uid 10001 ingest
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY seeds ./seeds
# .cache/faust: faust's data folder (DATA_DIR, relative to /app), writable by the worker.
RUN mkdir -p /app/.cache && chown ingest /app/.cache
USER ingest
EXPOSE 6066
# Healthy = the web server answers /health/live with 200: the process runs and no input partition
# has input waiting without progress for STALL_TIMEOUT_S. (/health/ready, partitions assigned and
# tables recovered, is what `make compose-test` waits for on top.) urllib: no curl in the image.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=6 \
  CMD ["python", "-c", "import os,sys,urllib.request; u='http://127.0.0.1:%s/health/live' % os.environ.get('WEB_PORT', '6066'); sys.exit(0 if urllib.request.urlopen(u, timeout=3).status == 200 else 1)"]
# faust's worker finishes the event in hand, flushes, commits and leaves the group on SIGTERM
# (~1.5 s; it exits regardless after SHUTDOWN_DEADLINE_S, 10 s), within compose's stop_grace_period.
STOPSIGNAL SIGTERM
CMD ["ingest", "worker"]
