#!/usr/bin/env bash
# Installs what is needed, builds, and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
./scripts/build.sh
make -j"$(nproc)" check || { for f in tests/*.log; do case "$f" in */test-suite.log) ;; *) grep -q "^FAIL\|^ERROR" "${f%.log}.trs" 2>/dev/null && { echo "=== $f"; tail -50 "$f"; }; esac; done; exit 1; }
