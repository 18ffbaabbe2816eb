/*
 * tls.h — TLS termination with OpenSSL 3: the server contexts of a TLS
 * listener (SNI, ECDSA and RSA certificates, protocols, ciphers, ALPN,
 * session resumption, client certificates) built once per configuration
 * snapshot, and the ticket-key ring shared by every snapshot and worker.
 *
 * Ownership: a pc_tls_t belongs to the configuration snapshot that built it
 * and is freed with it. OpenSSL reference-counts SSL_CTX, so a connection
 * accepted under an old snapshot keeps its context alive after a reload.
 * Handshakes on all workers share the contexts (OpenSSL locks what it must);
 * nothing TLS-related is locked per request.
 */
#ifndef PC_TLS_H
#define PC_TLS_H

#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>

#include "errlist.h"

typedef struct pc_tls_s pc_tls_t;

/* One certificate/key pair of a listener, with the config line it came from
 * (errors name it). */
typedef struct pc_tls_pair_s {
    const char *cert;
    const char *key;
    int line;
} pc_tls_pair_t;

typedef struct pc_tls_conf_s {
    pc_tls_pair_t *pairs;
    size_t npairs;
    unsigned protocols;  /* PC_TLS_V12 | PC_TLS_V13 */
    const char *ciphers; /* TLS 1.2 cipher list, NULL: the default */
    int ciphers_line;
    const char *client_ca; /* PEM bundle; clients must present a certificate */
    int client_ca_line;
    int forward_client_cert; /* send X-Client-Cert-Subject upstream */
} pc_tls_conf_t;

#define PC_TLS_V12 1u
#define PC_TLS_V13 2u

/* The default TLS 1.2 cipher list: forward secrecy, AEAD only. */
#define PC_TLS_DEFAULT_CIPHERS                                   \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

/*
 * Builds the contexts for one listener. Every problem (unreadable file, key
 * that does not match its certificate, bad cipher list, ...) is added to
 * errs as "file:line: path: message"; certificates that expire within 30
 * days (or have expired) are warnings. Returns NULL after an error.
 */
pc_tls_t *pc_tls_new(const pc_tls_conf_t *conf, const char *file, const char *path,
                     pc_errlist_t *errs);

void pc_tls_free(pc_tls_t *t);

/* A server-side SSL for an accepted socket (NULL when out of memory). */
SSL *pc_tls_accept(pc_tls_t *t, int fd);

/* 1 when the listener sends X-Client-Cert-Subject upstream. */
int pc_tls_forwards_client_cert(const pc_tls_t *t);

/* The verified client certificate's subject (RFC 2253) into out; 0 when
 * there is none. */
size_t pc_tls_client_subject(SSL *ssl, char *out, size_t cap);

/* Rotates the shared ticket keys when due (called by the main thread). */
void pc_tls_rotate_ticket_keys(void);

/* One-time process setup (ticket keys). 0 or -1. */
int pc_tls_global_init(void);

#endif
