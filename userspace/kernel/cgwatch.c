// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "kernel/cgwatch.h"

#include <errno.h>
#include <glob.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernel/cgroup.h"
#include "lib/log.h"

#define CGW_MAX_WATCHES 65536 /* bound on directories watched; beyond, the periodic scan covers */

struct cgw_watch {
	int wd;
	bool marked;
	char *path;
};

struct cgw {
	struct ev_loop *loop;
	ev_io io;
	cgw_fn fn;
	void *arg;
	struct cgw_watch *w;
	size_t n, cap;
	bool warned;
};

static void cgw_on_event(struct ev_loop *loop, ev_io *io, int revents)
{
	struct cgw *w = io->data;
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool any = false;
	ssize_t n;

	(void)loop;
	(void)revents;
	/* drain everything; one rescan covers any number of events */
	while ((n = read(io->fd, buf, sizeof(buf))) > 0)
		any = true;
	if (any)
		w->fn(w->arg);
}

int cgw_new(struct ev_loop *loop, cgw_fn fn, void *arg, struct cgw **out)
{
	struct cgw *w;
	int fd;

	fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (fd < 0)
		return -errno;
	w = calloc(1, sizeof(*w));
	if (!w) {
		close(fd);
		return -ENOMEM;
	}
	w->loop = loop;
	w->fn = fn;
	w->arg = arg;
	ev_io_init(&w->io, cgw_on_event, fd, EV_READ);
	w->io.data = w;
	ev_io_start(loop, &w->io);
	*out = w;
	return 0;
}

static int cgw_add(struct cgw *w, const char *dir)
{
	size_t i;
	int wd;

	for (i = 0; i < w->n; i++) {
		if (strcmp(w->w[i].path, dir) == 0) {
			w->w[i].marked = true;
			return 0;
		}
	}
	if (w->n >= CGW_MAX_WATCHES)
		return -ENOSPC;
	wd = inotify_add_watch(w->io.fd, dir,
			       IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM | IN_ONLYDIR | IN_DELETE_SELF);
	if (wd < 0)
		return -errno;
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 16;
		struct cgw_watch *nw = realloc(w->w, cap * sizeof(*nw));

		if (!nw) {
			inotify_rm_watch(w->io.fd, wd);
			return -ENOMEM;
		}
		w->w = nw;
		w->cap = cap;
	}
	w->w[w->n].wd = wd;
	w->w[w->n].marked = true;
	w->w[w->n].path = strdup(dir);
	if (!w->w[w->n].path) {
		inotify_rm_watch(w->io.fd, wd);
		return -ENOMEM;
	}
	w->n++;
	return 1;
}

/*
 * Watches the directories that may hold a future match of pattern (an
 * absolute path or glob): for each level below the last, every existing
 * directory matching the pattern cut at that level.
 */
static int cgw_pattern(struct cgw *w, const char *mount, const char *pattern)
{
	char cut[CG_PATH_MAX];
	size_t mlen = strlen(mount), len = strlen(pattern), i, k;
	int r, n = 0;
	glob_t g;

	if (len >= sizeof(cut))
		return -ENAMETOOLONG;
	/* each '/' after the mount ends one level: watch the directories up to it */
	for (i = mlen; i <= len; i++) {
		if (i != mlen && pattern[i] != '/')
			continue;
		if (i == len)
			break; /* the last component is what we wait for, not a parent */
		memcpy(cut, pattern, i ? i : 1);
		cut[i ? i : 1] = '\0';
		if (!strpbrk(cut, "*?[")) {
			struct stat st;

			if (stat(cut, &st) == 0 && S_ISDIR(st.st_mode)) {
				r = cgw_add(w, cut);
				if (r < 0)
					return r;
				n++;
			}
			continue;
		}
		if (glob(cut, GLOB_ONLYDIR | GLOB_NOSORT, NULL, &g) != 0)
			continue;
		for (k = 0; k < g.gl_pathc; k++) {
			r = cgw_add(w, g.gl_pathv[k]);
			if (r < 0) {
				globfree(&g);
				return r;
			}
			n++;
		}
		globfree(&g);
	}
	return n;
}

int cgw_sync(struct cgw *w, const char *mount, char *const *entries, size_t n)
{
	char full[CG_PATH_MAX];
	size_t i;
	int r, total = 0;

	for (i = 0; i < w->n; i++)
		w->w[i].marked = false;
	for (i = 0; i < n; i++) {
		if (entries[i][0] == '/')
			r = snprintf(full, sizeof(full), "%s", entries[i]);
		else
			r = snprintf(full, sizeof(full), "%s/%s", mount, entries[i]);
		if (r < 0 || (size_t)r >= sizeof(full))
			continue;
		r = cgw_pattern(w, mount, full);
		if (r < 0) {
			if (!w->warned)
				log_warn("cannot watch cgroups for '%s' (%s); new cgroups are found by the "
					 "periodic scan instead (raise fs.inotify.max_user_watches?)",
					 entries[i], strerror(-r));
			w->warned = true;
			continue;
		}
		total += r;
	}
	/* sweep: directories no entry needs any more (or that are gone) */
	for (i = 0; i < w->n;) {
		if (w->w[i].marked) {
			i++;
			continue;
		}
		inotify_rm_watch(w->io.fd, w->w[i].wd); /* EINVAL if the kernel dropped it already */
		free(w->w[i].path);
		w->w[i] = w->w[--w->n];
	}
	return total;
}

void cgw_free(struct cgw *w)
{
	size_t i;

	if (!w)
		return;
	ev_io_stop(w->loop, &w->io);
	close(w->io.fd);
	for (i = 0; i < w->n; i++)
		free(w->w[i].path);
	free(w->w);
	free(w);
}
