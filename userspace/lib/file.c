// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "lib/file.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

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
