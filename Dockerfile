# One image for every plugmesh process: `docker run <image> serve <name>`, where <name> is
# registry, gateway, users, audit, machine-users, secrets-guard or tool-pins (see
# compose.yaml and deploy/k8s/).
# `plugmesh health <name>` inside a container is its gRPC health check.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# Build stage: the project and its PostgreSQL driver into a virtual environment.
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/plugmesh
WORKDIR /src
# Every package at the version and hash of the committed lock (requirements/README.md);
# the project itself is then built with the locked setuptools, its dependencies already in.
COPY requirements/runtime.txt requirements/runtime.txt
RUN /opt/plugmesh/bin/pip install --require-hashes -r requirements/runtime.txt
COPY pyproject.toml README.md ./
# gen/ holds the code generated from protos/, committed, so no protoc runs here.
COPY gen gen
COPY meshkit meshkit
COPY launcher launcher
COPY registry registry
COPY gateway gateway
COPY services services
RUN /opt/plugmesh/bin/pip install --no-deps --no-build-isolation ".[postgres]"

# Run stage: the virtual environment only, run by an unprivileged user.
FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 plugmesh \
    && useradd --system --uid 10001 --gid plugmesh --no-create-home \
       --home-dir /var/lib/plugmesh --shell /usr/sbin/nologin plugmesh \
    && install --directory --owner plugmesh --group plugmesh --mode 0700 /var/lib/plugmesh
COPY --from=build /opt/plugmesh /opt/plugmesh
ENV PATH=/opt/plugmesh/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PLUGMESH_DATA_DIR=/var/lib/plugmesh
WORKDIR /var/lib/plugmesh
USER 10001:10001
# registry, gateway gRPC, gateway HTTP, users, audit, machine-users, the gateway's MCP
# servers API, secrets-guard, tool-pins, then their metrics (their defaults).
EXPOSE 50050 50051 8080 50061 50062 50063 50064 50065 50066 9460 9461 9462 9463 9464 9465 9466
ENTRYPOINT ["plugmesh"]
CMD ["serve", "gateway"]
