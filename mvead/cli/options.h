/* options: a command line into a run's configuration, through the one option
 * table of mvead/run/run_config.h. Every command parses here; a command that acts
 * on a run starts from that run's config.json (mvead_config_parse_run). */
#ifndef MVEAD_CLI_OPTIONS_H
#define MVEAD_CLI_OPTIONS_H

#include "mvead/run/run_config.h"

/* Option names that a command accepts are listed in a NULL-terminated array.
 * Parses argv (after the subcommand): --opt value, --opt=value, --flag,
 * --no-flag, --config FILE (applied first, then the command line), --help.
 * Positional arguments are returned in pos[] (up to max_pos).
 * Returns 0 ok, 1 if --help was printed, -1 on error (mv_error set). */
int mvead_config_parse(mvead_config *c, const char *cmd, const char *summary,
                       const char *const *accepted, int argc, char **argv,
                       char **pos, int max_pos, int *n_pos);
/* As mvead_config_parse, for commands that act on a run: when
 * <runs>/<name>/config.json exists, the run's options are the base and the
 * command line (and --config) override them. How to run (--resume, --quiet,
 * --threads) is never inherited, and runs/name stay those of the command line
 * (a run folder may have been moved). require_run: a missing config.json is
 * an error naming it. Returns as mvead_config_parse (0, 1 for --help, -1 for
 * a bad option), and -2 when the run's config.json is missing (require_run)
 * or unreadable: a failure of the command, not of its usage. */
int mvead_config_parse_run(mvead_config *c, const char *cmd, const char *summary, const char *const *accepted,
                           int argc, char **argv, char **pos, int max_pos, int *n_pos, bool require_run);
/* Prints "mvead CMD: error: <mv_error>" (naming the MPI rank under mpirun)
 * and returns the failure exit code. */
int mvead_cli_fail(const char *cmd);
/* Threads and progress output as c says (only rank 0 draws progress). */
void mvead_cli_apply_runtime(const mvead_config *c);
/* Prints the usage of a command to stdout. */
void mvead_config_usage(const char *cmd, const char *summary, const char *const *accepted);

#endif
