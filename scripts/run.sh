#!/usr/bin/env bash
#! Installs what is missing, builds khorus in release mode and runs it.
#!
#! Today this joins the bus and shows live traffic (`khorus tap signals`); the stage issues
#! (collector, composer, synth) turn it into kernel music on the default PipeWire sink.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh
cargo build --release --workspace --locked

echo "khorus: processes on the bus:" >&2
./target/release/khorus nodes --cleanup
echo "khorus: live signals (Ctrl-C to stop):" >&2
exec ./target/release/khorus tap signals "$@"
