#!/usr/bin/env bash
# Installs the Debian packages weakgc needs, skipping what is already present.
set -euo pipefail
pkgs=(build-essential cmake libsigsegv-dev libcapstone-dev libgtest-dev libgmock-dev
      libbenchmark-dev libgc-dev libxxhash-dev pkg-config
      python3               # the emulator test generator (tests/emulate_gen.py)
      doxygen gnuplot-nox)  # docs target; tools/plot_events.py
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
