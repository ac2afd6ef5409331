# One image for nids-train, nids-replay and nids-detect; docker-compose.yml picks the command.
FROM python:3.11-slim-bookworm
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY setup.cfg pyproject.toml README.md constraints.txt ./
COPY nids_common ./nids_common
COPY nids_model ./nids_model
COPY nids_dataset ./nids_dataset
COPY producer ./producer
COPY detector ./detector
COPY training ./training
COPY config ./config
# numba caches the compiled scorer here: filled at build time, writable by the runtime user.
ENV NUMBA_CACHE_DIR=/var/cache/numba
RUN pip install --no-cache-dir -c constraints.txt . \
 && python -c "from nids_model.compiled import precompile; precompile()" \
 && python -c "from detector.number_fields import precompile; precompile()" \
 && chown -R 65534:65534 /var/cache/numba
USER 65534:65534
