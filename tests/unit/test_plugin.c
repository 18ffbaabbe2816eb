/*
 * test_plugin.c — the plugin host without a plugin file: configuration
 * nodes as plugins read them, counters and their exposition, and request
 * functions refusing to work outside a callback. (Loading real .so files is
 * covered end to end in tests/e2e/test_plugins.py.)
 */
#include <event2/buffer.h>
#include <stdlib.h>

#include "config.h"
#include "errlist.h"
#include "plugin.h"
#include "request.h"
#include "test.h"
#include "yaml.h"

static pc_plugin_t *fake_plugin(const char *name)
{
    pc_plugin_t *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->ops.name = name;
    snprintf(p->subsys, sizeof(p->subsys), "plugin:%s", name);
    pc_plugin_host_init(p);
    return p;
}

TEST(config_nodes)
{
    static const char doc[] = "secret: s3cret\n"
                              "tags: [a, b]\n"
                              "nested: { k: v }\n"
                              "empty: ~\n";
    pc_arena_t pool;
    pc_errlist_t errs = {0};
    pc_arena_init(&pool, NULL, 4096, 0);
    const pc_ynode_t *root = pc_yaml_load_buffer("doc", doc, sizeof(doc) - 1, &pool, &errs);
    pc_plugin_t *p = fake_plugin("unit");
    CHECK(root != NULL && p != NULL);
    if (!root || !p)
        goto out;
    const portcullis_host_t *h = &p->host;
    const portcullis_node_t *cfg = (const portcullis_node_t *)root;
    CHECK_EQ_INT(h->abi, PORTCULLIS_PLUGIN_ABI);
    CHECK_EQ_INT(h->size, sizeof(portcullis_host_t));
    CHECK_EQ_STR(h->plugin_name, "unit");
    CHECK_EQ_INT(h->node_type(cfg), PORTCULLIS_NODE_MAP);
    CHECK_EQ_INT(h->node_len(cfg), 4);
    CHECK_EQ_STR(h->node_key(cfg, 1), "tags");
    CHECK(h->node_key(cfg, 4) == NULL);
    CHECK_EQ_STR(h->node_str(h->node_get(cfg, "secret")), "s3cret");
    CHECK_EQ_INT(h->node_line(h->node_get(cfg, "tags")), 2);
    const portcullis_node_t *tags = h->node_get(cfg, "tags");
    CHECK_EQ_INT(h->node_type(tags), PORTCULLIS_NODE_SEQ);
    CHECK_EQ_INT(h->node_len(tags), 2);
    CHECK_EQ_STR(h->node_str(h->node_at(tags, 1)), "b");
    CHECK(h->node_at(tags, 2) == NULL);
    CHECK(h->node_key(tags, 0) == NULL);
    CHECK_EQ_STR(h->node_str(h->node_at(h->node_get(cfg, "nested"), 0)), "v");
    /* null and absent read the same, and chains need no checks */
    CHECK_EQ_INT(h->node_type(h->node_get(cfg, "empty")), PORTCULLIS_NODE_NULL);
    CHECK(h->node_str(h->node_get(cfg, "empty")) == NULL);
    CHECK(h->node_str(h->node_get(h->node_get(cfg, "missing"), "deeper")) == NULL);
    CHECK_EQ_INT(h->node_len(NULL), 0);
    CHECK(h->node_str(cfg) == NULL); /* a map has no text */
out:
    free(p);
    pc_errlist_free(&errs);
    pc_arena_free(&pool);
}

TEST(counters)
{
    pc_plugin_t *a = fake_plugin("alpha"), *b = fake_plugin("beta");
    CHECK(a && b);
    if (!a || !b)
        goto out;
    portcullis_counter_t *x = a->host.counter(&a->host, "hits");
    CHECK(x != NULL);
    CHECK(a->host.counter(&a->host, "hits") == x); /* registered once, survives reloads */
    CHECK(b->host.counter(&b->host, "hits") != x); /* per plugin */
    CHECK(a->host.counter(&a->host, "Hits") == NULL);
    CHECK(a->host.counter(&a->host, "") == NULL);
    CHECK(a->host.counter(&a->host, "a-b") == NULL);
    CHECK(a->host.counter(&a->host, NULL) == NULL);
    CHECK(a->host.counter(NULL, "hits") == NULL);
    a->host.count(x, 2);
    a->host.count(x, 3);
    a->host.count(NULL, 1); /* a refused counter is harmless */
    struct evbuffer *buf = evbuffer_new();
    CHECK(buf != NULL);
    if (buf) {
        pc_plugin_metrics(buf);
        evbuffer_add(buf, "", 1);
        const char *text = (const char *)evbuffer_pullup(buf, -1);
        CHECK(strstr(text, "# TYPE portcullis_plugin_events_total counter\n") != NULL);
        CHECK(strstr(text, "portcullis_plugin_events_total{plugin=\"alpha\",event=\"hits\"} 5\n") !=
              NULL);
        CHECK(strstr(text, "portcullis_plugin_events_total{plugin=\"beta\",event=\"hits\"} 0\n") !=
              NULL);
        evbuffer_free(buf);
    }
out:
    free(a);
    free(b);
}

TEST(request_functions_outside_a_callback)
{
    pc_plugin_t *p = fake_plugin("outside");
    pc_req_t r;
    memset(&r, 0, sizeof(r));
    CHECK(p != NULL);
    if (!p)
        return;
    const portcullis_host_t *h = &p->host;
    portcullis_req_t *hr = (portcullis_req_t *)&r;
    size_t n = 99;
    CHECK(h->request_header(hr, "host", 0, &n) == NULL && n == 0);
    CHECK(h->request_method(hr, &n) == NULL);
    CHECK(h->client_address(hr) == NULL);
    CHECK(h->route_name(hr) == NULL);
    CHECK(h->request_header_add(hr, "X-A", "b") == -1);
    CHECK(h->request_header_remove(hr, "X-A") == -1);
    CHECK(h->response_header_add(hr, "X-A", "b") == -1);
    CHECK(h->respond(hr, 403, NULL) == -1);
    CHECK(h->set_identity(hr, "someone") == -1);
    CHECK(r.user == NULL && r.req_extra == NULL && r.status == 0);
    /* a callback of another request does not lend its rights */
    pc_req_t other;
    memset(&other, 0, sizeof(other));
    pc_plugin_call_t call = {p, &other, PC_PHASE_REQUEST_HEADERS, 0};
    pc_plugin_current = &call;
    CHECK(h->request_header_add(hr, "X-A", "b") == -1);
    CHECK(h->respond(hr, 403, NULL) == -1);
    pc_plugin_current = NULL;
    free(p);
}

TEST_MAIN(RUN(config_nodes); RUN(counters); RUN(request_functions_outside_a_callback))
