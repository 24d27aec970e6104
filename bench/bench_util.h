/* bench_util: what every bench program shares. Timing and peak memory come
 * from the library's own clock and RSS reader (mvead/run/progress.h), so benches
 * and the `mvead` stages report the same quantities. */
#ifndef MVEAD_BENCH_UTIL_H
#define MVEAD_BENCH_UTIL_H
#include <stdlib.h>
#include <string.h>
#include "mvead/run/progress.h"

/* An environment switch such as MVEAD_BENCH_QUICK: set, non-empty and not "0". */
static inline int env_flag(const char *name) {
    const char *v = getenv(name);
    return v && *v && strcmp(v, "0") != 0;
}
#endif
