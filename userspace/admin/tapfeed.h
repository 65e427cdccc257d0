/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * tapfeed: GET /tap, the readers of the live request feed (state/tap).
 *
 * Each reader is an admin stream with its filters (service, path prefix,
 * status or status class, e.g. "503" or "5xx") and its format (JSON lines,
 * or weftctl's text lines). Every TAPFEED_PERIOD_S while there are readers
 * the ring is drained and each event goes to the readers it matches; a
 * reader whose connection has ADMIN_STREAM_MAX_PENDING bytes waiting loses
 * the event (counted, and told with a "dropped" line once it catches up).
 * At most TAPFEED_MAX_READERS at once. Main thread.
 * It may call: admin/admin, admin/render (the cgroup name callback),
 * state/tap, codec/kubepath, lib/.
 */
#ifndef WEFT_TAPFEED_H
#define WEFT_TAPFEED_H

#include <ev.h>
#include <stdint.h>

#include "admin/render.h"

#define TAPFEED_PERIOD_S 0.05
#define TAPFEED_MAX_READERS 8

struct tapfeed;
struct tap;
struct admin_response;
struct buf;

struct tapfeed *tapfeed_new(struct ev_loop *loop, struct tap *tap, render_cgroup_fn cgroup_name, void *arg);
/* Ends every stream (what is pending is still sent). */
void tapfeed_free(struct tapfeed *f);

/*
 * GET /tap?service=NAME&path=PREFIX&status=503|5xx&headers=1&format=text&wide=1:
 * a new reader (the response becomes a stream), or a 400/503 answer.
 */
void tapfeed_attach(struct tapfeed *f, const char *query, struct admin_response *r);

/* weft_tap_* metrics. */
void tapfeed_metrics(struct tapfeed *f, struct buf *out);

#endif
