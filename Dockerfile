# syntax=docker/dockerfile:1
# The ledger engine as an image: `ledger up` by default (any other subcommand as arguments,
# e.g. `docker run … IMAGE keys create --channel pos --scopes read`). Built from the workspace
# root: `docker build -t ledger .`. See deploy/compose.yaml for Postgres, Kafka and the engine.

# The workspace's rust-version (Cargo.toml), on Debian bookworm: gcc, make and perl for the
# librdkafka and mimalloc builds come with this image.
ARG RUST_VERSION=1.94
FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY . .
# The registry and target caches stay with the builder between builds; the binary leaves the
# cache mount in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p ledger \
    && install -D -m 0755 target/release/ledger /out/ledger

FROM debian:bookworm-slim AS run
# The binary links only glibc and libgcc_s (librdkafka and mimalloc are built in, librdkafka
# without TLS or zlib), all in the slim image.
RUN groupadd --system --gid 10001 ledger \
    && useradd --system --uid 10001 --gid ledger --home-dir /var/lib/ledger --shell /usr/sbin/nologin ledger \
    && install -d -o ledger -g ledger /var/lib/ledger
COPY --from=build /out/ledger /usr/local/bin/ledger
USER 10001:10001
WORKDIR /var/lib/ledger
# Inside a container the engine listens on every interface; the port is the one EXPOSE names.
ENV LEDGER_LISTEN=0.0.0.0:8080 \
    LEDGER_LOG=info,sqlx=error
EXPOSE 8080
# /healthz over bash's /dev/tcp (the slim image has no curl), on LEDGER_LISTEN's port.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${LEDGER_LISTEN##*:} && printf 'GET /healthz HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/ledger"]
CMD ["up"]
