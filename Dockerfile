# syntax=docker/dockerfile:1.7
# One image for every salesops process: the five services (--role api|worker), their
# migrations (python -m kit.migrations <svc> upgrade) and the REST gateway. Build:
#   docker build -t registry.example.com/salesops:0.1.0 .
# Run one process (the manifests in deploy/k8s/ set command and args):
#   docker run --rm salesops:0.1.0 python -m services.leads --role api
# The install steps are the two scripts in deploy/image/, which
# tests/deploy/test_image_install.py also runs (into a temporary prefix) and then
# starts a service from, so the recipe is exercised without a container engine.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: compilers allowed here, nothing of this stage but /wheels reaches the image.
FROM ${PYTHON_IMAGE} AS build
RUN apt-get update \
    && apt-get install --yes --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/root/.cache/pip \
    sh deploy/image/build-wheels.sh /src /wheels

# --- runtime: the interpreter, one virtualenv, a non-root user. No compiler, no pip.
FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/salesops/bin:$PATH \
    SALESOPS_GRPC_HOST=0.0.0.0 \
    SALESOPS_GATEWAY_HOST=0.0.0.0 \
    SALESOPS_METRICS_HOST=0.0.0.0 \
    SALESOPS_METRICS_PORT=9464 \
    SALESOPS_VAR_DIR=/tmp/salesops \
    MALLOC_ARENA_MAX=2
RUN groupadd --system --gid 10001 salesops \
    && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin salesops
# The wheels are bind-mounted from the build stage: no layer keeps them.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    --mount=type=bind,source=deploy/image/install.sh,target=/install.sh \
    sh /install.sh /wheels /opt/salesops \
    && python3 -m pip uninstall --quiet --yes pip setuptools wheel \
    && rm -rf /root/.cache
USER 10001:10001
WORKDIR /tmp
# gRPC: leads 50051, pipeline 50052, knowledge 50053, integration 50054, notify 50055;
# gateway HTTP 8080; Prometheus metrics 9464 in every process.
EXPOSE 50051 50052 50053 50054 50055 8080 9464
CMD ["python", "-m", "gateway"]
