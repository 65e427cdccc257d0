// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "lib/blk.h"

#include <stdlib.h>

/*
 * Request, response and header buffers come and go with every request (an
 * idle keep-alive connection holds none). malloc of 4-16 KiB blocks is not
 * free, so each worker thread keeps a few freed blocks of the three sizes
 * buffers start with and hands them out again: O(1), no lock (a block is
 * only cached by the thread that frees it). Bounded: BLK_CACHED per size.
 */
#define BLK_CLASSES 3
#define BLK_CACHED 32
static const size_t blk_size[BLK_CLASSES] = { 4096, 8192, 16384 };
static _Thread_local void *blk_cache[BLK_CLASSES][BLK_CACHED];
static _Thread_local unsigned blk_n[BLK_CLASSES];

static int blk_class(size_t n)
{
	int c;

	for (c = 0; c < BLK_CLASSES; c++)
		if (n == blk_size[c])
			return c;
	return -1;
}

/* A block of exactly n bytes (uninitialised), or NULL. */
void *blk_get(size_t n)
{
	int c = blk_class(n);

	if (c >= 0 && blk_n[c])
		return blk_cache[c][--blk_n[c]];
	return malloc(n);
}

/* Frees p, whose size is cap (as given to blk_get or realloc). */
void blk_put(void *p, size_t cap)
{
	int c = blk_class(cap);

	if (!p)
		return;
	if (c >= 0 && blk_n[c] < BLK_CACHED) {
		blk_cache[c][blk_n[c]++] = p;
		return;
	}
	free(p);
}

/* Called when a worker thread ends (and for the main loop at exit): returns the cache to malloc. */
void blk_thread_cleanup(void)
{
	int c;

	for (c = 0; c < BLK_CLASSES; c++)
		while (blk_n[c])
			free(blk_cache[c][--blk_n[c]]);
}
