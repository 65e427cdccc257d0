/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * sock: small socket and libev helpers every path uses. Calls only libc and
 * libev; no state.
 */
#ifndef WEFT_SOCK_H
#define WEFT_SOCK_H

#include <errno.h>
#include <ev.h>
#include <stdbool.h>

/* Ends a connection with a reset (SO_LINGER {1, 0}), so the peer sees RST, not a hang. */
void sock_reset_close(int fd);
/* close(), with a reset when reset is true. */
void sock_close(int fd, bool reset);
/* TCP_NODELAY on (failure ignored: only latency). */
void sock_set_nodelay(int fd);
/*
 * Points a watcher at the events wanted on its fd (0: stopped), touching
 * epoll only when the set changes.
 */
void sock_io_want(struct ev_loop *loop, ev_io *io, int events);
/* An errno that only means "try again later" on a non-blocking socket. */
static inline bool sock_would_block(int e)
{
	return e == EAGAIN || e == EWOULDBLOCK || e == EINTR;
}

#endif
