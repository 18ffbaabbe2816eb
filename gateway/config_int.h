/*
 * config_int.h — the schema walker shared by config.c (the walker and the
 * loader) and config_schema.c (the key tables and semantic checks). Not for
 * use outside the config module.
 *
 * Every key of the configuration is one row of a table: name, type, where it
 * is stored, default (written in config syntax and parsed by the same code
 * as user input), bounds, and a short description used in error messages.
 */
#ifndef PC_CONFIG_INT_H
#define PC_CONFIG_INT_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "yaml.h"

typedef enum {
    PC_CT_STR = 1,   /* const char * */
    PC_CT_BOOL,      /* int64_t 0/1 */
    PC_CT_INT,       /* int64_t */
    PC_CT_DURATION,  /* int64_t milliseconds */
    PC_CT_SIZE,      /* int64_t bytes */
    PC_CT_RATE,      /* pc_rate_t, count per duration */
    PC_CT_SIZE_RATE, /* pc_rate_t, bytes per duration */
    PC_CT_ENUM,      /* int64_t index into sub (NULL-terminated names) */
    PC_CT_STRUCT,    /* nested section stored inline; sub is a pc_cschema_t */
    PC_CT_OPTIONAL,  /* nested section stored by pointer, NULL when absent */
    PC_CT_LIST,      /* PC_ARRAY; sub is the element's pc_ckey_t */
    PC_CT_NAMED,     /* PC_ARRAY of structs keyed by name; sub is a pc_cschema_t
                        whose struct starts with `const char *name` */
    PC_CT_CUSTOM     /* custom(ctx, node, dst) */
} pc_ctype_e;

#define PC_K_REQUIRED 0x1 /* must be present (and not null) */
#define PC_K_NONEMPTY 0x2 /* a list or map that must have an element */

typedef struct pc_cctx_s pc_cctx_t;
typedef struct pc_ckey_s pc_ckey_t;

typedef struct pc_cschema_s {
    const pc_ckey_t *keys; /* terminated by a row with name NULL */
    size_t size;           /* sizeof the struct */
    /* Cross-field checks after every key is set (not in shape-only mode). */
    void (*check)(pc_cctx_t *c, const pc_ynode_t *node, void *obj);
} pc_cschema_t;

struct pc_ckey_s {
    const char *name;
    pc_ctype_e type;
    unsigned flags;
    size_t off;
    const char *def; /* default in config syntax; NULL: zero / empty */
    int64_t min, max;
    const void *sub;
    int (*custom)(pc_cctx_t *c, const pc_ynode_t *node, void *dst);
    size_t size;      /* element size of PC_CT_CUSTOM list elements */
    const char *what; /* "a duration", used in messages and docs */
};

struct pc_cctx_s {
    pc_config_t *cfg;
    pc_arena_t *pool;
    pc_errlist_t *errs;
    const char *file;
    char path[512];
    size_t pathlen;
    int shape_only; /* check keys and node kinds only (non-selected stages) */
};

/* Reports an error at node (or line 0 when node is NULL) for the current path. */
void pc_cfg_error(pc_cctx_t *c, const pc_ynode_t *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void pc_cfg_warn(pc_cctx_t *c, const pc_ynode_t *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Path stack: push ".key" (or "key" at the top), "[i]"; pop restores. */
size_t pc_cfg_push_key(pc_cctx_t *c, const char *key);
size_t pc_cfg_push_index(pc_cctx_t *c, size_t i);
void pc_cfg_pop(pc_cctx_t *c, size_t mark);

/* The scalar's text after ${env:...}/${file:...} expansion, or NULL after
 * reporting an error (also when node is not a scalar). */
const char *pc_cfg_scalar(pc_cctx_t *c, const pc_ynode_t *node, const char *what);

/* Walks node (a map, or NULL for "absent") into obj with schema s. */
void pc_cfg_walk(pc_cctx_t *c, const pc_cschema_t *s, const pc_ynode_t *node, void *obj);

/* The root schema (config_schema.c). */
extern const pc_cschema_t pc_root_schema;

/* Runs after a successful walk: resolves references, builds route chains
 * (config_schema.c). */
void pc_cfg_finish(pc_cctx_t *c, const pc_ynode_t *root);

#endif
