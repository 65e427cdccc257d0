/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * file: opening a file that the configuration names (the config itself,
 * certificates, keys) to read it whole. Only regular files: opening a FIFO
 * blocks until someone writes to it, and weftd opens these files on its main
 * loop (reload, certificate rotation), where a block stops the heartbeat and
 * the node fails open (issue 18); a device can block too, or act on open.
 * A config, a certificate or a key is never either.
 * It may call: lib/log (err_set).
 */
#ifndef WEFT_FILE_H
#define WEFT_FILE_H

#include <stddef.h>
#include <sys/stat.h>

/*
 * Opens path read-only (O_CLOEXEC, O_NOCTTY), never blocking: stat first, so
 * anything but a regular file is refused before it is opened, then
 * O_NONBLOCK and fstat, in case it was swapped meanwhile. Returns the fd and
 * fills *st, or -errno: -EISDIR for a directory, -EINVAL for any other
 * non-regular file (*st then says which: file_kind), else open's or stat's.
 */
int file_open_regular(const char *path, struct stat *st);
/*
 * Reads the whole regular file path, 1 to max bytes, into a new
 * NUL-terminated buffer (*out, *len; the caller frees it, and wipes it with
 * explicit_bzero when it holds a key). *st as file_open_regular. 0, or
 * -errno with "WHAT 'PATH': why" in err: not a regular file (the kind, and
 * to point it at a PEM file), cannot open, a size out of range, a failed
 * read (what was read is wiped).
 */
int file_read_regular(const char *what, const char *path, size_t max, unsigned char **out, size_t *len, struct stat *st,
		      char *err, size_t errlen);
/* "a FIFO", "a character device", "a socket", ...: for "not a regular file (a FIFO)". */
const char *file_kind(mode_t mode);

#endif
