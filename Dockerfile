# syntax=docker/dockerfile:1
#
# Image of the onestop processes (worker, sink, simulator): one image, the
# command picks the role, e.g. `docker run onestop-ioc onestop worker`.
#
# Dependencies are installed from uv.lock (--frozen), so the image runs exactly
# the versions the tests ran with, transitive ones included.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------- build ----
FROM ${PYTHON_IMAGE} AS build

COPY --from=ghcr.io/astral-sh/uv:0.13.8 /uv /usr/local/bin/uv

ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/opt/venv

WORKDIR /src

# Dependencies first, in their own layer: editing the code does not reinstall them.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-install-project --no-dev

# Then the project itself, as a regular (non-editable) install into /opt/venv,
# so the runtime stage needs nothing from /src.
COPY . .
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable

# -------------------------------------------------------------- runtime ----
FROM ${PYTHON_IMAGE}

LABEL org.opencontainers.image.title="onestop-ioc" \
      org.opencontainers.image.description="Commune one-stop dossiers -> Kafka -> Faust -> ClickHouse" \
      org.opencontainers.image.licenses="Apache-2.0"

# Fixed uid/gid so volume ownership is stable across rebuilds.
RUN groupadd --system --gid 10001 onestop \
 && useradd --system --uid 10001 --gid onestop \
      --home-dir /var/lib/onestop --create-home --shell /usr/sbin/nologin onestop

COPY --from=build /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ONESTOP_HOME=/var/lib/onestop

# State (Faust tables, caches) lives here; compose mounts a named volume on it.
WORKDIR /var/lib/onestop
USER onestop:onestop

CMD ["onestop", "--help"]
