# mpi fragment: the MPI layer (mvead/mpi.{h,c}; a rank-0-of-1 fallback without
# MPI), its end-to-end test and the scaling bench (bench/bench_mpi.sh).
libmvead_la_SOURCES += mvead/mpi.c mvead/mpi.h
nobase_pkginclude_HEADERS += mvead/mpi.h

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
