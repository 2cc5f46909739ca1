# syntax=docker/dockerfile:1
# One image for every kubenetmon component: the charts run `kubenetmon agent` and `kubenetmon server`.
#   docker build -t kubenetmon:0.1.0 .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY scripts/install.sh scripts/install.sh
COPY src ./src
# The same install step as `make venv` and CI, with the versions pinned in constraints.txt. --slim drops
# pandas, pyarrow and numpy (about 330 MiB) that chdb-core declares but kubenetmon never uses.
RUN python -m venv /opt/kubenetmon \
    && scripts/install.sh /opt/kubenetmon/bin/python --slim \
    && /opt/kubenetmon/bin/python -m pip uninstall --quiet --yes pip

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 65532 kubenetmon \
    && useradd --system --uid 65532 --gid 65532 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin kubenetmon
COPY --from=build /opt/kubenetmon /opt/kubenetmon
ENV PATH=/opt/kubenetmon/bin:$PATH \
    HOME=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# Every subcommand runs unprivileged by default. The agent chart alone runs it as UID 0 with only
# CAP_NET_ADMIN, because a non-root user loses added capabilities when the container starts the process.
USER 65532:65532
ENTRYPOINT ["kubenetmon"]
CMD ["--help"]
