# Shared by the scripts in scripts/: where things live and how to run a command
# in the project's Python 3.14 environment. Sourced, never run.
# shellcheck shell=bash

PV_TOP="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PV_VENV="$PV_TOP/.venv"
PV_STAMP="$PV_VENV/.private-voice-stamp"
PV_RUNNER_FILE="$PV_VENV/.private-voice-runner"
# Where scripts/setup builds a Debian forky root when no Python >= 3.14.2 exists.
PV_FORKY_ROOT="${PV_FORKY_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/private-voice/python3.14-forky}"
# Debian packages inside that root: the interpreter, what pip needs to build
# pymicro-vad / pyspeex-noise (no cp314 wheels), and ffmpeg for HA's TTS.
PV_FORKY_PACKAGES="python3.14,python3.14-venv,python3.14-dev,g++,ca-certificates,ffmpeg"
# Variables passed from the caller into the forky root (its environment starts empty).
PV_PASS_ENV=(CI TERM COLUMNS PYTEST_ADDOPTS PIP_DEFAULT_TIMEOUT HF_ENDPOINT HF_HUB_OFFLINE)

pv_say() { printf '\033[1m[private-voice]\033[0m %s\n' "$*" >&2; }
pv_die() { printf '\033[1;31m[private-voice] error:\033[0m %s\n' "$*" >&2; exit 1; }

# Run a command in the project environment, from the top of the checkout, with
# the virtual environment first on PATH. Honours the runner recorded by setup.
pv_run() {
  local runner
  runner="$(cat "$PV_RUNNER_FILE" 2>/dev/null || true)"
  case "$runner" in
    native)
      (cd "$PV_TOP" && PATH="$PV_VENV/bin:$PATH" VIRTUAL_ENV="$PV_VENV" exec "$@")
      ;;
    forky)
      pv_in_forky "$@"
      ;;
    *)
      pv_die "no environment yet: run scripts/setup"
      ;;
  esac
}

# Run a command inside the forky root: a private mount namespace (so nothing
# stays mounted afterwards) with /proc, /dev and the checkout at its own path.
pv_in_forky() {
  # SSL_CERT_FILE: uv, which Home Assistant installs packages with, ignores the
  # system store otherwise, and this machine's bundle is copied in below.
  local -a envs=(HOME=/root LANG=C.UTF-8 "VIRTUAL_ENV=$PV_VENV"
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
    "PATH=$PV_VENV/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
  local name
  for name in "${PV_PASS_ENV[@]}"; do
    [ -n "${!name+x}" ] && envs+=("$name=${!name}")
  done
  cp -f /etc/resolv.conf "$PV_FORKY_ROOT/etc/resolv.conf" 2>/dev/null || true
  if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    cp -f /etc/ssl/certs/ca-certificates.crt "$PV_FORKY_ROOT/etc/ssl/certs/ca-certificates.crt"
  fi
  mkdir -p "$PV_FORKY_ROOT$PV_TOP"
  unshare --mount --propagation private -- /bin/bash -c '
    set -e
    root="$1" top="$2"; shift 2
    mount -t proc proc "$root/proc"
    mount --rbind /dev "$root/dev"
    mount --bind "$top" "$root$top"
    exec chroot "$root" /usr/bin/env -i "$@"
  ' _ "$PV_FORKY_ROOT" "$PV_TOP" "${envs[@]}" /bin/bash -c 'cd "$0" && exec "$@"' "$PV_TOP" "$@"
}
