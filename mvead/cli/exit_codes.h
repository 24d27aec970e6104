/* exit_codes: what `mvead` returns, the same for every command. Scripts
 * (and the tests) tell a bad command line from a failed run by these. */
#ifndef MVEAD_CLI_EXIT_CODES_H
#define MVEAD_CLI_EXIT_CODES_H

#define MVEAD_EXIT_OK 0
#define MVEAD_EXIT_FAILURE 1   /* the work failed; the message names the file or option */
#define MVEAD_EXIT_USAGE 2     /* the command line is wrong; nothing was done */
#define MVEAD_EXIT_SIGINT 130  /* stopped by SIGINT at a safe point (128 + the signal, as a shell reports it) */
#define MVEAD_EXIT_SIGTERM 143 /* stopped by SIGTERM at a safe point */

#endif
