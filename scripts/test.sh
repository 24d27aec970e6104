#!/usr/bin/env bash
# Installs what is needed, builds, and runs the whole test suite. Under CI
# (CI=true) or with MVEAD_ASAN=1 the suite then runs a second time built with
# AddressSanitizer + UBSan (scripts/check-asan.sh, about 6 min on 2 cores).
set -uo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh || exit 1
./scripts/build.sh || exit 1
make -j"$(nproc)" check
rc=$?
dirs=(.)
if [ "${CI:-}" = true ] || [ "${MVEAD_ASAN:-0}" = 1 ]; then
  asan_dir=${MVEAD_ASAN_BUILD:-${TMPDIR:-/tmp}/mvead-build-asan-$$}
  echo "=== the suite again under AddressSanitizer + UBSan ($asan_dir)"
  ./scripts/check-asan.sh "$asan_dir" || rc=1
  dirs+=("$asan_dir")
fi
# Show the logs of the tests that did not pass, then one summary line.
trs_files=$(find "${dirs[@]}" -name '*.trs' -not -path '*/autom4te.cache/*')
for trs in $trs_files; do
  if grep -q '^:test-result: \(FAIL\|ERROR\)' "$trs"; then
    echo "=== ${trs%.trs}.log"; tail -60 "${trs%.trs}.log"
  fi
done
pass=$(cat $trs_files /dev/null | grep -c '^:test-result: PASS')
fail=$(cat $trs_files /dev/null | grep -c '^:test-result: \(FAIL\|ERROR\|XPASS\)')
skip=$(cat $trs_files /dev/null | grep -c '^:test-result: SKIP')
echo "tests: $pass passed, $fail failed, $skip skipped"
# the sanitizer build is scratch unless the caller named it
if [ -z "${MVEAD_ASAN_BUILD:-}" ] && [ -n "${asan_dir:-}" ] && [ "$rc" -eq 0 ] && [ "$fail" -eq 0 ]; then
  rm -rf "$asan_dir"
fi
[ "$rc" -eq 0 ] && [ "$fail" -eq 0 ]
