#!/bin/bash
# check-asan: the whole default test suite built with AddressSanitizer and
# UndefinedBehaviorSanitizer (gcc, ./configure --enable-sanitizers) in its own
# build folder, so memory errors, leaks and UB in any unit (and in the
# `mvead` runs of the script tests) fail the suite with a stack trace.
#
#   scripts/check-asan.sh [BUILD_DIR] [make check arguments...]
#
# BUILD_DIR defaults to $MVEAD_ASAN_BUILD or ${TMPDIR:-/tmp}/mvead-build-asan
# (kept between runs: later runs rebuild only what changed). Logs of failing
# tests are printed at the end; the exit status is make check's.
# Time on 2 cores: about 3-4 min to build from scratch, the suite then runs
# 2-3x slower than the plain build (see docs/reliability.md).
set -uo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
B=${1:-${MVEAD_ASAN_BUILD:-${TMPDIR:-/tmp}/mvead-build-asan}}
[ $# -gt 0 ] && shift
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}

mkdir -p "$B"
# A source tree configured in place refuses out-of-tree builds: build from a
# clean copy of its sources (tracked and untracked-but-not-ignored files).
if [ -f "$SRC/config.status" ]; then
    COPY=$B/src
    rm -rf "$COPY" && mkdir -p "$COPY"
    (cd "$SRC" && git ls-files -z -co --exclude-standard | tar --null -T - -cf -) | tar -C "$COPY" -xf - ||
        { echo "check-asan: cannot copy the sources of $SRC"; exit 1; }
    # the copy's ../shared is not the checkout's: keep the fixtures where tests find them
    export MVEAD_FIXTURES=${MVEAD_FIXTURES:-$SRC/../shared/fixtures}
    (cd "$COPY" && autoreconf -fi >/dev/null 2>&1) || { echo "check-asan: autoreconf failed in $COPY"; exit 1; }
    SRC=$COPY
    B=$B/build
    mkdir -p "$B"
fi
if [ ! -x "$SRC/configure" ]; then
    echo "check-asan: $SRC/configure missing (run autoreconf -fi in $SRC)"
    exit 1
fi
cd "$B" || exit 1
if [ ! -f Makefile ] || ! grep -q '^SAN_CFLAGS = -fsanitize' Makefile; then
    "$SRC/configure" -q --enable-sanitizers CFLAGS="${CFLAGS:--g -O1}" || { echo "check-asan: configure failed"; exit 1; }
fi

# halt at the first error with a full report; leaks are errors; the library's
# OpenMP/BLAS thread pools are process-lifetime by design (see fuzz/lsan.supp).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1:abort_on_error=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$SRC/fuzz/lsan.supp:print_suppressions=0}
# fork mode stays on: a sanitizer abort then fails one test, not the suite

start=$(date +%s)
make -j"$JOBS" all >build.log 2>&1 || { tail -40 build.log; echo "check-asan: build failed (log: $B/build.log)"; exit 1; }
make -j"$JOBS" check "$@" >check.log 2>&1
rc=$?
for log in $(find . -name '*.log' -path '*/tests/*' -o -name '*.log' -path '*/fuzz/*' | grep -v '/fuzz/artifacts/' | sort); do
    trs=${log%.log}.trs
    [ -f "$trs" ] || continue
    if grep -q '^:test-result: \(FAIL\|ERROR\)' "$trs"; then
        echo "=== $log"
        grep -E "ERROR: (Address|Leak)Sanitizer|runtime error:|SUMMARY:|^ +#[0-9]+ |FAIL|^[^:]+:[0-9]+:[EF]:" "$log" | head -60
    fi
done
grep -E '^(# )?(TOTAL|PASS|SKIP|XFAIL|FAIL|XPASS|ERROR):' check.log | tail -8
echo "check-asan: make check exit $rc in $(($(date +%s) - start)) s (build folder $B)"
exit $rc
