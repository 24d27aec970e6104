# commands fragment (report, predict, ablate, grads, calibrate_auto, cli tests)
libmvead_la_SOURCES += mvead/report.c mvead/predict.c mvead/ablate.c mvead/grads.c mvead/calibrate_auto.c

check_PROGRAMS += tests/check_report
TESTS += tests/check_report tests/cli_test.sh
# the CLI test is a bash script: run through bash whatever its file mode
TEST_EXTENSIONS = .test .sh
SH_LOG_COMPILER = bash
tests_check_report_SOURCES = tests/check_report.c
tests_check_report_CFLAGS = $(TEST_CFLAGS_ALL)
tests_check_report_LDADD = $(TEST_LIBS_ALL)

EXTRA_DIST += tests/cli_test.sh tests/testlib.sh docs/cmd/demo.md docs/cmd/synth.md docs/cmd/import-weights.md \
	docs/cmd/calibrate.md docs/cmd/epilines.md docs/cmd/extract.md docs/cmd/train.md docs/cmd/bank.md \
	docs/cmd/eval.md docs/cmd/run.md docs/cmd/predict.md docs/cmd/ablate.md docs/cmd/report.md \
	docs/cmd/grads.md
