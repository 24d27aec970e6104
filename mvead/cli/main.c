/* mvead: one command per experiment. main dispatches through the command
 * table (mvead/cli/commands.h); each command parses the shared option table
 * (mvead/cli/options.h) and runs pipeline stages (mvead/run/stages.h).
 * Errors print one line naming what was wrong and exit non-zero
 * (mvead/cli/exit_codes.h: 2 for usage errors, 1 for failures). */
#include "config.h"
#include "mvead/cli/commands.h"
#include "data/h5io.h"
#include "mvead/cli/exit_codes.h"
#include "mvead/run/mpi.h"
#include "tensor/error.h"
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const struct {
    const char *name;
    int (*fn)(int, char **);
    bool mpi;
    const char *help;
} commands[] = {
#define MVEAD_COMMAND_ROW(name, fn, mpi, help) {name, fn, mpi, help},
    MVEAD_COMMANDS(MVEAD_COMMAND_ROW)
#undef MVEAD_COMMAND_ROW
};
#define N_COMMANDS ((int)(sizeof commands / sizeof commands[0]))

static void usage(FILE *f) {
    fprintf(f, "usage: mvead <command> [options]    (mvead <command> --help for its options)\n\n"
               "Multi-view industrial anomaly detection with epipolar-constrained cross-view fusion.\n\ncommands:\n");
    for (int i = 0; i < N_COMMANDS; i++) fprintf(f, "  %-15s %s\n", commands[i].name, commands[i].help);
}

/* The command proper; main wraps it in MPI init/finalize. */
static int run_command(int argc, char **argv) {
    if (argc < 2) { usage(stderr); return MVEAD_EXIT_USAGE; }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) { usage(stdout); return 0; }
    if (!strcmp(argv[1], "--version")) { printf("mvead %s\n", PACKAGE_VERSION); return 0; }
    for (int i = 0; i < N_COMMANDS; i++)
        if (!strcmp(argv[1], commands[i].name)) {
            /* under mpirun a command that does not spread runs on rank 0 only */
            if (!commands[i].mpi && mvead_mpi_world_rank() > 0) return 0;
            return commands[i].fn(argc - 2, argv + 2);
        }
    fprintf(stderr, "mvead: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return MVEAD_EXIT_USAGE;
}

int main(int argc, char **argv) {
    /* MPI starts only under mpirun/srun (mvead/run/mpi.h); otherwise rank 0 of 1 */
    if (mvead_mpi_init(&argc, &argv)) {
        fprintf(stderr, "mvead: error: %s\n", mv_error_last());
        return 1;
    }
    int rc = run_command(argc, argv);
    /* A rank that failed may leave the others inside a collective: end the job. */
    if (rc != 0 && mvead_mpi_world_size() > 1) mvead_mpi_abort(rc);
    mvead_mpi_finalize();
    if (mvd_h5_poisoned()) {
        /* a failed HDF5 write: skip libhdf5's exit handler, which would crash */
        fflush(NULL);
        _exit(rc);
    }
    return rc;
}
