/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * stats.h: per-CPU verdict counters.
 *   stats_inc(map, verdict)   map is a PERCPU_ARRAY of __u64 indexed by enum weft_verdict
 * Per-CPU slots need no atomics; userspace sums the CPUs when it reads.
 */
#ifndef WEFT_BPF_LIB_STATS_H
#define WEFT_BPF_LIB_STATS_H

static __always_inline void stats_inc(void *map, __u32 verdict)
{
	__u64 *c = bpf_map_lookup_elem(map, &verdict);

	if (c)
		*c += 1;
}

#endif
