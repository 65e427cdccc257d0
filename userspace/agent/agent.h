/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * agent: weftd's runtime. Owns the event loop, the kernel side, the outbound listener,
 * the heartbeat, cgroup enrolment, reload and drain. See weftd.c for the
 * startup/shutdown order.
 * It may call: admin/admin, admin/render, admin/snapshot, config/config,
 * config/config_render, disc/disc, http/h1svc, http/zipkin, kernel/cgroup,
 * kernel/cgwatch, kernel/kernel, kernel/probe, lib/buf, lib/log,
 * listen/inbound, listen/outbound, state/service, tls/mtls, tls/tls, libev.
 */
#ifndef WEFT_AGENT_H
#define WEFT_AGENT_H

#include <stdbool.h>

struct weft_config;

/*
 * Runs until SIGTERM/SIGINT. Takes ownership of cfg. Returns the process exit
 * code: 0 after a clean drain, 1 when startup failed (message logged).
 */
int agent_run(struct weft_config *cfg, const char *path, bool verbose);

#endif
