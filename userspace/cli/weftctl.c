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
		   "  stat [SERVICE]      success rate, requests/s, p50/p95/p99 per service over the last\n"
		   "                      10 s (--window 1m: the last minute); -o wide: per endpoint\n"
		   "  tap [SERVICE]       HTTP requests as they end, live (--path PREFIX, --status 503|5xx,\n"
		   "                      --headers: values too, never secrets; -o wide: endpoint, pod)\n"
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
		   "  -o wide             every column (tables fit 80 columns without it); stat: endpoints\n"
		   "  -w, --watch         stat: redraw every 2 s until interrupted\n"
		   "      --window 10s|1m stat: the window shown (default 10s)\n"
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

/*
 * weftctl tap: prints the stream as it comes, until the agent ends it (0) or
 * the user interrupts. A refusal (400, 503) is printed on stderr (1).
 */
static int tap_stream(const struct weft_sockaddr *a, const char *target)
{
	char req[8192 + 64], chunk[16384], as[ADDR_STRLEN];
	struct buf head = { 0 };
	bool in_body = false;
	int fd, len, status = 0, r = 0;
	ssize_t n;

	fd = socket(a->sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, &a->sa, a->len) < 0) {
		fprintf(stderr, "weftctl: cannot reach weftd at %s: %s\n", addr_format(a, as, sizeof(as)),
			strerror(errno));
		if (fd >= 0)
			close(fd);
		return 3;
	}
	len = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: weftd\r\nUser-Agent: weftctl\r\n\r\n", target);
	if (len < 0 || (size_t)len >= sizeof(req) || send(fd, req, (size_t)len, MSG_NOSIGNAL) != len) {
		close(fd);
		return 3;
	}
	while ((n = recv(fd, chunk, sizeof(chunk), 0)) > 0) {
		if (in_body) {
			fwrite(chunk, 1, (size_t)n, status == 200 ? stdout : stderr);
			fflush(status == 200 ? stdout : stderr);
			continue;
		}
		buf_add(&head, chunk, (size_t)n);
		if (buf_failed(&head) || head.len > 65536) {
			r = 3;
			break;
		}
		{
			char *sep = memmem(head.p, head.len, "\r\n\r\n", 4);

			if (!sep)
				continue;
			if (sscanf(head.p, "HTTP/1.%*d %d", &status) != 1) {
				r = 3;
				break;
			}
			in_body = true;
			fwrite(sep + 4, 1, head.len - (size_t)(sep + 4 - head.p), status == 200 ? stdout : stderr);
			fflush(status == 200 ? stdout : stderr);
		}
	}
	buf_free(&head);
	close(fd);
	if (r)
		return r;
	return status == 200 ? 0 : status ? 1 : 3;
}

/*
 * weftctl stat --watch: the table again every STAT_WATCH_S until interrupted
 * (or the agent goes away: exit 3). The screen is cleared only on a terminal.
 */
#define STAT_WATCH_S 2
static int stat_watch(const struct weft_sockaddr *addr, const char *target)
{
	bool tty = isatty(STDOUT_FILENO);
	char as[ADDR_STRLEN];

	for (;;) {
		struct buf body = { 0 };
		int status = 0, r = hcall(addr, "GET", target, CTL_TIMEOUT_MS, CTL_MAX_RESPONSE, &status, &body);

		if (r < 0) {
			fprintf(stderr, "weftctl: cannot reach weftd at %s: %s\n", addr_format(addr, as, sizeof(as)),
				strerror(-r));
			buf_free(&body);
			return 3;
		}
		if (tty)
			fputs("\033[H\033[2J", stdout);
		if (body.p)
			fputs(body.p, status == 200 ? stdout : stderr);
		fflush(stdout);
		buf_free(&body);
		if (status != 200)
			return 1;
		sleep(STAT_WATCH_S);
	}
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
		{ "json", no_argument, NULL, 'j' },
		{ "output", required_argument, NULL, 'o' },
		{ "watch", no_argument, NULL, 'w' },
		{ "window", required_argument, NULL, 'W' },
		{ "path", required_argument, NULL, 'P' },
		{ "status", required_argument, NULL, 'S' },
		{ "headers", no_argument, NULL, 'H' },
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *admin = getenv("WEFT_ADMIN"), *cmd, *method = "GET", *config = NULL;
	char target[8192], enc[6000], err[256], as[ADDR_STRLEN];
	struct weft_sockaddr addr;
	struct buf body = { 0 };
	bool json = false, wide = false, watch = false;
	const char *window = "10", *tpath = NULL, *tstatus = NULL;
	bool theaders = false;
	int c, status = 0, r, code;

	if (!admin || !*admin)
		admin = "127.0.0.1:9990";
	while ((c = getopt_long(argc, argv, "a:c:jho:w", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			if (strcmp(optarg, "wide") != 0) {
				fprintf(stderr, "weftctl: -o %s: the only output is 'wide'\n", optarg);
				return 2;
			}
			wide = true;
			break;
		case 'w':
			watch = true;
			break;
		case 'P':
			tpath = optarg;
			break;
		case 'S':
			tstatus = optarg;
			break;
		case 'H':
			theaders = true;
			break;
		case 'W':
			if (!strcmp(optarg, "10s") || !strcmp(optarg, "10"))
				window = "10";
			else if (!strcmp(optarg, "1m") || !strcmp(optarg, "60s") || !strcmp(optarg, "60"))
				window = "60";
			else {
				fprintf(stderr, "weftctl: --window %s: the windows are 10s and 1m\n", optarg);
				return 2;
			}
			break;
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
	} else if (!strcmp(cmd, "tap")) {
		char e2[1024], e3[64];
		size_t n;

		if (optind < argc - 1) {
			fprintf(stderr, "weftctl: tap takes at most one SERVICE\n");
			return 2;
		}
		n = (size_t)snprintf(target, sizeof(target), "/tap?%s%s%s", json ? "" : "format=text",
				     wide ? "&wide=1" : "", theaders ? "&headers=1" : "");
		if (optind == argc - 1) {
			url_encode(argv[optind], enc, sizeof(enc));
			n += (size_t)snprintf(target + n, sizeof(target) - n, "&service=%s", enc);
		}
		if (tpath && n < sizeof(target)) {
			url_encode(tpath, e2, sizeof(e2));
			n += (size_t)snprintf(target + n, sizeof(target) - n, "&path=%s", e2);
		}
		if (tstatus && n < sizeof(target)) {
			url_encode(tstatus, e3, sizeof(e3));
			snprintf(target + n, sizeof(target) - n, "&status=%s", e3);
		}
		return tap_stream(&addr, target);
	} else if (!strcmp(cmd, "stat")) {
		if (optind < argc - 1) {
			fprintf(stderr, "weftctl: stat takes at most one SERVICE\n");
			return 2;
		}
		enc[0] = '\0';
		if (optind == argc - 1)
			url_encode(argv[optind], enc, sizeof(enc));
		snprintf(target, sizeof(target), "/stat?window=%s%s%s%s%s", window, wide ? "&wide=1" : "",
			 json ? "" : "&format=text", enc[0] ? "&service=" : "", enc);
		if (watch && !json)
			return stat_watch(&addr, target);
	} else {
		if (optind != argc) {
			fprintf(stderr, "weftctl: %s takes no arguments\n", cmd);
			return 2;
		}
		if (!strcmp(cmd, "status"))
			snprintf(target, sizeof(target), "/ready");
		else if (!strcmp(cmd, "services") || !strcmp(cmd, "conns") || !strcmp(cmd, "pods"))
			snprintf(target, sizeof(target), "/%s%s%s", cmd, json ? "" : "?format=text",
				 json || !wide ? "" : "&wide=1");
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
			if (hcall(&addr, "GET", wide ? "/services?format=text&wide=1" : "/services?format=text",
				  CTL_TIMEOUT_MS, CTL_MAX_RESPONSE, &st2, &svc) == 0 &&
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
