# guard as a container: a regular proxy on :8080 by default, or, with GUARD_GATEWAY=1,
# a transparent gateway for a sandbox network (see examples/docker-compose.yml and
# docker/entrypoint.sh). The CA lives in the /data/confdir volume so that clients can
# trust it across restarts.
FROM python:3.12-slim

RUN apt-get update \
 && apt-get install -y --no-install-recommends iptables iproute2 ca-certificates \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml setup.py MANIFEST.in README.md ./
COPY guard ./guard
COPY fixtures ./fixtures
RUN pip install --no-cache-dir .
COPY docker/entrypoint.sh /usr/local/bin/guard-entrypoint

VOLUME ["/data"]
EXPOSE 8080
ENTRYPOINT ["guard-entrypoint"]
CMD ["run", "--listen-host", "0.0.0.0", "--confdir", "/data/confdir", "--audit", "/data/audit.jsonl"]
