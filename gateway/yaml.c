/*
 * yaml.c — libyaml events into a pc_ynode_t tree (see yaml.h).
 */
#include "yaml.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#define MAX_FILE     (16u << 20)
#define MAX_DEPTH    64
#define MAX_EXPANDED 1000000 /* nodes, counting each alias use in full */
#define MAX_ANCHORS  1024

typedef struct {
    char *name;
    pc_ynode_t *node;
    size_t weight;
} anchor_t;

typedef struct {
    yaml_parser_t parser;
    pc_arena_t *pool;
    pc_errlist_t *errs;
    const char *name;
    anchor_t anchors[MAX_ANCHORS];
    size_t nanchors;
    int failed;
} loader_t;

static void fail(loader_t *l, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(loader_t *l, int line, const char *fmt, ...)
{
    char msg[600];
    if (!l->failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        pc_errlist_add(l->errs, l->name, line, NULL, "%s", msg);
    }
    l->failed = 1;
}

static int next_event(loader_t *l, yaml_event_t *ev)
{
    if (yaml_parser_parse(&l->parser, ev))
        return 0;
    char msg[512];
    snprintf(msg, sizeof(msg), "%s%s%s", l->parser.problem ? l->parser.problem : "syntax error",
             l->parser.context ? " " : "", l->parser.context ? l->parser.context : "");
    fail(l, (int)l->parser.problem_mark.line + 1, "invalid YAML: %s", msg);
    return -1;
}

static void remember_anchor(loader_t *l, const yaml_char_t *anchor, pc_ynode_t *node, size_t w,
                            int line)
{
    if (!anchor)
        return;
    if (l->nanchors == MAX_ANCHORS) {
        fail(l, line, "too many anchors");
        return;
    }
    anchor_t *a = &l->anchors[l->nanchors++];
    a->name = pc_arena_strndup(l->pool, (const char *)anchor, strlen((const char *)anchor));
    a->node = node;
    a->weight = w;
}

/* Parses the node that starts with ev. *weight receives its expanded size. */
static pc_ynode_t *parse_node(loader_t *l, yaml_event_t *ev, int depth, size_t *weight);

static pc_ynode_t *parse_collection(loader_t *l, yaml_event_t *start, int depth, size_t *weight)
{
    int is_map = start->type == YAML_MAPPING_START_EVENT;
    int line = (int)start->start_mark.line + 1;
    yaml_char_t *anchor =
        is_map ? start->data.mapping_start.anchor : start->data.sequence_start.anchor;
    char *anchor_copy = anchor ? strdup((const char *)anchor) : NULL;
    pc_ynode_t *node = pc_arena_calloc(l->pool, sizeof(*node));
    size_t n = 0, cap = 8, w = 1;
    void **tmp = malloc(cap * sizeof(void *) * 2);
    int *key_lines = malloc(cap * sizeof(int));
    if (!node || !tmp || !key_lines || depth > MAX_DEPTH) {
        fail(l, line, "%s", depth > MAX_DEPTH ? "nesting deeper than 64 levels" : "out of memory");
        goto out;
    }
    node->type = is_map ? PC_Y_MAP : PC_Y_SEQ;
    node->line = line;
    for (;;) {
        yaml_event_t ev;
        if (next_event(l, &ev) != 0)
            goto out;
        if (ev.type == YAML_MAPPING_END_EVENT || ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        if (n == cap) {
            cap *= 2;
            void **t2 = realloc(tmp, cap * sizeof(void *) * 2);
            int *k2 = realloc(key_lines, cap * sizeof(int));
            if (t2)
                tmp = t2;
            if (k2)
                key_lines = k2;
            if (!t2 || !k2) {
                yaml_event_delete(&ev);
                fail(l, line, "out of memory");
                goto out;
            }
        }
        if (is_map) {
            int kline = (int)ev.start_mark.line + 1;
            if (ev.type != YAML_SCALAR_EVENT) {
                yaml_event_delete(&ev);
                fail(l, kline, "mapping keys must be plain strings");
                goto out;
            }
            const char *k = (const char *)ev.data.scalar.value;
            if (strcmp(k, "<<") == 0 && ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
                yaml_event_delete(&ev);
                fail(l, kline, "merge keys (<<) are not supported");
                goto out;
            }
            for (size_t i = 0; i < n; i++) {
                if (strcmp(tmp[2 * i], k) == 0) {
                    char msg[300];
                    snprintf(msg, sizeof(msg), "%.200s", k);
                    yaml_event_delete(&ev);
                    fail(l, kline, "duplicate key '%s'", msg);
                    goto out;
                }
            }
            tmp[2 * n] = pc_arena_strndup(l->pool, k, ev.data.scalar.length);
            key_lines[n] = kline;
            yaml_event_delete(&ev);
            if (next_event(l, &ev) != 0)
                goto out;
        }
        size_t cw = 0;
        pc_ynode_t *child = parse_node(l, &ev, depth + 1, &cw);
        yaml_event_delete(&ev);
        if (!child)
            goto out;
        tmp[2 * n + 1] = child;
        n++;
        w += cw;
        if (w > MAX_EXPANDED) {
            fail(l, line, "document too large (after alias expansion)");
            goto out;
        }
    }
    node->n = n;
    if (is_map) {
        node->u.pairs = pc_arena_alloc(l->pool, (n ? n : 1) * sizeof(pc_ypair_t));
        for (size_t i = 0; node->u.pairs && i < n; i++) {
            node->u.pairs[i].key = tmp[2 * i];
            node->u.pairs[i].key_line = key_lines[i];
            node->u.pairs[i].value = tmp[2 * i + 1];
        }
    } else {
        node->u.items = pc_arena_alloc(l->pool, (n ? n : 1) * sizeof(pc_ynode_t *));
        for (size_t i = 0; node->u.items && i < n; i++)
            node->u.items[i] = tmp[2 * i + 1];
    }
    if (!node->u.pairs && !node->u.items)
        fail(l, line, "out of memory");
    remember_anchor(l, (yaml_char_t *)anchor_copy, node, w, line);
out:
    free(anchor_copy);
    free(tmp);
    free(key_lines);
    *weight = w;
    return l->failed ? NULL : node;
}

static pc_ynode_t *parse_node(loader_t *l, yaml_event_t *ev, int depth, size_t *weight)
{
    int line = (int)ev->start_mark.line + 1;
    switch (ev->type) {
    case YAML_SCALAR_EVENT: {
        pc_ynode_t *node = pc_arena_calloc(l->pool, sizeof(*node));
        if (!node) {
            fail(l, line, "out of memory");
            return NULL;
        }
        node->type = PC_Y_SCALAR;
        node->line = line;
        node->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        node->n = ev->data.scalar.length;
        node->u.str = pc_arena_strndup(l->pool, (const char *)ev->data.scalar.value, node->n);
        *weight = 1;
        remember_anchor(l, ev->data.scalar.anchor, node, 1, line);
        return l->failed ? NULL : node;
    }
    case YAML_ALIAS_EVENT:
        for (size_t i = l->nanchors; i-- > 0;) {
            if (strcmp(l->anchors[i].name, (const char *)ev->data.alias.anchor) == 0) {
                *weight = l->anchors[i].weight;
                return l->anchors[i].node;
            }
        }
        fail(l, line, "unknown alias '%s'", (const char *)ev->data.alias.anchor);
        return NULL;
    case YAML_MAPPING_START_EVENT:
    case YAML_SEQUENCE_START_EVENT:
        return parse_collection(l, ev, depth, weight);
    default:
        fail(l, line, "unexpected YAML event");
        return NULL;
    }
}

pc_ynode_t *pc_yaml_load_buffer(const char *name, const char *data, size_t len, pc_arena_t *pool,
                                pc_errlist_t *errs)
{
    loader_t *l = calloc(1, sizeof(*l));
    pc_ynode_t *root = NULL;
    if (!l) {
        pc_errlist_add(errs, name, 0, NULL, "out of memory");
        return NULL;
    }
    l->pool = pool;
    l->errs = errs;
    l->name = name;
    if (!yaml_parser_initialize(&l->parser)) {
        pc_errlist_add(errs, name, 0, NULL, "out of memory");
        free(l);
        return NULL;
    }
    yaml_parser_set_input_string(&l->parser, (const unsigned char *)data, len);
    int docs = 0;
    for (;;) {
        yaml_event_t ev;
        if (next_event(l, &ev) != 0)
            break;
        yaml_event_type_t t = ev.type;
        int line = (int)ev.start_mark.line + 1;
        if (t == YAML_STREAM_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        if (t == YAML_DOCUMENT_START_EVENT && ++docs > 1) {
            yaml_event_delete(&ev);
            fail(l, line, "more than one YAML document");
            break;
        }
        if (t == YAML_MAPPING_START_EVENT || t == YAML_SEQUENCE_START_EVENT ||
            t == YAML_SCALAR_EVENT || t == YAML_ALIAS_EVENT) {
            size_t w;
            root = parse_node(l, &ev, 0, &w);
            yaml_event_delete(&ev);
            if (!root)
                break;
            continue;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&l->parser);
    int failed = l->failed;
    free(l);
    if (failed)
        return NULL;
    if (!root) {
        /* An empty file is an empty configuration. */
        root = pc_arena_calloc(pool, sizeof(*root));
        if (root) {
            root->type = PC_Y_MAP;
            root->line = 1;
        }
    }
    return root;
}

pc_ynode_t *pc_yaml_load_file(const char *path, pc_arena_t *pool, pc_errlist_t *errs)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        pc_errlist_add(errs, path, 0, NULL, "cannot open: %s", strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (off_t)MAX_FILE) {
        pc_errlist_add(errs, path, 0, NULL, "not a regular file of at most 16 MiB");
        fclose(f);
        return NULL;
    }
    size_t len = (size_t)st.st_size;
    char *data = malloc(len + 1);
    if (!data || fread(data, 1, len, f) != len) {
        pc_errlist_add(errs, path, 0, NULL, "cannot read: %s", strerror(errno));
        free(data);
        fclose(f);
        return NULL;
    }
    fclose(f);
    pc_ynode_t *root = pc_yaml_load_buffer(path, data, len, pool, errs);
    free(data);
    return root;
}

pc_ynode_t *pc_ymap_get(const pc_ynode_t *map, const char *key)
{
    if (!map || map->type != PC_Y_MAP)
        return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (strcmp(map->u.pairs[i].key, key) == 0)
            return map->u.pairs[i].value;
    return NULL;
}

const pc_ynode_t *pc_yseq_at(const pc_ynode_t *seq, size_t i, const pc_ynode_t *dflt)
{
    return seq && seq->type == PC_Y_SEQ && i < seq->n ? seq->u.items[i] : dflt;
}

int pc_ynode_is_null(const pc_ynode_t *n)
{
    if (!n)
        return 1;
    if (n->type != PC_Y_SCALAR || !n->plain)
        return 0;
    return n->n == 0 || strcmp(n->u.str, "null") == 0 || strcmp(n->u.str, "~") == 0 ||
           strcmp(n->u.str, "Null") == 0 || strcmp(n->u.str, "NULL") == 0;
}

pc_ynode_t *pc_yaml_merge(const pc_ynode_t *base, const pc_ynode_t *over, pc_arena_t *pool)
{
    if (!base || base->type != PC_Y_MAP || !over || over->type != PC_Y_MAP)
        return (pc_ynode_t *)(over ? over : base);
    pc_ynode_t *m = pc_arena_calloc(pool, sizeof(*m));
    if (!m)
        return NULL;
    *m = *base;
    m->u.pairs = pc_arena_alloc(pool, (base->n + over->n + 1) * sizeof(pc_ypair_t));
    if (!m->u.pairs)
        return NULL;
    memcpy(m->u.pairs, base->u.pairs, base->n * sizeof(pc_ypair_t));
    m->n = base->n;
    for (size_t i = 0; i < over->n; i++) {
        const pc_ypair_t *op = &over->u.pairs[i];
        size_t j;
        for (j = 0; j < m->n; j++)
            if (strcmp(m->u.pairs[j].key, op->key) == 0)
                break;
        if (j == m->n) {
            m->u.pairs[m->n++] = *op;
            continue;
        }
        pc_ynode_t *v = pc_yaml_merge(m->u.pairs[j].value, op->value, pool);
        if (!v)
            return NULL;
        m->u.pairs[j].value = v;
        if (v == op->value)
            m->u.pairs[j].key_line = op->key_line;
    }
    return m;
}
