// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "lib/sock.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

void sock_reset_close(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

void sock_close(int fd, bool reset)
{
	if (reset)
		sock_reset_close(fd);
	else
		close(fd);
}

void sock_set_nodelay(int fd)
{
	int one = 1;

	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

void sock_io_want(struct ev_loop *loop, ev_io *io, int events)
{
	if (ev_is_active(io)) {
		if ((io->events & (EV_READ | EV_WRITE)) == events)
			return;
		ev_io_stop(loop, io);
	}
	if (!events)
		return;
	ev_io_modify(io, events);
	ev_io_start(loop, io);
}
