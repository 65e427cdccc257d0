/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * blk: a per-thread cache of 4, 8 and 16 KiB memory blocks for buffers that
 * come and go with every request (malloc of such blocks is not free). O(1),
 * no lock: a block is only cached by the thread that frees it, at most
 * BLK_CACHED per size; other sizes go straight to malloc. Calls only libc.
 */
#ifndef WEFT_BLK_H
#define WEFT_BLK_H

#include <stddef.h>

/* The smallest cached block size. */
#define BLK_MIN 4096u

/* A block of exactly n bytes (uninitialised), or NULL. Free it with blk_put(p, n) or realloc it. */
void *blk_get(size_t n);
/* Frees p, whose size is cap (as given to blk_get or realloc); NULL is fine. */
void blk_put(void *p, size_t cap);
/* A thread that used blocks ends (and the main loop at exit): returns its cache to malloc. */
void blk_thread_cleanup(void);

#endif
