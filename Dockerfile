# Puente's service image: the Python package only. Kafka runs in its own containers.
# The native Avro codec (native/) is not built here: the image encodes and decodes with fastavro,
# which gives the same values and bytes, more slowly.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY puente ./puente
COPY schemas ./schemas
COPY policies ./policies
COPY broker ./broker
COPY adapters ./adapters
# puente/dev (the local Kafka runner, the demo, the generators) is for development only: .dockerignore leaves it
# out of the context, so no layer holds it.
RUN pip install --no-cache-dir . && useradd --system puente
USER puente
ENTRYPOINT []
