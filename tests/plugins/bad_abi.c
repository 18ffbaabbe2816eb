/*
 * bad_abi.c — a plugin built for an ABI version this gateway does not speak
 * (tests: the gateway must refuse to load it, at -t and at start).
 */
#include <portcullis/plugin.h>

const portcullis_plugin_t portcullis_plugin = {
    .abi = PORTCULLIS_PLUGIN_ABI + 998,
    .name = "bad_abi",
};
