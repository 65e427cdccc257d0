/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * cgwatch: notices cgroups appearing and disappearing (pods, systemd units)
 * with inotify, so a new cgroup matching intercept.cgroups is enrolled within
 * milliseconds of mkdir, before its first process usually runs.
 *
 * For each entry (path or glob, relative to the cgroup2 mount) the watched
 * directories are those that can contain a future match: the parent of a
 * plain path, and for a glob every existing directory matching each leading
 * part of the pattern (for "kubepods.slice/ * / *": the mount's
 * kubepods.slice, and each of its children). Any create/delete/move under
 * them calls the callback, which rescans and calls cgw_sync() again so new
 * levels get watched. The agent's periodic scan remains as a backstop (e.g.
 * for an inotify watch limit reached).
 * It may call: kernel/cgroup, lib/log, libev.
 */
#ifndef WEFT_CGWATCH_H
#define WEFT_CGWATCH_H

#include <ev.h>
#include <stddef.h>

struct cgw;

typedef void (*cgw_fn)(void *arg);

/* 0 or -errno (err says why: e.g. inotify unavailable). */
int cgw_new(struct ev_loop *loop, cgw_fn fn, void *arg, struct cgw **out);
/* Re-computes the watched set for these entries; returns directories watched or -errno. */
int cgw_sync(struct cgw *w, const char *mount, char *const *entries, size_t n);
void cgw_free(struct cgw *w);

#endif
