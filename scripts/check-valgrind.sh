#!/bin/bash
# check-valgrind: every Check test program (tests/check_*, not the script
# tests) under valgrind memcheck, in a plain (non-sanitizer) build:
#   valgrind --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=1
# with CK_FORK=no so the tests run inside the valgrind'ed process. Invalid
# reads/writes, uses of uninitialised values, bad frees and definite leaks
# fail the program; OpenMP/OpenBLAS thread-pool noise is suppressed by
# fuzz/valgrind.supp.
#
#   scripts/check-valgrind.sh [BUILD_DIR] [check_foo ...]
#
# BUILD_DIR: a configured build folder (default: the current directory); the
# test programs are built there first (make check_PROGRAMS=...). Logs go to
# BUILD_DIR/valgrind/<program>.log. Environment: MVEAD_VG_JOBS (programs run
# at once, default 2), MVEAD_VG_TIMEOUT (seconds per program, default 3600),
# MVEAD_FIXTURES. Exits 77 when valgrind is missing.
set -uo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
B=${1:-$PWD}
[ $# -gt 0 ] && shift
if ! command -v valgrind >/dev/null 2>&1; then
    echo "SKIP check-valgrind: valgrind not found (Debian: apt-get install valgrind)"
    exit 77
fi
if [ ! -f "$B/Makefile" ]; then
    echo "check-valgrind: $B is not a configured build folder (give BUILD_DIR)"
    exit 1
fi
cd "$B" || exit 1
if grep -q '^SAN_CFLAGS = -fsanitize' Makefile; then
    echo "check-valgrind: $B is a sanitizer build; valgrind needs a plain one"
    exit 1
fi

# the Check programs: TESTS entries named tests/check_* (scripts excluded)
if [ $# -gt 0 ]; then
    progs=()
    for p in "$@"; do progs+=("tests/$(basename "$p")"); done
else
    mapfile -t progs < <(make -s --no-print-directory -f Makefile -f - print-check-programs <<'MK' 2>/dev/null | tr ' ' '\n' | grep '^tests/check_' | sort -u
print-check-programs:
	@echo $(check_PROGRAMS)
MK
)
fi
[ ${#progs[@]} -gt 0 ] || { echo "check-valgrind: no tests/check_* programs found"; exit 1; }
make -j"${JOBS:-2}" "${progs[@]}" mvead/mvead >valgrind-build.log 2>&1 || { tail -30 valgrind-build.log; echo "check-valgrind: build failed"; exit 1; }

mkdir -p valgrind
export CK_FORK=no
export CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-100000}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
# OpenBLAS picks AVX-512 kernels on some CPUs, which valgrind cannot run
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-Haswell}
export MVEAD_FIXTURES=${MVEAD_FIXTURES:-$SRC/../shared/fixtures}
export MVEAD_BIN=$B/mvead/mvead MVEAD_SRCDIR=$SRC
LIBTOOL=$B/libtool
VG=(valgrind --tool=memcheck --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite
    --error-exitcode=1 --num-callers=40 --track-origins=yes --gen-suppressions=all
    --suppressions="$SRC/fuzz/valgrind.supp")

run_one() {
    local p=$1 name log t0 rc
    name=$(basename "$p")
    log=valgrind/$name.log
    t0=$(date +%s)
    timeout "${MVEAD_VG_TIMEOUT:-3600}" "$LIBTOOL" --mode=execute "${VG[@]}" --log-file="$log.vg" "./$p" >"$log" 2>&1
    rc=$?
    cat "$log.vg" >>"$log"
    rm -f "$log.vg"
    local errs
    errs=$(grep -oE 'ERROR SUMMARY: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+$')
    if [ $rc = 0 ]; then echo "ok   - $name ($(($(date +%s) - t0)) s, ${errs:-?} errors)"
    else
        echo "FAIL - $name (exit $rc, ${errs:-?} valgrind errors, $(($(date +%s) - t0)) s; log $B/$log)"
        grep -E "^==[0-9]+== (Invalid|Conditional|Use of|Mismatched|Syscall|Source and|.*definitely lost|Process terminating)|^==[0-9]+==    (at|by) " "$log" | head -30
        grep -E "^[^:]+:[0-9]+:[EF]:" "$log" | head -10
    fi
    return $rc
}

start=$(date +%s)
fail=0
running=0
declare -A pid_of
for p in "${progs[@]}"; do
    run_one "$p" >"valgrind/$(basename "$p").summary" &
    pid_of[$!]=$p
    running=$((running + 1))
    if [ $running -ge "${MVEAD_VG_JOBS:-2}" ]; then
        wait -n
        running=$((running - 1))
    fi
done
wait
for p in "${progs[@]}"; do
    s=valgrind/$(basename "$p").summary
    cat "$s"
    grep -q '^ok' "$s" || fail=$((fail + 1))
done
echo "check-valgrind: ${#progs[@]} programs, $fail failed, $(($(date +%s) - start)) s"
[ $fail = 0 ]
