# testlib: what the shell tests that drive `mvead` share. Source it, then
# call testlib_init NAME; it sets BIN (the program, from $MVEAD_BIN), T (a
# temporary folder removed at exit), OUT and ERR (where commands' output
# goes), and defines ok/bad (bad prints the tail of $ERR, BAD_TAIL lines) and
# testlib_finish, which prints "N passed, M failed" and sets the exit status.
# Under valgrind (scripts/check-valgrind.sh) mvead runs 30-100x slower:
# MVEAD_TEST_TIME_SCALE stretches time limits and kill times (scaled N: N
# times the factor), MVEAD_TEST_REDUCED=1 asks for fewer cases.
TIME_SCALE=${MVEAD_TEST_TIME_SCALE:-1}
REDUCED=${MVEAD_TEST_REDUCED:-0}
scaled() { echo $(($1 * TIME_SCALE)); }
# image side of the tests' tiny datasets and of the network input: 56 px
# (4 x 4 patches) when reduced, else 112 (8 x 8)
IMG=112
[ "$REDUCED" = 1 ] && IMG=56
testlib_init() {
    TESTLIB_NAME=$1
    BIN=${MVEAD_BIN:-$(dirname "$0")/../mvead/mvead}
    if [ ! -x "$BIN" ]; then
        echo "$TESTLIB_NAME: MVEAD_BIN ($BIN) is not an executable"
        exit 1
    fi
    T=$(mktemp -d "${TMPDIR:-/tmp}/mvead_${TESTLIB_NAME}.XXXXXX")
    trap 'rm -rf "$T"' EXIT
    PASS=0
    FAIL=0
    OUT=$T/stdout
    ERR=$T/stderr
    BAD_TAIL=${BAD_TAIL:-5}
}

ok() { PASS=$((PASS + 1)); echo "ok   - $1"; }
bad() {
    FAIL=$((FAIL + 1))
    echo "FAIL - $1"
    if [ -s "$ERR" ]; then sed 's/^/       stderr: /' "$ERR" | tail -"$BAD_TAIL"; fi
}

testlib_finish() {
    echo "$PASS passed, $FAIL failed"
    [ "$FAIL" = 0 ]
}
