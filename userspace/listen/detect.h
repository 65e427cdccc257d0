/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * detect: protocol "auto". Waits (at most http.detect_timeout_ms) for a
 * connection's first bytes without consuming them (MSG_PEEK), then hands it
 * to the HTTP/1.1 path (an HTTP/1.x request line), the HTTP/2 path (the
 * connection preface) or to the opaque TCP path (anything else, or
 * nothing: a server-first protocol must not hang).
 * It is part of the outbound listener's dispatch, above both paths.
 * It may call: tcp/tcp, http/h1session, http/h2session, state/service, codec/h1route, lib/.
 * Threading: a detector belongs to one worker loop (its thread only).
 */
#ifndef WEFT_DETECT_H
#define WEFT_DETECT_H

#include <ev.h>

#include "lib/addr.h"
#include "lib/list.h"
#include "weft/maps.h"

struct registry;
struct svc;
struct tcp_worker;
struct h1_worker;
struct h2_worker;

struct detector {
	struct ev_loop *loop;
	struct registry *reg;
	struct tcp_worker *tcp; /* where opaque connections go */
	struct h1_worker *http; /* where HTTP/1.x goes */
	struct h2_worker *h2;   /* where the HTTP/2 preface goes */
	struct list_head list;  /* connections being classified */
};

void detector_init(struct detector *dt, struct ev_loop *loop, struct registry *reg, struct tcp_worker *tcp,
		   struct h1_worker *http, struct h2_worker *h2);
/*
 * Takes over fd, the caller's reference on svc (an "auto" service with HTTP
 * settings) and its admission (reg_conn_begin_locked), handed on to the path
 * chosen or ended here.
 */
void detect_start(struct detector *dt, int fd, struct svc *svc, const struct weft_orig *orig,
		  const struct weft_sockaddr *peer);
/* Resets every connection still being classified (worker teardown). */
void detector_abort(struct detector *dt);

#endif
