# One image for the three Tessera services; the container command picks one:
#   python -m services.authorize --host 0.0.0.0 --port 8080
#   (likewise services.token and services.introspect)
# CI does not build this file (no Docker engine there); tests/test_deploy.py checks its
# rules by reading it. See deploy/README.md.

# Build stage: install the project and its dependencies, within the ranges pinned in
# pyproject.toml, into a virtual environment that the runtime stage copies whole.
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# The venv has no pip of its own: the base image's pip installs into it (--python), so
# the runtime image carries no installer.
RUN python -m venv --without-pip /opt/tessera
WORKDIR /src
COPY pyproject.toml README.md ./
COPY services ./services
COPY shared ./shared
# The resource-server library, which the project depends on (its JWT verifier).
COPY resource-server ./resource-server
# The project itself, without the [local] or [test] extras: no Redis server, no pytest.
# The library is named in the same command, so pip takes it from its folder.
RUN pip --python /opt/tessera/bin/python install . ./resource-server \
    && /opt/tessera/bin/python -c "import services.authorize.app, services.token.app, services.introspect.app"

# Runtime stage: the same base image, so the venv's interpreter link stays valid.
FROM python:3.11-slim-bookworm
# pip, setuptools and wheel are build tools; nothing at run time needs them.
RUN python -m pip uninstall --yes pip setuptools wheel \
    && groupadd --system --gid 10001 tessera \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin tessera
COPY --from=build /opt/tessera /opt/tessera
ENV PATH=/opt/tessera/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# A numeric uid, so the kubelet can check runAsNonRoot without reading /etc/passwd.
USER 10001:10001
WORKDIR /
EXPOSE 8080
CMD ["python", "-m", "services.authorize", "--host", "0.0.0.0", "--port", "8080"]
