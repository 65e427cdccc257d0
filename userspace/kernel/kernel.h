/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * kernel: the BPF side as weftd sees it. Loads the embedded intercept
 * skeleton, pins every map and program under agent.bpf_pin_path, attaches the
 * programs to enrolled cgroups with one bpf_link per (cgroup, program), pinned
 * under <pin>/links/, and gives typed access to the maps.
 *
 * One weftd owns a pin path at a time (flock on the pin directory). Pins left
 * by a crashed earlier run are removed at open: their links detach with them.
 * It may call: config/config, kernel/cgroup, lib/log, libbpf.
 */
#ifndef WEFT_KERNEL_H
#define WEFT_KERNEL_H

#include <linux/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "weft/maps.h"

struct kern;
struct weft_config;

/* Loads and pins. Returns 0 or -errno with a user-facing message in err. */
int kern_open(const char *pin_path, struct kern **out, char *err, size_t errlen);

/*
 * Tears down: with unpin, detaches every link and removes all pins and the
 * pin directory (clean shutdown); without, only closes fds (links stay
 * attached through their pins: what a crash leaves).
 */
void kern_close(struct kern *k, bool unpin);

/* Attach all programs to the cgroup directory dir (idempotent by cgroup id). */
int kern_enroll(struct kern *k, const char *dir, char *err, size_t errlen);

/*
 * Reconcile enrolment with a fresh expansion of intercept.cgroups: mark/sweep.
 * kern_enroll_begin() clears marks, kern_enroll() marks (and attaches new),
 * kern_enroll_end() detaches unmarked ones and ones whose cgroup is gone.
 * Returns how many were detached.
 */
void kern_enroll_begin(struct kern *k);
int kern_enroll_end(struct kern *k);
size_t kern_enrolled_count(const struct kern *k);
/* Iterate enrolled cgroups: returns the i-th path or NULL. */
const char *kern_enrolled_path(const struct kern *k, size_t i, uint64_t *cgid);

/* Make weft_services hold exactly cfg's service addresses (adds first, then removes). */
int kern_sync_services(struct kern *k, const struct weft_config *cfg);

/* Writes weft_agent (heartbeat included). */
int kern_set_agent(struct kern *k, const struct weft_agent_state *st);
/* Refreshes only heartbeat_ns in the last state written. */
int kern_heartbeat(struct kern *k);

/* Looks up and deletes the handoff record for an accepted connection. 0 or -ENOENT. */
int kern_take_orig(struct kern *k, const struct weft_conn_key *key, struct weft_orig *out);

/*
 * Adds weftd's end of an app <-> agent connection to weft_sockhash (the app's
 * end was added by sockops), enabling the sk_msg fast path in one direction:
 * weftd's sends go straight into the app's receive queue; the app's sends
 * stay on TCP (redirecting them could reorder bytes sent before the accept;
 * docs/architecture.md, "Kernel fast paths"). The kernel removes sockets from
 * the map when they close. 0 or -errno.
 */
int kern_sockhash_add(struct kern *k, int fd, const struct weft_sock_key *key);

/*
 * weft_listeners: fd (a listening socket made in the namespace whose cookie
 * is netns_cookie) becomes the one connect4/6 check for that namespace and
 * family (AF_INET/AF_INET6), replacing any earlier one. The kernel removes
 * the entry when the socket closes; kern_listener_del removes it before.
 * 0 or -errno. Any thread (map syscalls).
 */
int kern_listener_add(struct kern *k, int fd, uint64_t netns_cookie, int family);
int kern_listener_del(struct kern *k, uint64_t netns_cookie, int family);
/* Entries in weft_listeners (walks the map: for tests and metrics, not the data path). */
size_t kern_listener_count(struct kern *k);

/* Sums weft_stats over CPUs into out[WEFT_V__MAX]. */
int kern_read_stats(struct kern *k, uint64_t *out);

uint64_t kern_now_ns(void); /* CLOCK_MONOTONIC, the clock bpf_ktime_get_ns() reads */

#endif
