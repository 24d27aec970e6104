# fuzz fragment: reliability. libFuzzer targets (fuzz/fuzz_*.c, built by
# fuzz/run.sh with clang, not by automake), corpus replay in the default suite,
# 60 s per target under `make check-long`; corruption and fault-injection
# scripts through the real `mvead`. See docs/reliability.md.
TESTS += fuzz/replay.sh fuzz/run.sh tests/corrupt_test.sh tests/fault_test.sh tests/memlimit_test.sh

# helper of corrupt_test.sh: rewrites an integer attribute (wrong-version files)
check_PROGRAMS += fuzz/h5setattr
fuzz_h5setattr_SOURCES = fuzz/h5setattr.c
fuzz_h5setattr_CFLAGS = $(AM_CFLAGS)
fuzz_h5setattr_LDADD = $(HDF5_LIBS)

# faultfs_test.sh's LD_PRELOAD shim (a full or failing disk). Not sanitized:
# a preloaded library must not pull in the ASan runtime.
TESTS += tests/faultfs_test.sh
check_LTLIBRARIES = tests/libfaultfs.la
tests_libfaultfs_la_SOURCES = tests/faultfs.c
tests_libfaultfs_la_CFLAGS = -std=gnu11 -Wall -Wextra -O2
tests_libfaultfs_la_LDFLAGS = -module -avoid-version -shared -rpath /nowhere
tests_libfaultfs_la_LIBADD = -ldl
EXTRA_DIST += tests/faultfs_test.sh

EXTRA_DIST += fuzz/run.sh fuzz/replay.sh fuzz/fuzz_util.h fuzz/seedgen.c fuzz/valgrind.supp fuzz/lsan.supp fuzz/h5setattr.c \
	fuzz/fuzz_safetensors.c fuzz/fuzz_calibration.c fuzz/fuzz_realiad.c fuzz/fuzz_image.c \
	fuzz/fuzz_config.c fuzz/fuzz_cache.c fuzz/fuzz_checkpoint.c fuzz/corpus \
	tests/corrupt_test.sh tests/fault_test.sh tests/memlimit_test.sh scripts/check-asan.sh scripts/check-valgrind.sh \
	docs/reliability.md

# `make fuzz`: build every fuzz target into fuzz/clang/ (clang + libFuzzer).
fuzz:
	MVEAD_SRCDIR="$(abs_top_srcdir)" MVEAD_BUILDDIR="$(abs_top_builddir)" $(top_srcdir)/fuzz/run.sh build

# Read by fuzz/run.sh: the library's sources and flags, for the clang build.
fuzz-vars:
	@echo 'FZ_SOURCES = $(filter %.c,$(libmvead_la_SOURCES))'
	@echo 'FZ_CPPFLAGS = $(DEFS) -I$(abs_top_srcdir) -I$(abs_top_builddir) $(BLAS_CFLAGS) $(SLEEF_CFLAGS) $(HDF5_CFLAGS) $(ZLIB_CFLAGS) $(JSONC_CFLAGS) $(PNG_CFLAGS) $(JPEG_CFLAGS) $(MPI_CFLAGS)'
	@echo 'FZ_LIBS = $(BLAS_LIBS) $(SLEEF_LIBS) $(MVEC_LIBS) $(HDF5_LIBS) $(ZLIB_LIBS) $(JSONC_LIBS) $(PNG_LIBS) $(JPEG_LIBS) $(MPI_LIBS) -lm'

clean-local: clean-fuzz
clean-fuzz:
	rm -rf fuzz/clang fuzz/artifacts fuzz/work fuzz/seeds

.PHONY: fuzz fuzz-vars clean-fuzz
