#!/usr/bin/env bash
#! The whole khorus test suite, as CI runs it: installs what is missing, checks formatting and
#! lints, runs every test (end-to-end tests start their own private PipeWire daemons and need
#! no desktop session), and builds the benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh

# Missing PipeWire or BPF is a failure here, never a skip.
export KHORUS_REQUIRE_PIPEWIRE=1
export KHORUS_REQUIRE_BPF=1
# Tests run their own sessions; an inherited desktop session must not leak in.
unset PIPEWIRE_REMOTE

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
cargo bench --workspace --locked --no-run
