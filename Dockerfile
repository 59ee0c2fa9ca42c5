# Staryer in a container: built in the Rust image, run from a slim Debian as a non-root
# user, with the data directory (SQLite database, admin token) as a volume.
#
#   docker build -t staryer .
#   docker run -p 8080:8080 -v staryer-data:/data staryer
#
# With PostgreSQL: docker-compose.yml. Operations: docs/operations.md.

FROM rust:1-bookworm AS build
WORKDIR /src
# The release profile keeps debug info for profiling; the image ships without it.
ENV CARGO_PROFILE_RELEASE_DEBUG=0 \
    CARGO_PROFILE_RELEASE_STRIP=true

# 1. Dependencies only, in a layer of their own: it is rebuilt when Cargo.toml or
#    Cargo.lock change, not when the sources do. Every target Cargo.toml declares
#    ([lib], [[bin]], [[bench]], [[example]]) gets an empty stub so the manifest loads.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches loadtest \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && echo 'fn main() {}' > benches/decision.rs \
    && echo 'fn main() {}' > loadtest/floor.rs \
    && echo 'fn main() {}' > loadtest/reporter.rs \
    && cargo build --release --locked --bin staryer \
    && rm -rf src benches loadtest \
        target/release/.fingerprint/staryer-* \
        target/release/deps/staryer-* \
        target/release/deps/libstaryer-* \
        target/release/staryer target/release/staryer.d

# 2. The daemon itself. config/ (the built-in defaults), migrations/ (run at start) and
#    assets/ (the /docs page) are compiled into the binary.
COPY src src
COPY config config
COPY migrations migrations
COPY assets assets
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
# `staryer health` asks /readyz on server.bind (0.0.0.0 is asked as 127.0.0.1) and exits 0
# on 200: no curl in the image.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/staryer", "health"]
ENTRYPOINT ["/usr/local/bin/staryer"]
