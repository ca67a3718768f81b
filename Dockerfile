# The operator image: Python slim plus the PostgreSQL client tools
# (pg_dump, pg_restore) that DatabaseBackup and DatabaseRestore run.
FROM python:3.11-slim

RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN pip install --no-cache-dir . && rm -rf /src

USER 10001:10001
ENTRYPOINT ["runbook-operator"]
CMD ["run"]
