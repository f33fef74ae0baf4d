# Multi-stage build: compile in the Rust image, run on slim Debian with only the
# runtime libraries (libopus; libfdk-aac is linked statically).
FROM rust:1-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake pkg-config libopus-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock clippy.toml ./
COPY dsp dsp
COPY src src
COPY benches benches
COPY tests tests
RUN cargo build --release --locked --bin rust-transcoder

FROM debian:bookworm-slim
# ffmpeg is the decode-only fallback for formats the native decoders cannot read.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libopus0 ffmpeg ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --no-create-home transcoder
COPY --from=build /src/target/release/rust-transcoder /usr/local/bin/rust-transcoder
USER transcoder
EXPOSE 8090
ENTRYPOINT ["/usr/local/bin/rust-transcoder"]
