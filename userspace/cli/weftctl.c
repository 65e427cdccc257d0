// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * weftctl: the operator's CLI, a thin client of weftd's admin API. Tables for
 * people come from the agent (?format=text) so weftctl and the API cannot
 * disagree; --json prints the API's JSON unchanged for scripts.
 *
 * `weftctl check` is the exception: it does not talk to weftd but looks at
 * this node (agent/nodefacts, judged by agent/nodecheck), so an operator can
 * run it before installing weft or when weftd will not start.
 *
 * Exit codes: 0 success; 1 the agent answered with an error (message printed),
 * or check found something missing; 2 usage error; 3 the agent could not be
 * reached.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/nodecheck.h"
#include "agent/nodefacts.h"
#include "lib/addr.h"
#include "lib/buf.h"
#include "lib/httpcall.h"
#include "lib/log.h"

#define CTL_TIMEOUT_MS 5000
#define CTL_MAX_RESPONSE (64u << 20)

static void usage(FILE *f)
{
	fprintf(f, "usage: weftctl [-a ADDR] [--json] COMMAND\n"
		   "       weftctl check [-c FILE] [--json]\n"
		   "  status              is the agent ready; services and cgroups at a glance\n"
		   "  services            services and the live state of their endpoints\n"
		   "  conns               active proxied connections (POD: the kubelet pod UID)\n"
		   "  pods                network namespaces weftd serves (pods): addresses, listeners, state\n"
		   "  metrics             the Prometheus metrics, as scraped\n"
		   "  config              the effective config (JSON)\n"
		   "  reload              re-read the config file (errors are printed; the old config stays)\n"
		   "  enroll CGROUP       intercept a cgroup now (path, or relative to the cgroup2 mount)\n"
		   "  unenroll CGROUP     stop intercepting a cgroup enrolled with 'enroll'\n"
		   "  check               what this node lacks for weftd (no weftd needed; changes nothing)\n"
		   "options:\n"
		   "  -a, --admin ADDR    the agent's admin address (default $WEFT_ADMIN or 127.0.0.1:9990)\n"
		   "  -c, --config FILE   check: weftd's config file (default " NC_DEFAULT_CONFIG ")\n"
		   "  -j, --json          JSON output for scripts\n"
		   "exit codes: 0 ok, 1 the agent reported an error (check: something FAILed), 2 usage,\n"
		   "3 agent unreachable\n");
}

/* Percent-encodes s for a query value. */
static void url_encode(const char *s, char *out, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (; *s && o + 4 < len; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("-._~/", c)) {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
}

/* weftctl check: gather, judge, print; 0 when nothing FAILed, else 1. */
static int cmd_check(const char *config, bool json)
{
	struct nc_report rep = { 0 };
	struct buf out = { 0 };
	struct nf_data d;
	int code;

	signal(SIGPIPE, SIG_IGN);
	log_set_level(LOG_LVL_ERROR); /* the report says it all; no log lines from the modules it uses */
	nf_gather(config, NF_API_TIMEOUT_MS, &d);
	nc_judge(&d.f, &rep);
	if (json)
		nc_render_json(&rep, &out);
	else
		nc_render_text(&rep, NC_WIDTH, &out);
	code = nc_worst(&rep) == NC_FAIL || buf_failed(&out) ? 1 : 0;
	if (out.p)
		fputs(out.p, stdout);
	if (buf_failed(&out))
		fprintf(stderr, "weftctl: check: out of memory\n");
	buf_free(&out);
	nc_report_free(&rep);
	nf_free(&d);
	return code;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "admin", required_argument, NULL, 'a' },
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *admin = getenv("WEFT_ADMIN"), *cmd, *method = "GET", *config = NULL;
	char target[8192], enc[6000], err[256], as[ADDR_STRLEN];
	struct weft_sockaddr addr;
	struct buf body = { 0 };
	bool json = false;
	int c, status = 0, r, code;

	if (!admin || !*admin)
		admin = "127.0.0.1:9990";
	while ((c = getopt_long(argc, argv, "a:c:jh", opts, NULL)) != -1) {
		switch (c) {
		case 'a':
			admin = optarg;
			break;
		case 'c':
			config = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	cmd = argv[optind++];
	if (!strcmp(cmd, "check")) {
		if (optind != argc) {
			fprintf(stderr, "weftctl: check takes no arguments (the config file is -c FILE)\n");
			return 2;
		}
		return cmd_check(config ? config : NC_DEFAULT_CONFIG, json);
	}
	if (config) {
		fprintf(stderr, "weftctl: -c FILE is for 'check' only (%s asks the agent at -a ADDR)\n", cmd);
		return 2;
	}
	if (addr_parse(admin, false, &addr, err, sizeof(err)) < 0) {
		fprintf(stderr, "weftctl: -a %s: %s\n", admin, err);
		return 2;
	}
	if (!strcmp(cmd, "enroll") || !strcmp(cmd, "unenroll")) {
		if (optind != argc - 1) {
			fprintf(stderr, "weftctl: %s needs exactly one CGROUP argument\n", cmd);
			return 2;
		}
		url_encode(argv[optind], enc, sizeof(enc));
		snprintf(target, sizeof(target), "/%s?cgroup=%s", cmd, enc);
		method = "POST";
	} else {
		if (optind != argc) {
			fprintf(stderr, "weftctl: %s takes no arguments\n", cmd);
			return 2;
		}
		if (!strcmp(cmd, "status"))
			snprintf(target, sizeof(target), "/ready");
		else if (!strcmp(cmd, "services") || !strcmp(cmd, "conns") || !strcmp(cmd, "pods"))
			snprintf(target, sizeof(target), "/%s%s", cmd, json ? "" : "?format=text");
		else if (!strcmp(cmd, "metrics") || !strcmp(cmd, "config"))
			snprintf(target, sizeof(target), "/%s", cmd);
		else if (!strcmp(cmd, "reload")) {
			snprintf(target, sizeof(target), "/reload");
			method = "POST";
		} else {
			fprintf(stderr, "weftctl: unknown command '%s'\n", cmd);
			usage(stderr);
			return 2;
		}
	}
	r = hcall(&addr, method, target, CTL_TIMEOUT_MS, CTL_MAX_RESPONSE, &status, &body);
	if (r < 0) {
		fprintf(stderr,
			"weftctl: cannot reach weftd at %s: %s (is weftd running? is agent.admin "
			"%s? use -a ADDR)\n",
			addr_format(&addr, as, sizeof(as)), strerror(-r), addr_format(&addr, as, sizeof(as)));
		buf_free(&body);
		return 3;
	}
	code = status >= 200 && status < 300 ? 0 : 1;
	if (!strcmp(cmd, "status")) {
		/* status: readiness plus the services table */
		const char *state = body.p ? body.p : "";
		struct buf svc = { 0 };
		int st2 = 0;

		if (json) {
			printf("{\"ready\":%s,\"state\":\"%.*s\",\"admin\":\"%s\"}\n", code == 0 ? "true" : "false",
			       (int)strcspn(state, "\n"), state, addr_format(&addr, as, sizeof(as)));
		} else {
			printf("weftd at %s: %s", addr_format(&addr, as, sizeof(as)), state);
			if (hcall(&addr, "GET", "/services?format=text", CTL_TIMEOUT_MS, CTL_MAX_RESPONSE, &st2,
				  &svc) == 0 &&
			    st2 == 200 && svc.p)
				printf("\n%s", svc.p);
		}
		buf_free(&svc);
	} else if (body.p) {
		if (code)
			fprintf(stderr, "weftctl: %s: %s", cmd, body.p);
		else
			fputs(body.p, stdout);
	}
	buf_free(&body);
	return code;
}
