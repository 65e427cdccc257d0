// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* netns: namespaces by fd and sockets made in them (netns.h). */
#include "lib/netns.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef SIOCGSKNS
#define SIOCGSKNS 0x894C
#endif

static pthread_once_t home_once = PTHREAD_ONCE_INIT;
static int home_fd = -ENOENT;

static void home_open(void)
{
	int fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);

	home_fd = fd < 0 ? -errno : fd;
}

int netns_home(void)
{
	pthread_once(&home_once, home_open);
	return home_fd;
}

int netns_ino_of_pid(pid_t pid, uint64_t *ino)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	if (stat(path, &st) < 0)
		return -errno;
	*ino = (uint64_t)st.st_ino;
	return 0;
}

int netns_open_pid(pid_t pid)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int netns_of_socket(int sockfd)
{
	int fd = ioctl(sockfd, SIOCGSKNS);

	if (fd < 0)
		return -errno;
	/* the ioctl's fd is not close-on-exec */
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	return fd;
}

int netns_ino_of_fd(int nsfd, uint64_t *ino)
{
	struct stat st;

	if (fstat(nsfd, &st) < 0)
		return -errno;
	*ino = (uint64_t)st.st_ino;
	return 0;
}

int netns_enter(int nsfd)
{
	if (netns_home() < 0)
		return netns_home();
	if (setns(nsfd, CLONE_NEWNET) < 0)
		return -errno;
	return 0;
}

void netns_leave(void)
{
	if (setns(netns_home(), CLONE_NEWNET) < 0) {
		fprintf(stderr, "weftd: FATAL: cannot return to the agent's network namespace: %s\n", strerror(errno));
		abort();
	}
}

static _Thread_local int reserve_fd = -1;
static _Thread_local bool reserve_spent;

int netns_reserve_init(void)
{
	if (reserve_fd >= 0)
		return 0;
	reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (reserve_fd < 0)
		return -errno;
	reserve_spent = false;
	return 0;
}

bool netns_reserve_spent(void)
{
	return reserve_spent;
}

int netns_reserve_restore(void)
{
	int r = netns_reserve_init();

	if (r == 0)
		reserve_spent = false;
	return r;
}

void netns_reserve_free(void)
{
	if (reserve_fd >= 0)
		close(reserve_fd);
	reserve_fd = -1;
	reserve_spent = false;
}

/* socket() that may spend the thread's reserve descriptor once (see netns.h). */
static int socket_or_reserve(int domain, int type, int proto)
{
	int fd = socket(domain, type, proto);

	if (fd < 0 && (errno == EMFILE || errno == ENFILE) && reserve_fd >= 0) {
		close(reserve_fd);
		reserve_fd = -1;
		reserve_spent = true;
		fd = socket(domain, type, proto);
	}
	return fd < 0 ? -errno : fd;
}

int netns_socket(int nsfd, int domain, int type, int proto)
{
	int r;

	r = netns_enter(nsfd);
	if (r < 0)
		return r;
	r = socket_or_reserve(domain, type, proto);
	netns_leave();
	return r;
}

static _Atomic(netns_place_fn) placer;
static void *_Atomic placer_arg;

void netns_set_placer(netns_place_fn fn, void *arg)
{
	atomic_store(&placer_arg, arg);
	atomic_store(&placer, fn);
}

int netns_upstream_socket(const struct sockaddr *dst, uint32_t mark)
{
	const int type = SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC;
	netns_place_fn fn = atomic_load_explicit(&placer, memory_order_acquire);
	int fd = -ENOENT, one = 1, e;

	if (fn)
		fd = fn(atomic_load(&placer_arg), dst, type, IPPROTO_TCP);
	if (fd == -ENOENT) {
		fd = socket_or_reserve(dst->sa_family, type, IPPROTO_TCP);
		if (fd < 0)
			return fd;
	} else if (fd < 0) {
		return fd;
	}
	if (mark && setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) < 0)
		goto err;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
err:
	e = -errno;
	close(fd);
	return e;
}
