/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * statwin: golden signals per service over recent windows (weftctl stat),
 * computed by weftd from its own counters and histograms: no Prometheus.
 *
 * Every STATWIN_PERIOD_S the agent takes a snapshot (admin/snapshot) and
 * feeds it here. For each service statwin keeps a ring of STATWIN_SLOTS
 * samples of monotonic totals: HTTP requests, 5xx, retries and the request
 * duration histogram (weft_http_request_duration_seconds, all routes);
 * connections, failed connects and the connect-time histogram (all
 * endpoints). A window of W seconds is the difference between the newest
 * sample and the newest one at least W old (or the oldest there is: the
 * answer says how long the window really is). Percentiles come from the
 * histogram's difference, interpolated linearly inside a bucket as
 * Prometheus' histogram_quantile() does, so they are as exact as the
 * buckets (a p99 in the 250-500 ms bucket is somewhere in it).
 *
 * Endpoints come and go with reloads and discovery, and their counters go
 * with them, so the totals are accumulated from per-endpoint increments (a
 * vanished endpoint takes nothing away). Memory: a service that has seen no
 * traffic since weftd started, or none for a whole ring, costs a name and a
 * fingerprint (about 64 bytes); an active one a ring (about 9 KiB), plus one
 * per endpoint. So 10,000 discovered services of which 50 are busy cost
 * about 1.1 MiB.
 *
 * Main thread only. Pure apart from allocation: time is the snapshot's.
 * It may call: admin/snapshot (its types), http/h1svc and state/service
 * (bucket bounds), lib/buf.
 */
#ifndef WEFT_STATWIN_H
#define WEFT_STATWIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STATWIN_PERIOD_S 2.0
#define STATWIN_SLOTS 32 /* 62 s of history at 2 s */

struct statwin;
struct snapshot;
struct buf;

struct statwin *statwin_new(void);
void statwin_free(struct statwin *w);

/* One sample: s taken with SNAP_SERVICES | SNAP_METRICS at s->now. 0 or -ENOMEM. */
int statwin_sample(struct statwin *w, const struct snapshot *s);

struct statwin_opts {
	const char *service; /* NULL: all */
	bool wide;           /* endpoints too */
	double window_s;     /* the text table's window (10 or 60); JSON has both */
};

/*
 * GET /stat: every service of s (the generation in force) with its windows.
 * JSON (docs/operations.md) or weftctl's text table (80 columns). s: a fresh
 * SNAP_SERVICES snapshot for the live gauges (in flight, ejected). Returns
 * false when opts->service names no service (nothing written).
 */
bool statwin_render(struct statwin *w, const struct snapshot *s, const struct statwin_opts *opts, bool text,
		    struct buf *out);

/*
 * The q-quantile (0..1) of a histogram difference: cum[i] observations at
 * most bounds[i], total in all (the +Inf bucket). Linear inside a bucket
 * (from 0 for the first); in the +Inf bucket, the last bound. -1 when total
 * is 0.
 */
double statwin_quantile(const double *bounds, const uint64_t *cum, size_t n, uint64_t total, double q);

#endif
