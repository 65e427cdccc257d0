// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * userspace/lib/lpause.c: the listener pauser every listener uses (outbound,
 * inbound, admin). What each accept errno means (wait, next, pause), the
 * back-off (0.1 s doubling to 1 s while the first accept after a pause fails
 * again; reset by an accept that works), that the one-shot timer really
 * waits each time (issue 18: it was restarted without being set again and
 * fired at once from the second pause on), the log (one WARN per episode),
 * and a real listener under a real EMFILE: a pending connection while no
 * descriptor is free wakes the callback a handful of times in half a
 * second, not millions, and is accepted once a descriptor frees up.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/lpause.h"

struct fixture {
	struct ev_loop *loop;
	int lfd, logfd;
	ev_io io;
	struct lpause p;
	unsigned calls, accepted;
	int last_err;
};

/* A listener callback written as the three real ones are. */
static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct fixture *f = w->data;
	int fd, i;

	(void)loop;
	(void)revents;
	f->calls++;
	for (i = 0; i < 16; i++) {
		fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			f->last_err = errno;
			if (lpause_accept_error(&f->p, errno) == LPAUSE_NEXT)
				continue;
			return;
		}
		lpause_accepted(&f->p);
		f->accepted++;
		close(fd);
	}
}

static int listen_any(uint16_t *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 16) ||
	    getsockname(fd, (struct sockaddr *)&a, &len))
		return -1;
	*port = ntohs(a.sin_port);
	return fd;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	uint16_t port;

	if (!f)
		return -1;
	f->loop = ev_loop_new(EVFLAG_AUTO);
	f->lfd = listen_any(&port);
	f->logfd = memfd_create("weft-test-lpause-log", 0);
	if (!f->loop || f->lfd < 0 || f->logfd < 0)
		return -1;
	log_set_fd(f->logfd);
	ev_io_init(&f->io, on_accept, f->lfd, EV_READ);
	f->io.data = f;
	ev_io_start(f->loop, &f->io);
	lpause_init(&f->p, f->loop, &f->io, 1, "test listener");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	lpause_stop(&f->p);
	ev_io_stop(f->loop, &f->io);
	close(f->lfd);
	ev_loop_destroy(f->loop);
	log_set_fd(STDERR_FILENO);
	close(f->logfd);
	free(f);
	return 0;
}

static size_t log_count(struct fixture *f, const char *needle)
{
	static char buf[65536];
	ssize_t n = pread(f->logfd, buf, sizeof(buf) - 1, 0);
	size_t c = 0;
	char *p;

	assert_true(n >= 0);
	buf[n] = '\0';
	for (p = buf; (p = strstr(p, needle)); p++)
		c++;
	return c;
}

/* Fires the pause timer now, as the loop would when it expires. */
static void fire(struct fixture *f)
{
	assert_true(ev_is_active(&f->p.timer));
	ev_timer_stop(f->loop, &f->p.timer);
	ev_invoke(f->loop, &f->p.timer, EV_TIMER);
}

static void test_verdicts(void **state)
{
	struct fixture *f = *state;
	static const int empty[] = { EAGAIN, EWOULDBLOCK, EINTR };
	static const int next[] = { ECONNABORTED, EPROTO, EPERM, ENETDOWN, EHOSTUNREACH, ENETUNREACH };
	static const int pause[] = { EMFILE, ENFILE, ENOBUFS, ENOMEM, EBADF, EINVAL };
	size_t i;

	for (i = 0; i < sizeof(empty) / sizeof(empty[0]); i++)
		assert_int_equal(lpause_accept_error(&f->p, empty[i]), LPAUSE_EMPTY);
	for (i = 0; i < sizeof(next) / sizeof(next[0]); i++)
		assert_int_equal(lpause_accept_error(&f->p, next[i]), LPAUSE_NEXT);
	/* neither touched the listener */
	assert_true(ev_is_active(&f->io));
	assert_false(ev_is_active(&f->p.timer));
	assert_int_equal(f->p.total, 0);
	for (i = 0; i < sizeof(pause) / sizeof(pause[0]); i++) {
		assert_int_equal(lpause_accept_error(&f->p, pause[i]), LPAUSE_PAUSED);
		assert_false(ev_is_active(&f->io));
		assert_true(ev_is_active(&f->p.timer));
		lpause_accepted(&f->p);
		fire(f);
		assert_true(ev_is_active(&f->io));
	}
	assert_int_equal(f->p.total, sizeof(pause) / sizeof(pause[0]));
}

static void test_backoff(void **state)
{
	struct fixture *f = *state;
	static const double want[] = { 0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0 };
	size_t i;

	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		assert_int_equal(lpause_accept_error(&f->p, EMFILE), LPAUSE_PAUSED);
		assert_true(f->p.delay > want[i] - 1e-9 && f->p.delay < want[i] + 1e-9);
		/* the timer is armed for the whole pause, every time */
		assert_true(ev_timer_remaining(f->loop, &f->p.timer) > want[i] - 0.02);
		assert_true(ev_timer_remaining(f->loop, &f->p.timer) <= want[i] + 1e-9);
		fire(f);
	}
	/* one WARN for the whole episode */
	assert_int_equal(log_count(f, " WARN "), 1);
	assert_int_equal(log_count(f, "test listener: accept: Too many open files; pausing them"), 1);
	assert_int_equal(log_count(f, "RLIMIT_NOFILE"), 1);

	/* an accept that works resets the back-off; the next trouble starts at 0.1 s again */
	lpause_accepted(&f->p);
	assert_int_equal(lpause_accept_error(&f->p, ENFILE), LPAUSE_PAUSED);
	assert_true(f->p.delay < 0.1 + 1e-9);
	/* still the same episode (less than LPAUSE_QUIET_S since the last error): no new WARN */
	assert_int_equal(log_count(f, " WARN "), 1);
	fire(f);

	/* stop: no restart */
	assert_int_equal(lpause_accept_error(&f->p, EMFILE), LPAUSE_PAUSED);
	lpause_stop(&f->p);
	assert_false(ev_is_active(&f->p.timer));
	assert_false(ev_is_active(&f->io));
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_break(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)t;
	(void)revents;
	ev_break(loop, EVBREAK_ALL);
}

/* The lowest free descriptor number: an RLIMIT_NOFILE equal to it leaves none to allocate. */
static int lowest_free_fd(void)
{
	int fd = dup(0);

	if (fd >= 0)
		close(fd);
	return fd;
}

/* The second pause waits too (the bug: from the second pause on, the timer fired at once). */
static void test_timer_really_waits(void **state)
{
	struct fixture *f = *state;
	double t0;

	ev_now_update(f->loop); /* as after a turn of the loop: timers count from now */
	assert_int_equal(lpause_accept_error(&f->p, EMFILE), LPAUSE_PAUSED);
	t0 = now_s();
	ev_run(f->loop, EVRUN_ONCE);
	assert_true(ev_is_active(&f->io));
	assert_true(now_s() - t0 >= 0.09);
	ev_now_update(f->loop);
	assert_int_equal(lpause_accept_error(&f->p, EMFILE), LPAUSE_PAUSED);
	t0 = now_s();
	ev_run(f->loop, EVRUN_ONCE);
	assert_true(ev_is_active(&f->io));
	assert_true(now_s() - t0 >= 0.19);
}

/*
 * Valgrind checks a new descriptor against its own copy of the limit: accept4
 * takes the connection off the backlog, then valgrind closes it and returns
 * EMFILE. What this test is about is the kernel's behaviour (the connection
 * stays in the backlog), so it does not run there.
 */
static bool under_valgrind(void)
{
	const char *p = getenv("LD_PRELOAD");

	return p && strstr(p, "vgpreload");
}

static void test_real_emfile(void **state)
{
	struct fixture *f = *state;
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	struct rlimit old, low;
	ev_timer stop;
	int c;

	if (under_valgrind()) {
		skip();
		return;
	}

	assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&a, &len), 0);
	c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(c >= 0);
	assert_int_equal(connect(c, (struct sockaddr *)&a, len), 0); /* waits in the backlog */

	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = (rlim_t)lowest_free_fd();
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	ev_now_update(f->loop);
	ev_timer_init(&stop, on_break, 0.5, 0.);
	ev_timer_start(f->loop, &stop);
	ev_run(f->loop, 0);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);

	assert_int_equal(f->last_err, EMFILE);
	assert_int_equal(f->accepted, 0);
	/* pauses of 0.1, 0.2 (then 0.4): about 3 wake-ups in 0.5 s; a spinning listener makes millions */
	assert_true(f->calls >= 2);
	assert_true(f->calls <= 5);
	assert_int_equal(log_count(f, " WARN "), 1);

	/* descriptors again: the waiting connection is accepted at the next retry (at most LPAUSE_MAX_S) */
	ev_now_update(f->loop);
	ev_timer_set(&stop, LPAUSE_MAX_S + 0.2, 0.);
	ev_timer_start(f->loop, &stop);
	while (!f->accepted && ev_is_active(&stop))
		ev_run(f->loop, EVRUN_ONCE);
	ev_timer_stop(f->loop, &stop);
	assert_int_equal(f->accepted, 1);
	close(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_verdicts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backoff, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timer_really_waits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_real_emfile, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
