// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * userspace/lib/log.c: the rate limiter for per-connection lines, on an
 * injected clock: the decision alone (limit per second, windows, the count
 * and span of what was held back, no limit), the lines written (the tail on
 * the next line, the flush report, one limit per call site), and threads
 * hammering one site (exactly the limit gets through, every other line is
 * counted).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lib/log.h"

static _Atomic uint64_t fake_ms;

static uint64_t fake_clock(void)
{
	return atomic_load(&fake_ms);
}

/* The lines written to fd since offset *off, as one string (caller frees); advances *off. */
static char *read_log(int fd, off_t *off)
{
	char *buf = calloc(1, 1 << 20);
	ssize_t n;

	assert_non_null(buf);
	n = pread(fd, buf, (1 << 20) - 1, *off);
	assert_true(n >= 0);
	*off += n;
	return buf;
}

static size_t count_lines(const char *s, const char *needle)
{
	size_t n = 0;
	const char *eol;

	for (; *s; s = eol + 1) {
		eol = strchr(s, '\n');
		if (!eol)
			break;
		if (!needle || (memmem(s, (size_t)(eol - s), needle, strlen(needle))))
			n++;
	}
	return n;
}

static int setup(void **state)
{
	int fd = memfd_create("weft-test-log", 0);

	if (fd < 0)
		return -1;
	/*
	 * O_APPEND: a memfd is made without the file position lock regular files
	 * get, so threads writing at one shared offset would overwrite each
	 * other's lines (stderr is a pipe, a tty or an O_APPEND file in practice).
	 */
	if (fcntl(fd, F_SETFL, O_APPEND) < 0) {
		close(fd);
		return -1;
	}
	log_set_fd(fd);
	log_set_level(LOG_LVL_INFO);
	log_rl_set_clock(fake_clock);
	log_rl_set_limit(LOG_RL_DEFAULT);
	*state = (void *)(intptr_t)fd;
	return 0;
}

static int teardown(void **state)
{
	log_rl_flush(UINT64_MAX / 2); /* reports what this test left, into its own log */
	log_set_fd(STDERR_FILENO);
	log_rl_set_clock(NULL);
	log_rl_set_limit(LOG_RL_DEFAULT);
	close((int)(intptr_t)*state);
	return 0;
}

/* --- the decision ---------------------------------------------------------------- */

static void test_admit_limit(void **state)
{
	static struct log_rl rl = { .level = LOG_LVL_WARN, .fmt = "x" }; /* static: it joins the flush list */
	uint64_t total0 = log_suppressed_total(), n, span;
	int i;

	log_rl_set_limit(3);
	for (i = 0; i < 3; i++) {
		assert_true(log_rl_admit(&rl, 5000 + (uint64_t)i, &n, &span));
		assert_true(n == 0 && span == 0);
	}
	for (i = 0; i < 7; i++)
		assert_false(log_rl_admit(&rl, 5500, &n, &span));
	assert_true(log_suppressed_total() - total0 == 7);
	/* 5999 is still the same second */
	assert_false(log_rl_admit(&rl, 5999, &n, &span));
	/* a new second: the first line carries the count, over the time since the last line (5002) */
	assert_true(log_rl_admit(&rl, 6000, &n, &span));
	assert_true(n == 8);
	assert_true(span == 998);
	assert_true(log_rl_admit(&rl, 6001, &n, &span));
	assert_true(n == 0);
	assert_true(log_rl_admit(&rl, 6002, &n, &span));
	assert_false(log_rl_admit(&rl, 6003, &n, &span));
	/* a long quiet spell: the next line reports the one held back, 10 s later */
	assert_true(log_rl_admit(&rl, 16002, &n, &span));
	assert_true(n == 1 && span == 10000);
	assert_true(log_suppressed_total() - total0 == 9);
}

static void test_admit_no_limit(void **state)
{
	static struct log_rl rl = { .level = LOG_LVL_WARN, .fmt = "x" }; /* static: it joins the flush list */
	uint64_t total0 = log_suppressed_total(), n, span;
	int i;

	log_rl_set_limit(0);
	for (i = 0; i < 100000; i++)
		assert_true(log_rl_admit(&rl, 7000, &n, &span));
	assert_true(log_suppressed_total() == total0);
	/* a limit set later applies at once */
	log_rl_set_limit(1);
	assert_true(log_rl_admit(&rl, 8000, &n, &span));
	assert_false(log_rl_admit(&rl, 8000, &n, &span));
}

/* --- the lines --------------------------------------------------------------------- */

/* One call site each (every expansion of the macro is a site of its own). */
static void no_endpoints(void)
{
	log_warn_rl("connection to %s: %s; reset", "127.10.0.1:80", "service has no endpoints");
}

static void long_line(const char *big)
{
	log_warn_rl("long %s", big);
}

static void test_tail_on_next_line(void **state)
{
	int fd = (int)(intptr_t)*state, i;
	off_t off = 0;
	char *out;

	log_rl_set_limit(10);
	atomic_store(&fake_ms, 100000);
	for (i = 0; i < 25; i++)
		no_endpoints();
	out = read_log(fd, &off);
	assert_int_equal(count_lines(out, NULL), 10);
	assert_int_equal(count_lines(out, " WARN  connection to 127.10.0.1:80: service has no endpoints; reset"), 10);
	assert_int_equal(count_lines(out, "suppressed"), 0);
	free(out);

	atomic_store(&fake_ms, 101500);
	for (i = 0; i < 2; i++)
		no_endpoints();
	out = read_log(fd, &off);
	assert_int_equal(count_lines(out, NULL), 2);
	assert_non_null(strstr(out, " WARN  connection to 127.10.0.1:80: service has no endpoints; reset "
				    "(15 similar messages suppressed in the last 1.5 s)\n"));
	assert_int_equal(count_lines(out, "suppressed"), 1);
	free(out);
}

static void test_sites_are_separate(void **state)
{
	int fd = (int)(intptr_t)*state, i;
	off_t off = 0;
	char *out;

	log_rl_set_limit(2);
	atomic_store(&fake_ms, 200000);
	for (i = 0; i < 50; i++) {
		log_warn_rl("site a %d", i);
		log_info_rl("site b %d", i);
		log_warn("plain %d", i); /* never limited */
	}
	out = read_log(fd, &off);
	assert_int_equal(count_lines(out, "site a"), 2);
	assert_int_equal(count_lines(out, "site b"), 2);
	assert_int_equal(count_lines(out, "plain"), 50);
	free(out);

	/* below the level threshold nothing is counted */
	log_set_level(LOG_LVL_WARN);
	{
		uint64_t t0 = log_suppressed_total();

		for (i = 0; i < 50; i++)
			log_info_rl("site c %d", i);
		assert_true(log_suppressed_total() == t0);
	}
	log_set_level(LOG_LVL_INFO);
}

static void flushed(int i)
{
	log_warn_rl("flushed site %d", i);
}

static void test_flush_reports_the_rest(void **state)
{
	int fd = (int)(intptr_t)*state, i;
	off_t off = 0;
	char *out;

	log_rl_set_limit(1);
	atomic_store(&fake_ms, 300000);
	for (i = 0; i < 5; i++)
		flushed(i);
	out = read_log(fd, &off);
	assert_int_equal(count_lines(out, "flushed site"), 1);
	free(out);

	/* within a second of the site's last line: nothing yet */
	assert_int_equal(log_rl_flush(300999), 0);
	out = read_log(fd, &off);
	assert_int_equal(count_lines(out, NULL), 0);
	free(out);

	assert_int_equal(log_rl_flush(302000), 1);
	out = read_log(fd, &off);
	assert_int_equal(count_lines(out, NULL), 1);
	assert_non_null(strstr(out, " WARN  4 similar messages suppressed in the last 2.0 s: \"flushed site %d\"\n"));
	free(out);

	/* reported once: neither the flush nor the next line repeats it */
	assert_int_equal(log_rl_flush(310000), 0);
	atomic_store(&fake_ms, 320000);
	flushed(9);
	out = read_log(fd, &off);
	assert_int_equal(count_lines(out, "suppressed"), 0);
	free(out);
}

/* --- threads ----------------------------------------------------------------------- */

#define THREADS 4
#define PER_THREAD 20000

static void *hammer(void *arg)
{
	int i;

	(void)arg;
	for (i = 0; i < PER_THREAD; i++)
		log_warn_rl("hammered %d", i);
	return NULL;
}

static void test_threads(void **state)
{
	int fd = (int)(intptr_t)*state, i;
	pthread_t t[THREADS];
	uint64_t t0 = log_suppressed_total();
	off_t off = 0;
	char *out;

	log_rl_set_limit(7);
	atomic_store(&fake_ms, 400000);
	for (i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, hammer, NULL), 0);
	for (i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	out = read_log(fd, &off);
	assert_int_equal(count_lines(out, "hammered"), 7);
	free(out);
	assert_true(log_suppressed_total() - t0 == THREADS * PER_THREAD - 7);
	/* and the flush reports every one of them, once */
	assert_int_equal(log_rl_flush(401000), 1);
	out = read_log(fd, &off);
	{
		char want[128];

		snprintf(want, sizeof(want), " %d similar messages suppressed in the last 1.0 s: \"hammered %%d\"",
			 THREADS * PER_THREAD - 7);
		assert_non_null(strstr(out, want));
	}
	free(out);
}

/* A long message keeps its tail: the count is never cut off. */
static void test_long_line_keeps_tail(void **state)
{
	int fd = (int)(intptr_t)*state, i;
	char big[2000];
	off_t off = 0;
	char *out, *eol;

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	log_rl_set_limit(1);
	atomic_store(&fake_ms, 500000);
	for (i = 0; i < 3; i++)
		long_line(big);
	atomic_store(&fake_ms, 501000);
	long_line(big);
	out = read_log(fd, &off);
	assert_int_equal(count_lines(out, NULL), 2);
	eol = strrchr(out, '\n');
	assert_non_null(eol);
	*eol = '\0';
	assert_non_null(strstr(out, "x (2 similar messages suppressed in the last 1.0 s)"));
	assert_true(strlen(strrchr(out, '\n') + 1) < 1024);
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_admit_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_admit_no_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tail_on_next_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sites_are_separate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flush_reports_the_rest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_line_keeps_tail, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
