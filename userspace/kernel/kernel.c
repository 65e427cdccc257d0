// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "kernel/kernel.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kernel/cgroup.h"
#include "config/config.h"
#include "intercept.skel.h"
#include "lib/log.h"

#define KERN_NPROGS 6

/*
 * An enrolled cgroup. Its links are held by their pins only (no descriptor
 * per link: a node with hundreds of pods enrolled one by one would otherwise
 * hold six descriptors per pod); releasing is removing the pins.
 */
struct kern_cg {
	char *path;
	uint64_t cgid;
	bool marked;
	int npinned; /* links pinned so far, in program order */
};

struct kern {
	struct weft_intercept *skel;
	char pin[512];
	int lock_fd;
	struct kern_cg *cgs;
	size_t n_cgs, cap_cgs;
	struct weft_agent_state agent;
	int ncpus;
	bool owner;            /* holds the pin directory's lock: only then may it remove pins */
	struct kern_vip *vips; /* weft_services as last written, sorted by key */
	size_t n_vips;
};

static struct bpf_program *kern_prog(struct kern *k, int i)
{
	struct bpf_program *p[KERN_NPROGS] = {
		k->skel->progs.weft_connect4,  k->skel->progs.weft_connect6,  k->skel->progs.weft_sockops,
		k->skel->progs.weft_peername4, k->skel->progs.weft_peername6, k->skel->progs.weft_strict_in,
	};
	return p[i];
}

uint64_t kern_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* libbpf speaks through us: its warnings are ours, its chatter is debug. */
static int kern_libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char buf[1024];
	size_t n;

	/* libbpf's debug stream (every relocation) drowns weftd's own -v output; opt in */
	if (level == LIBBPF_DEBUG && !getenv("WEFT_LIBBPF_DEBUG"))
		return 0;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n && buf[n - 1] == '\n')
		buf[--n] = '\0';
	/* libbpf prefixes its own messages with "libbpf: " already */
	if (level == LIBBPF_WARN)
		log_warn("%s", buf);
	else
		log_debug("%s", buf);
	return 0;
}

static int mkdir_p(const char *path)
{
	char tmp[512];
	char *p;

	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	for (p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/*
 * Only names weftd creates are removed: weft_* pins and the links/ directory
 * (whose entries are <cgroup id>_weft_*). Anything else under the pin path
 * belongs to someone else and is left alone.
 */
static bool is_ours(const char *name, bool in_links)
{
	if (in_links)
		return strstr(name, "_weft_") != NULL;
	return strncmp(name, "weft_", 5) == 0 || strcmp(name, "links") == 0;
}

/* Removes weftd's pins below dir (see is_ours); returns the count. */
static int rm_tree(int dirfd_parent, const char *name, bool remove_self)
{
	bool in_links = strcmp(name, "links") == 0;
	struct dirent *de;
	int fd, n = 0;
	DIR *d;

	fd = openat(dirfd_parent, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (!is_ours(de->d_name, in_links)) {
			log_warn("leaving %s/%s alone: not a weft pin", name, de->d_name);
			continue;
		}
		if (de->d_type == DT_DIR) {
			int r = rm_tree(dirfd(d), de->d_name, true);

			if (r > 0)
				n += r;
		} else if (unlinkat(dirfd(d), de->d_name, 0) == 0) {
			n++;
		}
	}
	closedir(d);
	if (remove_self)
		unlinkat(dirfd_parent, name, AT_REMOVEDIR);
	return n;
}

int kern_open(const char *pin_path, struct kern **out, char *err, size_t errlen)
{
	struct bpf_map *map;
	struct bpf_program *prog;
	char path[600];
	struct kern *k;
	int r;

	libbpf_set_print(kern_libbpf_print);
	k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	k->lock_fd = -1;
	snprintf(k->pin, sizeof(k->pin), "%s", pin_path);

	r = mkdir_p(k->pin);
	if (r < 0) {
		snprintf(err, errlen, "cannot create agent.bpf_pin_path '%s': %s", k->pin, strerror(-r));
		goto err;
	}
	k->lock_fd = open(k->pin, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (k->lock_fd < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot open agent.bpf_pin_path '%s': %s", k->pin, strerror(errno));
		goto err;
	}
	if (flock(k->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		r = -errno;
		snprintf(err, errlen,
			 "agent.bpf_pin_path '%s' is in use by another weftd: stop it, or give this "
			 "agent its own bpf_pin_path",
			 k->pin);
		goto err;
	}
	k->owner = true;
	r = rm_tree(AT_FDCWD, k->pin, false);
	if (r > 0)
		log_warn("removed %d stale pins under %s left by an earlier run (its programs are detached)", r,
			 k->pin);

	k->skel = weft_intercept__open();
	if (!k->skel) {
		r = -errno;
		snprintf(err, errlen, "cannot open the embedded BPF object: %s", strerror(errno));
		goto err;
	}
	bpf_object__for_each_map(map, k->skel->obj) {
		if (bpf_map__is_internal(map))
			continue;
		snprintf(path, sizeof(path), "%s/%s", k->pin, bpf_map__name(map));
		r = bpf_map__set_pin_path(map, path);
		if (r < 0) {
			snprintf(err, errlen, "cannot set pin path %s: %s", path, strerror(-r));
			goto err;
		}
	}
	r = weft_intercept__load(k->skel);
	if (r < 0) {
		snprintf(err, errlen,
			 "the kernel rejected weft's BPF programs (%s); run with -v to see the verifier log",
			 strerror(-r));
		goto err;
	}
	bpf_object__for_each_program(prog, k->skel->obj) {
		snprintf(path, sizeof(path), "%s/%s", k->pin, bpf_program__name(prog));
		r = bpf_program__pin(prog, path);
		if (r < 0) {
			snprintf(err, errlen, "cannot pin %s: %s", path, strerror(-r));
			goto err;
		}
	}
	/* sk_msg runs for sockets in weft_sockhash only; attaching costs nothing until one is added */
	if (bpf_prog_attach(bpf_program__fd(k->skel->progs.weft_skmsg), bpf_map__fd(k->skel->maps.weft_sockhash),
			    BPF_SK_MSG_VERDICT, 0) < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot attach sk_msg to weft_sockhash: %s", strerror(errno));
		goto err;
	}
	snprintf(path, sizeof(path), "%s/links", k->pin);
	if (mkdir(path, 0700) < 0 && errno != EEXIST) {
		r = -errno;
		snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
		goto err;
	}
	k->ncpus = libbpf_num_possible_cpus();
	if (k->ncpus <= 0) {
		r = k->ncpus ? k->ncpus : -EINVAL;
		snprintf(err, errlen, "cannot count possible CPUs: %s", strerror(-r));
		goto err;
	}
	*out = k;
	return 0;
err:
	kern_close(k, true);
	return r < 0 ? r : -EINVAL;
}

static void kern_link_path(struct kern *k, uint64_t cgid, int prog, char *path, size_t len)
{
	snprintf(path, len, "%s/links/%llu_%s", k->pin, (unsigned long long)cgid,
		 bpf_program__name(kern_prog(k, prog)));
}

/* With unpin, the links go (removing a link's last reference detaches it); else they stay attached through their pins. */
static void kern_cg_release(struct kern *k, struct kern_cg *c, bool unpin)
{
	char path[700];
	int i;

	for (i = 0; unpin && i < c->npinned; i++) {
		kern_link_path(k, c->cgid, i, path, sizeof(path));
		if (unlink(path) < 0 && errno != ENOENT)
			log_warn("cannot remove the link pin %s: %s", path, strerror(errno));
	}
	c->npinned = 0;
	free(c->path);
	c->path = NULL;
}

void kern_close(struct kern *k, bool unpin)
{
	size_t i;

	if (!k)
		return;
	unpin = unpin && k->owner; /* never touch another agent's pins */
	for (i = 0; i < k->n_cgs; i++)
		kern_cg_release(k, &k->cgs[i], unpin);
	free(k->cgs);
	free(k->vips);
	if (k->skel) {
		if (unpin) {
			bpf_object__unpin_programs(k->skel->obj, k->pin);
			bpf_object__unpin_maps(k->skel->obj, NULL);
		}
		weft_intercept__destroy(k->skel);
	}
	if (unpin && k->pin[0]) {
		rm_tree(AT_FDCWD, k->pin, false);
		rmdir(k->pin);
	}
	if (k->lock_fd >= 0)
		close(k->lock_fd);
	free(k);
}

static struct kern_cg *kern_find_cg(struct kern *k, uint64_t cgid)
{
	size_t i;

	for (i = 0; i < k->n_cgs; i++)
		if (k->cgs[i].cgid == cgid)
			return &k->cgs[i];
	return NULL;
}

int kern_enroll(struct kern *k, const char *dir, char *err, size_t errlen)
{
	struct kern_cg *c, nc = { 0 };
	char path[700];
	uint64_t cgid;
	int fd = -1, r, i;

	r = cg_id(dir, &cgid);
	if (r < 0) {
		snprintf(err, errlen, "cgroup '%s': %s", dir, strerror(-r));
		return r;
	}
	c = kern_find_cg(k, cgid);
	if (c) {
		c->marked = true;
		return 0;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot open cgroup '%s': %s", dir, strerror(errno));
		return r;
	}
	nc.cgid = cgid;
	nc.marked = true;
	nc.path = strdup(dir);
	if (!nc.path) {
		r = -ENOMEM;
		goto err;
	}
	for (i = 0; i < KERN_NPROGS; i++) {
		struct bpf_program *p = kern_prog(k, i);
		struct bpf_link *l = bpf_program__attach_cgroup(p, fd);

		if (!l) {
			r = -errno;
			snprintf(err, errlen, "cannot attach %s to cgroup '%s': %s", bpf_program__name(p), dir,
				 strerror(errno));
			goto err;
		}
		kern_link_path(k, cgid, i, path, sizeof(path));
		r = bpf_link__pin(l, path);
		/*
		 * Closing a link's descriptor detaches it only when nothing else
		 * holds it: pinned, it stays attached, and our descriptor goes.
		 */
		bpf_link__destroy(l);
		if (r < 0) {
			snprintf(err, errlen, "cannot pin link %s: %s", path, strerror(-r));
			goto err;
		}
		nc.npinned = i + 1;
	}
	if (k->n_cgs == k->cap_cgs) {
		size_t cap = k->cap_cgs ? k->cap_cgs * 2 : 8;
		struct kern_cg *n = realloc(k->cgs, cap * sizeof(*n));

		if (!n) {
			r = -ENOMEM;
			goto err;
		}
		k->cgs = n;
		k->cap_cgs = cap;
	}
	k->cgs[k->n_cgs++] = nc;
	close(fd);
	log_info("enrolled cgroup %s (id %llu)", dir, (unsigned long long)cgid);
	return 0;
err:
	if (r == -ENOMEM)
		snprintf(err, errlen, "out of memory enrolling '%s'", dir);
	kern_cg_release(k, &nc, true);
	close(fd);
	return r;
}

static void kern_drop_cg(struct kern *k, size_t i)
{
	kern_cg_release(k, &k->cgs[i], true);
	k->cgs[i] = k->cgs[--k->n_cgs];
}

void kern_enroll_begin(struct kern *k)
{
	size_t i;

	for (i = 0; i < k->n_cgs; i++)
		k->cgs[i].marked = false;
}

int kern_enroll_end(struct kern *k)
{
	uint64_t id;
	size_t i = 0;
	int n = 0;

	while (i < k->n_cgs) {
		struct kern_cg *c = &k->cgs[i];
		bool gone = cg_id(c->path, &id) < 0 || id != c->cgid;

		if (c->marked && !gone) {
			i++;
			continue;
		}
		log_info("released cgroup %s (%s)", c->path,
			 gone ? "it was removed" : "no longer matches intercept.cgroups");
		kern_drop_cg(k, i);
		n++;
	}
	return n;
}

size_t kern_enrolled_count(const struct kern *k)
{
	return k->n_cgs;
}

const char *kern_enrolled_path(const struct kern *k, size_t i, uint64_t *cgid)
{
	if (i >= k->n_cgs)
		return NULL;
	if (cgid)
		*cgid = k->cgs[i].cgid;
	return k->cgs[i].path;
}

/* One weft_services entry as last written: what the next sync compares with. */
struct kern_vip {
	struct weft_service_key key;
	uint32_t id;
};

static int vip_cmp(const void *a, const void *b)
{
	return memcmp(&((const struct kern_vip *)a)->key, &((const struct kern_vip *)b)->key,
		      sizeof(struct weft_service_key));
}

/*
 * Makes weft_services hold exactly cfg's VIPs, touching only what changed:
 * the new set is sorted and merged with the one last written (kept sorted),
 * so a reload or a discovery change with 10k VIPs costs O(V log V) and one
 * syscall per VIP that changed, not per VIP. Adds and updates go first and
 * deletes last, so a VIP present in both generations is never missing.
 */
int kern_sync_services(struct kern *k, const struct weft_config *cfg)
{
	int fd = bpf_map__fd(k->skel->maps.weft_services);
	struct weft_service_val val;
	struct kern_vip *nv;
	size_t i, j, n = 0, total = 0, a, b;
	int r;

	for (i = 0; i < cfg->n_services; i++)
		total += cfg->services[i].n_addrs;
	nv = calloc(total ? total : 1, sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	for (i = 0; i < cfg->n_services; i++)
		for (j = 0; j < cfg->services[i].n_addrs; j++) {
			addr_to_key(&cfg->services[i].addrs[j], &nv[n].key.vip);
			nv[n++].id = (uint32_t)i;
		}
	qsort(nv, n, sizeof(*nv), vip_cmp);
	for (a = 0, b = 0; a < n; a++) {
		int c = 1;

		while (b < k->n_vips && (c = vip_cmp(&k->vips[b], &nv[a])) < 0)
			b++;
		if (b < k->n_vips && c == 0 && k->vips[b].id == nv[a].id)
			continue; /* unchanged */
		memset(&val, 0, sizeof(val));
		val.service_id = nv[a].id;
		if (bpf_map_update_elem(fd, &nv[a].key, &val, BPF_ANY) < 0) {
			r = -errno;
			log_error("cannot add service '%s' to weft_services: %s", cfg->services[nv[a].id].name,
				  strerror(errno));
			/* what was written is unknown now: the next sync writes everything */
			free(k->vips);
			k->vips = NULL;
			k->n_vips = 0;
			free(nv);
			return r;
		}
	}
	for (a = 0, b = 0; b < k->n_vips; b++) {
		int c = 1;

		while (a < n && (c = vip_cmp(&nv[a], &k->vips[b])) < 0)
			a++;
		if (a < n && c == 0)
			continue;
		if (bpf_map_delete_elem(fd, &k->vips[b].key) < 0 && errno != ENOENT)
			log_warn("cannot remove a stale address from weft_services: %s", strerror(errno));
	}
	free(k->vips);
	k->vips = nv;
	k->n_vips = n;
	return 0;
}

int kern_set_agent(struct kern *k, const struct weft_agent_state *st)
{
	__u32 zero = 0;

	k->agent = *st;
	k->agent.heartbeat_ns = kern_now_ns();
	if (bpf_map_update_elem(bpf_map__fd(k->skel->maps.weft_agent), &zero, &k->agent, BPF_ANY) < 0)
		return -errno;
	return 0;
}

int kern_heartbeat(struct kern *k)
{
	return kern_set_agent(k, &k->agent);
}

int kern_take_orig(struct kern *k, const struct weft_conn_key *key, struct weft_orig *out)
{
	if (bpf_map_lookup_and_delete_elem(bpf_map__fd(k->skel->maps.weft_origdst), key, out) < 0)
		return -errno;
	return 0;
}

int kern_sockhash_add(struct kern *k, int fd, const struct weft_sock_key *key)
{
	__u64 v = (__u64)fd;

	if (bpf_map_update_elem(bpf_map__fd(k->skel->maps.weft_sockhash), key, &v, BPF_NOEXIST) < 0)
		return -errno;
	return 0;
}

int kern_listener_add(struct kern *k, int fd, uint64_t netns_cookie, int family)
{
	struct weft_listener_key key;
	__u64 v = (__u64)fd;

	memset(&key, 0, sizeof(key));
	key.netns_cookie = netns_cookie;
	key.family = (__u16)(family == AF_INET6 ? WEFT_AF_INET6 : WEFT_AF_INET);
	if (bpf_map_update_elem(bpf_map__fd(k->skel->maps.weft_listeners), &key, &v, BPF_ANY) < 0)
		return -errno;
	return 0;
}

int kern_listener_del(struct kern *k, uint64_t netns_cookie, int family)
{
	struct weft_listener_key key;

	memset(&key, 0, sizeof(key));
	key.netns_cookie = netns_cookie;
	key.family = (__u16)(family == AF_INET6 ? WEFT_AF_INET6 : WEFT_AF_INET);
	if (bpf_map_delete_elem(bpf_map__fd(k->skel->maps.weft_listeners), &key) < 0)
		return -errno;
	return 0;
}

size_t kern_listener_count(struct kern *k)
{
	int fd = bpf_map__fd(k->skel->maps.weft_listeners);
	struct weft_listener_key key, next, *prev = NULL;
	size_t n = 0;

	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		n++;
		key = next;
		prev = &key;
	}
	return n;
}

int kern_read_stats(struct kern *k, uint64_t *out)
{
	int fd = bpf_map__fd(k->skel->maps.weft_stats);
	uint64_t *per;
	__u32 v;
	int c;

	per = calloc((size_t)k->ncpus, sizeof(*per));
	if (!per)
		return -ENOMEM;
	for (v = 0; v < WEFT_V__MAX; v++) {
		out[v] = 0;
		if (bpf_map_lookup_elem(fd, &v, per) < 0)
			continue;
		for (c = 0; c < k->ncpus; c++)
			out[v] += per[c];
	}
	free(per);
	return 0;
}
