# Multi-stage: build in the Rust image, run from a slim Debian as a non-root user with the
# data directory as a volume.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY config config
COPY migrations migrations
COPY benches benches
COPY loadtest loadtest
RUN cargo build --release --locked --bin staryer

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /data staryer \
    && mkdir -p /data && chown staryer /data
COPY --from=build /src/target/release/staryer /usr/local/bin/staryer
USER staryer
WORKDIR /data
ENV STARYER__SERVER__BIND=0.0.0.0:8080 \
    STARYER__DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/staryer"]
