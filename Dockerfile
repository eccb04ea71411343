# A small image that runs the daemon as a non-root user; configure it with environment variables
# (DATABASE_URL, EMBEDWORKER_*), or mount a TOML file and set EMBEDWORKER_CONFIG.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY embedworker ./embedworker
COPY sql ./sql
RUN PIP_CONSTRAINT=/src/constraints.txt pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
COPY --from=build /wheels /wheels
COPY constraints.txt /tmp/constraints.txt
RUN pip install --no-cache-dir --no-index --find-links /wheels embedworker \
    && rm -rf /wheels /tmp/constraints.txt \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin embedworker
USER embedworker
ENV PYTHONUNBUFFERED=1 \
    EMBEDWORKER_HTTP_LISTEN=0.0.0.0:9464
EXPOSE 9464
# /healthz answers 200 while the daemon's loops are ticking (see README, "Observability").
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9464/healthz', timeout=4)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["embedworker"]
CMD ["run"]
