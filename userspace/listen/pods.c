// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * pods: network namespaces of enrolled workloads, each with its own outbound
 * listeners (pods.h). Everything but the snapshot, the metrics and the
 * placement hook runs on the pod thread.
 */
#include "listen/pods.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>

#include "codec/kubepath.h"
#include "kernel/cgroup.h"
#include "kernel/kernel.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/netns.h"
#include "listen/outbound.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

#define POD_HASH 1024         /* buckets of the namespace table and of the address index */
#define SCAN_DEPTH 8          /* cgroup levels walked below an enrolled cgroup */
#define SCAN_COALESCE_S 0.002 /* inotify events within this are one scan */
#define SCAN_RETRY_FIRST_S 0.005
#define SCAN_RETRY_MAX_S 1.0 /* back-off for processes on their way into a pod: then wait for an event */
#define MAX_WATCHED 65536    /* cgroup directories watched; beyond, the backstop scan finds changes */

struct pod {
	struct pod *next; /* table chain (by netns inode) */
	uint64_t ino;     /* the namespace: what makes two containers one pod */
	uint64_t cookie;
	uint64_t gen; /* last scan that saw an enrolled process in it */
	int *fds;     /* 2 per worker; handed to the workers (they close them) */
	int ref_fd;   /* a listener in the namespace, for netns_of_socket(); -1 if none */
	int nlis;
	int failed_err;    /* last setup errno; 0: serving */
	double created;    /* ev_time() */
	double last_try;   /* last setup attempt */
	double last_addrs; /* last address refresh */
	char uid[37];
	char *cgroup;
	int nips;
	struct pod_ip {
		struct pod_ip *next; /* address index chain */
		struct pod *pod;
		int family;
		uint8_t ip[16];
	} ips[POD_MAX_IPS];
};

/* A watched cgroup directory: its cgroup.events (populated) and the directory (new children). */
struct watch {
	struct watch *next;
	uint64_t gen;
	int wd_events, wd_dir;
	char path[];
};

struct pods {
	struct outbound *ob;
	struct kern *kern;
	uint16_t port;
	unsigned nworkers;
	uint64_t home_ino;

	pthread_t thread;
	bool started, stopped;
	struct ev_loop *loop;
	ev_async wake;
	ev_io inotify_io;
	ev_timer scan_timer; /* coalesces events; also the back-off retry */
	ev_timer tick;       /* address polling for pods without one */
	int ifd;
	double retry_delay; /* 0: no retry pending */

	/* main thread only: what it last handed over (hashes of the paths) */
	uint64_t *main_hash;
	size_t n_main;
	bool main_dirs_valid;

	/* main -> pod thread (under mlock) */
	pthread_mutex_t mlock;
	char **dirs;
	size_t ndirs;
	bool dirs_changed, full_scan, exit;

	/* pod thread only */
	char **sdirs; /* the enrolled directories the scans walk (taken from dirs) */
	size_t nsdirs;
	uint64_t gen;
	struct watch *watches[POD_HASH];
	size_t nwatched;
	bool transient; /* this scan saw a pod-shaped cgroup's process still in our namespace */

	/* the table: written by the pod thread, read by anyone, under lock */
	pthread_rwlock_t lock;
	struct pod *tab[POD_HASH];
	struct pod_ip *ipidx[POD_HASH];
	atomic_size_t nips_total; /* 0: the placement hook need not look */
	size_t npods;
	_Atomic uint64_t setups_ok, setups_failed, removed, scans; /* pod thread writes, metrics read */
};

/* ---- the table ------------------------------------------------------------ */

static size_t hash_u64(uint64_t v)
{
	v ^= v >> 33;
	v *= 0xff51afd7ed558ccdull;
	v ^= v >> 33;
	return (size_t)(v % POD_HASH);
}

static size_t hash_ip(int family, const uint8_t *ip)
{
	uint64_t h = 1469598103934665603ull;
	int i, n = family == AF_INET ? 4 : 16;

	for (i = 0; i < n; i++)
		h = (h ^ ip[i]) * 1099511628211ull;
	return (size_t)(h % POD_HASH);
}

static struct pod *pod_find(struct pods *p, uint64_t ino)
{
	struct pod *d;

	for (d = p->tab[hash_u64(ino)]; d; d = d->next)
		if (d->ino == ino)
			return d;
	return NULL;
}

/* Address of a sockaddr as (family, 16 bytes); IPv4-mapped IPv6 as IPv4. false: not IP. */
static bool sa_ip(const struct sockaddr *sa, int *family, uint8_t ip[16])
{
	memset(ip, 0, 16);
	if (sa->sa_family == AF_INET) {
		memcpy(ip, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		*family = AF_INET;
		return true;
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(a)) {
			memcpy(ip, &a->s6_addr[12], 4);
			*family = AF_INET;
		} else {
			memcpy(ip, a->s6_addr, 16);
			*family = AF_INET6;
		}
		return true;
	}
	return false;
}

static void ips_unindex_locked(struct pods *p, struct pod *d)
{
	int i;

	for (i = 0; i < d->nips; i++) {
		struct pod_ip **pp = &p->ipidx[hash_ip(d->ips[i].family, d->ips[i].ip)];

		while (*pp && *pp != &d->ips[i])
			pp = &(*pp)->next;
		if (*pp)
			*pp = d->ips[i].next;
		atomic_fetch_sub(&p->nips_total, 1);
	}
	d->nips = 0;
}

static void ips_index_locked(struct pods *p, struct pod *d)
{
	int i;

	for (i = 0; i < d->nips; i++) {
		size_t h = hash_ip(d->ips[i].family, d->ips[i].ip);

		d->ips[i].pod = d;
		d->ips[i].next = p->ipidx[h];
		p->ipidx[h] = &d->ips[i];
		atomic_fetch_add(&p->nips_total, 1);
	}
}

/*
 * The placement hook (lib/netns): a socket for dst made in the namespace of
 * the pod that has dst, or -ENOENT. Any worker thread. The reference
 * listener is used under the read lock: a pod leaves the table (write lock)
 * before its workers are told to close its listeners.
 */
static int pods_place(void *arg, const struct sockaddr *dst, int type, int proto)
{
	struct pods *p = arg;
	struct pod_ip *e;
	uint8_t ip[16];
	int family, nsfd = -ENOENT, fd;

	if (atomic_load_explicit(&p->nips_total, memory_order_relaxed) == 0 || !sa_ip(dst, &family, ip))
		return -ENOENT;
	pthread_rwlock_rdlock(&p->lock);
	for (e = p->ipidx[hash_ip(family, ip)]; e; e = e->next)
		if (e->family == family && memcmp(e->ip, ip, 16) == 0) {
			nsfd = e->pod->ref_fd >= 0 ? netns_of_socket(e->pod->ref_fd) : -ENOENT;
			break;
		}
	pthread_rwlock_unlock(&p->lock);
	if (nsfd < 0)
		return nsfd;
	fd = netns_socket(nsfd, dst->sa_family, type, proto);
	close(nsfd);
	return fd;
}

/* ---- one pod ---------------------------------------------------------------- */

/* The namespace's own addresses (not loopback, not link-local), read while inside it. */
static int read_addrs(struct pod_ip *out, int max)
{
	struct ifaddrs *ifa, *i;
	int n = 0;

	if (getifaddrs(&ifa) < 0)
		return -errno;
	for (i = ifa; i && n < max; i = i->ifa_next) {
		int family;
		uint8_t ip[16];

		if (!i->ifa_addr || !sa_ip(i->ifa_addr, &family, ip))
			continue;
		if (family == AF_INET && ip[0] == 127)
			continue;
		if (family == AF_INET6 &&
		    (IN6_IS_ADDR_LOOPBACK((struct in6_addr *)ip) || IN6_IS_ADDR_LINKLOCAL((struct in6_addr *)ip)))
			continue;
		memset(&out[n], 0, sizeof(out[n]));
		out[n].family = family;
		memcpy(out[n].ip, ip, 16);
		n++;
	}
	freeifaddrs(ifa);
	return n;
}

static const char *pod_name(const struct pod *d)
{
	return d->uid[0] ? d->uid : d->cgroup;
}

/* Re-reads a serving pod's addresses (CNI may have set them since). Pod thread. */
static void pod_refresh_addrs(struct pods *p, struct pod *d)
{
	struct pod_ip ips[POD_MAX_IPS];
	int nsfd, n;

	d->last_addrs = ev_time();
	if (d->ref_fd < 0)
		return;
	nsfd = netns_of_socket(d->ref_fd);
	if (nsfd < 0)
		return;
	if (netns_enter(nsfd) < 0) {
		close(nsfd);
		return;
	}
	n = read_addrs(ips, POD_MAX_IPS);
	netns_leave();
	close(nsfd);
	if (n < 0)
		return;
	if (n == d->nips) {
		int i;

		for (i = 0; i < n; i++)
			if (ips[i].family != d->ips[i].family || memcmp(ips[i].ip, d->ips[i].ip, 16))
				break;
		if (i == n)
			return;
	}
	pthread_rwlock_wrlock(&p->lock);
	ips_unindex_locked(p, d);
	memcpy(d->ips, ips, sizeof(ips[0]) * (size_t)n);
	d->nips = n;
	ips_index_locked(p, d);
	pthread_rwlock_unlock(&p->lock);
	log_debug("pod %s: %d address%s", pod_name(d), n, n == 1 ? "" : "es");
}

/*
 * Makes the listeners of namespace ino (found through pid, in cgroup dir)
 * and publishes them. A failure is kept (failed_err) and retried after
 * POD_RETRY_S; meanwhile the namespace follows fail_mode. Pod thread.
 */
static void pod_setup(struct pods *p, struct pod *d, pid_t pid)
{
	char err[256] = "";
	uint64_t ino = 0;
	socklen_t len;
	unsigned i;
	int nsfd, r, n = 0;
	bool v4 = false, v6 = false;

	d->last_try = ev_time();
	nsfd = netns_open_pid(pid);
	if (nsfd < 0) {
		r = nsfd;
		snprintf(err, sizeof(err), "cannot open /proc/%d/ns/net: %s", (int)pid, strerror(-r));
		goto fail;
	}
	/* the process may have exited (and its pid been reused) since we looked */
	if (netns_ino_of_fd(nsfd, &ino) < 0 || ino != d->ino) {
		close(nsfd);
		return;
	}
	r = netns_enter(nsfd);
	if (r < 0) {
		close(nsfd);
		snprintf(err, sizeof(err), "setns: %s", strerror(-r));
		goto fail;
	}
	r = outbound_pod_listen(p->ob, p->port, d->fds, err, sizeof(err));
	if (r == 0)
		n = read_addrs(d->ips, POD_MAX_IPS);
	netns_leave();
	close(nsfd);
	if (r < 0)
		goto fail;
	d->nips = n > 0 ? n : 0;
	d->last_addrs = ev_time();
	d->ref_fd = -1;
	d->nlis = 0;
	for (i = 0; i < 2 * p->nworkers; i++)
		if (d->fds[i] >= 0) {
			d->nlis++;
			if (d->ref_fd < 0)
				d->ref_fd = d->fds[i];
		}
	len = sizeof(d->cookie);
	if (getsockopt(d->ref_fd, SOL_SOCKET, SO_NETNS_COOKIE, &d->cookie, &len) < 0) {
		r = -errno;
		snprintf(err, sizeof(err), "getsockopt(SO_NETNS_COOKIE): %s", strerror(errno));
		goto fail_close;
	}
	r = outbound_pod_attach(p->ob, d->ino, d->fds);
	if (r < 0) {
		snprintf(err, sizeof(err), "out of memory");
		goto fail_close;
	}
	/* from here the workers own the sockets; publishing makes connect4/6 redirect here */
	for (i = 0; i < 2 * p->nworkers; i++) {
		int fd = d->fds[i];
		bool six = i % 2 == 1;

		if (fd < 0 || (six ? v6 : v4))
			continue;
		r = kern_listener_add(p->kern, fd, d->cookie, six ? AF_INET6 : AF_INET);
		if (r < 0)
			log_error("pod %s: cannot add its listener to weft_listeners: %s; its connects follow "
				  "fail_mode",
				  pod_name(d), strerror(-r));
		else if (six)
			v6 = true;
		else
			v4 = true;
	}
	pthread_rwlock_wrlock(&p->lock);
	ips_index_locked(p, d);
	d->failed_err = 0;
	pthread_rwlock_unlock(&p->lock);
	p->setups_ok++;
	log_info("pod %s: serving its network namespace (netns %llu, cgroup %s): %d listeners, %d address%s",
		 pod_name(d), (unsigned long long)d->ino, d->cgroup, d->nlis, d->nips, d->nips == 1 ? "" : "es");
	return;
fail_close:
	for (i = 0; i < 2 * p->nworkers; i++)
		if (d->fds[i] >= 0) {
			close(d->fds[i]);
			d->fds[i] = -1;
		}
	d->ref_fd = -1;
	d->nlis = 0;
	d->nips = 0;
fail:
	p->setups_failed++;
	if (d->failed_err != -r)
		log_warn("pod %s (cgroup %s): cannot serve its network namespace: %s; its connects follow "
			 "agent.fail_mode; retrying every %.0f s",
			 pod_name(d), d->cgroup, err, POD_RETRY_S);
	pthread_rwlock_wrlock(&p->lock);
	d->failed_err = r < 0 ? -r : EIO;
	pthread_rwlock_unlock(&p->lock);
}

static struct pod *pod_new(struct pods *p, uint64_t ino, const char *dir)
{
	struct kube_pod kp;
	struct pod *d;
	size_t h;
	unsigned i;

	d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->fds = malloc(sizeof(int) * 2 * p->nworkers);
	/* a kubelet pod is named by its own cgroup, not the container's the process was found in */
	if (kube_pod_from_cgroup(dir, &kp) == 0) {
		memcpy(d->uid, kp.uid, sizeof(d->uid));
		d->cgroup = strndup(dir, kp.pod_end);
	} else {
		d->cgroup = strdup(dir);
	}
	if (!d->fds || !d->cgroup) {
		free(d->fds);
		free(d->cgroup);
		free(d);
		return NULL;
	}
	for (i = 0; i < 2 * p->nworkers; i++)
		d->fds[i] = -1;
	d->ino = ino;
	d->ref_fd = -1;
	d->created = ev_time();
	h = hash_u64(ino);
	pthread_rwlock_wrlock(&p->lock);
	d->next = p->tab[h];
	p->tab[h] = d;
	p->npods++;
	pthread_rwlock_unlock(&p->lock);
	return d;
}

/* The pod leaves the table, then weft_listeners, then its workers close its listeners. */
static void pod_remove(struct pods *p, struct pod *d, const char *why)
{
	struct pod **pp = &p->tab[hash_u64(d->ino)];

	pthread_rwlock_wrlock(&p->lock);
	while (*pp && *pp != d)
		pp = &(*pp)->next;
	if (*pp)
		*pp = d->next;
	ips_unindex_locked(p, d);
	p->npods--;
	pthread_rwlock_unlock(&p->lock);
	if (d->nlis) {
		kern_listener_del(p->kern, d->cookie, AF_INET);
		kern_listener_del(p->kern, d->cookie, AF_INET6);
		if (outbound_pod_detach(p->ob, d->ino) < 0)
			log_error("pod %s: out of memory telling the workers to close its listeners", pod_name(d));
	}
	p->removed++;
	log_info("pod %s: %s; its listeners are closed", pod_name(d), why);
	free(d->fds);
	free(d->cgroup);
	free(d);
}

/* ---- scanning ------------------------------------------------------------- */

static uint64_t fnv64(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	while (*s)
		h = (h ^ (uint8_t)*s++) * 1099511628211ull;
	return h;
}

static size_t hash_str(const char *s)
{
	return (size_t)(fnv64(s) % POD_HASH);
}

static void watch_dir(struct pods *p, const char *path)
{
	struct watch *w;
	char ev[CG_PATH_MAX];
	size_t h = hash_str(path), len = strlen(path);

	if (p->ifd < 0)
		return;
	for (w = p->watches[h]; w; w = w->next)
		if (!strcmp(w->path, path)) {
			w->gen = p->gen;
			return;
		}
	if (p->nwatched >= MAX_WATCHED || len + sizeof("/cgroup.events") > sizeof(ev))
		return;
	w = malloc(sizeof(*w) + len + 1);
	if (!w)
		return;
	memcpy(w->path, path, len + 1);
	w->gen = p->gen;
	snprintf(ev, sizeof(ev), "%s/cgroup.events", path);
	w->wd_events = inotify_add_watch(p->ifd, ev, IN_MODIFY);
	w->wd_dir = inotify_add_watch(p->ifd, path, IN_CREATE | IN_DELETE | IN_ONLYDIR);
	w->next = p->watches[h];
	p->watches[h] = w;
	p->nwatched++;
}

/* Watches of directories the last scan did not visit go (gone cgroups, unenrolled trees). */
static void watch_sweep(struct pods *p)
{
	size_t h;

	for (h = 0; h < POD_HASH; h++) {
		struct watch **pp = &p->watches[h];

		while (*pp) {
			struct watch *w = *pp;

			if (w->gen == p->gen) {
				pp = &w->next;
				continue;
			}
			*pp = w->next;
			if (w->wd_events >= 0)
				inotify_rm_watch(p->ifd, w->wd_events);
			if (w->wd_dir >= 0)
				inotify_rm_watch(p->ifd, w->wd_dir);
			free(w);
			p->nwatched--;
		}
	}
}

/* One process of an enrolled cgroup: which namespace it is in, and is that served. */
static void scan_pid(struct pods *p, pid_t pid, const char *dir)
{
	struct kube_pod kp;
	struct pod *d;
	uint64_t ino;

	if (netns_ino_of_pid(pid, &ino) < 0)
		return; /* gone */
	if (ino == p->home_ino) {
		/* a hostNetwork pod, or a container process not yet in its pod's namespace */
		if (kube_pod_from_cgroup(dir, &kp) == 0)
			p->transient = true;
		return;
	}
	d = pod_find(p, ino);
	if (!d) {
		d = pod_new(p, ino, dir);
		if (!d) {
			log_error("out of memory for a pod (cgroup %s)", dir);
			return;
		}
		d->gen = p->gen;
		pod_setup(p, d, pid);
		return;
	}
	d->gen = p->gen;
	if (d->failed_err && ev_time() - d->last_try >= POD_RETRY_S)
		pod_setup(p, d, pid);
}

static void scan_procs(struct pods *p, int dfd, const char *dir)
{
	char buf[8192], *s, *e;
	ssize_t n;
	size_t have = 0;
	int fd;

	fd = openat(dfd, "cgroup.procs", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	for (;;) {
		n = read(fd, buf + have, sizeof(buf) - 1 - have);
		if (n <= 0)
			break;
		have += (size_t)n;
		buf[have] = '\0';
		/* whole lines only; a partial last line waits for the next read */
		e = strrchr(buf, '\n');
		if (!e) {
			if (have == sizeof(buf) - 1)
				have = 0; /* not a pid list */
			continue;
		}
		*e = '\0';
		for (s = buf; s < e;) {
			char *end;
			long pid = strtol(s, &end, 10);

			if (end == s)
				break;
			if (pid > 0)
				scan_pid(p, (pid_t)pid, dir);
			s = end + (*end == '\n');
		}
		have = (size_t)(buf + have - (e + 1));
		memmove(buf, e + 1, have);
	}
	close(fd);
}

static void scan_tree(struct pods *p, int dfd, char *path, size_t plen, int depth)
{
	struct dirent *de;
	DIR *d;
	int fd;

	watch_dir(p, path);
	scan_procs(p, dfd, path);
	if (depth >= SCAN_DEPTH)
		return;
	fd = dup(dfd);
	if (fd < 0)
		return;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	while ((de = readdir(d))) {
		size_t nlen;
		int cfd;

		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		nlen = strlen(de->d_name);
		if (plen + 1 + nlen >= CG_PATH_MAX)
			continue;
		cfd = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (cfd < 0)
			continue;
		path[plen] = '/';
		memcpy(path + plen + 1, de->d_name, nlen + 1);
		scan_tree(p, cfd, path, plen + 1 + nlen, depth + 1);
		path[plen] = '\0';
		close(cfd);
	}
	closedir(d);
}

/* Every enrolled tree; namespaces no enrolled process is in any more are let go. Pod thread. */
static void scan_all(struct pods *p, bool refresh_addrs)
{
	char path[CG_PATH_MAX];
	size_t i, h;

	p->gen++;
	p->scans++;
	p->transient = false;
	for (i = 0; i < p->nsdirs; i++) {
		size_t len = strlen(p->sdirs[i]);
		int dfd;

		if (len >= sizeof(path))
			continue;
		dfd = open(p->sdirs[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0)
			continue;
		memcpy(path, p->sdirs[i], len + 1);
		scan_tree(p, dfd, path, len, 0);
		close(dfd);
	}
	for (h = 0; h < POD_HASH; h++) {
		struct pod *d = p->tab[h], *next;

		for (; d; d = next) {
			next = d->next;
			if (d->gen != p->gen)
				pod_remove(p, d, "no enrolled process is left in its network namespace");
			else if (refresh_addrs && !d->failed_err)
				pod_refresh_addrs(p, d);
		}
	}
	watch_sweep(p);
}

static void schedule_scan(struct pods *p, double delay)
{
	ev_timer_stop(p->loop, &p->scan_timer);
	ev_timer_set(&p->scan_timer, delay, 0.);
	ev_timer_start(p->loop, &p->scan_timer);
}

static void on_scan_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct pods *p = t->data;

	(void)loop;
	(void)revents;
	scan_all(p, false);
	/* someone may be moving into a pod's namespace: look again soon, backing off */
	if (p->transient && p->retry_delay < SCAN_RETRY_MAX_S) {
		p->retry_delay = p->retry_delay ? p->retry_delay * 2 : SCAN_RETRY_FIRST_S;
		schedule_scan(p, p->retry_delay);
	}
}

static void on_inotify(struct ev_loop *loop, ev_io *w, int revents)
{
	struct pods *p = w->data;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool any = false;

	(void)loop;
	(void)revents;
	while (read(p->ifd, buf, sizeof(buf)) > 0)
		any = true;
	if (any) {
		p->retry_delay = 0;
		if (!ev_is_active(&p->scan_timer) || ev_timer_remaining(p->loop, &p->scan_timer) > SCAN_COALESCE_S)
			schedule_scan(p, SCAN_COALESCE_S);
	}
}

/* Pods still without an address (CNI not done yet) are looked at again. */
static void on_tick(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct pods *p = t->data;
	double now = ev_time();
	size_t h;

	(void)loop;
	(void)revents;
	for (h = 0; h < POD_HASH; h++) {
		struct pod *d;

		for (d = p->tab[h]; d; d = d->next)
			if (!d->failed_err && d->nips == 0 && now - d->created < POD_ADDR_POLL_MAX_S)
				pod_refresh_addrs(p, d);
	}
}

static void free_dirs(char **dirs, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(dirs[i]);
	free(dirs);
}

static void on_wake(struct ev_loop *loop, ev_async *a, int revents)
{
	struct pods *p = a->data;
	bool scan, refresh, ex;

	(void)revents;
	pthread_mutex_lock(&p->mlock);
	refresh = p->full_scan;
	scan = p->full_scan || p->dirs_changed;
	if (p->dirs_changed) {
		/* take the new list: scans then walk it without the lock */
		free_dirs(p->sdirs, p->nsdirs);
		p->sdirs = p->dirs;
		p->nsdirs = p->ndirs;
		p->dirs = NULL;
		p->ndirs = 0;
	}
	ex = p->exit;
	p->full_scan = p->dirs_changed = false;
	pthread_mutex_unlock(&p->mlock);
	if (ex) {
		size_t h;

		for (h = 0; h < POD_HASH; h++)
			while (p->tab[h])
				pod_remove(p, p->tab[h], "weftd is stopping");
		ev_break(loop, EVBREAK_ALL);
		return;
	}
	if (scan) {
		p->retry_delay = 0;
		ev_timer_stop(loop, &p->scan_timer);
		scan_all(p, refresh);
		if (p->transient)
			schedule_scan(p, p->retry_delay = SCAN_RETRY_FIRST_S);
	}
}

static void *pods_main(void *arg)
{
	struct pods *p = arg;

	pthread_setname_np(pthread_self(), "weftd-pods");
	ev_run(p->loop, 0);
	return NULL;
}

/* ---- API ------------------------------------------------------------------ */

int pods_start(struct outbound *ob, struct kern *k, uint16_t outbound_port, struct pods **out, char *err, size_t errlen)
{
	struct pods *p;
	int r, home;

	home = netns_home();
	if (home < 0) {
		snprintf(err, errlen, "cannot open /proc/self/ns/net: %s", strerror(-home));
		return home;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->ob = ob;
	p->kern = k;
	p->port = outbound_port;
	p->nworkers = outbound_nworkers(ob);
	p->ifd = -1;
	netns_ino_of_fd(home, &p->home_ino);
	pthread_mutex_init(&p->mlock, NULL);
	pthread_rwlock_init(&p->lock, NULL);
	p->loop = ev_loop_new(EVFLAG_AUTO);
	if (!p->loop) {
		r = -ENOMEM;
		snprintf(err, errlen, "libev could not create the pod thread's loop");
		goto err;
	}
	ev_async_init(&p->wake, on_wake);
	p->wake.data = p;
	ev_async_start(p->loop, &p->wake);
	ev_timer_init(&p->scan_timer, on_scan_timer, 0., 0.);
	p->scan_timer.data = p;
	ev_timer_init(&p->tick, on_tick, POD_ADDR_POLL_S, POD_ADDR_POLL_S);
	p->tick.data = p;
	ev_timer_start(p->loop, &p->tick);
	p->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (p->ifd < 0) {
		log_warn("inotify unavailable (%s): new pods are found by the periodic scan only", strerror(errno));
	} else {
		ev_io_init(&p->inotify_io, on_inotify, p->ifd, EV_READ);
		p->inotify_io.data = p;
		ev_io_start(p->loop, &p->inotify_io);
	}
	netns_set_placer(pods_place, p);
	r = pthread_create(&p->thread, NULL, pods_main, p);
	if (r) {
		r = -r;
		snprintf(err, errlen, "cannot start the pod thread: %s", strerror(-r));
		netns_set_placer(NULL, NULL);
		goto err;
	}
	p->started = true;
	*out = p;
	return 0;
err:
	pods_free(p);
	return r;
}

void pods_set_cgroups(struct pods *p, const char *const *dirs, size_t n)
{
	char **copy;
	size_t i;

	/* the same list as last time (the agent's periodic scan): nothing to do */
	if (p->main_dirs_valid && n == p->n_main) {
		for (i = 0; i < n && p->main_hash[i] == fnv64(dirs[i]); i++)
			;
		if (i == n)
			return;
	}
	copy = calloc(n ? n : 1, sizeof(*copy));
	if (!copy)
		return;
	for (i = 0; i < n; i++) {
		copy[i] = strdup(dirs[i]);
		if (!copy[i]) {
			while (i--)
				free(copy[i]);
			free(copy);
			return;
		}
	}
	free(p->main_hash);
	p->main_hash = malloc(sizeof(*p->main_hash) * (n ? n : 1));
	p->main_dirs_valid = p->main_hash != NULL;
	for (i = 0; p->main_dirs_valid && i < n; i++)
		p->main_hash[i] = fnv64(dirs[i]);
	p->n_main = n;
	pthread_mutex_lock(&p->mlock);
	free_dirs(p->dirs, p->ndirs);
	p->dirs = copy;
	p->ndirs = n;
	p->dirs_changed = true;
	pthread_mutex_unlock(&p->mlock);
	if (p->started)
		ev_async_send(p->loop, &p->wake);
}

void pods_rescan(struct pods *p)
{
	pthread_mutex_lock(&p->mlock);
	p->full_scan = true;
	pthread_mutex_unlock(&p->mlock);
	if (p->started)
		ev_async_send(p->loop, &p->wake);
}

void pods_stop(struct pods *p)
{
	if (!p || p->stopped)
		return;
	p->stopped = true;
	if (p->started) {
		pthread_mutex_lock(&p->mlock);
		p->exit = true;
		pthread_mutex_unlock(&p->mlock);
		ev_async_send(p->loop, &p->wake);
		pthread_join(p->thread, NULL);
		p->started = false;
	}
	netns_set_placer(NULL, NULL);
}

void pods_free(struct pods *p)
{
	size_t h;

	if (!p)
		return;
	pods_stop(p);
	for (h = 0; h < POD_HASH; h++) {
		while (p->watches[h]) {
			struct watch *w = p->watches[h];

			p->watches[h] = w->next;
			free(w);
		}
		while (p->tab[h]) {
			struct pod *d = p->tab[h];

			p->tab[h] = d->next;
			free(d->fds);
			free(d->cgroup);
			free(d);
		}
	}
	if (p->ifd >= 0)
		close(p->ifd);
	if (p->loop)
		ev_loop_destroy(p->loop);
	free_dirs(p->dirs, p->ndirs);
	free_dirs(p->sdirs, p->nsdirs);
	free(p->main_hash);
	pthread_mutex_destroy(&p->mlock);
	pthread_rwlock_destroy(&p->lock);
	free(p);
}

static void ip_format(const struct pod_ip *e, char *out, size_t len)
{
	if (!inet_ntop(e->family, e->ip, out, (socklen_t)len))
		snprintf(out, len, "?");
}

size_t pods_snapshot(struct pods *p, struct pod_info **out)
{
	struct pod_info *v;
	double now = ev_time();
	size_t n = 0, h;
	int i;

	pthread_rwlock_rdlock(&p->lock);
	v = calloc(p->npods ? p->npods : 1, sizeof(*v));
	if (!v) {
		pthread_rwlock_unlock(&p->lock);
		*out = NULL;
		return 0;
	}
	for (h = 0; h < POD_HASH; h++) {
		const struct pod *d;

		for (d = p->tab[h]; d && n < p->npods; d = d->next) {
			struct pod_info *o = &v[n++];

			memcpy(o->uid, d->uid, sizeof(o->uid));
			snprintf(o->cgroup, sizeof(o->cgroup), "%s", d->cgroup);
			o->netns_ino = d->ino;
			o->netns_cookie = d->cookie;
			o->nips = d->nips;
			for (i = 0; i < d->nips; i++)
				ip_format(&d->ips[i], o->ips[i], sizeof(o->ips[i]));
			o->listeners = d->nlis;
			o->failed_err = d->failed_err;
			o->age_s = now - d->created;
		}
	}
	pthread_rwlock_unlock(&p->lock);
	*out = v;
	return n;
}

void pods_metrics(struct pods *p, struct buf *out)
{
	size_t serving = 0, failed = 0, h;
	uint64_t ok, bad, removed, scans;

	pthread_rwlock_rdlock(&p->lock);
	for (h = 0; h < POD_HASH; h++) {
		const struct pod *d;

		for (d = p->tab[h]; d; d = d->next) {
			if (d->failed_err)
				failed++;
			else
				serving++;
		}
	}
	pthread_rwlock_unlock(&p->lock);
	ok = atomic_load(&p->setups_ok);
	bad = atomic_load(&p->setups_failed);
	removed = atomic_load(&p->removed);
	scans = atomic_load(&p->scans);
	buf_printf(out,
		   "# HELP weft_pods Network namespaces of enrolled workloads other than weftd's (pods), by state.\n"
		   "# TYPE weft_pods gauge\nweft_pods{state=\"serving\"} %zu\nweft_pods{state=\"failed\"} %zu\n"
		   "# HELP weft_pod_setups_total Attempts to open a pod's outbound listeners, by result.\n"
		   "# TYPE weft_pod_setups_total counter\nweft_pod_setups_total{result=\"ok\"} %llu\n"
		   "weft_pod_setups_total{result=\"failed\"} %llu\n"
		   "# HELP weft_pods_removed_total Pods whose listeners were closed (gone, or no longer enrolled).\n"
		   "# TYPE weft_pods_removed_total counter\nweft_pods_removed_total %llu\n"
		   "# HELP weft_pod_scans_total Scans of the enrolled cgroup trees for pods.\n"
		   "# TYPE weft_pod_scans_total counter\nweft_pod_scans_total %llu\n",
		   serving, failed, (unsigned long long)ok, (unsigned long long)bad, (unsigned long long)removed,
		   (unsigned long long)scans);
}
