/*
 * yaml.h — a YAML document loaded into a read-only tree that remembers the
 * line of every node, so that every configuration error can name FILE:LINE.
 *
 * Anchors and aliases are supported (an alias shares the anchored subtree);
 * the expanded size of the document is capped so that alias bombs cannot
 * make later walks explode. Tags are ignored; merge keys ("<<") are refused.
 * The tree lives in the pool passed to the loader and is never modified once
 * built: stage overrides build new nodes (pc_yaml_merge).
 */
#ifndef PC_YAML_H
#define PC_YAML_H

#include <stddef.h>

#include "arena.h"
#include "errlist.h"

typedef enum { PC_Y_SCALAR = 1, PC_Y_MAP, PC_Y_SEQ } pc_ynode_type_e;

typedef struct pc_ynode_s pc_ynode_t;

typedef struct pc_ypair_s {
    const char *key; /* NUL-terminated */
    int key_line;
    pc_ynode_t *value;
} pc_ypair_t;

struct pc_ynode_s {
    unsigned char type;  /* pc_ynode_type_e */
    unsigned char plain; /* scalar written without quotes (null, ~ mean null) */
    int line;
    size_t n; /* scalar: bytes; map: pairs; seq: items */
    union {
        char *str; /* NUL-terminated */
        pc_ypair_t *pairs;
        pc_ynode_t **items;
    } u;
};

/* Parses a file (at most 16 MiB). On failure returns NULL and adds the error,
 * with its line, to errs. */
pc_ynode_t *pc_yaml_load_file(const char *path, pc_arena_t *pool, pc_errlist_t *errs);

/* Parses a buffer; name is used in error messages. */
pc_ynode_t *pc_yaml_load_buffer(const char *name, const char *data, size_t len, pc_arena_t *pool,
                                pc_errlist_t *errs);

/* The value of key in a map node, or NULL. */
pc_ynode_t *pc_ymap_get(const pc_ynode_t *map, const char *key);

/* Item i of a sequence node, or dflt when seq is no sequence or too short
 * (where a message about item i is anchored). */
const pc_ynode_t *pc_yseq_at(const pc_ynode_t *seq, size_t i, const pc_ynode_t *dflt);

/* 1 when the node is absent or a plain null / ~ / empty scalar. */
int pc_ynode_is_null(const pc_ynode_t *n);

/* A new tree: over merged onto base. Maps merge key by key (recursively);
 * anything else in over replaces what base has. Inputs are not modified. */
pc_ynode_t *pc_yaml_merge(const pc_ynode_t *base, const pc_ynode_t *over, pc_arena_t *pool);

#endif
