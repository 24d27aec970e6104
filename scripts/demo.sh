#!/usr/bin/env bash
# Installs what is needed, builds, and runs the main job on the built-in default.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
./scripts/build.sh
exec ./mvead/mvead demo "$@"
