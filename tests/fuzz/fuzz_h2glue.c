// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer: the HTTP/2 glue (http/h2session) between nghttp2 and weft:
 * frames in from a client, weft's events out. Each input is what a client
 * sends after the connection preface, over a socketpair to a real session
 * of an "http2" service (its one endpoint refuses connections, so attempts
 * fail and are answered, retried, or reset: those paths run too). The loop
 * turns until the session has read everything, then the client goes away
 * and the session must be freed. ASan and UBSan watch every callback; the
 * leak checker at exit catches a stream or connection left behind.
 */
#include <ev.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config/config.h"
#include "http/h1svc.h"
#include "http/h2session.h"
#include "lib/log.h"
#include "state/service.h"

static struct registry reg;
static struct ev_loop *loop;
static struct h2_worker w;

static void setup(void)
{
	static const char conf[] = "services = ( { name = \"f\"; addresses = [ \"127.10.0.1:80\" ]; protocol = "
				   "\"http2\"; retry = { attempts = 2; };\n"
				   "  endpoints = ( { address = \"127.0.0.1:1\"; } ); } );\n";
	struct weft_config *cfg = NULL;

	log_set_level(LOG_LVL_ERROR); /* a GOAWAY line per input is noise here */
	if (cfg_load_string(conf, "fuzz.conf", &cfg, NULL) || reg_init(&reg, &h1_svc_hooks) ||
	    reg_set_config(&reg, cfg))
		abort();
	cfg_free(cfg);
	loop = ev_loop_new(EVFLAG_AUTO);
	if (!loop)
		abort();
	h2_worker_init(&w, loop, 0, &reg, NULL);
}

static void drain(int fd)
{
	char sink[65536];

	while (read(fd, sink, sizeof(sink)) > 0)
		;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
	struct weft_sockaddr peer;
	struct weft_orig orig;
	struct svc *svc;
	int sv[2], i;
	size_t off = 0;

	if (!loop)
		setup();
	if (size > 1 << 16)
		size = 1 << 16;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		return 0;
	memset(&orig, 0, sizeof(orig));
	memset(&peer, 0, sizeof(peer));
	pthread_mutex_lock(&reg.lock);
	svc = reg.svcs[0];
	svc->refs++;
	if (reg_conn_begin_locked(&reg, svc, 0) < 0)
		abort();
	pthread_mutex_unlock(&reg.lock);
	h2_start(&w, sv[0], svc, &orig, &peer);
	if (write(sv[1], preface, sizeof(preface) - 1) != (ssize_t)(sizeof(preface) - 1))
		abort();
	for (i = 0; i < 200 && off < size; i++) {
		ssize_t n = write(sv[1], data + off, size - off);

		if (n > 0)
			off += (size_t)n;
		ev_run(loop, EVRUN_NOWAIT);
		drain(sv[1]);
	}
	/* let connects fail and answers go out, then the client leaves */
	for (i = 0; i < 20; i++) {
		ev_run(loop, EVRUN_NOWAIT);
		drain(sv[1]);
	}
	close(sv[1]);
	for (i = 0; i < 20; i++)
		ev_run(loop, EVRUN_NOWAIT);
	/* whatever is still open (an upstream connect in progress) goes now */
	h2_worker_abort(&w);
	h2_worker_init(&w, loop, 0, &reg, NULL);
	return 0;
}
