/*
 * test.h — a filter that exists only in the test build (PC_TESTING): it
 * suspends a request for a configured time on a timer, then continues or
 * answers with a configured status. It exercises SUSPEND/resume, which rate
 * limiting (Redis) and JWKS fetches rely on.
 */
#ifndef PC_FILTERS_TEST_H
#define PC_FILTERS_TEST_H

#include "../filter.h"

#ifdef PC_TESTING
extern const pc_filter_ops_t pc_test_filter_ops;
#endif

#endif
