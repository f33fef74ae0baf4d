#!/usr/bin/env bash
# The HTTP-service load runs recorded in BENCHMARKS.md ("HTTP service under load"): the
# service against one ffmpeg process per request, as markdown on stdout.
#
#   bash benches/load.sh            # about 5 minutes
#
# 1. PCM 48 kHz stereo, 1, 10 and 50 streams, loopback origin at full speed;
# 2. Ogg Opus 128k, 1 and 10 streams;
# 3. PCM again with the origin limited to 1000 KiB/s per response, service only (shows
#    how much of the memory and of the burst's first-byte time is the source prefetch).
# Extra arguments are passed to every run (e.g. `--hold-secs 20`). Progress goes to stderr.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash benches/make_bench_input.sh
cargo build --release --bench loadgen >&2

run() {
    cargo bench --quiet --bench loadgen -- "$@"
    echo
}

run "$@"
run --format opus --streams 1,10 "$@"
run --origin-kib-per-sec 1000 --no-ffmpeg "$@"
