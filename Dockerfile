# One image for nids-train, nids-replay and nids-detect; docker-compose.yml picks the command.
FROM python:3.11-slim-bookworm
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY setup.cfg pyproject.toml README.md ./
COPY nids_common ./nids_common
COPY producer ./producer
COPY detector ./detector
COPY training ./training
COPY config ./config
RUN pip install --no-cache-dir .
USER 65534:65534
