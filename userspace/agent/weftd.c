// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * weftd: the per-node agent. Startup order matters for fail-open:
 *   config -> kernel probe -> load + pin (weft_agent.enabled = 0)
 *   -> outbound listeners -> services map -> enrol cgroups
 *   -> weft_agent.enabled = 1 + heartbeat -> "ready:"
 * so no connect is ever redirected to a listener that is not there yet.
 * Shutdown (SIGTERM/SIGINT) runs it backwards: enabled = 0 (new connects go
 * direct or are refused per fail_mode), listeners closed, in-flight
 * connections drained up to agent.drain_timeout_ms, links detached, pins
 * removed, exit 0.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent.h"
#include "config/config.h"
#include "lib/log.h"

#ifndef WEFT_VERSION
#define WEFT_VERSION "0.1.0"
#endif

static void usage(FILE *f)
{
	fprintf(f, "usage: weftd [-c FILE] [-v] [--check]\n"
		   "  -c, --config FILE  configuration file (default /etc/weft/weft.conf)\n"
		   "      --check        validate FILE and exit: 0 if valid, 2 with one\n"
		   "                     'FILE:LINE: key: problem' line per error\n"
		   "  -v, --verbose      debug logging (overrides agent.log_level)\n"
		   "  -V, --version      print the version and exit\n"
		   "  -h, --help         this text\n"
		   "Signals: SIGHUP reloads the config, SIGTERM/SIGINT drain and exit 0.\n"
		   "Docs: docs/config.md, docs/operations.md\n");
}

static void print_errors(const struct cfg_errors *errs)
{
	size_t i;

	for (i = 0; i < errs->n; i++)
		fprintf(stderr, "%s\n", errs->msgs[i]);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' }, { "check", no_argument, NULL, 'k' },
		{ "verbose", no_argument, NULL, 'v' },      { "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },         { 0 },
	};
	const char *path = "/etc/weft/weft.conf";
	struct cfg_errors errs = { 0 };
	struct weft_config *cfg = NULL;
	bool check = false, verbose = false;
	int c, r;

	while ((c = getopt_long(argc, argv, "c:vVh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 'k':
			check = true;
			break;
		case 'v':
			verbose = true;
			break;
		case 'V':
			printf("weftd %s\n", WEFT_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "weftd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}

	r = cfg_load(path, &cfg, &errs);
	if (r < 0) {
		print_errors(&errs);
		cfg_errors_free(&errs);
		if (!check)
			fprintf(stderr, "weftd: not starting: %s has errors (see above)\n", path);
		return 2;
	}
	cfg_errors_free(&errs);
	if (check) {
		printf("%s: OK (%zu services, %zu cgroups)\n", path, cfg->n_services, cfg->n_cgroups);
		cfg_free(cfg);
		return 0;
	}
	log_set_level(verbose ? LOG_LVL_DEBUG : (enum log_level)cfg->log_level);
	log_rl_set_limit(cfg->log_rate_limit);
	r = agent_run(cfg, path, verbose);
	return r;
}
