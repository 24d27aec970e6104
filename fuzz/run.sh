#!/bin/bash
# fuzz/run.sh: builds and runs the libFuzzer targets (fuzz/fuzz_*.c).
#
# The targets are compiled with clang -fsanitize=fuzzer,address,undefined
# against the library sources compiled again with clang (the automake build
# uses gcc; libFuzzer needs clang's coverage instrumentation). Objects live in
# <builddir>/fuzz/clang/ and are rebuilt incrementally by a generated Makefile.
#
#   fuzz/run.sh              as a TESTS entry: SKIP (77) unless MVEAD_LONG=1,
#                            then `long` (make check-long)
#   fuzz/run.sh build        build every target                 (make fuzz)
#   fuzz/run.sh replay       run every target once over fuzz/corpus/<target>/*
#                            (seeds + regress-* inputs); fuzz/replay.sh calls this
#   fuzz/run.sh long [SEC]   fuzz each target SEC seconds (default 60; env
#                            MVEAD_FUZZ_SECONDS), new inputs in a scratch corpus
#   fuzz/run.sh one TARGET [SEC] [libFuzzer args...]   fuzz one target
#   fuzz/run.sh seeds        regenerate the generated seed-* inputs (fuzz/seedgen.c)
#
# Needs: clang with libFuzzer (Debian: clang, libclang-rt-14-dev), a configured
# build folder (the current directory, or MVEAD_BUILDDIR) to take the flags
# and the list of library sources from (`make fuzz-vars`). Exits 77 (SKIP)
# with a message when clang or libFuzzer is missing.
# A crash leaves its input in <builddir>/fuzz/artifacts/; after fixing the bug
# copy it to fuzz/corpus/<target>/regress-<what>, so replay keeps checking it.
set -u

MODE=${1:-auto}
[ $# -gt 0 ] && shift
SRC=${MVEAD_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
BUILD=${MVEAD_BUILDDIR:-$PWD}
FZ=$BUILD/fuzz/clang
ART=$BUILD/fuzz/artifacts
TARGETS="safetensors calibration realiad image config cache checkpoint"
CLANG=${CLANG:-clang}

skip() { echo "SKIP fuzz: $*"; exit 77; }

if [ "$MODE" = auto ]; then
    if [ "${MVEAD_LONG:-0}" != 1 ]; then skip "60 s runs per target only under make check-long (MVEAD_LONG=1)"; fi
    MODE=long
fi

command -v "$CLANG" >/dev/null 2>&1 || skip "clang not found (Debian: apt-get install clang libclang-rt-14-dev)"
probe=$(mktemp -d "${TMPDIR:-/tmp}/mvead_fzprobe.XXXXXX")
trap 'rm -rf "$probe"' EXIT
printf '#include <stdint.h>\n#include <stddef.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' >"$probe/p.c"
if ! "$CLANG" -fsanitize=fuzzer,address,undefined "$probe/p.c" -o "$probe/p" >"$probe/log" 2>&1; then
    cat "$probe/log"
    skip "clang cannot link -fsanitize=fuzzer,address,undefined (Debian: apt-get install libclang-rt-14-dev)"
fi
[ -f "$BUILD/Makefile" ] || skip "no configured build folder at $BUILD (run from the build folder or set MVEAD_BUILDDIR)"
if ! make -s --no-print-directory -C "$BUILD" fuzz-vars >"$probe/vars" 2>"$probe/vars.err"; then
    cat "$probe/vars.err"
    echo "fuzz: 'make fuzz-vars' failed in $BUILD"
    exit 1
fi

mkdir -p "$FZ" "$ART"
# The flags and sources of the automake build (fuzz/local.mk: fuzz-vars).
{
    grep '^FZ_[A-Z]* = ' "$probe/vars"   # (a Makefile regeneration may print first)
    cat <<EOF
SRC = $SRC
CC = $CLANG
SAN = -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
CFLAGS = -g -O1 -std=gnu11 -pthread -fopenmp \$(SAN)
TARGETS = $(for t in $TARGETS; do printf 'fuzz_%s ' "$t"; done)
OBJS = \$(patsubst %.c,obj/%.o,\$(FZ_SOURCES))

all: \$(TARGETS)
obj/%.o: \$(SRC)/%.c
	@mkdir -p \$(dir \$@)
	@echo "  CLANG    \$*.c"
	@\$(CC) \$(CFLAGS) -fsanitize=fuzzer-no-link -w \$(FZ_CPPFLAGS) -MMD -MP -c \$< -o \$@
libmvead_fuzz.a: \$(OBJS)
	@rm -f \$@
	@ar rcs \$@ \$(OBJS)
fuzz_%: \$(SRC)/fuzz/fuzz_%.c \$(SRC)/fuzz/fuzz_util.h libmvead_fuzz.a
	@echo "  FUZZER   \$@"
	@\$(CC) \$(CFLAGS) -fsanitize=fuzzer -Wall -Wextra \$(FZ_CPPFLAGS) -MMD -MP \$< libmvead_fuzz.a \$(FZ_LIBS) -o \$@
seedgen: \$(SRC)/fuzz/seedgen.c libmvead_fuzz.a
	@\$(CC) \$(CFLAGS) -Wall -Wextra \$(FZ_CPPFLAGS) \$< libmvead_fuzz.a \$(FZ_LIBS) -o \$@
-include \$(OBJS:.o=.d) \$(TARGETS:=.d)
EOF
} >"$probe/Makefile"
if ! cmp -s "$probe/Makefile" "$FZ/Makefile"; then cp "$probe/Makefile" "$FZ/Makefile"; fi

build() {
    # one build at a time per folder (make -j check may start replay and long together)
    (
        flock 9
        make -s --no-print-directory -C "$FZ" -j"${MVEAD_FUZZ_JOBS:-2}" "$@"
    ) 9>"$FZ/.lock"
}

# Environment for every fuzzer run: one thread (deterministic, and the fuzzer
# is single-threaded anyway); leaks are bugs; UBSan stops at the first report;
# an impossible malloc returns NULL as it does outside ASan (libhdf5 asks for
# sizes read from corrupt headers and handles the NULL).
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$SRC/fuzz/lsan.supp:print_suppressions=0}

# fuzz_one TARGET SECONDS [args]: fuzz into a scratch corpus seeded from the committed one.
fuzz_one() {
    local t=$1 sec=$2
    shift 2
    local work=$BUILD/fuzz/work/$t
    mkdir -p "$work" "$ART/$t"
    echo "== fuzz_$t: ${sec}s"
    "$FZ/fuzz_$t" -max_total_time="$sec" -timeout=20 -rss_limit_mb=3072 -max_len=1048576 \
        -artifact_prefix="$ART/$t/" -print_final_stats=1 "$@" "$work" "$SRC/fuzz/corpus/fuzz_$t" \
        >"$ART/$t.log" 2>&1
    local rc=$?
    grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::new_units_added)" "$ART/$t.log" | tr '\n' ' '
    echo
    if [ $rc != 0 ]; then
        echo "FAIL fuzz_$t (exit $rc); crash input(s) in $ART/$t/:"
        ls "$ART/$t/" | sed 's/^/    /'
        grep -E "ERROR: |SUMMARY: |==[0-9]+==|^    #[0-9]+ " "$ART/$t.log" | head -40
    fi
    return $rc
}

case "$MODE" in
build)
    build all || exit 1
    echo "fuzz targets in $FZ: $(cd "$FZ" && ls fuzz_* | grep -v '\.d$' | tr '\n' ' ')"
    ;;
replay)
    build all || exit 1
    fail=0
    total=0
    for t in $TARGETS; do
        files=()
        for f in "$SRC/fuzz/corpus/fuzz_$t"/*; do [ -f "$f" ] && files+=("$f"); done
        [ ${#files[@]} = 0 ] && { echo "fuzz_$t: no corpus"; continue; }
        total=$((total + ${#files[@]}))
        if "$FZ/fuzz_$t" -timeout=15 -rss_limit_mb=2048 "${files[@]}" >"$ART/replay-$t.log" 2>&1; then
            echo "ok   - fuzz_$t: ${#files[@]} inputs"
        else
            fail=$((fail + 1))
            echo "FAIL - fuzz_$t over its corpus (log $ART/replay-$t.log):"
            grep -E "^Running: |ERROR: |SUMMARY: |^    #[0-9]+ " "$ART/replay-$t.log" | tail -30
        fi
    done
    echo "replayed $total inputs, $fail target(s) failed"
    [ $fail = 0 ]
    ;;
long)
    sec=${1:-${MVEAD_FUZZ_SECONDS:-60}}
    build all || exit 1
    fail=0
    for t in $TARGETS; do fuzz_one "$t" "$sec" || fail=$((fail + 1)); done
    echo "$fail target(s) crashed"
    [ $fail = 0 ]
    ;;
one)
    t=${1:?usage: fuzz/run.sh one TARGET [SECONDS] [libFuzzer args]}
    sec=${2:-60}
    shift 2 2>/dev/null || shift $#
    build "fuzz_$t" || exit 1
    fuzz_one "$t" "$sec" "$@"
    ;;
seeds)
    build seedgen || exit 1
    out=$BUILD/fuzz/seeds
    rm -rf "$out"
    ASAN_OPTIONS=detect_leaks=0 "$FZ/seedgen" "$out" || exit 1
    for d in "$out"/*/; do
        t=$(basename "$d")
        mkdir -p "$SRC/fuzz/corpus/$t"
        cp "$d"/seed-* "$SRC/fuzz/corpus/$t/"
        echo "$t: $(ls "$d" | tr '\n' ' ')"
    done
    ;;
*)
    echo "usage: fuzz/run.sh [build|replay|long [SEC]|one TARGET [SEC]|seeds]" >&2
    exit 2
    ;;
esac
