/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * file: opening a file that the configuration names (the config itself,
 * certificates, keys) to read it whole. Only regular files: opening a FIFO
 * blocks until someone writes to it, and weftd opens these files on its main
 * loop (reload, certificate rotation), where a block stops the heartbeat and
 * the node fails open (issue 18); a device can block too, or act on open.
 * A config, a certificate or a key is never either.
 * It may call: libc only.
 */
#ifndef WEFT_FILE_H
#define WEFT_FILE_H

#include <sys/stat.h>

/*
 * Opens path read-only (O_CLOEXEC, O_NOCTTY), never blocking: stat first, so
 * anything but a regular file is refused before it is opened, then
 * O_NONBLOCK and fstat, in case it was swapped meanwhile. Returns the fd and
 * fills *st, or -errno: -EISDIR for a directory, -EINVAL for any other
 * non-regular file (*st then says which: file_kind), else open's or stat's.
 */
int file_open_regular(const char *path, struct stat *st);
/* "a FIFO", "a character device", "a socket", ...: for "not a regular file (a FIFO)". */
const char *file_kind(mode_t mode);

#endif
