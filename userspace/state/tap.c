// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* tap: the live request feed's ring (tap.h). */
#include "state/tap.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int tap_init(struct tap *t)
{
	pthread_mutex_t *m = malloc(sizeof(*m));

	memset(t, 0, sizeof(*t));
	if (!m || pthread_mutex_init(m, NULL) != 0) {
		free(m);
		return -ENOMEM;
	}
	t->ring_lock = m;
	return 0;
}

void tap_destroy(struct tap *t)
{
	if (!t->ring_lock)
		return;
	pthread_mutex_destroy(t->ring_lock);
	free(t->ring_lock);
	free(t->ring);
	memset(t, 0, sizeof(*t));
}

void tap_offer(struct tap *t, const struct tap_event *ev)
{
	bool ok = false;

	atomic_fetch_add_explicit(&t->offered, 1, memory_order_relaxed);
	pthread_mutex_lock(t->ring_lock);
	if (t->ring && t->n < TAP_RING) {
		t->ring[(t->head + t->n) % TAP_RING] = *ev;
		t->n++;
		ok = true;
	}
	pthread_mutex_unlock(t->ring_lock);
	if (!ok)
		atomic_fetch_add_explicit(&t->dropped, 1, memory_order_relaxed);
}

static bool secret_header(const char *name, size_t len)
{
	static const char *const secret[] = { "authorization", "proxy-authorization", "cookie", "set-cookie" };
	size_t i;

	for (i = 0; i < sizeof(secret) / sizeof(secret[0]); i++)
		if (strlen(secret[i]) == len && strncasecmp(secret[i], name, len) == 0)
			return true;
	return false;
}

void tap_add_header(struct tap_event *ev, const char *name, size_t name_len, const char *value, size_t value_len)
{
	static const char redacted[] = "<redacted>";
	size_t room = TAP_HEADERS_MAX - ev->headers_len, need;

	if (secret_header(name, name_len)) {
		value = redacted;
		value_len = sizeof(redacted) - 1;
	}
	need = name_len + 2 + value_len + 1;
	if (need > room)
		return; /* whole lines only */
	memcpy(ev->headers + ev->headers_len, name, name_len);
	memcpy(ev->headers + ev->headers_len + name_len, ": ", 2);
	memcpy(ev->headers + ev->headers_len + name_len + 2, value, value_len);
	ev->headers[ev->headers_len + need - 1] = '\n';
	ev->headers_len = (uint16_t)(ev->headers_len + need);
}

int tap_reader_add(struct tap *t, bool headers)
{
	pthread_mutex_lock(t->ring_lock);
	if (!t->ring) {
		t->ring = malloc(TAP_RING * sizeof(*t->ring));
		t->head = t->n = 0;
	}
	pthread_mutex_unlock(t->ring_lock);
	if (!t->ring)
		return -ENOMEM;
	atomic_fetch_add(&t->readers, 1);
	if (headers)
		atomic_fetch_add(&t->header_readers, 1);
	return 0;
}

void tap_reader_remove(struct tap *t, bool headers)
{
	if (headers)
		atomic_fetch_sub(&t->header_readers, 1);
	if (atomic_fetch_sub(&t->readers, 1) != 1)
		return;
	/* the last reader: the ring goes (a worker that saw "active" just before drops its event) */
	pthread_mutex_lock(t->ring_lock);
	free(t->ring);
	t->ring = NULL;
	t->head = t->n = 0;
	pthread_mutex_unlock(t->ring_lock);
}

size_t tap_drain(struct tap *t, struct tap_event *out, size_t max)
{
	size_t k = 0;

	pthread_mutex_lock(t->ring_lock);
	while (k < max && t->n) {
		out[k++] = t->ring[t->head];
		t->head = (t->head + 1) % TAP_RING;
		t->n--;
	}
	pthread_mutex_unlock(t->ring_lock);
	return k;
}
