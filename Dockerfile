# Multi-stage build of pgtrail: a Rust builder (libclang for pg_query's
# bindings), then a small Debian runtime running as a non-root user.
FROM rust:1.88-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends libclang-dev clang \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
COPY examples ./examples
RUN cargo build --release --locked --bin pgtrail

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/pgtrail --create-home pgtrail
COPY --from=build /src/target/release/pgtrail /usr/local/bin/pgtrail
USER pgtrail
WORKDIR /var/lib/pgtrail
EXPOSE 6432 9187
ENTRYPOINT ["/usr/local/bin/pgtrail"]
CMD ["run", "--config", "/etc/pgtrail/pgtrail.toml"]
