// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "lib/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"

const char *file_kind(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
		return "a regular file";
	case S_IFDIR:
		return "a directory";
	case S_IFIFO:
		return "a FIFO";
	case S_IFCHR:
		return "a character device";
	case S_IFBLK:
		return "a block device";
	case S_IFSOCK:
		return "a socket";
	case S_IFLNK:
		return "a symbolic link";
	default:
		return "not a file";
	}
}

static int file_check(const struct stat *st)
{
	if (S_ISREG(st->st_mode))
		return 0;
	return S_ISDIR(st->st_mode) ? -EISDIR : -EINVAL;
}

int file_open_regular(const char *path, struct stat *st)
{
	int fd, r;

	if (stat(path, st) < 0)
		return -errno;
	r = file_check(st);
	if (r)
		return r;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (fstat(fd, st) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	r = file_check(st);
	if (r) {
		close(fd);
		return r;
	}
	return fd;
}

int file_read_regular(const char *what, const char *path, size_t max, unsigned char **out, size_t *len, struct stat *st,
		      char *err, size_t errlen)
{
	unsigned char *buf = NULL;
	size_t got = 0;
	int fd, e;

	/* never blocks: a FIFO would stall the main loop (reload, rotation, renewal) */
	fd = file_open_regular(path, st);
	if (fd == -EINVAL || fd == -EISDIR) {
		err_set(err, errlen, "%s '%s': not a regular file (%s); point it at a PEM file", what, path,
			file_kind(st->st_mode));
		return -EINVAL;
	}
	if (fd < 0) {
		err_set(err, errlen, "%s '%s': cannot open: %s", what, path, strerror(-fd));
		return fd;
	}
	if (st->st_size <= 0 || (size_t)st->st_size > max) {
		e = EINVAL;
		err_set(err, errlen, "%s '%s': size %lld is not between 1 and %zu bytes", what, path,
			(long long)st->st_size, max);
		goto fail;
	}
	buf = malloc((size_t)st->st_size + 1);
	if (!buf) {
		e = ENOMEM;
		err_set(err, errlen, "%s '%s': out of memory", what, path);
		goto fail;
	}
	while (got < (size_t)st->st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st->st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			e = n < 0 ? errno : EIO;
			err_set(err, errlen, "%s '%s': read failed: %s", what, path,
				n < 0 ? strerror(e) : "file shrank");
			goto fail;
		}
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	*out = buf;
	*len = got;
	return 0;
fail:
	if (buf)
		explicit_bzero(buf, got);
	free(buf);
	close(fd);
	return -e;
}
