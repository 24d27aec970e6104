#!/usr/bin/env bash
# Installs what is needed, builds, and runs the whole test suite. Under CI
# (CI=true) the suite then runs twice more: built with AddressSanitizer +
# UBSan (scripts/check-asan.sh, about 6 min on 2 cores; also MVEAD_ASAN=1)
# and under valgrind memcheck (scripts/check-valgrind.sh, about 20 min; also
# MVEAD_VALGRIND=1). The last line sums the three runs.
set -uo pipefail
cd "$(dirname "$0")/.."
extra=()
if [ "${CI:-}" = true ] || [ "${MVEAD_VALGRIND:-0}" = 1 ]; then extra+=(valgrind); fi
./scripts/deps.sh "${extra[@]}" || exit 1
./scripts/build.sh || exit 1

pass=0 fail=0 skip=0
# tally DIR...: prints the logs of the tests that did not pass, adds to the counts
tally() {
  local trs_files
  trs_files=$(find "$@" -name '*.trs' -not -path '*/autom4te.cache/*')
  for trs in $trs_files; do
    if grep -q '^:test-result: \(FAIL\|ERROR\)' "$trs"; then
      echo "=== ${trs%.trs}.log"; tail -60 "${trs%.trs}.log"
    fi
  done
  pass=$((pass + $(cat $trs_files /dev/null | grep -c '^:test-result: PASS')))
  fail=$((fail + $(cat $trs_files /dev/null | grep -c '^:test-result: \(FAIL\|ERROR\|XPASS\)')))
  skip=$((skip + $(cat $trs_files /dev/null | grep -c '^:test-result: SKIP')))
}

make -j"$(nproc)" check
rc=$?
tally .
if [ "${CI:-}" = true ] || [ "${MVEAD_ASAN:-0}" = 1 ]; then
  asan_dir=${MVEAD_ASAN_BUILD:-${TMPDIR:-/tmp}/mvead-build-asan-$$}
  echo "=== the suite again under AddressSanitizer + UBSan ($asan_dir)"
  ./scripts/check-asan.sh "$asan_dir" || rc=1
  tally "$asan_dir"
fi
if [ "${CI:-}" = true ] || [ "${MVEAD_VALGRIND:-0}" = 1 ]; then
  # in this (plain) build: its test results replace the first run's, which are counted above
  echo "=== the suite again under valgrind memcheck"
  ./scripts/check-valgrind.sh . || rc=1
  tally .
fi
echo "tests: $pass passed, $fail failed, $skip skipped"
# the sanitizer build is scratch unless the caller named it
if [ -z "${MVEAD_ASAN_BUILD:-}" ] && [ -n "${asan_dir:-}" ] && [ "$rc" -eq 0 ] && [ "$fail" -eq 0 ]; then
  rm -rf "$asan_dir"
fi
[ "$rc" -eq 0 ] && [ "$fail" -eq 0 ]
