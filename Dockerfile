# Sluice's image: the flow-run pods of the `sluice-kubernetes` work pool run it.
#   docker build -t registry.example/sluice:0.1.0 .
# (or `prefect deploy` in deployments/, whose build/push steps do the same with prefect-docker)
#
# Stage 1 builds the wheel and installs it into /opt/sluice with scripts/image_install.sh,
# the same script CI runs in a fresh venv. Stage 2 is the slim base plus that venv only: no
# uv, no compiler, no pip/setuptools in the venv, running as an unprivileged user.
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
COPY --from=ghcr.io/astral-sh/uv:0.13.8 /uv /usr/local/bin/uv
WORKDIR /src
COPY . .
RUN uv build --quiet --wheel --out-dir /dist . \
 && bash scripts/image_install.sh /dist/sluice-*.whl /opt/sluice

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 sluice \
 && useradd --system --uid 10001 --gid sluice --create-home --home-dir /home/sluice sluice \
 && python3 -m pip uninstall --yes --quiet setuptools wheel
COPY --from=build /opt/sluice /opt/sluice
ENV PATH=/opt/sluice/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    SLUICE_HOME=/home/sluice/.sluice
USER 10001:10001
WORKDIR /home/sluice
# No ENTRYPOINT: the Prefect worker's Job passes `prefect flow-run execute` as the command.
CMD ["sluice", "--help"]
