// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * userspace/lib/netns.c: sockets made in another network namespace from the
 * calling thread, which comes back home (what weftd's pod support stands
 * on), and the placement hook every upstream socket goes through. Needs
 * CAP_SYS_ADMIN for unshare(CLONE_NEWNET): skipped otherwise.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/netns.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

static uint64_t thread_ino(void)
{
	struct stat st;

	assert_int_equal(stat("/proc/thread-self/ns/net", &st), 0);
	return (uint64_t)st.st_ino;
}

static uint64_t sock_cookie(int fd)
{
	uint64_t c = 0;
	socklen_t len = sizeof(c);

	assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &c, &len), 0);
	return c;
}

/* A new network namespace, held by an fd (made on a throwaway thread). */
static void *make_ns(void *arg)
{
	int *fd = arg;

	*fd = -1;
	if (unshare(CLONE_NEWNET) == 0)
		*fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	return NULL;
}

static int new_ns(void)
{
	pthread_t t;
	int fd = -1;

	pthread_create(&t, NULL, make_ns, &fd);
	pthread_join(t, NULL);
	return fd;
}

static int setup(void **state)
{
	int fd = new_ns();

	if (fd < 0)
		return 0;
	*state = (void *)(intptr_t)(fd + 1);
	return 0;
}

static int teardown(void **state)
{
	if (*state)
		close((int)(intptr_t)*state - 1);
	netns_set_placer(NULL, NULL);
	return 0;
}

static int ns_of(void **state)
{
	if (!*state)
		skip(); /* not privileged: no second namespace to try */
	return (int)(intptr_t)*state - 1;
}

static void test_home(void **state)
{
	uint64_t ino = 0, pino = 0;
	int h = netns_home();

	(void)state;
	assert_true(h >= 0);
	assert_int_equal(netns_home(), h); /* opened once */
	assert_int_equal(netns_ino_of_fd(h, &ino), 0);
	assert_int_equal(netns_ino_of_pid(getpid(), &pino), 0);
	assert_int_equal(ino, pino);
	assert_int_equal(ino, thread_ino());
	assert_int_equal(netns_ino_of_pid(-5, &pino), -ENOENT);
	assert_true(netns_open_pid(-5) < 0);
}

static void test_socket_in_other_ns_and_back(void **state)
{
	int ns = ns_of(state);
	uint64_t home = thread_ino(), other = 0, sock_ns = 0;
	int s, here, nsfd;

	assert_int_equal(netns_ino_of_fd(ns, &other), 0);
	assert_int_not_equal(other, home);
	s = netns_socket(ns, AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(s >= 0);
	assert_int_equal(thread_ino(), home); /* the thread came back */
	here = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(here >= 0);
	assert_int_not_equal(sock_cookie(s), sock_cookie(here));
	/* the socket's namespace, read back from the socket (what pods.c uses) */
	nsfd = netns_of_socket(s);
	assert_true(nsfd >= 0);
	assert_true(fcntl(nsfd, F_GETFD) & FD_CLOEXEC);
	assert_int_equal(netns_ino_of_fd(nsfd, &sock_ns), 0);
	assert_int_equal(sock_ns, other);
	close(nsfd);
	nsfd = netns_of_socket(here);
	assert_int_equal(netns_ino_of_fd(nsfd, &sock_ns), 0);
	assert_int_equal(sock_ns, home);
	close(nsfd);
	close(s);
	close(here);
}

static void test_enter_failure_leaves_thread_home(void **state)
{
	uint64_t home = thread_ino();
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	(void)state;
	assert_true(netns_enter(fd) < 0); /* not a namespace */
	assert_int_equal(thread_ino(), home);
	assert_true(netns_socket(fd, AF_INET, SOCK_STREAM, 0) < 0);
	assert_int_equal(thread_ino(), home);
	assert_int_equal(netns_of_socket(fd), -ENOTTY);
	close(fd);
}

static int placer_ns = -1, placer_calls;
static int placer_ret;

static int test_placer(void *arg, const struct sockaddr *dst, int type, int proto)
{
	const struct sockaddr_in *in = (const void *)dst;

	assert_ptr_equal(arg, &placer_calls);
	placer_calls++;
	if (placer_ret)
		return placer_ret;
	/* 198.18.0.9 "is a pod" */
	if (dst->sa_family == AF_INET && in->sin_addr.s_addr == htonl(0xc6120009))
		return netns_socket(placer_ns, dst->sa_family, type, proto);
	return -ENOENT;
}

static void test_upstream_socket(void **state)
{
	struct sockaddr_in pod = { .sin_family = AF_INET, .sin_port = htons(80) };
	struct sockaddr_in other = pod;
	uint64_t home_cookie, c;
	uint32_t mark = 0;
	socklen_t len = sizeof(mark);
	int here, s, fl;

	placer_ns = ns_of(state);
	pod.sin_addr.s_addr = htonl(0xc6120009);
	other.sin_addr.s_addr = htonl(0x7f000001);
	here = socket(AF_INET, SOCK_STREAM, 0);
	home_cookie = sock_cookie(here);
	close(here);

	/* no hook: made here, non-blocking, marked */
	s = netns_upstream_socket((struct sockaddr *)&pod, 0x574546);
	assert_true(s >= 0);
	assert_int_equal(sock_cookie(s), home_cookie);
	fl = fcntl(s, F_GETFL);
	assert_true(fl & O_NONBLOCK);
	assert_int_equal(getsockopt(s, SOL_SOCKET, SO_MARK, &mark, &len), 0);
	assert_int_equal(mark, 0x574546);
	close(s);

	netns_set_placer(test_placer, &placer_calls);
	placer_calls = 0;
	placer_ret = 0;
	s = netns_upstream_socket((struct sockaddr *)&pod, 7);
	assert_true(s >= 0);
	c = sock_cookie(s);
	assert_int_not_equal(c, home_cookie); /* made in the "pod" */
	mark = 0;
	assert_int_equal(getsockopt(s, SOL_SOCKET, SO_MARK, &mark, &len), 0);
	assert_int_equal(mark, 7);
	close(s);
	s = netns_upstream_socket((struct sockaddr *)&other, 0);
	assert_true(s >= 0);
	assert_int_equal(sock_cookie(s), home_cookie); /* not a pod: here */
	close(s);
	assert_int_equal(placer_calls, 2);
	/* a hook failure other than "not mine" is the caller's error */
	placer_ret = -EMFILE;
	assert_int_equal(netns_upstream_socket((struct sockaddr *)&pod, 0), -EMFILE);
	netns_set_placer(NULL, NULL);
}

/* With every descriptor taken, the reserve makes one more upstream socket, and is then spent. */
static void test_reserve(void **state)
{
	struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = htons(80) };
	struct rlimit old, lim;
	int fills[64], n = 0, s1, s2, i;

	(void)state;
	dst.sin_addr.s_addr = htonl(0x7f000001);
	assert_int_equal(netns_reserve_init(), 0);
	assert_false(netns_reserve_spent());
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	lim = old;
	lim.rlim_cur = (rlim_t)dup(0) + 8; /* a few above the highest descriptor now */
	close((int)lim.rlim_cur - 8);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &lim), 0);
	while (n < 64 && (fills[n] = dup(0)) >= 0)
		n++;
	assert_int_equal(errno, EMFILE);
	s1 = netns_upstream_socket((struct sockaddr *)&dst, 0);
	assert_true(s1 >= 0); /* the reserve gave its slot */
	assert_true(netns_reserve_spent());
	s2 = netns_upstream_socket((struct sockaddr *)&dst, 0);
	assert_int_equal(s2, -EMFILE); /* no second reserve */
	assert_int_equal(netns_reserve_restore(), -EMFILE);
	assert_true(netns_reserve_spent());
	close(fills[--n]);
	assert_int_equal(netns_reserve_restore(), 0);
	assert_false(netns_reserve_spent());
	close(s1);
	for (i = 0; i < n; i++)
		close(fills[i]);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	netns_reserve_free();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_home, setup, teardown),
		cmocka_unit_test_setup_teardown(test_socket_in_other_ns_and_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_enter_failure_leaves_thread_home, setup, teardown),
		cmocka_unit_test_setup_teardown(test_upstream_socket, setup, teardown),
		cmocka_unit_test(test_reserve),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
