/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * membudget: the node-wide budget for bytes weftd buffers on behalf of
 * workloads (agent.buffer_memory_mb), with per-workload shares
 * (agent.buffer_memory_per_workload_pct), so that one workload sending
 * thousands of never-ending request heads cannot get the agent OOM-killed
 * and take the node's mesh down with it. A session charges its growing
 * buffers to its workload (the cgroup that dialled) and is refused more when
 * - its workload holds more than its share, or
 * - the budget is full, or
 * - the budget is seven-eighths full and its workload holds at least the
 *   average per active workload (the biggest consumers are shed first).
 * A refused session is shed by its path (HTTP: 503, close). The memory of
 * shed and finished sessions goes back to malloc; mb_trim_due() tells the
 * main loop when to hand it back to the kernel (malloc_trim) after a spike.
 * It may call: libc only.
 *
 * Threading: charges and releases are lock-free atomics on the hot path;
 * the workload table (cgroup id -> entry) is under mb->lock, taken once per
 * session when it first charges and once when it lets go.
 */
#ifndef WEFT_MEMBUDGET_H
#define WEFT_MEMBUDGET_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

enum mb_refusal { MB_OK = 0, MB_SHARE, MB_FULL, MB_PRESSURE, MB__MAX };
extern const char *const mb_refusal_names[MB__MAX]; /* metric label: "", workload_share, budget_full, pressure */

struct mb_workload;

struct membudget {
	pthread_mutex_t lock; /* the workload table */
	struct mb_workload **tab;
	size_t cap, n;
	_Atomic size_t limit; /* bytes */
	_Atomic size_t share; /* bytes one workload may hold */
	_Atomic size_t used;
	_Atomic size_t active; /* workloads holding bytes now */
	_Atomic size_t peak;   /* most used since the last trim */
	_Atomic uint64_t refused[MB__MAX];
	_Atomic uint64_t trims;
};

/* What one session holds (owned by the session's thread). */
struct mb_acct {
	struct membudget *mb; /* NULL: not accounted */
	uint64_t cgroup_id;
	struct mb_workload *wl; /* set on the first charge */
	size_t held;
};

int mb_init(struct membudget *mb, size_t limit, unsigned share_pct);
/* A reload: new limit and share (existing charges stay). */
void mb_configure(struct membudget *mb, size_t limit, unsigned share_pct);
void mb_destroy(struct membudget *mb);

static inline void mb_acct_init(struct mb_acct *a, struct membudget *mb, uint64_t cgroup_id)
{
	a->mb = mb;
	a->cgroup_id = cgroup_id;
	a->wl = NULL;
	a->held = 0;
}
/* n more bytes for a's session: MB_OK (charged) or why not (nothing charged). */
enum mb_refusal mb_charge(struct mb_acct *a, size_t n);
/* n bytes a's session gave back (n <= a->held). */
void mb_release(struct mb_acct *a, size_t n);
/* The session ends: everything it holds goes back; a can be reused after mb_acct_init. */
void mb_acct_close(struct mb_acct *a);

/*
 * true when at least min bytes were given back since the peak (after a
 * spike): the caller should malloc_trim() now. Resets the peak.
 */
int mb_trim_due(struct membudget *mb, size_t min);

#endif
