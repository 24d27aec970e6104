# mvead/run: the pipeline. What a run is (config) and where its files are
# (paths); its state (checkpoint), fusion set-up and fused features (fuse),
# starting point (init), backbone; the stages (extract, train, bank, eval,
# report); banks and heatmaps (scoremaps); MPI, scratch files, progress.
libmvead_la_SOURCES += mvead/run/run_config.c mvead/run/run_config.h mvead/run/paths.c mvead/run/paths.h mvead/run/history.c mvead/run/history.h mvead/run/interrupt.c mvead/run/interrupt.h \
	mvead/run/checkpoint.c mvead/run/checkpoint.h mvead/run/fuse.c mvead/run/fuse.h \
	mvead/run/init.c mvead/run/init.h mvead/run/backbone.c mvead/run/backbone.h mvead/run/stages.h \
	mvead/run/extract_stage.c mvead/run/train.c mvead/run/bank_stage.c mvead/run/eval_stage.c mvead/run/report.c \
	mvead/run/scoremaps.c mvead/run/scoremaps.h mvead/run/attention.c mvead/run/attention.h \
	mvead/run/report_html.c mvead/run/report_html.h mvead/run/compare.c mvead/run/eval_pixels.c mvead/run/eval_pixels.h \
	mvead/run/mpi.c mvead/run/mpi.h mvead/run/scratch.c mvead/run/scratch.h mvead/run/progress.c mvead/run/progress.h
nobase_pkginclude_HEADERS += mvead/run/run_config.h mvead/run/paths.h mvead/run/history.h mvead/run/interrupt.h mvead/run/checkpoint.h mvead/run/fuse.h \
	mvead/run/init.h mvead/run/backbone.h mvead/run/stages.h mvead/run/scoremaps.h mvead/run/attention.h \
	mvead/run/mpi.h mvead/run/scratch.h mvead/run/progress.h

check_PROGRAMS += tests/check_report tests/check_eval_pixels
TESTS += tests/check_report tests/check_eval_pixels
tests_check_eval_pixels_SOURCES = tests/check_eval_pixels.c
tests_check_eval_pixels_CFLAGS = $(TEST_CFLAGS_ALL)
tests_check_eval_pixels_LDADD = $(TEST_LIBS_ALL)
tests_check_report_SOURCES = tests/check_report.c
tests_check_report_CFLAGS = $(TEST_CFLAGS_ALL)
tests_check_report_LDADD = $(TEST_LIBS_ALL)

# Compares `mpirun -np 2 mvead extract/train/bank/eval` with one process;
# skips (77) when the build has no MPI or mpirun is missing.
TESTS += tests/mpi_test.sh
EXTRA_DIST += tests/mpi_test.sh bench/bench_mpi.sh docs/cluster.md

# The bench is a script: bench/run.sh runs every executable bench/bench_* of
# the build folder, so `make bench` copies it there as bench/bench_mpi.
bench/bench_mpi: $(srcdir)/bench/bench_mpi.sh
	@$(MKDIR_P) bench
	$(AM_V_GEN)cp $(srcdir)/bench/bench_mpi.sh $@ && chmod +x $@
bench: bench/bench_mpi
CLEANFILES += bench/bench_mpi
