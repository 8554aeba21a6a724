# PostgreSQL 15 from Debian's packages on the local base image (scripts/stack_base.sh), for machines without an
# image registry. Trust auth: the server is reachable only on the stack's private network (compose.yaml).
FROM nlp-base:bookworm
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-15 \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /var/lib/postgresql/data /run/postgresql \
    && chown -R postgres:postgres /var/lib/postgresql /run/postgresql
COPY postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint.sh
USER postgres
ENV PGDATA=/var/lib/postgresql/data PATH=/usr/lib/postgresql/15/bin:$PATH
EXPOSE 5432
HEALTHCHECK --interval=2s --timeout=3s --retries=30 CMD ["pg_isready", "-h", "127.0.0.1", "-U", "postgres"]
ENTRYPOINT ["sh", "/usr/local/bin/postgres-entrypoint.sh"]
