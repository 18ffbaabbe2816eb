/*
 * fuzz_yaml.c — libFuzzer target for the configuration's YAML layer
 * (pc_yaml_load_buffer) and stage merging (pc_yaml_merge): the input is a
 * configuration file; when it parses, its "stages" maps are merged over it
 * as --stage would.
 *
 * Invariants (abort on violation):
 *  - a failure reports at least one error, naming the file and a line;
 *  - every node has a known type and a line within the input; scalars are
 *    NUL-terminated at their length; map keys are unique;
 *  - merging never fails on a parsed tree and keeps the base's keys.
 */
#include <string.h>

#include "fuzz_common.h"
#include "yaml.h"

static size_t lines;

static void check(const pc_ynode_t *n, int depth)
{
    FZ_ASSERT(depth < 10000);
    FZ_ASSERT(n->type == PC_Y_SCALAR || n->type == PC_Y_MAP || n->type == PC_Y_SEQ);
    FZ_ASSERT(n->line >= 0 && (size_t)n->line <= lines + 1);
    if (n->type == PC_Y_SCALAR) {
        FZ_ASSERT(n->u.str && n->u.str[n->n] == 0);
    } else if (n->type == PC_Y_MAP) {
        for (size_t i = 0; i < n->n; i++) {
            for (size_t j = 0; j < i; j++)
                FZ_ASSERT(strcmp(n->u.pairs[i].key, n->u.pairs[j].key) != 0);
            check(n->u.pairs[i].value, depth + 1);
        }
    } else {
        for (size_t i = 0; i < n->n; i++)
            check(n->u.items[i], depth + 1);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pc_arena_t pool;
    pc_errlist_t errs;
    memset(&errs, 0, sizeof(errs));
    pc_arena_init(&pool, NULL, 16384, 1 << 26);
    lines = 1; /* libyaml breaks lines at \n, \r, and three Unicode separators */
    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n' || data[i] == '\r' || data[i] == 0x85 || data[i] == 0xa8 ||
                 data[i] == 0xa9;
    pc_ynode_t *root = pc_yaml_load_buffer("fuzz.yaml", (const char *)data, size, &pool, &errs);
    if (!root) {
        FZ_ASSERT(errs.n > 0 && strncmp(errs.msgs[0], "fuzz.yaml:", 10) == 0);
    } else {
        check(root, 0);
        const pc_ynode_t *stages = pc_ymap_get(root, "stages");
        for (size_t i = 0; stages && stages->type == PC_Y_MAP && i < stages->n; i++) {
            pc_ynode_t *m = pc_yaml_merge(root, stages->u.pairs[i].value, &pool);
            FZ_ASSERT(m != NULL);
            check(m, 0);
            if (root->type == PC_Y_MAP && m->type == PC_Y_MAP &&
                stages->u.pairs[i].value->type == PC_Y_MAP)
                for (size_t k = 0; k < root->n; k++)
                    FZ_ASSERT(pc_ymap_get(m, root->u.pairs[k].key) != NULL);
        }
    }
    pc_errlist_free(&errs);
    pc_arena_free(&pool);
    return 0;
}
