# The firehose service: `docker compose up` builds it from this repository.
FROM python:3.11-slim

WORKDIR /app
# Only what running needs (the test and bench extras stay out of the image).
COPY pyproject.toml README.md ./
COPY firehose ./firehose
COPY destinations ./destinations
COPY transforms ./transforms
RUN pip install --no-cache-dir .

ENV FIREHOSE_HOST=0.0.0.0 \
    FIREHOSE_PORT=4573 \
    FIREHOSE_CONFIG=/configs \
    FIREHOSE_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 4573
HEALTHCHECK --interval=5s --timeout=3s --retries=20 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:4573/health', timeout=2)"
# The default shutdown timeout (25 s) fits a stop grace period of 30 s: see docker-compose.yml.
CMD ["firehose", "serve"]
