/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * nodefacts: gathers what agent/nodecheck judges, from this node, as the
 * process that calls it sees it (`weftctl check`, run without weftd). It
 * changes nothing on the host: it reads files (/proc, the config, the token),
 * statfs'es the pin path, asks the kernel about features (programs and maps
 * made for that are freed at once), capget(2), getrlimit(2), reads the pinned
 * weft_agent map read-only, GETs /ready from the admin API, and asks the
 * Kubernetes API (GETs only) on a private libev loop. It mounts nothing,
 * creates no pin, no directory, no cgroup, and takes no lock weftd takes.
 * Blocking: a few seconds at most (the admin GET has 1 s, the API requests
 * api_timeout_ms, all at once).
 * It may call: agent/nodecheck, config/config, kernel/probe, kernel/cgroup,
 * kube/kapi, codec/k8s, lib/buf, lib/file, lib/httpcall, libbpf, libev.
 */
#ifndef WEFT_NODEFACTS_H
#define WEFT_NODEFACTS_H

#include "agent/nodecheck.h"

#define NF_API_TIMEOUT_MS 8000u

struct nf_data {
	struct nc_facts f; /* for nc_judge; points into the fields below */
	struct weft_config *cfg;
	struct cfg_errors errs;
	char release[65];
	char *mountinfo;
};

/* Fills *d (zeroed first); never fails as a whole: what cannot be read is a fact. */
void nf_gather(const char *config_path, unsigned api_timeout_ms, struct nf_data *d);
void nf_free(struct nf_data *d);

#endif
