// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * userspace/state/tap.c: inactive without readers (offers are dropped and
 * counted); the ring keeps TAP_RING events in order and drops the rest;
 * header lines with secrets redacted (any case), whole lines only; the ring
 * goes with the last reader.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state/tap.h"

static void test_ring(void **state)
{
	static struct tap_event ev, out[16];
	struct tap t;
	size_t i, n;

	(void)state;
	assert_int_equal(tap_init(&t), 0);
	assert_false(tap_active(&t));
	assert_false(tap_active(NULL));
	tap_offer(&t, &ev); /* nobody reads: dropped */
	assert_int_equal(atomic_load(&t.dropped), 1);
	assert_int_equal(tap_reader_add(&t, false), 0);
	assert_true(tap_active(&t));
	assert_false(tap_want_headers(&t));
	for (i = 0; i < TAP_RING + 5; i++) {
		ev.status = (uint16_t)(i % 600);
		ev.latency_us = (uint32_t)i;
		tap_offer(&t, &ev);
	}
	assert_int_equal(atomic_load(&t.dropped), 1 + 5);
	n = tap_drain(&t, out, 16);
	assert_int_equal(n, 16);
	for (i = 0; i < n; i++)
		assert_int_equal(out[i].latency_us, i);
	/* room again after a drain */
	tap_offer(&t, &ev);
	assert_int_equal(atomic_load(&t.dropped), 6);
	assert_int_equal(tap_reader_add(&t, true), 0);
	assert_true(tap_want_headers(&t));
	tap_reader_remove(&t, true);
	assert_true(tap_active(&t));
	tap_reader_remove(&t, false);
	assert_false(tap_active(&t));
	assert_null(t.ring);
	assert_int_equal(tap_drain(&t, out, 16), 0);
	tap_destroy(&t);
}

static void test_headers(void **state)
{
	static struct tap_event ev;
	char big[TAP_HEADERS_MAX];

	(void)state;
	tap_add_header(&ev, "Host", 4, "example.com", 11);
	tap_add_header(&ev, "AUTHORIZATION", 13, "Bearer s3cret", 13);
	tap_add_header(&ev, "cookie", 6, "id=s3cret", 9);
	tap_add_header(&ev, "Proxy-Authorization", 19, "Basic s3cret", 12);
	tap_add_header(&ev, "Set-Cookie", 10, "a=s3cret", 8);
	tap_add_header(&ev, "X-Authorization-Hint", 20, "visible", 7); /* only the exact names are secret */
	assert_int_equal(ev.headers_len, strlen("Host: example.com\nAUTHORIZATION: <redacted>\ncookie: <redacted>\n"
						"Proxy-Authorization: <redacted>\nSet-Cookie: <redacted>\n"
						"X-Authorization-Hint: visible\n"));
	assert_memory_equal(ev.headers,
			    "Host: example.com\nAUTHORIZATION: <redacted>\ncookie: <redacted>\n"
			    "Proxy-Authorization: <redacted>\nSet-Cookie: <redacted>\nX-Authorization-Hint: visible\n",
			    ev.headers_len);
	/* a line that does not fit is left out whole */
	memset(big, 'v', sizeof(big));
	tap_add_header(&ev, "X-Big", 5, big, sizeof(big) - 10);
	assert_null(memmem(ev.headers, ev.headers_len, "X-Big", 5));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ring),
		cmocka_unit_test(test_headers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
