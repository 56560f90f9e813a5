# AION Control: one image for web (ASGI), Celery worker and Celery beat.
# Multi-stage: wheels are built in "build", the runtime stage has no compilers and runs as a non-root user.
#   docker build -t aion-control .
#   docker run --rm -p 8000:8000 aion-control                                   # web
#   docker run --rm aion-control celery -A aion worker -l INFO                  # worker
#   docker run --rm aion-control celery -A aion beat -l INFO                    # beat (exactly one)

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential=12.9 libpq-dev=15.* \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /build
COPY requirements.txt .
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install -r requirements.txt

FROM python:3.11-slim-bookworm AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    AION_VAR_DIR=/var/lib/aion \
    AION_ENV=prod \
    PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus
# postgresql-client: pg_dump/pg_restore for `manage.py backup` and `restore`.
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client-15=15.* libpq5=15.* \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 aion \
    && useradd --system --uid 10001 --gid aion --home-dir /app --shell /usr/sbin/nologin aion \
    && mkdir -p /var/lib/aion /tmp/prometheus \
    && chown aion:aion /var/lib/aion /tmp/prometheus
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --chown=aion:aion . .
RUN AION_SECRET_KEY=build-only AION_ENV=dev python manage.py collectstatic --noinput -v 0
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
# --no-proxy-headers: uvicorn must not rewrite the peer from X-Forwarded-For (it would by default, trusting 127.0.0.1);
# the app believes forwarded addresses only from AION_TRUSTED_PROXIES (aion/clientip.py), X-Forwarded-Proto via AION_BEHIND_TLS_PROXY.
CMD ["uvicorn", "aion.asgi:application", "--host", "0.0.0.0", "--port", "8000", "--no-access-log", "--no-proxy-headers"]
