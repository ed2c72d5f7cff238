#!/usr/bin/env bash
#! What khorus costs to leave running: starts `khorus up` (the default session: the ambient
#! kernel score through the built-in instruments) on a private headless PipeWire with a null
#! sink, waits, then measures each process's CPU (% of one core, from its threads' schedstat),
#! memory (PSS, from /proc/PID/smaps_rollup) and wake-ups (voluntary context switches of all
#! its threads, a second) over a window, per process and in total.
#!
#! usage: scripts/footprint.sh [--window S] [--warmup S] [--rounds N] [--then 'ARGS']
#!                              [--max-quantum FRAMES] [--compare 'COMMAND']
#!   --then runs `khorus ARGS` once khorus is up, before the warm-up: `--then hush` measures a
#!   khorus left running hushed, `--then 'score arp'` another score.
#!   --compare runs COMMAND (e.g. another daemon playing into the same null sink) in the same
#!   PipeWire session after khorus is down, and measures its process tree the same way, so
#!   anchors are measured in the same run. Rounds alternate khorus and the comparison.
#!   --max-quantum sets the private PipeWire's clock.max-quantum for the whole run (2048 by
#!   default in Debian 12's PipeWire): a khorus asking for a longer cycle is granted it, the
#!   default session (2048 asked) runs as before.
#!
#! Builds the release binaries first (cargo build --release --workspace --bins); run as root
#! for BPF, as CI does.
set -euo pipefail
cd "$(dirname "$0")/.."

window=60 warmup=10 rounds=1 compare="" then="" max_quantum=""
while (($#)); do
  case $1 in
    --window) window=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --compare) compare=$2; shift 2 ;;
    --then) then=$2; shift 2 ;;
    --max-quantum) max_quantum=$2; shift 2 ;;
    *) echo "footprint: unknown argument $1" >&2; exit 2 ;;
  esac
done

bin=target/release
# Always the binaries a user builds: `cargo test` (test.sh) leaves release binaries built with
# the test crates' features unified, larger by a third of a MiB each.
cargo build --release --workspace --bins --locked --quiet ||
  { echo "footprint: the build failed" >&2; exit 1; }
dir=$(mktemp -d /tmp/khorus-footprint.XXXXXX)
stack_pid=""
cleanup() {
  "$bin/khorus" down >/dev/null 2>&1 || true
  [ -n "$stack_pid" ] && kill -TERM -- "-$stack_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

setsid bash scripts/pipewire-stack.sh "$dir/pw" >"$dir/pw.log" 2>&1 &
stack_pid=$!
export XDG_RUNTIME_DIR="$dir/pw/runtime" PIPEWIRE_RUNTIME_DIR="$dir/pw/runtime"
export XDG_STATE_HOME="$dir/state" XDG_CONFIG_HOME="$dir/config"
export KHORUS_BUS_PREFIX="fp$$_"
unset PIPEWIRE_REMOTE
for _ in $(seq 300); do [ -S "$XDG_RUNTIME_DIR/pipewire-0" ] && break; sleep 0.1; done
if [ -n "$max_quantum" ]; then
  # The settings metadata exists once the session manager is up.
  granted() { [[ $(pw-metadata -n settings 2>/dev/null) == *"clock.max-quantum' value:'$max_quantum'"* ]]; }
  for _ in $(seq 100); do
    pw-metadata -n settings 0 clock.max-quantum "$max_quantum" >/dev/null 2>&1 && granted && break
    sleep 0.1
  done
  granted || { echo "footprint: could not set clock.max-quantum to $max_quantum" >&2; exit 1; }
  echo "PipeWire clock.max-quantum: $max_quantum"
fi

# CPU time of all the process's threads, ns (scheduler accounting, /proc/PID/task/*/schedstat:
# exact to the nanosecond, where /proc/PID/stat counts 10 ms ticks — 0.03 % of a core over a
# 30 s window, the size of the differences being measured).
cpu_ns() { cat "/proc/$1/task/"*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f", s + 0 }'; }
pss() { awk '/^Pss:/ { print $2 }' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
# Wake-ups: voluntary context switches of all the process's threads (each costs ~30-50 µs on
# a VM before any work; BENCHMARKS.md, session 11).
wakes() { cat "/proc/$1/task/"*/status 2>/dev/null | awk '/^voluntary_ctxt_switches/ { s += $2 } END { print s + 0 }'; }
tree() { # a process and its descendants
  local p=$1; echo "$p"
  for c in $(cat "/proc/$p/task/"*/children 2>/dev/null); do tree "$c"; done
}

# measure NAME=PID … : CPU, PSS and wake-ups over the window, one table row each and a total.
measure() {
  local -a names pids before woke
  for np in "$@"; do names+=("${np%%=*}"); pids+=("${np#*=}"); done
  for p in "${pids[@]}"; do before+=("$(cpu_ns "$p")"); woke+=("$(wakes "$p")"); done
  local t0; t0=$(date +%s.%N)
  sleep "$window"
  local t1; t1=$(date +%s.%N)
  local total_cpu=0 total_pss=0 total_wakes=0
  printf '| %-12s | %8s | %9s | %9s |\n' process "CPU %" "PSS MiB" "wakes/s"
  printf '|---|---:|---:|---:|\n'
  for i in "${!pids[@]}"; do
    local p=${pids[$i]} after cpu mem rate
    after=$(cpu_ns "$p")
    rate=$(awk -v a="$(wakes "$p")" -v b="${woke[$i]}" -v t0="$t0" -v t1="$t1" \
      'BEGIN { printf "%.1f", (a - b) / (t1 - t0) }')
    cpu=$(awk -v a="$after" -v b="${before[$i]}" -v t0="$t0" -v t1="$t1" \
      'BEGIN { printf "%.3f", (a - b) / 1e9 / (t1 - t0) * 100 }')
    mem=$(awk -v k="$(pss "$p")" 'BEGIN { printf "%.1f", k / 1024 }')
    total_cpu=$(awk -v a="$total_cpu" -v b="$cpu" 'BEGIN { printf "%.3f", a + b }')
    total_pss=$(awk -v a="$total_pss" -v b="$mem" 'BEGIN { printf "%.1f", a + b }')
    total_wakes=$(awk -v a="$total_wakes" -v b="$rate" 'BEGIN { printf "%.1f", a + b }')
    printf '| %-12s | %8s | %9s | %9s |\n' "${names[$i]}" "$cpu" "$mem" "$rate"
  done
  printf '| %-12s | %8s | %9s | %9s |\n' total "$total_cpu" "$total_pss" "$total_wakes"
}

khorus_round() {
  # (Not a process group leader, so setsid runs khorus in this very process: $! is control.)
  setsid "$bin/khorus" up >"$dir/up.log" 2>&1 &
  local control=$!
  local ready=""
  for _ in $(seq 300); do
    if "$bin/khorus" status --json 2>/dev/null | python3 2>/dev/null -c '
import json, sys
r = json.load(sys.stdin)
sys.exit(0 if len(r) == 4 and all(s["state"] == "ready" for s in r) else 1)'; then
      ready=1; break
    fi
    sleep 0.1
  done
  [ -n "$ready" ] || { echo "footprint: khorus did not come up:" >&2; cat "$dir/up.log" >&2; exit 1; }
  local session="default session"
  if [ -n "$then" ]; then
    # shellcheck disable=SC2086 # ARGS are words, as typed after `khorus`
    "$bin/khorus" $then >/dev/null || { echo "footprint: khorus $then failed" >&2; exit 1; }
    session="default session, then khorus $then"
  fi
  sleep "$warmup"
  # This khorus's processes only: its control, and the stages it started (another khorus on
  # another bus, run from the same build, is not measured).
  [ "$(cat "/proc/$control/comm" 2>/dev/null)" = khorus ] ||
    { echo "footprint: pid $control is not khorus up" >&2; exit 1; }
  local -a args=("control=$control")
  for s in collector composer synth router; do
    args+=("$s=$(pgrep -P "$control" -f "khorus-$s" | head -1)")
  done
  echo "khorus ($session), ${window}s after ${warmup}s:"
  measure "${args[@]}"
  "$bin/khorus" down >/dev/null
}

compare_round() {
  setsid bash -c "$compare" >"$dir/compare.log" 2>&1 &
  local root=$!
  sleep "$warmup"
  local -a args=()
  for p in $(tree "$root"); do
    args+=("$(tr -d '\0' <"/proc/$p/comm" 2>/dev/null || echo "?")=$p")
  done
  echo "compare: $compare, ${window}s after ${warmup}s:"
  measure "${args[@]}"
  kill -TERM -- "-$root" 2>/dev/null || true
  wait "$root" 2>/dev/null || true
}

for r in $(seq "$rounds"); do
  echo "## round $r"
  khorus_round
  if [ -n "$compare" ]; then compare_round; fi
done
