#include "mvead/run/interrupt.h"
#include "mvead/run/mpi.h"
#include "tensor/error.h"
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static volatile sig_atomic_t got;

static void on_signal(int sig) {
    got = sig;
    /* the next one is not caught: a user who insists gets the default (death) */
    signal(sig, SIG_DFL);
}

void mvead_interrupt_install(void) {
    if (mvead_mpi_world_size() > 1) return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int mvead_interrupted(void) { return got; }

int mvead_interrupt_check(const char *fmt, ...) {
    if (!got) return 0;
    char what[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return mv_error("interrupted (%s) %s", got == SIGINT ? "SIGINT" : got == SIGTERM ? "SIGTERM" : "signal", what);
}
