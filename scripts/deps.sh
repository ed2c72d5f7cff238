#!/usr/bin/env bash
#! Installs what khorus needs to build, run and test on Debian 12 / Ubuntu 22.04+.
#! Idempotent: packages already present are left alone; runs apt-get only when something is missing.
set -euo pipefail

packages=(
  # build
  build-essential pkg-config clang libclang-dev
  # PipeWire client library + headers (synth, router) and the daemon for running / tests
  libpipewire-0.3-dev libspa-0.2-dev pipewire pipewire-bin wireplumber
  dbus dbus-user-session dbus-bin
  # BPF (collector): libbpf-cargo builds vendored libbpf, which needs these
  libelf-dev zlib1g-dev llvm
  # test peers and measurements
  liblo-tools sox iproute2 procps
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}" >&2
  sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
  "${sudo_cmd[@]}" apt-get update
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
else
  echo "deps: all Debian packages present" >&2
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "deps: cargo not found; install Rust (https://rustup.rs) and re-run" >&2
  exit 1
fi
