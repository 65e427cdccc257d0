// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* kident: pod UID -> workload identity, shared with the workers (kident.h). */
#include "kube/kident.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/identity.h"
#include "codec/kubepath.h"

struct kid_entry {
	char *uid, *ns, *sa; /* one allocation: uid\0ns\0sa\0 */
};

struct kid_table {
	struct kid_entry *e;
	size_t n;
};

struct kident {
	pthread_mutex_t lock;
	struct kid_table *t; /* under lock; replaced whole */
};

static void kid_table_free(struct kid_table *t)
{
	size_t i;

	if (!t)
		return;
	for (i = 0; i < t->n; i++)
		free(t->e[i].uid);
	free(t->e);
	free(t);
}

struct kident *kident_new(void)
{
	struct kident *k = calloc(1, sizeof(*k));

	if (!k)
		return NULL;
	if (pthread_mutex_init(&k->lock, NULL) != 0) {
		free(k);
		return NULL;
	}
	return k;
}

void kident_free(struct kident *k)
{
	if (!k)
		return;
	kid_table_free(k->t);
	pthread_mutex_destroy(&k->lock);
	free(k);
}

static int kid_cmp(const void *a, const void *b)
{
	return strcmp(((const struct kid_entry *)a)->uid, ((const struct kid_entry *)b)->uid);
}

int kident_replace(struct kident *k, const struct kident_pod *pods, size_t n)
{
	struct kid_table *t = calloc(1, sizeof(*t)), *old;
	size_t i;

	if (!t)
		return -ENOMEM;
	t->e = calloc(n ? n : 1, sizeof(*t->e));
	if (!t->e)
		goto nomem;
	for (i = 0; i < n; i++) {
		size_t lu = strlen(pods[i].uid) + 1, ln = strlen(pods[i].ns) + 1, ls = strlen(pods[i].sa) + 1;
		char *s = malloc(lu + ln + ls);

		if (!s)
			goto nomem;
		memcpy(s, pods[i].uid, lu);
		memcpy(s + lu, pods[i].ns, ln);
		memcpy(s + lu + ln, pods[i].sa, ls);
		t->e[t->n].uid = s;
		t->e[t->n].ns = s + lu;
		t->e[t->n].sa = s + lu + ln;
		t->n++;
	}
	qsort(t->e, t->n, sizeof(*t->e), kid_cmp);
	pthread_mutex_lock(&k->lock);
	old = k->t;
	k->t = t;
	pthread_mutex_unlock(&k->lock);
	kid_table_free(old);
	return 0;
nomem:
	kid_table_free(t);
	return -ENOMEM;
}

size_t kident_count(struct kident *k)
{
	size_t n;

	pthread_mutex_lock(&k->lock);
	n = k->t ? k->t->n : 0;
	pthread_mutex_unlock(&k->lock);
	return n;
}

bool kident_of_cgroup(struct kident *k, const char *cgroup_path, const char *trust_domain, char *id, size_t len)
{
	struct kube_pod kp;
	struct kid_entry key = { 0 }, *e;
	int n = -1;

	if (!k || kube_pod_from_cgroup(cgroup_path, &kp) < 0)
		return false;
	key.uid = kp.uid;
	pthread_mutex_lock(&k->lock);
	e = k->t ? bsearch(&key, k->t->e, k->t->n, sizeof(*e), kid_cmp) : NULL;
	if (e)
		n = snprintf(id, len, "spiffe://%s/ns/%s/sa/%s", trust_domain, e->ns, e->sa);
	pthread_mutex_unlock(&k->lock);
	return n > 0 && (size_t)n < len && spiffe_id_check(id, (size_t)n, NULL, 0) == 0;
}
