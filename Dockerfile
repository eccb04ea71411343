# A small image that runs the daemon as a non-root user (uid 10001); configure it with environment
# variables (DATABASE_URL, EMBEDWORKER_*), or mount a TOML file and set EMBEDWORKER_CONFIG.
# `make image-test` builds it and runs it under podman (tests/image/); see the README.
FROM python:3.11-slim AS build
WORKDIR /src
# The dependencies first, at the versions constraints.txt pins: a change to the code reuses this
# layer. Everything goes into a virtualenv that the final stage copies whole, less the test suites
# that numpy ships (18 MB nothing imports).
ENV PIP_CONSTRAINT=/src/constraints.txt \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies'], sep='\n')" \
        > requirements.txt \
    && python -m venv /opt/embedworker \
    && /opt/embedworker/bin/pip install --no-cache-dir -r requirements.txt \
    && find /opt/embedworker/lib -depth -type d -path '*/site-packages/*/tests' -exec rm -rf {} +
COPY README.md ./
COPY embedworker ./embedworker
COPY sql ./sql
RUN /opt/embedworker/bin/pip install --no-cache-dir --no-deps . \
    && /opt/embedworker/bin/pip uninstall --yes --quiet pip setuptools

FROM python:3.11-slim
RUN groupadd --gid 10001 embedworker \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin embedworker
COPY --from=build /opt/embedworker /opt/embedworker
# Numeric, so that Kubernetes' runAsNonRoot can check it without reading /etc/passwd.
USER 10001:10001
ENV PATH=/opt/embedworker/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    EMBEDWORKER_HTTP_LISTEN=0.0.0.0:9464
EXPOSE 9464
# Asks /healthz (200 while the daemon's loops make progress) wherever http_listen says, from the
# environment or the TOML file; see README, "Deploying: systemd and containers".
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-m", "embedworker.healthcheck"]
# SIGTERM: stop claiming, let in-flight batches finish for shutdown_grace_s (30 s), exit 0. Give
# `docker stop` / `podman stop` more than that: `--stop-timeout 40` (their default is 10 s).
STOPSIGNAL SIGTERM
ENTRYPOINT ["embedworker"]
CMD ["run"]
