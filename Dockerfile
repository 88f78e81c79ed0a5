# syntax=docker/dockerfile:1
# zendesk-cdc: build a wheel, install it with its runtime dependencies only into a venv,
# and copy that venv into a slim, non-root runtime that works with a read-only root
# filesystem (the only writable paths are the state volume and /tmp).
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY producer ./producer
COPY schemas ./schemas
RUN python -m pip wheel --no-deps --wheel-dir /wheels . \
 && python -m venv /opt/venv \
 && /opt/venv/bin/pip install /wheels/*.whl \
 && /opt/venv/bin/pip uninstall -y pip \
 && /opt/venv/bin/python -m compileall -q /opt/venv

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="zendesk-cdc" \
      org.opencontainers.image.description="Zendesk ticket changes as an exactly-once Avro stream on Kafka" \
      org.opencontainers.image.licenses="Apache-2.0"
# Bytecode was compiled in the builder; the root filesystem may be read-only at run time.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    ZENDESK_CDC_STATE_DIR=/var/lib/zendesk-cdc \
    ZENDESK_CDC_LOG_FORMAT=json
RUN groupadd --system --gid 10001 zendesk-cdc \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /var/lib/zendesk-cdc --shell /usr/sbin/nologin zendesk-cdc \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/zendesk-cdc
COPY --from=builder /opt/venv /opt/venv
USER 10001:10001
WORKDIR /var/lib/zendesk-cdc
# The SQLite store and the rotated OAuth token pair live here: mount a volume.
VOLUME ["/var/lib/zendesk-cdc"]
EXPOSE 9108
# /livez fails only when the poll loop is wedged, never because Zendesk or Kafka is down.
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9108/livez', timeout=4)"]
ENTRYPOINT ["zendesk-cdc"]
CMD ["run"]
