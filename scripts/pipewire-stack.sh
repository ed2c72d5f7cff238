#!/usr/bin/env bash
#! Runs a private, headless PipeWire session until it receives SIGTERM/SIGINT.
#!
#! usage: pipewire-stack.sh DIR
#!   DIR/runtime   XDG_RUNTIME_DIR of the session (the PipeWire socket is DIR/runtime/pipewire-0)
#!   DIR/config    XDG_CONFIG_HOME, holding a drop-in that creates the null sink "khorus-null-sink"
#!
#! Clients reach it with XDG_RUNTIME_DIR=DIR/runtime (or PIPEWIRE_RUNTIME_DIR). Used by the test
#! suite (tests/src/pipewire.rs) and handy for trying khorus on a machine without a desktop.
set -euo pipefail

dir=${1:?usage: pipewire-stack.sh DIR}
mkdir -p "$dir/runtime" "$dir/config/pipewire/pipewire.conf.d" "$dir/state"
chmod 700 "$dir/runtime"

cat >"$dir/config/pipewire/pipewire.conf.d/90-khorus-null-sink.conf" <<'CONF'
# A sink that discards audio but drives the graph on its own clock and has a monitor.
context.objects = [
  { factory = adapter
    args = {
      factory.name     = support.null-audio-sink
      node.name        = "khorus-null-sink"
      node.description = "khorus null sink"
      media.class      = "Audio/Sink"
      audio.position   = [ FL FR ]
      audio.rate       = 48000
      object.linger    = true
      monitor.channel-volumes = true
    }
  }
]
CONF

export XDG_RUNTIME_DIR="$dir/runtime" XDG_CONFIG_HOME="$dir/config" XDG_STATE_HOME="$dir/state"
export PIPEWIRE_RUNTIME_DIR="$dir/runtime"
unset PIPEWIRE_REMOTE DBUS_SESSION_BUS_ADDRESS DISPLAY WAYLAND_DISPLAY
# No real devices here; keep WirePlumber from probing for them.
export PIPEWIRE_LOG_SYSTEMD=false

exec dbus-run-session -- bash -c '
  pipewire & pw=$!
  # WirePlumber needs the PipeWire socket first.
  for _ in $(seq 200); do [ -S "$XDG_RUNTIME_DIR/pipewire-0" ] && break; sleep 0.05; done
  wireplumber & wp=$!
  trap "kill -TERM $wp $pw 2>/dev/null; wait $wp $pw 2>/dev/null; exit 0" TERM INT
  wait -n $pw $wp
  echo "pipewire-stack: a daemon exited" >&2
  kill -TERM $wp $pw 2>/dev/null
  exit 1
'
