# mvead/cli: the `mvead` program, outside the library: main and the command
# table, option parsing, the commands that are not stages (predict, ablate,
# grads, attention, synth, calibrate, epilines, ...). Built as a convenience
# library that only the program (and the tests of option parsing) link.
noinst_LTLIBRARIES += mvead/cli/libmvead_cli.la
mvead_cli_libmvead_cli_la_SOURCES = mvead/cli/options.c mvead/cli/tools.c mvead/cli/stage_cmds.c mvead/cli/options.h mvead/cli/commands.h \
	mvead/cli/exit_codes.h mvead/cli/predict.c mvead/cli/ablate.c mvead/cli/grads.c mvead/cli/attention_cmd.c
mvead_cli_libmvead_cli_la_CFLAGS = $(AM_CFLAGS)
mvead_mvead_SOURCES += mvead/cli/main.c
mvead_mvead_LDADD = mvead/cli/libmvead_cli.la libmvead.la $(MV_LIBS)

TESTS += tests/cli_test.sh tests/install_test.sh
# the CLI test is a bash script: run through bash whatever its file mode
TEST_EXTENSIONS = .test .sh
SH_LOG_COMPILER = bash
EXTRA_DIST += tests/cli_test.sh tests/install_test.sh tests/testlib.sh docs/cmd/demo.md docs/cmd/synth.md docs/cmd/import-weights.md \
	docs/cmd/calibrate.md docs/cmd/epilines.md docs/cmd/extract.md docs/cmd/train.md docs/cmd/bank.md \
	docs/cmd/eval.md docs/cmd/run.md docs/cmd/predict.md docs/cmd/ablate.md docs/cmd/report.md \
	docs/cmd/grads.md
