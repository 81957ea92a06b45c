# syntax=docker/dockerfile:1
# The kvop image: the release binary on distroless/cc (glibc, libgcc, CA certificates, no
# shell, no package manager), running as the non-root user 65532.
#
#   docker build -t kvop:dev .
#   docker run --rm kvop:dev version
#
# The builder is Debian 12 (bookworm) like the runtime image: a binary linked against a
# newer glibc (rust:1 now defaults to a newer Debian) would not start on
# distroless/cc-debian12.

ARG RUST_VERSION=1
FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
# Only what the build reads (benches/: Cargo.toml declares the bench target's path).
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY benches benches
# Cache mounts keep the registry and the target directory between builds; the binary is
# copied out in the same step because the cache is not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin kvop \
 && cp target/release/kvop /kvop

FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="kvop" \
      org.opencontainers.image.description="Keeps NATS JetStream Key-Value buckets and keys exactly as declared" \
      org.opencontainers.image.source="https://github.com/kvop-dev/kvop" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /kvop /kvop
USER 65532:65532
ENTRYPOINT ["/kvop"]
CMD ["--help"]
