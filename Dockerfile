# otel-autoheal service image: OTLP gRPC on 4317, OTLP HTTP (+ /healthz, /metrics) on 4318.
#
#   docker build -t otel-autoheal .
#   docker run -p 4317:4317 -p 4318:4318 -v autoheal-state:/var/lib/otel-autoheal otel-autoheal
#
# GitHub filing is configured with GITHUB_REPOSITORY / GITHUB_TOKEN (/ GITHUB_API_URL for GHES);
# without them issues go to the local SQLite store in the state volume.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY otel_autoheal ./otel_autoheal
RUN pip wheel --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=build /wheels /wheels
# With the PostgreSQL driver, so that the same image serves one instance (SQLite) or several
# sharing a database (AUTOHEAL_DATABASE_URL, docker-compose.scale.yml).
RUN pip install "$(ls /wheels/otel_autoheal-*.whl)[postgres]" \
    && rm -rf /wheels \
    && groupadd --system --gid 10001 autoheal \
    && useradd --system --uid 10001 --gid autoheal --no-create-home --shell /usr/sbin/nologin autoheal \
    && mkdir -p /var/lib/otel-autoheal \
    && chown autoheal:autoheal /var/lib/otel-autoheal
# Created with the right owner above, so a fresh named volume mounted here inherits it.
VOLUME ["/var/lib/otel-autoheal"]
USER 10001:10001
EXPOSE 4317 4318
# The slim image has no curl; the interpreter is already there.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:4318/healthz', timeout=4).status != 200)"]
ENTRYPOINT ["otel-autoheal"]
CMD ["serve", "--otlp-grpc", "0.0.0.0:4317", "--otlp-http", "0.0.0.0:4318", "--state", "/var/lib/otel-autoheal"]
