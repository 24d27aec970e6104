#!/usr/bin/env bash
# install_test: what `make install` gives a program that links libmvead.
# Installs into a temporary DESTDIR, builds a small consumer with the flags of
# the installed mvead.pc, runs it, and checks that the library and headers
# are the public ones only: no command-line code (mvead_cmd_*, mvead/cli/)
# and no internal header.
. "$(dirname "$0")/testlib.sh"
PASS=0 FAIL=0
T=$(mktemp -d "${TMPDIR:-/tmp}/mvead_install.XXXXXX")
trap 'rm -rf "$T"' EXIT
ERR=$T/stderr
BUILD=$(pwd)
if grep -q '^SAN_CFLAGS = -f' "$BUILD/Makefile" 2>/dev/null; then
    echo "install_test: SKIP: a sanitizer build (its consumer would need the sanitizer runtime)"
    exit 77
fi
command -v pkg-config >/dev/null || { echo "install_test: SKIP: no pkg-config"; exit 77; }
D=$T/dest
if make -s -C "$BUILD" install DESTDIR="$D" >"$T/install.log" 2>"$ERR"; then ok "make install DESTDIR"; else bad "make install DESTDIR"; testlib_finish; exit; fi
pc=$(find "$D" -name mvead.pc | head -1)
[ -n "$pc" ] && ok "mvead.pc installed" || bad "mvead.pc installed"
export PKG_CONFIG_PATH=$(dirname "$pc") PKG_CONFIG_SYSROOT_DIR=$D
cflags=$(pkg-config --cflags mvead 2>"$ERR") && ok "pkg-config --cflags mvead" || bad "pkg-config --cflags mvead"
libs=$(pkg-config --libs mvead 2>"$ERR") && ok "pkg-config --libs mvead" || bad "pkg-config --libs mvead"
cat > "$T/consumer.c" <<'C'
#include "mvead/method/eam.h"
#include "mvead/run/run_config.h"
#include "mvead/run/stages.h"
#include "mvead/scoring/metrics.h"
#include <stdio.h>
int main(void) {
    mvead_config c;
    mvead_config_defaults(&c);
    mvead_fusion f;
    double s[4] = {0.1, 0.4, 0.35, 0.8};
    uint8_t l[4] = {0, 0, 1, 1};
    if (mvead_fusion_parse(c.fusion, &f) || !mvead_fusion_attends(f)) return 1;
    printf("%s %.2f\n", mvs_metric_keys[MVS_KEY_SAMPLE_AUROC].key, mvs_auroc(s, l, 4, NULL));
    return 0;
}
C
# shellcheck disable=SC2086
if ${CC:-cc} -std=gnu11 $cflags "$T/consumer.c" -o "$T/consumer" $libs 2>"$ERR"; then ok "a consumer builds against the installed headers"; else bad "a consumer builds against the installed headers"; fi
libdir=$(dirname "$(find "$D" -name 'libmvead.so' | head -1)")
if [ -x "$T/consumer" ] && LD_LIBRARY_PATH=$libdir "$T/consumer" >"$T/out" 2>"$ERR" && grep -q '^sample_auroc 0.75$' "$T/out"; then
    ok "the consumer runs"
else
    bad "the consumer runs ($(cat "$T/out" 2>/dev/null))"
fi
inc=$(dirname "$(find "$D" -path '*/mvead/run/stages.h' | head -1)")/../..
[ ! -e "$inc/mvead/cli" ] && ok "no command-line headers installed" || bad "no command-line headers installed: $(ls "$inc/mvead/cli")"
[ ! -e "$inc/autograd/op.h" ] && ok "the op table stays internal" || bad "the op table stays internal (autograd/op.h installed)"
n=$(nm -D --defined-only "$libdir/libmvead.so" | grep -c ' mvead_cmd_\| mvead_cli_\| main$')
[ "$n" = 0 ] && ok "libmvead holds no command" || bad "libmvead holds no command ($n symbols)"
testlib_finish
