# syntax=docker/dockerfile:1
# The kvop image: the release binary on distroless/cc (glibc, libgcc, CA certificates, no
# shell, no package manager), running as the non-root user 65532.
#
#   docker build -t kvop:dev .                      # builds the binary in the image (default)
#   docker run --rm kvop:dev version
#
#   cargo build --release --locked --bin kvop       # or: a binary built beforehand
#   docker build --target prebuilt -t kvop:dev .
#
# Both targets end in the same `runtime` stage; only where /kvop comes from differs.
# tests/env/image.sh builds `--target prebuilt` with buildah and no registry, on a
# stand-in of the base image made from this machine's files (RUNTIME_BASE).
#
# The builder is Debian 12 (bookworm) like the runtime image: a binary linked against a
# newer glibc (rust:1 now defaults to a newer Debian) would not start on
# distroless/cc-debian12. A prebuilt binary must come from Debian 12 (glibc 2.36) or older.

ARG RUST_VERSION=1
ARG RUNTIME_BASE=gcr.io/distroless/cc-debian12:nonroot

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

# What every kvop image is, whatever built the binary. tests/env/image.sh checks its
# output against these lines, so keep to LABEL, USER, ENTRYPOINT and CMD here.
FROM ${RUNTIME_BASE} AS runtime
LABEL org.opencontainers.image.title="kvop" \
      org.opencontainers.image.description="Keeps NATS JetStream Key-Value buckets and keys exactly as declared" \
      org.opencontainers.image.source="https://github.com/kvop-dev/kvop" \
      org.opencontainers.image.licenses="Apache-2.0"
USER 65532:65532
ENTRYPOINT ["/kvop"]
CMD ["--help"]

# `--target prebuilt`: /kvop from the build context. The .dockerignore leaves target/ out
# of the context, so pass the binary's directory as the context:
#   docker build --target prebuilt -f Dockerfile --build-arg KVOP_BINARY=kvop target/release
FROM runtime AS prebuilt
ARG KVOP_BINARY=kvop
COPY ${KVOP_BINARY} /kvop

# The default target: /kvop from the build stage.
FROM runtime AS image
COPY --from=build /kvop /kvop
