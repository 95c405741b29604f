# The real wyoming-satellite as a test peer (tests/satellite_peer.py): a venv of
# its own in .peers/wyoming-satellite, since it pins wyoming 1.4.1 and the
# project runs wyoming 1.10. Sourced by scripts/setup, never run.
# shellcheck shell=bash

PV_SATELLITE_PEER="$PV_TOP/.peers/wyoming-satellite"
PV_SATELLITE_PEER_REQUIREMENT="wyoming-satellite==1.0.0"

# Install the peer once per requirement and project interpreter; reused after.
pv_ensure_satellite_peer() {
  local stamp="$PV_SATELLITE_PEER/.private-voice-stamp" want
  # The project venv's stamp begins with its runner and interpreter.
  want="$PV_SATELLITE_PEER_REQUIREMENT $(cut -d' ' -f1-2 "$PV_STAMP")"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  pv_say "installing the test peer $PV_SATELLITE_PEER_REQUIREMENT into .peers/wyoming-satellite"
  rm -rf "$PV_SATELLITE_PEER"
  mkdir -p "$(dirname "$PV_SATELLITE_PEER")"
  # The project's own Python 3.14 (the target of .venv's link), in its root.
  # zeroconf 0.88 has no wheel for it: SKIP_CYTHON builds the pure-Python one
  # (the peer runs with --no-zeroconf anyway).
  pv_run bash -c '"$(readlink -f .venv/bin/python)" -m venv "$0" \
    && SKIP_CYTHON=1 "$0/bin/python" -m pip install --quiet --disable-pip-version-check "$1"' \
    "$PV_SATELLITE_PEER" "$PV_SATELLITE_PEER_REQUIREMENT" \
    || pv_die "could not install $PV_SATELLITE_PEER_REQUIREMENT into $PV_SATELLITE_PEER"
  echo "$want" >"$PV_SATELLITE_PEER/.private-voice-stamp"
}
