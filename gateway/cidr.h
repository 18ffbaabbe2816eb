/*
 * cidr.h — IPv4/IPv6 addresses as 128-bit numbers and sets of CIDR blocks.
 *
 * IPv4 addresses are stored IPv4-mapped (::ffff:a.b.c.d), so one set holds
 * both families. A set is a sorted array of disjoint, merged ranges looked up
 * by binary search: O(log n) whatever the number of blocks.
 */
#ifndef PC_CIDR_H
#define PC_CIDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "arena.h"

typedef struct pc_ip_s {
    uint64_t hi, lo;
} pc_ip_t;

typedef struct pc_cidr_range_s {
    pc_ip_t first, last;
} pc_cidr_range_t;

typedef struct pc_cidr_set_s {
    pc_cidr_range_t *r;
    size_t n;
} pc_cidr_set_t;

/* Parses a literal IPv4 or IPv6 address (no brackets, no port, no zone). */
int pc_ip_parse(const char *p, size_t n, pc_ip_t *out);

/* Parses "addr" or "addr/len" into the range it covers. Host bits set beyond
 * the prefix are an error (a typo more often than intent). 0 or -1 with a
 * reason in err. */
int pc_cidr_parse(const char *s, pc_cidr_range_t *out, char *err, size_t errlen);

/* Builds a set from n ranges (sorted and merged into pool memory). */
int pc_cidr_set_build(pc_cidr_set_t *set, pc_arena_t *pool, const pc_cidr_range_t *ranges,
                      size_t n);

int pc_cidr_set_contains(const pc_cidr_set_t *set, pc_ip_t ip);

/* The address of a socket address (IPv4 becomes IPv4-mapped). */
pc_ip_t pc_ip_from_sockaddr(const struct sockaddr *sa);

/* Text form: dotted quad for IPv4-mapped addresses, RFC 5952 for IPv6.
 * out needs 46 bytes. Returns the length. */
size_t pc_ip_format(pc_ip_t ip, char *out);

#endif
