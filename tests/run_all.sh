#!/usr/bin/env bash
# Runs every test of the project: the Rust workspace (unit, contract, end-to-end), the
# HTTP API contract (contracts/openapi.yaml) against the running release binary and,
# when present, the Python streamer's suite. This is the README's test command.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --workspace --release --locked

# The contract check starts target/release/rust-transcoder (already built by the tests
# above; this only makes sure of it).
cargo build --release --locked
python3 -m venv .venv
.venv/bin/pip install --quiet -r contracts/requirements.txt
.venv/bin/python -m pytest -q contracts

if [ -f streamer/pyproject.toml ]; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet -e "streamer[test]"
  .venv/bin/python -m pytest -q streamer
fi
