#!/usr/bin/env bash
# Runs every test of the project: the Rust workspace (unit, contract, end-to-end) and,
# when present, the Python streamer's suite. This is the README's test command.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --workspace --release --locked

if [ -f streamer/pyproject.toml ]; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet -e "streamer[test]"
  .venv/bin/python -m pytest -q streamer
fi
