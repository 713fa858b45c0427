# syntax=docker/dockerfile:1
# botstream: one image for every stage — the command picks the job (`docker run botstream ingest`,
# `... streams`, `... sinks`, `... topics apply`, `... sandbox`, `... lag --serve`).
#
# builder: compiles whatever has no wheel and installs botstream into /opt/venv, every dependency
#          pinned by constraints.txt (the same pins `make test` runs with).
# runtime: the slim base + that venv only (no compiler, no pip cache, no sources), as a non-root user.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
# Only needed when a dependency has no wheel for the target platform (e.g. an arm64 build of a
# C extension); it stays in this stage.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first, in a layer of their own: source edits do not reinstall them. The project is
# built into a wheel, then installed with its dependencies under the pins.
COPY constraints.txt pyproject.toml README.md ./
COPY botstream ./botstream
COPY schemas ./schemas
COPY ingest ./ingest
COPY streams ./streams
COPY sinks ./sinks
COPY sandbox ./sandbox
RUN pip install --upgrade pip \
 && pip wheel --no-deps --wheel-dir /wheels . \
 && pip install --constraint constraints.txt /wheels/botstream-*.whl \
 && botstream --help >/dev/null

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="botstream" \
      org.opencontainers.image.description="Kafka-native chat-bot pipeline: ingest, streams, sinks" \
      org.opencontainers.image.licenses="Apache-2.0"
# A fixed numeric uid/gid so Kubernetes can check runAsNonRoot and volumes can be chowned to it.
RUN groupadd --system --gid 10001 botstream \
 && useradd --system --uid 10001 --gid botstream --home-dir /var/lib/botstream --shell /usr/sbin/nologin botstream \
 && mkdir -p /var/lib/botstream /etc/botstream \
 && chown botstream:botstream /var/lib/botstream
COPY --from=builder /opt/venv /opt/venv
# BOTSTREAM_DATA_DIR: the workers' RocksDB tables; compose/k8s mount a volume here for streams and
# sinks (docker copies this directory's ownership into a fresh volume, so the non-root user can
# write it). The default, next to the installed package, would be inside site-packages.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    BOTSTREAM_DATA_DIR=/var/lib/botstream \
    BOTSTREAM_CACHE_DIR=/tmp/botstream-cache \
    BOTSTREAM_LOG_FORMAT=json
WORKDIR /var/lib/botstream
USER 10001:10001
# ingest 8080, streams web 6066, sinks web 6067, sandbox 8090, lag exporter 9309
EXPOSE 8080 6066 6067 8090 9309
ENTRYPOINT ["botstream"]
CMD ["--help"]
