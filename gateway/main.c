/*
 * main.c — the command line: run the gateway (-c FILE), check a
 * configuration (-t), print versions (-V).
 */
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "config.h"
#include "errlist.h"
#include "server.h"
#include "token.h"
#include "version.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: portcullis -c FILE [--stage NAME]      run the gateway\n"
               "       portcullis -t -c FILE [--stage NAME]   check the configuration\n"
               "       portcullis token --key FILE --alg ALG [--kid ID] [--sub S] [--ttl 1h]\n"
               "                        [--claim NAME=VALUE]...  mint a JWT (development)\n"
               "       portcullis -V                          print versions\n");
}

static void print_versions(void)
{
    printf("portcullis %s\n", PC_VERSION);
    printf("libevent %s\n", event_get_version());
    printf("%s\n", OpenSSL_version(OPENSSL_VERSION));
    printf("libyaml %s\n", yaml_get_version_string());
    printf("jansson %s\n", jansson_version_str());
    printf("hiredis %d.%d.%d\n", HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH);
    printf("libjwt %s\n", PC_LIBJWT_VERSION);
}

int main(int argc, char **argv)
{
    const char *file = NULL;
    pc_config_opts_t opts = {0};
    int test = 0;
    if (argc > 1 && strcmp(argv[1], "token") == 0)
        return pc_token_main(argc - 1, argv + 1);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-c") == 0 && i + 1 < argc) {
            file = argv[++i];
        } else if (strcmp(a, "--stage") == 0 && i + 1 < argc) {
            opts.stage = argv[++i];
        } else if (strncmp(a, "--stage=", 8) == 0) {
            opts.stage = a + 8;
        } else if (strcmp(a, "-t") == 0) {
            test = 1;
        } else if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
            print_versions();
            return 0;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "portcullis: unknown or incomplete argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!file) {
        fprintf(stderr, "portcullis: no configuration file (-c FILE)\n");
        usage(stderr);
        return 2;
    }
    if (!test) {
        /* A SIGHUP (or SIGTERM) during start-up — loading, opening the
         * listeners — waits for its handler instead of killing the process
         * with the default action; pc_server_run unblocks them. */
        sigset_t handled;
        pc_server_handled_signals(&handled);
        pthread_sigmask(SIG_BLOCK, &handled, NULL);
#ifdef PC_TESTING
        /* a start-up long enough for a test to signal it meanwhile */
        const char *delay = getenv("PC_TEST_START_DELAY_MS");
        if (delay)
            usleep((useconds_t)atoi(delay) * 1000);
#endif
    }
    pc_errlist_t errs = {0};
    pc_config_t *cfg = pc_config_load(file, &opts, &errs);
    pc_errlist_sort(&errs);
    for (size_t i = 0; i < errs.n; i++)
        fprintf(stderr, "%s%s\n", errs.is_warning[i] ? "warning: " : "", errs.msgs[i]);
    size_t nerr = pc_errlist_errors(&errs);
    pc_errlist_free(&errs);
    if (!cfg) {
        fprintf(stderr, "portcullis: %s: %zu error%s\n", file, nerr, nerr == 1 ? "" : "s");
        return 1;
    }
    if (test) {
        fprintf(stderr, "portcullis: %s: configuration is valid\n", file);
        pc_config_unref(cfg);
        return 0;
    }
    return pc_server_run(cfg, &opts);
}
