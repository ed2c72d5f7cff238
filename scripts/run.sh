#!/usr/bin/env bash
#! Installs what is missing, builds khorus in release mode and runs it.
#!
#! Today that is the collector: live kernel activity (eBPF when permitted, else procfs, and it
#! says why) published on the bus and shown as a live table. The composer and synth issues turn
#! it into kernel music on the default PipeWire sink.
#!
#! BPF needs CAP_BPF + CAP_PERFMON: run as root, or grant them once with
#!   sudo setcap cap_bpf,cap_perfmon+ep target/release/khorus-collector
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh
cargo build --release --workspace --locked

./target/release/khorus nodes --cleanup >/dev/null
exec ./target/release/khorus-collector --print "$@"
