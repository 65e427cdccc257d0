// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * filedisc: endpoint files followed with inotify (filedisc.h). Watches are
 * per directory and shared (inotify gives one watch per inode), counted by
 * the sources that use them. Every event for a watch checks the sources in
 * that directory; O(sources in it) per event, and there are few.
 */
#include "disc/filedisc.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/file.h"
#include "lib/list.h"
#include "lib/log.h"

#define FD_MASK                                                                                                 \
	(IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | \
	 IN_ONLYDIR)

struct fd_watch {
	int wd;
	unsigned refs;
};

struct filedisc {
	struct ev_loop *loop;
	int ifd; /* -1: no inotify (the poll alone) */
	ev_io io;
	ev_timer poll;
	struct fd_watch *watches;
	size_t n_watches;
	struct list_head srcs;
};

/* What stat says of the file (or why it cannot): a change means "read it again". */
struct file_key {
	int err; /* 0: the fields hold */
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
};

struct file_src {
	struct list_head link;
	struct filedisc *d;
	char *svc, *path, *dir, *base;
	int wd; /* -1: not watched (yet) */
	ev_timer settle;
	struct file_key key; /* of the last read */
	struct ep_entry *eps;
	size_t n;
	struct disc_status st;
	void (*changed)(void *arg);
	void *arg;
};

/* ---- watches ---------------------------------------------------------------- */

static int watch_get(struct filedisc *d, const char *dir)
{
	struct fd_watch *n;
	size_t i;
	int wd;

	if (d->ifd < 0)
		return -1;
	wd = inotify_add_watch(d->ifd, dir, FD_MASK);
	if (wd < 0)
		return -1;
	for (i = 0; i < d->n_watches; i++)
		if (d->watches[i].wd == wd) {
			d->watches[i].refs++;
			return wd;
		}
	n = realloc(d->watches, (d->n_watches + 1) * sizeof(*n));
	if (!n) {
		inotify_rm_watch(d->ifd, wd);
		return -1;
	}
	d->watches = n;
	d->watches[d->n_watches++] = (struct fd_watch){ .wd = wd, .refs = 1 };
	return wd;
}

/* Drops one use of wd; gone: the kernel removed it already (IN_IGNORED). */
static void watch_put(struct filedisc *d, int wd, bool gone)
{
	size_t i;

	if (wd < 0)
		return;
	for (i = 0; i < d->n_watches; i++) {
		if (d->watches[i].wd != wd)
			continue;
		if (!gone && --d->watches[i].refs)
			return;
		if (!gone)
			inotify_rm_watch(d->ifd, wd);
		d->watches[i] = d->watches[--d->n_watches];
		return;
	}
}

/* ---- reading ---------------------------------------------------------------- */

static struct file_key key_of(const struct stat *st)
{
	return (struct file_key){ .dev = st->st_dev, .ino = st->st_ino, .size = st->st_size, .mtime = st->st_mtim };
}

static bool key_eq(const struct file_key *a, const struct file_key *b)
{
	if (a->err || b->err)
		return a->err == b->err;
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->mtime.tv_sec == b->mtime.tv_sec &&
	       a->mtime.tv_nsec == b->mtime.tv_nsec;
}

/*
 * Reads the whole file (at most EPFILE_MAX_BYTES) without blocking on
 * anything but a regular file. 0 with *text (NUL-terminated, the caller
 * frees) and *key; -errno with err and key->err.
 */
static int read_file(const char *path, char **text, size_t *len, struct file_key *key, char *err, size_t errlen)
{
	size_t cap = 0, got = 0;
	struct stat st;
	char *buf = NULL, *nb;
	ssize_t r;
	int fd, e;

	*text = NULL;
	fd = file_open_regular(path, &st);
	if (fd < 0) {
		key->err = -fd;
		if (fd == -EINVAL)
			snprintf(err, errlen, "%s: not a regular file (%s); point endpoints_from.file at a file", path,
				 file_kind(st.st_mode));
		else
			snprintf(err, errlen, "%s: cannot open: %s", path, strerror(-fd));
		return fd;
	}
	*key = key_of(&st);
	for (;;) {
		if (got + 1 >= cap) {
			cap = cap ? cap * 2 : 4096;
			if (cap > EPFILE_MAX_BYTES + 2)
				cap = EPFILE_MAX_BYTES + 2;
			nb = realloc(buf, cap);
			if (!nb) {
				e = ENOMEM;
				snprintf(err, errlen, "%s: out of memory reading it", path);
				goto fail;
			}
			buf = nb;
		}
		r = read(fd, buf + got, cap - 1 - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			e = errno;
			snprintf(err, errlen, "%s: cannot read: %s", path, strerror(e));
			goto fail;
		}
		if (r == 0)
			break;
		got += (size_t)r;
		if (got > EPFILE_MAX_BYTES) {
			e = EFBIG;
			snprintf(err, errlen, "%s: is larger than %u KiB; an endpoint file holds at most %d endpoints",
				 path, EPFILE_MAX_BYTES >> 10, EPFILE_MAX_ENDPOINTS);
			goto fail;
		}
	}
	close(fd);
	buf = buf ? buf : malloc(1);
	if (!buf) {
		snprintf(err, errlen, "%s: out of memory reading it", path);
		return -ENOMEM;
	}
	buf[got] = '\0';
	*text = buf;
	*len = got;
	return 0;
fail:
	close(fd);
	free(buf);
	return -e;
}

/* Reads the file again; notify: call changed() when the set changes (not on the first read). */
static void reread(struct file_src *s, bool notify)
{
	struct epfile_errors errs = { 0 };
	struct ep_entry *eps = NULL;
	struct file_key key = { 0 };
	char err[sizeof(s->st.last_error)] = "", *text = NULL;
	enum disc_result res;
	size_t len = 0, n = 0, i, before = s->n;
	bool changed = false, told;
	int r;

	r = read_file(s->path, &text, &len, &key, err, sizeof(err));
	s->key = key;
	if (r == 0)
		r = epfile_parse(text, len, s->path, &eps, &n, &errs);
	free(text);
	if (r == -EINVAL && errs.n) {
		/* every problem, FILE:LINE first; the status keeps the first */
		for (i = 0; i < errs.n; i++)
			log_error("service %s: %s", s->svc, errs.msgs[i]);
		if (errs.n > 1)
			snprintf(err, sizeof(err), "%s (and %zu more problems)", errs.msgs[0], errs.n - 1);
		else
			snprintf(err, sizeof(err), "%s", errs.msgs[0]);
	} else if (r == -ENOMEM && !err[0]) {
		snprintf(err, sizeof(err), "%s: out of memory parsing it", s->path);
	}
	told = errs.n > 0;
	epfile_errors_free(&errs);
	if (r < 0) {
		res = DISC_FAILED;
		if (!told)
			log_warn("service %s: %s", s->svc, err);
		log_warn("service %s: endpoint file %s not used; keeping the last %zu endpoints", s->svc, s->path,
			 s->n);
	} else if (!n) {
		res = DISC_EMPTY;
		snprintf(err, sizeof(err), "%s: no endpoint in the file", s->path);
		log_warn("service %s: %s; keeping the last %zu endpoints (remove the source to drain the service)",
			 s->svc, err, s->n);
	} else {
		res = DISC_OK;
		n = epset_normalize(eps, n);
		if (!epset_equal(eps, n, s->eps, s->n)) {
			free(s->eps);
			s->eps = eps;
			s->n = n;
			eps = NULL;
			changed = true;
		}
	}
	free(eps);
	disc_status_note(&s->st, res, changed, err, ev_now(s->d->loop));
	if (changed)
		log_info("service %s: endpoint file %s: %zu endpoints (were %zu)", s->svc, s->path, s->n, before);
	if (changed && notify)
		s->changed(s->arg);
}

static void on_settle(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	reread(w->data, true);
}

static void settle(struct file_src *s)
{
	if (!ev_is_active(&s->settle)) {
		ev_timer_set(&s->settle, FILEDISC_SETTLE_S, 0.);
		ev_timer_start(s->d->loop, &s->settle);
	}
}

/* Reads again (after settling) if stat shows another file than the one read last. */
static void check(struct file_src *s)
{
	struct file_key k = { 0 };
	struct stat st;

	if (stat(s->path, &st) < 0)
		k.err = errno;
	else if (!S_ISREG(st.st_mode))
		k.err = EINVAL;
	else
		k = key_of(&st);
	if (!key_eq(&k, &s->key))
		settle(s);
}

/* ---- events ------------------------------------------------------------------ */

static void on_inotify(struct ev_loop *loop, ev_io *w, int revents)
{
	struct filedisc *d = w->data;
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	struct file_src *s;
	ssize_t n;

	(void)loop;
	(void)revents;
	for (;;) {
		size_t off = 0;

		n = read(d->ifd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		while (off + sizeof(struct inotify_event) <= (size_t)n) {
			const struct inotify_event *ev = (const struct inotify_event *)(buf + off);

			off += sizeof(*ev) + ev->len;
			if (ev->mask & IN_Q_OVERFLOW) {
				list_for_each_entry(s, &d->srcs, link)
					check(s);
				continue;
			}
			if (ev->mask & IN_IGNORED) {
				/* the directory went (or was moved): watched again by the poll once it is back */
				watch_put(d, ev->wd, true);
				list_for_each_entry(s, &d->srcs, link)
					if (s->wd == ev->wd) {
						s->wd = -1;
						check(s);
					}
				continue;
			}
			list_for_each_entry(s, &d->srcs, link) {
				if (s->wd != ev->wd)
					continue;
				if (ev->len && !strcmp(ev->name, s->base) &&
				    (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO)))
					settle(s);
				else
					check(s);
			}
		}
	}
}

static void on_poll(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct filedisc *d = w->data;
	struct file_src *s;

	(void)loop;
	(void)revents;
	list_for_each_entry(s, &d->srcs, link) {
		if (s->wd < 0 && d->ifd >= 0)
			s->wd = watch_get(d, s->dir);
		check(s);
	}
}

int filedisc_new(struct ev_loop *loop, struct filedisc **out)
{
	struct filedisc *d = calloc(1, sizeof(*d));

	if (!d)
		return -ENOMEM;
	d->loop = loop;
	list_init(&d->srcs);
	d->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (d->ifd < 0) {
		log_warn("endpoint files: inotify unavailable (%s); changes are seen by a check every %.0f s",
			 strerror(errno), FILEDISC_POLL_S);
	} else {
		ev_io_init(&d->io, on_inotify, d->ifd, EV_READ);
		d->io.data = d;
		ev_io_start(loop, &d->io);
	}
	ev_timer_init(&d->poll, on_poll, FILEDISC_POLL_S, FILEDISC_POLL_S);
	d->poll.data = d;
	ev_timer_start(loop, &d->poll);
	*out = d;
	return 0;
}

void filedisc_free(struct filedisc *d)
{
	if (!d)
		return;
	ev_timer_stop(d->loop, &d->poll);
	if (d->ifd >= 0) {
		ev_io_stop(d->loop, &d->io);
		close(d->ifd);
	}
	free(d->watches);
	free(d);
}

struct file_src *file_src_new(struct filedisc *d, const char *svc, const char *path, void (*changed)(void *arg),
			      void *arg)
{
	struct file_src *s = calloc(1, sizeof(*s));
	char *a = NULL, *b = NULL;

	if (!s)
		return NULL;
	s->svc = strdup(svc);
	s->path = strdup(path);
	a = strdup(path);
	b = strdup(path);
	if (!s->svc || !s->path || !a || !b)
		goto err;
	s->dir = strdup(dirname(a));
	s->base = strdup(basename(b));
	if (!s->dir || !s->base)
		goto err;
	free(a);
	free(b);
	s->d = d;
	s->changed = changed;
	s->arg = arg;
	ev_timer_init(&s->settle, on_settle, FILEDISC_SETTLE_S, 0.);
	s->settle.data = s;
	list_add_tail(&s->link, &d->srcs);
	s->wd = watch_get(d, s->dir);
	if (s->wd < 0 && d->ifd >= 0)
		log_warn("service %s: cannot watch %s (%s); changes to %s are seen by a check every %.0f s", svc,
			 s->dir, strerror(errno), s->base, FILEDISC_POLL_S);
	reread(s, false);
	return s;
err:
	free(a);
	free(b);
	free(s->svc);
	free(s->path);
	free(s->dir);
	free(s);
	return NULL;
}

void file_src_free(struct file_src *s)
{
	if (!s)
		return;
	ev_timer_stop(s->d->loop, &s->settle);
	watch_put(s->d, s->wd, false);
	list_del(&s->link);
	free(s->eps);
	free(s->svc);
	free(s->path);
	free(s->dir);
	free(s->base);
	free(s);
}

const struct ep_entry *file_src_endpoints(const struct file_src *s, size_t *n)
{
	*n = s->n;
	return s->eps;
}

const struct disc_status *file_src_status(const struct file_src *s)
{
	return &s->st;
}
