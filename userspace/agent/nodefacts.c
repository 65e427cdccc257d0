// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "agent/nodefacts.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <ctype.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "codec/k8s.h"
#include "kube/kapi.h"
#include "lib/file.h"
#include "lib/httpcall.h"

#define NF_MOUNTINFO_MAX (16u << 20)
#define NF_TOKEN_MAX 16384 /* as kapi reads it */
#define NF_ADMIN_TIMEOUT_MS 1000
#define NF_API_MAX_BODY (1u << 20) /* a list of one item, or a Status */

static int nf_noprint(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return 0;
}

/* /proc/self/mountinfo whole (it has no size until read). */
static char *nf_read_mountinfo(int *err)
{
	size_t len = 0, cap = 64 << 10;
	char *p = malloc(cap), *np;
	ssize_t n;
	int fd;

	*err = 0;
	if (!p) {
		*err = -ENOMEM;
		return NULL;
	}
	fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		*err = -errno;
		free(p);
		return NULL;
	}
	for (;;) {
		if (cap - len < 2) {
			if (cap >= NF_MOUNTINFO_MAX || !(np = realloc(p, cap * 2))) {
				*err = cap >= NF_MOUNTINFO_MAX ? -EFBIG : -ENOMEM;
				break;
			}
			p = np;
			cap *= 2;
		}
		n = read(fd, p + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*err = -errno;
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (*err) {
		free(p);
		return NULL;
	}
	p[len] = '\0';
	return p;
}

static void nf_caps(struct nc_facts *f)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

	memset(data, 0, sizeof(data));
	if (syscall(SYS_capget, &hdr, data) < 0) {
		f->caps_err = -errno;
		return;
	}
	f->caps_eff = (uint64_t)data[0].effective | ((uint64_t)data[1].effective << 32);
}

static void nf_nofile(struct nc_facts *f)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		f->nofile_err = -errno;
		return;
	}
	f->nofile_soft = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
	f->nofile_hard = rl.rlim_max == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_max;
}

/*
 * <pin>/weft_agent, opened read-only: the heartbeat says whether a weftd
 * runs on this pin path. Only a map of our value's size is read (a pin of
 * another weft version may differ). No lock is taken: weftd's flock on the
 * pin directory must stay free for the weftd that may start next.
 */
static void nf_agent(struct nc_facts *f, const struct weft_config *cfg)
{
	LIBBPF_OPTS(bpf_obj_get_opts, o, .file_flags = BPF_F_RDONLY);
	struct bpf_map_info info;
	__u32 ilen = sizeof(info), zero = 0;
	char path[PROBE_PATH_MAX + 16];
	struct timespec ts;
	struct buf body = { 0 };
	int fd;

	snprintf(path, sizeof(path), "%s/weft_agent", cfg->bpf_pin_path);
	fd = bpf_obj_get_opts(path, &o);
	if (fd < 0) {
		f->agent_err = -errno;
		return;
	}
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &ilen) < 0)
		f->agent_err = -errno;
	else if (info.value_size != sizeof(f->agent) || info.key_size != sizeof(zero))
		f->agent_err = -EPROTO;
	else if (bpf_map_lookup_elem(fd, &zero, &f->agent) < 0)
		f->agent_err = -errno;
	close(fd);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	f->now_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	if (f->agent_err)
		return;
	f->admin_err = hcall(&cfg->admin, "GET", "/ready", NF_ADMIN_TIMEOUT_MS, 64 << 10, &f->admin_status, &body);
	buf_free(&body);
}

/* The token as kapi will read it: a regular file, 1..16 KiB, not only whitespace. */
static void nf_token(struct nc_facts *f, const char *path)
{
	char buf[NF_TOKEN_MAX + 1];
	struct stat st;
	size_t got = 0;
	ssize_t n;
	int fd;

	fd = file_open_regular(path, &st);
	if (fd == -EINVAL || fd == -EISDIR) {
		f->token_err = fd;
		snprintf(f->token_detail, sizeof(f->token_detail),
			 "kubernetes.token_file '%s' is not a regular file (%s)", path, file_kind(st.st_mode));
		return;
	}
	if (fd < 0) {
		f->token_err = fd;
		snprintf(f->token_detail, sizeof(f->token_detail), "kubernetes.token_file '%s': %s", path,
			 strerror(-fd));
		return;
	}
	while (got < sizeof(buf)) {
		n = read(fd, buf + got, sizeof(buf) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			f->token_err = -errno;
			snprintf(f->token_detail, sizeof(f->token_detail), "kubernetes.token_file '%s': read: %s", path,
				 strerror(errno));
			break;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (!f->token_err && got > NF_TOKEN_MAX) {
		f->token_err = -EFBIG;
		snprintf(f->token_detail, sizeof(f->token_detail),
			 "kubernetes.token_file '%s' holds more than %d bytes: not a token", path, NF_TOKEN_MAX);
	}
	while (!f->token_err && got && isspace((unsigned char)buf[got - 1]))
		got--;
	if (!f->token_err && !got) {
		f->token_err = -ENODATA;
		snprintf(f->token_detail, sizeof(f->token_detail), "kubernetes.token_file '%s' is empty", path);
	}
	f->token_len = f->token_err ? 0 : got;
	explicit_bzero(buf, sizeof(buf));
}

/* ---- the Kubernetes API, on a private loop ---- */

struct nf_kube;

struct nf_req {
	struct nf_kube *kc;
	struct nc_api_answer *a;
	struct kapi_req *r;
	enum nc_kind kind;
	bool watch;
};

struct nf_kube {
	struct ev_loop *loop;
	struct kapi *k;
	ev_timer deadline;
	int pending;
	struct nf_req req[2 * NC_KINDS];
};

static void nf_req_end(struct nf_req *q)
{
	q->a->done = true;
	q->r = NULL;
	if (--q->kc->pending == 0)
		ev_break(q->kc->loop, EVBREAK_ALL);
}

static int nf_count(void *arg, const struct k8s_object *o)
{
	(*(int *)arg)++;
	return 0;
}

static void nf_on_body(void *arg, int status, const char *body, size_t len)
{
	struct nf_req *q = arg;
	char reason[64], msg[NC_DETAIL_MAX];
	struct k8s_list_meta lm;
	size_t i;
	int code, n = 0;

	q->a->status = status;
	if (status / 100 == 2) {
		if (!q->watch && q->kind == NC_NODES)
			q->a->items = k8s_decode_list_page(K8S_NODE, body, len, nf_count, &n, &lm, NULL, 0) == 0 ? n
														 : -1;
		return;
	}
	if (k8s_decode_status(body, len, &code, reason, sizeof(reason), msg, sizeof(msg)) == 0 && (*msg || *reason)) {
		snprintf(q->a->detail, sizeof(q->a->detail), "%s", *msg ? msg : reason);
		return;
	}
	/* not a Status: the start of the body, printable */
	for (i = 0; i < len && i < 200; i++)
		q->a->detail[i] = isprint((unsigned char)body[i]) ? body[i] : ' ';
	q->a->detail[i] = '\0';
}

/* A watch line comes only for a 2xx answer: the watch is allowed; that is all we wanted. */
static void nf_on_line(void *arg, const char *line, size_t len)
{
	struct nf_req *q = arg;

	q->a->status = 200;
	kapi_cancel(q->r);
	nf_req_end(q);
}

static void nf_on_done(void *arg, int err, const char *detail)
{
	struct nf_req *q = arg;

	q->a->err = err;
	if (err)
		snprintf(q->a->detail, sizeof(q->a->detail), "%s", detail ? detail : strerror(-err));
	else if (q->watch && !q->a->status)
		q->a->status = 200; /* a 2xx watch the server ended (timeoutSeconds) before any event */
	nf_req_end(q);
}

static void nf_on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
	ev_break(loop, EVBREAK_ALL);
}

static void nf_kube(struct nc_facts *f, const struct weft_config *cfg, unsigned timeout_ms)
{
	static const struct kapi_ops ops = { .on_body = nf_on_body, .on_line = nf_on_line, .on_done = nf_on_done };
	const struct cfg_kubernetes *kc = &cfg->kubernetes;
	struct kapi_opts o = {
		.url = kc->api,
		.ca_file = kc->ca_file,
		.token_file = kc->token_file,
		.mark = cfg->mark,
		.max_body = NF_API_MAX_BODY,
		.max_line = NF_API_MAX_BODY,
		.connect_timeout_ms = timeout_ms,
		.idle_timeout_ms = timeout_ms,
	};
	struct nf_kube k = { 0 };
	char path[1024];
	int i, r;

	for (i = 0; i < NC_KINDS; i++)
		f->list[i].items = f->watch[i].items = -1;
	nf_token(f, kc->token_file);
	if (f->token_err)
		return;
	k.loop = ev_loop_new(EVFLAG_AUTO);
	if (!k.loop) {
		f->kapi_err = -ENOMEM;
		snprintf(f->kapi_detail, sizeof(f->kapi_detail), "cannot make an event loop (libev)");
		return;
	}
	r = kapi_new(k.loop, &o, &k.k, f->kapi_detail, sizeof(f->kapi_detail));
	if (r < 0) {
		f->kapi_err = r;
		goto out;
	}
	for (i = 0; i < 2 * NC_KINDS; i++) {
		struct nf_req *q = &k.req[i];

		q->kc = &k;
		q->kind = (enum nc_kind)(i / 2);
		q->watch = i % 2;
		q->a = q->watch ? &f->watch[q->kind] : &f->list[q->kind];
		if (nc_api_path(q->kind, q->watch, kc->node_name, path, sizeof(path)) < 0) {
			q->a->done = true;
			q->a->err = -ENOSPC;
			snprintf(q->a->detail, sizeof(q->a->detail), "the request path does not fit");
			continue;
		}
		q->r = kapi_get(k.k, path, q->watch ? KAPI_LINES : KAPI_WHOLE, &ops, q);
		if (!q->r) {
			q->a->done = true;
			q->a->err = -errno;
			snprintf(q->a->detail, sizeof(q->a->detail), "cannot start GET %.300s: %s", path,
				 strerror(errno));
			continue;
		}
		k.pending++;
	}
	if (k.pending) {
		ev_timer_init(&k.deadline, nf_on_deadline, timeout_ms / 1000.0 + 1.0, 0.);
		ev_timer_start(k.loop, &k.deadline);
		ev_run(k.loop, 0);
		ev_timer_stop(k.loop, &k.deadline);
	}
out:
	kapi_free(k.k); /* what is still running is cancelled: those answers stay !done */
	ev_loop_destroy(k.loop);
}

void nf_gather(const char *config_path, unsigned api_timeout_ms, struct nf_data *d)
{
	struct nc_facts *f = &d->f;
	struct utsname u;
	size_t i;
	int r;

	memset(d, 0, sizeof(*d));
	libbpf_set_print(nf_noprint);
	f->config_path = config_path;
	r = cfg_load(config_path, &d->cfg, &d->errs);
	if (r < 0) {
		d->cfg = NULL;
		f->config_err = r;
	}
	f->cfg = d->cfg;
	f->config_errs = &d->errs;

	if (uname(&u) == 0)
		snprintf(d->release, sizeof(d->release), "%s", u.release);
	f->release = d->release;
	f->btf_err = probe_btf();
	d->mountinfo = nf_read_mountinfo(&f->mountinfo_err);
	f->mountinfo = d->mountinfo;
	f->n_features = probe_n_features < NC_MAX_FEATURES ? probe_n_features : NC_MAX_FEATURES;
	for (i = 0; i < f->n_features; i++) {
		f->features[i] = probe_feature(&probe_features[i]);
		if (f->features[i] == -EPERM)
			break; /* every other probe would be refused the same way */
	}
	f->uid = (uint32_t)geteuid();
	nf_caps(f);
	nf_nofile(f);
	if (!d->cfg)
		return;
	f->pin_err = probe_pin(d->cfg->bpf_pin_path, &f->pin);
	nf_agent(f, d->cfg);
	if (d->cfg->kubernetes.enabled)
		nf_kube(f, d->cfg, api_timeout_ms ? api_timeout_ms : NF_API_TIMEOUT_MS);
}

void nf_free(struct nf_data *d)
{
	cfg_free(d->cfg);
	cfg_errors_free(&d->errs);
	free(d->mountinfo);
	memset(d, 0, sizeof(*d));
}
