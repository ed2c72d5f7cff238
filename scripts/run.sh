#!/usr/bin/env bash
#! Installs what is missing, builds khorus in release mode and plays kernel music on the
#! default PipeWire sink: the collector (eBPF when permitted, else procfs — it says why), the
#! composer playing a kernel score, the synth as a PipeWire node, and the router's MIDI port
#! (patch khorus-router:out_0 to any MIDI synth with pw-link, Helvum or qpwgraph).
#!
#!   ./scripts/run.sh                 # the ambient score
#!   KHORUS_SCORE=percussive ./scripts/run.sh --bpm 128
#!
#! Extra arguments go to the composer. BPF needs CAP_BPF + CAP_PERFMON: run as root, or grant
#! them once with: sudo setcap cap_bpf,cap_perfmon+ep target/release/khorus-collector
#! (Until `khorus up` supervises the stages, this script does: Ctrl-C stops them all.)
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh
cargo build --release --workspace --locked --bins

bin=target/release
"$bin/khorus" nodes --cleanup >/dev/null
pids=()
stop() {
  kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap stop EXIT INT TERM
"$bin/khorus-collector" & pids+=($!)
"$bin/khorus-synth" & pids+=($!)
"$bin/khorus-router" & pids+=($!)
"$bin/khorus-composer" --score "${KHORUS_SCORE:-ambient}" "$@" & pids+=($!)
echo "khorus: playing the ${KHORUS_SCORE:-ambient} score from live kernel activity (Ctrl-C to stop)." >&2
echo "khorus: watch it with: $bin/khorus tap notes | $bin/khorus tap status | $bin/khorus-collector --print" >&2
wait -n
