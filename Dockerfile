# ringcache in a container (README: Deploy).
#
#   docker build -t ringcache .
#   docker run --rm -p 11211:11211 ringcache                # 64 MB, every core
#   docker run --rm -p 11211:11211 ringcache -m 1024 -t 2   # arguments replace CMD
#
# The build stage uses the official Rust image: Debian's own rustc (1.63 in bookworm,
# 1.85 in trixie) is older than Cargo.toml's rust-version. The binary links only glibc,
# so it runs on the same Debian release's slim image, as an unprivileged user.
ARG RUST_IMAGE=rust:1-slim-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
WORKDIR /src
# The whole crate (see .dockerignore): manifests, Cargo.lock, sources, benches (named
# in Cargo.toml), tests.
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin ringcache \
    && install -m 0755 target/release/ringcache /usr/local/bin/ringcache

FROM ${RUNTIME_IMAGE}
RUN groupadd --system --gid 11211 ringcache \
    && useradd --system --uid 11211 --gid 11211 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin ringcache
COPY --from=build /usr/local/bin/ringcache /usr/local/bin/ringcache
COPY LICENSE /usr/share/doc/ringcache/LICENSE
# Numeric, so that Kubernetes' runAsNonRoot can check it; it is the ringcache user above.
USER 11211:11211
EXPOSE 11211
# -l 0.0.0.0: the default, 127.0.0.1, is unreachable from outside a container. It sits
# in ENTRYPOINT so that arguments given to `docker run` (which replace CMD) keep it.
# The engine is auto: under Docker's default seccomp profile io_uring_setup fails with
# EPERM, ringcache logs one WARN line and serves with epoll (README: Deploy).
ENTRYPOINT ["/usr/local/bin/ringcache", "-l", "0.0.0.0"]
CMD ["-p", "11211", "--io-engine", "auto"]
