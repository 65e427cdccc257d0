/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * render: the data path's admin pages, formatted from a snapshot (no lock
 * held): GET /services and GET /conns as JSON (docs/operations.md) or as
 * weftctl's text tables, and the data path's part of GET /metrics.
 * It may call: admin/snapshot, http/zipkin (its counters), listen/pods (its
 * snapshot type), codec/kubepath, lib/. Main thread.
 */
#ifndef WEFT_RENDER_H
#define WEFT_RENDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;
struct snapshot;
struct zipkin;
struct pod_info;

/* Maps a cgroup id to a path (NULL: unknown). */
typedef const char *(*render_cgroup_fn)(void *arg, uint64_t id);

/* Writes more members of one service's object (",\"key\":..."), e.g. its discovery sources. */
typedef void (*render_svc_fn)(void *arg, const char *service, struct buf *out);

/* GET /services; disc (may be NULL) adds to each service's object. */
void render_services(const struct snapshot *s, struct buf *out, render_svc_fn disc, void *disc_arg);
/* Text tables fit TABLE_WIDTH columns (less important columns left out, long names cut) unless wide. */
void render_services_text(const struct snapshot *s, struct buf *out, bool wide);
void render_conns(const struct snapshot *s, struct buf *out, render_cgroup_fn cgroup_name, void *arg);
void render_conns_text(const struct snapshot *s, struct buf *out, render_cgroup_fn cgroup_name, void *arg, bool wide);
/* GET /pods: the pods' network namespaces weftd serves (listen/pods snapshot). */
void render_pods(const struct pod_info *v, size_t n, struct buf *out);
void render_pods_text(const struct pod_info *v, size_t n, struct buf *out, bool wide);
/* zipkin: the span exporter, or NULL. */
void render_metrics(const struct snapshot *s, struct zipkin *zipkin, struct buf *out);

#endif
