#!/usr/bin/env bash
#! Installs what is missing, builds khorus in release mode and runs `khorus up`: control starts
#! and supervises the collector (eBPF when permitted, else procfs — it says why), the composer
#! playing the session (by default the ambient kernel score), the synth as a PipeWire node on
#! the default sink, and the router's MIDI port (patch khorus-router:out_0 to any MIDI synth).
#!
#!   ./scripts/run.sh                 # Ctrl-C stops everything (khorus down)
#!   ./scripts/run.sh --without router
#!
#! Arguments go to `khorus up`. BPF needs CAP_BPF + CAP_PERFMON: run as root, or grant them
#! to the collector once: sudo setcap cap_bpf,cap_perfmon+ep target/release/khorus-collector
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh
cargo build --release --workspace --locked --bins

echo "khorus: playing live kernel activity (Ctrl-C to stop). In another terminal:" >&2
echo "  target/release/khorus status --watch    target/release/khorus tap notes" >&2
exec target/release/khorus up "$@"
