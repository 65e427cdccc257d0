// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * nodelink: the client leg of the inter-agent mutual TLS connection
 * (contract in nodelink.h).
 *
 * One state machine, handshake -> prefix -> reply -> done, advanced by
 * nodelink_step until the TLS layer says it waits. Every way out of an
 * attempt goes through link_end(), which records the result and logs the
 * one line a failed attempt gets, so the wording and the level are the same
 * for every caller.
 */
#include "link/nodelink.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#include "lib/log.h"
#include "tls/tls.h"

/* How an attempt ended, for its log line. */
enum link_why {
	WHY_OK,
	WHY_TLS,     /* the TLS layer failed: l->tls_fail, tls_conn_detail() */
	WHY_CLOSED,  /* close_notify (or FIN) where the reply should be */
	WHY_GARBAGE, /* the reply did not decode */
	WHY_REPLY,   /* a reply other than "ok" */
	WHY_TIMEOUT, /* nodelink_expire in step l->step */
};

static const char *step_name(uint8_t step)
{
	switch (step) {
	case NODELINK_HANDSHAKE:
		return "in the TLS handshake";
	case NODELINK_PREFIX:
		return "writing the preamble";
	default:
		return "waiting for the preamble reply";
	}
}

/*
 * Ends the attempt with rc (0 or -errno): nodelink_step returns it from now
 * on. Logs failures at debug (nodelink.h, "Logging"); tls is only read for
 * WHY_TLS.
 */
static int link_end(struct nodelink *l, const struct tls_conn *tls, enum link_why why, int rc)
{
	switch (why) {
	case WHY_OK:
		break;
	case WHY_TLS:
		log_debug("%s: TLS failed (%s): %s", l->name, tls_fail_name((enum tls_fail)l->tls_fail),
			  tls_conn_detail(tls));
		break;
	case WHY_CLOSED:
		log_debug("%s: peer closed before its preamble reply", l->name);
		break;
	case WHY_GARBAGE:
		log_debug("%s: not a preamble reply", l->name);
		break;
	case WHY_REPLY:
		log_debug("%s: peer agent replied %s", l->name,
			  preamble_status_name((enum preamble_status)l->reply_status));
		break;
	case WHY_TIMEOUT:
		log_debug("%s: timed out %s", l->name, step_name(l->step));
		break;
	}
	l->step = NODELINK_DONE;
	l->result = (int16_t)rc;
	return rc;
}

/*
 * The TLS layer failed with rc (from tls_handshake, tls_write or tls_read):
 * records its reason and maps it to the attempt's errno (nodelink.h).
 */
static int link_tls_failed(struct nodelink *l, const struct tls_conn *tls, int rc)
{
	enum tls_fail f = tls_conn_fail(tls);

	l->tls_fail = (int16_t)f;
	switch (f) {
	case TLS_FAIL_IO:
		rc = rc == -ECONNRESET ? -ECONNRESET : -EIO;
		break;
	case TLS_FAIL_INTERNAL:
		rc = -ENOMEM;
		break;
	default:
		rc = -EPROTO; /* certificates, alerts, protocol, and the peer closing mid-way */
		break;
	}
	return link_end(l, tls, WHY_TLS, rc);
}

int nodelink_init(struct nodelink *l, const void *prefix, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (len > NODELINK_PREFIX_MAX || (len && !prefix))
		return -EINVAL;
	/* memmove: the caller may have encoded the preamble into l->prefix already. */
	if (len)
		memmove(l->prefix, prefix, len);
	l->step = NODELINK_NEW;
	l->got = 0;
	l->len = (uint16_t)len;
	l->off = 0;
	l->result = 0;
	l->tls_fail = TLS_FAIL_NONE;
	l->reply_status = -1;
	memset(l->reply, 0, sizeof(l->reply));
	va_start(ap, fmt);
	vsnprintf(l->name, sizeof(l->name), fmt, ap); /* cut when longer: a log name */
	va_end(ap);
	return 0;
}

int nodelink_step(struct nodelink *l, struct tls_conn *tls)
{
	enum preamble_status st;
	ssize_t n;
	int rc;

	for (;;) {
		switch (l->step) {
		case NODELINK_NEW:
			l->step = NODELINK_HANDSHAKE;
			break;
		case NODELINK_HANDSHAKE:
			rc = tls_handshake(tls);
			if (rc == -EAGAIN)
				return -EAGAIN;
			if (rc < 0)
				return link_tls_failed(l, tls, rc);
			l->step = NODELINK_PREFIX;
			break;
		case NODELINK_PREFIX:
			if (l->off == l->len) {
				l->step = NODELINK_REPLY;
				break;
			}
			/* After -EAGAIN the same bytes go again: tls_write's rule. */
			n = tls_write(tls, l->prefix + l->off, l->len - l->off);
			if (n == -EAGAIN)
				return -EAGAIN;
			if (n < 0)
				return link_tls_failed(l, tls, (int)n);
			l->off += (uint16_t)n;
			break;
		case NODELINK_REPLY:
			/* Never more than the reply: what follows is the caller's. */
			n = tls_read(tls, l->reply + l->got, PREAMBLE_REPLY_LEN - l->got);
			if (n == -EAGAIN)
				return -EAGAIN;
			if (n == 0) {
				/* close_notify instead of a reply: the peer agent gave up on us */
				l->tls_fail = TLS_FAIL_CLOSED;
				return link_end(l, tls, WHY_CLOSED, -EPROTO);
			}
			if (n < 0)
				return link_tls_failed(l, tls, (int)n);
			l->got += (uint8_t)n;
			/* Decoded as it comes: garbage fails at its first wrong byte. */
			rc = preamble_reply_decode(l->reply, l->got, &st);
			if (rc == -EAGAIN)
				break;
			if (rc < 0)
				return link_end(l, tls, WHY_GARBAGE, -EPROTO);
			l->reply_status = (int16_t)st;
			return link_end(l, tls, st == PREAMBLE_ST_OK ? WHY_OK : WHY_REPLY, preamble_status_errno(st));
		default: /* NODELINK_DONE */
			return l->result;
		}
	}
}

int nodelink_expire(struct nodelink *l)
{
	switch (l->step) {
	case NODELINK_DONE:
		return l->result;
	case NODELINK_NEW:
		/* The TCP connect timed out: the caller's to say, nothing of ours failed. */
		l->step = NODELINK_DONE;
		l->result = -ETIMEDOUT;
		return -ETIMEDOUT;
	case NODELINK_HANDSHAKE:
		l->tls_fail = TLS_FAIL_TIMEOUT;
		break;
	default:
		break;
	}
	return link_end(l, NULL, WHY_TIMEOUT, -ETIMEDOUT);
}
