#!/usr/bin/env bash
# Runs every test of the project: the Rust workspace (unit, contract, end-to-end), then,
# against the release binary, the HTTP API contract (contracts/openapi.yaml) and the
# Python streamer's suite. This is the README's test command.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --workspace --release --locked

# The Python suites start target/release/rust-transcoder (already built by the tests
# above; this only makes sure of it).
cargo build --release --locked
python3 -m venv .venv
.venv/bin/pip install --quiet -r contracts/requirements.txt -e "streamer[test,tgcalls]"
.venv/bin/python -m pytest -q -p no:asyncio contracts
.venv/bin/ruff check --quiet streamer
.venv/bin/ruff format --check --quiet streamer
.venv/bin/python -m pytest -q streamer
