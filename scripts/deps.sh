#!/usr/bin/env bash
# Installs the Debian packages mvead needs, only those missing.
set -euo pipefail
pkgs=(build-essential autoconf automake libtool pkg-config libopenblas-dev libsleef-dev libhdf5-dev zlib1g-dev
      check libjson-c-dev libjpeg62-turbo-dev libpng-dev libopenmpi-dev openmpi-bin hdf5-tools
      chromium   # renders the report page headless in tests/cli_test.sh
      python3)   # bench/peers/collect.py: make bench's joined table, checked by tests/bench_collect_test.sh
pkgs+=("$@")
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
