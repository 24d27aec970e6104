#!/bin/bash
# fuzz/replay.sh: default-suite test. Runs every fuzz target once over its
# committed corpus (fuzz/corpus/<target>/: seed-* valid inputs, regress-*
# inputs that once crashed), under ASan + UBSan. Fast; SKIP (77) when clang or
# libFuzzer is missing. See fuzz/run.sh and docs/reliability.md.
exec "$(dirname "$0")/run.sh" replay
