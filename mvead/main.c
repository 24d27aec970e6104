/* mvead command: dispatches subcommands. */
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv) {
    if (argc > 1 && (!strcmp(argv[1], "--version"))) { puts("mvead 0.1.0"); return 0; }
    fprintf(stderr, "usage: mvead <command> [options]\n");
    return argc > 1 ? 2 : 0;
}
