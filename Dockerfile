# syntax=docker/dockerfile:1
# The orchestrator's image: `docker build -t orchestrator .` (docker-compose.yml builds it too).
# Two stages: the Swift 6.3 toolchain builds a release binary with the Swift runtime linked in
# statically; the runtime stage is Debian slim with only what the binary and its stages need.

# --- build --------------------------------------------------------------------------------------
FROM swift:6.3-bookworm AS build
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libpq-dev libcurl4-openssl-dev libssl-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies first, so a change to the sources does not fetch them again.
COPY Package.swift ./
RUN swift package resolve
COPY Sources ./Sources
COPY Tests ./Tests
RUN swift build -c release --product orchestrator --static-swift-stdlib \
    && install -D "$(swift build -c release --show-bin-path)/orchestrator" /staging/usr/local/bin/orchestrator
COPY migrations /staging/usr/local/share/orchestrator/migrations
COPY prompts /staging/usr/local/share/orchestrator/prompts

# --- runtime ------------------------------------------------------------------------------------
FROM debian:bookworm-slim
# libpq, libcurl and OpenSSL for the binary; git for clones and worktrees; curl for the health
# check; tzdata so logs and schedules read local time when TZ is set.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libpq5 libcurl4 libssl3 libxml2 ca-certificates git curl tzdata \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /var/lib/orchestrator orchestrator \
    && mkdir -p /var/lib/orchestrator/work /etc/orchestrator \
    && chown orchestrator:orchestrator /var/lib/orchestrator/work
COPY --from=build /staging/ /
USER orchestrator
WORKDIR /var/lib/orchestrator
ENV ORCH_HOST=0.0.0.0 \
    ORCH_PORT=8080 \
    ORCH_WORKDIR=/var/lib/orchestrator/work \
    ORCH_MIGRATIONS_DIR=/usr/local/share/orchestrator/migrations \
    ORCH_PROMPTS_DIR=/usr/local/share/orchestrator/prompts
EXPOSE 8080
# Liveness only: /health answers while the process runs. The load balancer asks /health/ready,
# which also checks the database, to take a replica out while its database does not answer.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD curl -fsS "http://127.0.0.1:${ORCH_PORT}/health" || exit 1
ENTRYPOINT ["/usr/local/bin/orchestrator"]
CMD ["serve"]
