/*
 * server.h — the main thread: loads the configuration, opens log files and
 * listening sockets, runs the workers and the control thread (admin.h), and
 * turns signals into actions (SIGINT/SIGTERM drain and exit, SIGHUP
 * reloads, SIGUSR1 reopens logs).
 */
#ifndef PC_SERVER_H
#define PC_SERVER_H

#include <event2/event.h>

#include <signal.h>

#include "config.h"
#include "connlimit.h"
#include "log.h"
#include "pc_types.h"

struct pc_server_s {
    pc_config_t *cfg;      /* the configuration in effect (one reference) */
    pc_config_opts_t opts; /* how it was loaded: a reload loads the same way */
    struct event_base *base;
    pc_worker_t *workers;
    unsigned nworkers;
    int *fds; /* listening sockets of cfg: worker w, listener l at [w * n_listeners + l] */
    struct pc_admin_s *admin;
    pc_logfile_t access_log;
    pc_logfile_t security_log;
    pc_logfile_t error_log;
    long connections; /* open client connections, all workers (atomic) */
    pc_connlimit_t *per_ip;
    unsigned stopping;
    int done_fd; /* eventfd: each worker adds 1 when its loop ends */
    unsigned done;
};

/* Runs the gateway with an already loaded configuration until it is told to
 * stop. Takes over the caller's reference to cfg; opts (kept) say how to
 * load it again on SIGHUP. Returns the exit code. */
int pc_server_run(pc_config_t *cfg, const pc_config_opts_t *opts);

/* The signals the main thread handles (SIGHUP, SIGUSR1, SIGINT, SIGTERM):
 * main() blocks them before loading the configuration and pc_server_run
 * unblocks them once their handlers are in place. */
void pc_server_handled_signals(sigset_t *set);

#ifdef PC_TESTING
/* Set to 1 once pc_server_run has started the workers and the control
 * thread: the allocation-failure build (tests/oom/alloc_fail.c) fails
 * allocations from then on. */
extern int pc_test_serving;
#endif

#endif
