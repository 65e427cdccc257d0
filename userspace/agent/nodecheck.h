/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * nodecheck: what this node lacks for weftd, decided from facts (`weftctl
 * check`). Pure: agent/nodefacts gathers the facts (syscalls, BPF probes,
 * the Kubernetes API) into a struct nc_facts; nc_judge turns them into one
 * verdict per check (ok, warn, FAIL; a detail; what to do), and
 * nc_render_text / nc_render_json print a report. No I/O, no clock, no
 * global state here, so every verdict is unit-tested from made-up facts
 * (tests/unit/test_nodecheck.c).
 *
 * The checks, in the order of a report (names are stable; --json uses them):
 *   config                 the file loads (its errors as weftd prints them)
 *   kernel                 the release, against the newest feature weft needs
 *   btf                    /sys/kernel/btf/vmlinux (CO-RE)
 *   cgroup2                the cgroup2 mount (from /proc/self/mountinfo)
 *   bpf.<feature>          each entry of kernel/probe's probe_features, or
 *   bpf                    one line when this process may not probe them
 *   bpffs                  agent.bpf_pin_path on bpffs, or weftd would mount it
 *   capabilities           the effective set against what weftd uses
 *   nofile                 RLIMIT_NOFILE against agent.max_connections
 *   agent                  a weftd already on this pin path (informational)
 *   k8s.api, k8s.token, k8s.rbac.<resource>, k8s.node
 *                          with a kubernetes group: reachable over TLS, token
 *                          accepted, list and watch allowed (else the exact
 *                          ClusterRole rule missing), this node known
 * A check that cannot be decided because an earlier one failed is left out
 * (no pin path without a config, no RBAC without a reachable API).
 * It may call: config/config, kernel/probe, kernel/cgroup, lib/addr, lib/buf.
 */
#ifndef WEFT_NODECHECK_H
#define WEFT_NODECHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "kernel/probe.h"
#include "lib/buf.h"
#include "weft/maps.h"

#define NC_DEFAULT_CONFIG "/etc/weft/weft.conf" /* weftd's -c default */
#define NC_MAX_FEATURES 32
#define NC_DETAIL_MAX 512
#define NC_WIDTH 80 /* text reports fit this many columns */

/* The Kubernetes resources weftd lists and watches (kube/kdisc), in report order. */
enum nc_kind { NC_SERVICES = 0, NC_ENDPOINTSLICES, NC_PODS, NC_NODES, NC_KINDS };

/* "services", "endpointslices", "pods", "nodes" */
const char *nc_kind_resource(enum nc_kind k);
/* The API group: "" (core) or "discovery.k8s.io". */
const char *nc_kind_group(enum nc_kind k);

/*
 * The request that checks one verb on one resource as weftd makes it (the
 * same collection and, for pods, the same spec.nodeName selector), into
 * buf: a list of at most one item; a watch of an object that cannot exist,
 * which the server ends after a second. Nodes are listed by metadata.name =
 * node, so the answer also says whether the node exists. 0, or -ENOSPC.
 */
int nc_api_path(enum nc_kind k, bool watch, const char *node, char *buf, size_t len);

/* One request's outcome. */
struct nc_api_answer {
	bool done;                  /* it ended (or, a watch, streamed: then status 200) */
	int err;                    /* 0: an HTTP answer came; else kapi's -errno (detail says what) */
	int status;                 /* the HTTP status, when err is 0 */
	char detail[NC_DETAIL_MAX]; /* err: kapi's line; status not 2xx: the Status message */
	int items;                  /* a list answered 200: items in it (-1: not decoded) */
};

/* Everything nc_judge looks at. Pointers are borrowed; NULL where not known. */
struct nc_facts {
	/* config: cfg NULL when it did not load, then config_errs says why */
	const char *config_path;
	const struct weft_config *cfg;
	int config_err; /* cfg_load's: -ENOENT and the like (no file), -EINVAL (errors in it) */
	const struct cfg_errors *config_errs;

	/* kernel */
	const char *release;   /* uname -r */
	int btf_err;           /* probe_btf() */
	const char *mountinfo; /* /proc/self/mountinfo; NULL: unreadable (mountinfo_err) */
	int mountinfo_err;
	int features[NC_MAX_FEATURES]; /* probe_feature(&probe_features[i]) */
	size_t n_features;

	/* agent.bpf_pin_path (probe_pin), when there is a config */
	int pin_err;
	struct probe_pin pin;

	/* this process */
	uint32_t uid;
	int caps_err;      /* capget(2): 0 or -errno */
	uint64_t caps_eff; /* effective set, bit n = capability n */
	int nofile_err;
	uint64_t nofile_soft, nofile_hard; /* UINT64_MAX: unlimited */

	/* a weftd on the pin path: reading <pin>/weft_agent */
	int agent_err; /* 0 (agent holds it), -ENOENT (no pins), -EACCES / -EPERM, ... */
	struct weft_agent_state agent;
	uint64_t now_ns;             /* CLOCK_MONOTONIC when agent was read */
	int admin_err, admin_status; /* GET /ready on agent.admin, when there are pins */

	/* kubernetes (cfg->kubernetes.enabled) */
	int token_err; /* reading token_file: 0, or -errno (token_detail) */
	size_t token_len;
	char token_detail[NC_DETAIL_MAX];
	int kapi_err; /* making the client (URL, CA file): 0, or -errno (kapi_detail); no requests then */
	char kapi_detail[NC_DETAIL_MAX];
	struct nc_api_answer list[NC_KINDS], watch[NC_KINDS];
};

enum nc_status { NC_OK = 0, NC_WARN, NC_FAIL };

struct nc_check {
	char *name; /* "kernel", "bpf.set_retval", "k8s.rbac.pods" */
	enum nc_status status;
	char *detail; /* what was found; may hold newlines (config errors, one a line) */
	char *fix;    /* what to do; "" when nothing */
};

struct nc_report {
	struct nc_check *v;
	size_t n, cap;
	bool failed; /* out of memory: the report is incomplete */
};

/* Appends one verdict per check to r (see the list above). O(checks + mountinfo lines). */
void nc_judge(const struct nc_facts *f, struct nc_report *r);
/* The worst status in r (NC_FAIL also when r->failed). */
enum nc_status nc_worst(const struct nc_report *r);
/* The check of that name, or NULL. */
const struct nc_check *nc_find(const struct nc_report *r, const char *name);
void nc_report_free(struct nc_report *r);

/* "ok", "warn", "fail" (JSON) */
const char *nc_status_name(enum nc_status s);

/*
 * For people: per check "ok    name: detail", then for warn and FAIL
 * "      fix: what to do", words wrapped to width columns under a 6-column
 * status (a single word longer than a line stays whole). No colour.
 */
void nc_render_text(const struct nc_report *r, unsigned width, struct buf *out);
/* {"checks":[{"name":..,"status":"ok|warn|fail","detail":..,"fix":..}]} and a newline. */
void nc_render_json(const struct nc_report *r, struct buf *out);

#endif
