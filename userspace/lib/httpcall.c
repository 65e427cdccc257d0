// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "lib/httpcall.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int hcall_wait(int fd, short ev, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = ev };
	int r;

	do
		r = poll(&p, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		return -ETIMEDOUT;
	return r < 0 ? -errno : 0;
}

int hcall(const struct weft_sockaddr *a, const char *method, const char *target, int timeout_ms, size_t max_response,
	  int *status, struct buf *body)
{
	char req[8192 + 64];
	struct buf in = { 0 };
	char chunk[16384];
	size_t off = 0;
	ssize_t n;
	char *sep;
	int fd, r, len, err = 0;
	socklen_t elen = sizeof(err);

	fd = socket(a->sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, &a->sa, a->len) < 0 && errno != EINPROGRESS) {
		r = -errno;
		goto out;
	}
	r = hcall_wait(fd, POLLOUT, timeout_ms);
	if (r < 0)
		goto out;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0 || err) {
		r = err ? -err : -errno;
		goto out;
	}
	len = snprintf(req, sizeof(req),
		       "%s %s HTTP/1.1\r\nHost: weftd\r\nUser-Agent: weftctl\r\n"
		       "Content-Length: 0\r\nConnection: close\r\n\r\n",
		       method, target);
	if (len < 0 || (size_t)len >= sizeof(req)) {
		r = -E2BIG;
		goto out;
	}
	while (off < (size_t)len) {
		n = send(fd, req + off, (size_t)len - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EAGAIN) {
			r = hcall_wait(fd, POLLOUT, timeout_ms);
			if (r < 0)
				goto out;
			continue;
		}
		if (n < 0) {
			r = -errno;
			goto out;
		}
		off += (size_t)n;
	}
	for (;;) {
		n = recv(fd, chunk, sizeof(chunk), 0);
		if (n < 0 && errno == EAGAIN) {
			r = hcall_wait(fd, POLLIN, timeout_ms);
			if (r < 0)
				goto out;
			continue;
		}
		if (n < 0) {
			r = -errno;
			goto out;
		}
		if (n == 0)
			break;
		buf_add(&in, chunk, (size_t)n);
		if (in.len > max_response || buf_failed(&in)) {
			r = -EFBIG;
			goto out;
		}
	}
	/* buf keeps its text NUL-terminated */
	if (!in.p || sscanf(in.p, "HTTP/1.%*d %d", status) != 1 || !(sep = strstr(in.p, "\r\n\r\n"))) {
		r = -EPROTO;
		goto out;
	}
	buf_add(body, sep + 4, in.len - (size_t)(sep + 4 - in.p));
	r = 0;
out:
	buf_free(&in);
	close(fd);
	return r;
}
