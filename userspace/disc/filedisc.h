/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * filedisc: a service's endpoints from a file (`endpoints_from = { file =
 * PATH; }`, formats in codec/epfile.h), followed as whatever writes it
 * replaces it: Consul template and Ansible write a temporary file and
 * rename it over the old one, a script may rewrite it in place, Kubernetes
 * swaps a ConfigMap's symlink.
 *
 * How: one inotify instance watches the directory of every file (a rename
 * over the file is an event in its directory, not on the file). An event
 * that names the file after a write is closed or a rename lands
 * (IN_CLOSE_WRITE, IN_MOVED_TO) reads it again; any other event in the
 * directory (a symlink swapped, a file removed, attributes) reads it again
 * only if stat(PATH) no longer shows the file read last (device, inode,
 * size, modification time). Reads wait FILEDISC_SETTLE_S for events to
 * settle. A timer every FILEDISC_POLL_S does the same stat check, so a
 * directory that did not exist at start, or inotify's limits, only delay
 * things. Writes in progress are never read: IN_MODIFY is not watched.
 *
 * A read that fails (no file, not a regular file, too big, unreadable) or a
 * file with any problem keeps the set in force, says FILE:LINE: what, and
 * counts a "failure"; a file with no endpoint keeps it too ("empty"): an
 * empty file is far more often a template that rendered nothing than a
 * decision to drain the service. The first read happens in file_src_new,
 * so a service starts with its file's endpoints.
 *
 * Main loop only.
 * It may call: disc/epset, codec/epfile, lib/, libev.
 */
#ifndef WEFT_FILEDISC_H
#define WEFT_FILEDISC_H

#include <ev.h>
#include <stddef.h>

#include "codec/epfile.h"
#include "disc/epset.h"

#define FILEDISC_SETTLE_S 0.01
#define FILEDISC_POLL_S 2.0

struct filedisc;
struct file_src;

/* One inotify instance (none available: the poll alone, said once). 0 or -ENOMEM. */
int filedisc_new(struct ev_loop *loop, struct filedisc **out);
/* Sources must be freed first. */
void filedisc_free(struct filedisc *d);

/* Follows path for service svc, reading it now. changed(arg) when its set changes later. NULL: no memory. */
struct file_src *file_src_new(struct filedisc *d, const char *svc, const char *path, void (*changed)(void *arg),
			      void *arg);
void file_src_free(struct file_src *s);
/* The set in force (sorted; valid until the loop runs again). */
const struct ep_entry *file_src_endpoints(const struct file_src *s, size_t *n);
const struct disc_status *file_src_status(const struct file_src *s);

#endif
