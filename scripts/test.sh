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
# A whole-suite run gains little from incremental state and it is the largest part of target/
# (1.9 of 7.5 GB): CI machines' disks can be small. Set CARGO_INCREMENTAL=1 to keep it.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# End-to-end tests start the other packages' binaries (khorus, khorus-bus-peer, …), which
# `cargo test` does not build for them: build every binary first.
cargo build --workspace --locked --bins
cargo test --workspace --locked

# Two copies of the end-to-end suite at once must not see each other (isolated buses and
# PipeWire sessions per test). The binary `cargo test --workspace` just ran (asked the same
# way, so nothing is built again: `-p khorus-tests` unifies features differently and built
# a second copy of the suite and its dependencies).
e2e=$(cargo test --workspace --locked --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "e2e" and m.get("executable"):
        print(m["executable"])')
echo "test.sh: running two copies of $e2e at once" >&2
"$e2e" --quiet >/tmp/khorus-e2e-a.$$ 2>&1 & a=$!
"$e2e" --quiet >/tmp/khorus-e2e-b.$$ 2>&1 & b=$!
status=0
wait $a || status=1
wait $b || status=1
if [ $status -ne 0 ]; then
  cat /tmp/khorus-e2e-a.$$ /tmp/khorus-e2e-b.$$ >&2
fi
rm -f /tmp/khorus-e2e-a.$$ /tmp/khorus-e2e-b.$$
[ $status -eq 0 ] || { echo "test.sh: concurrent copies of the e2e suite interfered" >&2; exit 1; }
echo "test.sh: two concurrent copies of the e2e suite passed" >&2
cargo bench --workspace --locked --no-run
