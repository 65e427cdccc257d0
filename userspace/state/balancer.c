// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "state/balancer.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "state/locality.h"

int bal_init(struct bal *b, size_t n, enum bal_mode mode, const struct bal_breaker *brk)
{
	static uint64_t seed = 0x9e3779b97f4a7c15ull;

	b->mode = mode;
	b->rotate = 0;
	b->panics = 0;
	b->tier = NULL;
	b->n_tiers = 0;
	b->overprov_pct = LOC_OVERPROVISIONING_PCT;
	if (brk)
		b->brk = *brk;
	else
		b->brk = (struct bal_breaker){ 0 };
	seed += 0x9e3779b97f4a7c15ull; /* distinct streams per balancer, deterministic for tests */
	b->rng = seed;
	b->n = n;
	b->eps = NULL;
	if (!n)
		return 0;
	b->eps = calloc(n, sizeof(*b->eps));
	if (!b->eps) {
		b->n = 0;
		return -ENOMEM;
	}
	return 0;
}

void bal_free(struct bal *b)
{
	free(b->eps);
	b->eps = NULL;
	free(b->tier);
	b->tier = NULL;
	b->n_tiers = 0;
	b->n = 0;
}

int bal_set_tiers(struct bal *b, const uint8_t *tier, size_t n_tiers, uint32_t overprov_pct)
{
	free(b->tier);
	b->tier = NULL;
	b->n_tiers = 0;
	if (!b->n || n_tiers < 2)
		return 0;
	b->tier = malloc(b->n);
	if (!b->tier)
		return -ENOMEM;
	memcpy(b->tier, tier, b->n);
	b->n_tiers = n_tiers;
	b->overprov_pct = overprov_pct < 100 ? 100 : overprov_pct;
	return 0;
}

static uint64_t bal_rand(struct bal *b)
{
	uint64_t x = b->rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	b->rng = x;
	return x;
}

static bool tried_has(uint64_t tried, size_t i)
{
	return i < 64 && (tried >> i) & 1;
}

static uint32_t weight_of(const struct bal_endpoint *e)
{
	return e->weight ? e->weight : 1;
}

/*
 * How long an estimate is trusted without a new sample: BAL_LAT_PROBE_S,
 * doubling with each further latency probe the endpoint got since it was last
 * picked on its estimate, up to BAL_EWMA_DECAY_S.
 */
static double lat_fresh_s(const struct bal_endpoint *e)
{
	double s = BAL_LAT_PROBE_S;
	uint32_t k;

	for (k = 1; k < e->lat_probes && s < BAL_EWMA_DECAY_S; k++)
		s *= 2;
	return s < BAL_EWMA_DECAY_S ? s : BAL_EWMA_DECAY_S;
}

/*
 * Whether the endpoint's latency is known: it has a sample, a fresh one, and
 * no latency probe sent since is waiting for its answer. An unknown latency
 * (a new endpoint, or a starved one: slow, or unlucky with an outlier) gets
 * the next pick that draws it first, a latency probe, and the probe's answer
 * replaces the old estimate (bal_observe). Probes of an endpoint that stays
 * too slow to win picks back off from BAL_LAT_PROBE_S to BAL_EWMA_DECAY_S, so
 * it gets one request per BAL_EWMA_DECAY_S, and once it recovers it gets its
 * share back within that.
 */
static bool lat_known(const struct bal_endpoint *e, double now)
{
	return e->ewma_at > 0 && e->lat_probe_at <= e->ewma_at && now - e->ewma_at < lat_fresh_s(e);
}

/*
 * The cost P2C compares: latency * (active / weight + 1).
 *
 * Latency, when known: the average decayed towards 0 for the time since its
 * last sample (Finagle and linkerd2-proxy decay it the same way), so an
 * endpoint starved after a moderately slow spell is tried again early. Below
 * the floor, latency is noise, not quality: sub-millisecond endpoints compete
 * on load alone.
 *
 * Unknown: the floor, so the endpoint competes on load alone and the next
 * pick that draws it probes it; but while that probe is unanswered (for up to
 * BAL_EWMA_DECAY_S), BAL_UNKNOWN_US: a new or stale endpoint takes one
 * request, not a burst, before its answer shows how fast it is (Finagle's
 * penalty for requests pending on an endpoint with no estimate). A probe that
 * never answers (a hung endpoint) holds the penalty for BAL_EWMA_DECAY_S, then
 * the next pick probes again.
 *
 * The load term is per unit of weight, so a weight-3 endpoint carries three
 * times the requests in flight of a weight-1 one at the same cost, and
 * weights hold under load too.
 */
static double bal_cost(const struct bal_endpoint *e, double now)
{
	double load = (double)e->active / (double)weight_of(e) + 1.0;
	double lat;

	if (!lat_known(e, now)) {
		if (e->lat_probe_at > e->ewma_at && now - e->lat_probe_at < BAL_EWMA_DECAY_S)
			return BAL_UNKNOWN_US * load;
		return BAL_EWMA_FLOOR_US * load;
	}
	lat = e->ewma_us;
	if (now > e->ewma_at)
		lat *= exp(-(now - e->ewma_at) / BAL_EWMA_DECAY_S);
	return (lat < BAL_EWMA_FLOOR_US ? BAL_EWMA_FLOOR_US : lat) * load;
}

/* e was just picked: a pick while its latency is unknown is a latency probe. */
static void picked(struct bal_endpoint *e, double now)
{
	e->total++;
	if (lat_known(e, now)) {
		e->lat_probes = 0;
	} else {
		e->lat_probe_at = now;
		e->lat_probes++;
	}
}

/* Candidate set for one pick: untried, in the tier drawn (if any), and ready unless in panic. */
struct cands {
	uint64_t tried;
	bool panic;
	int tier; /* -1: any */
};

static bool cand_ok(const struct bal *b, const struct cands *c, size_t i)
{
	if (tried_has(c->tried, i))
		return false;
	if (c->tier >= 0 && b->tier[i] != c->tier)
		return false;
	return c->panic || b->eps[i]->state == BAL_READY;
}

/* One candidate other than `skip` (-1: none), drawn with probability proportional to its weight. O(n). */
static int draw_weighted(struct bal *b, const struct cands *c, uint64_t total, int skip)
{
	uint64_t r = bal_rand(b) % total;
	size_t i;

	for (i = 0; i < b->n; i++) {
		if (!cand_ok(b, c, i) || (int)i == skip)
			continue;
		if (r < weight_of(b->eps[i]))
			return (int)i;
		r -= weight_of(b->eps[i]);
	}
	return -ENOENT;
}

/*
 * P2C, weighted: x drawn by weight, then y by weight among the others (two
 * distinct candidates, as Finagle draws them). y wins only when it is clearly
 * cheaper, by more than a factor BAL_COST_TIE; otherwise x keeps the pick.
 *
 * Why the clearly cheaper one always wins (in Finagle and linkerd2-proxy the
 * cheaper always wins): an endpoint clearly costlier than all its peers loses
 * every pair it is drawn into and is not picked while it stays so; only its
 * latency probes (and the decay of its estimate) bring it back for a try.
 * With draws with replacement it would still win whenever drawn twice (1/9
 * of picks with three endpoints), and with a soft choice (each wins in
 * inverse proportion to its cost) a fraction of the rest.
 *
 * Why the tie band: among endpoints whose costs are within BAL_COST_TIE of
 * each other x keeps the pick, and x alone is drawn by weight, so equal
 * endpoints get their weight share (with a slow one among them, the others
 * split its share in proportion to their weights). A strict "lower cost
 * wins" with no band would let a 10% latency difference, or one request in
 * flight against none, override a 3:1 weight.
 */
static int pick_p2c(struct bal *b, const struct cands *c, double now)
{
	uint64_t total = 0;
	double cx, cy;
	size_t i;
	int x, y;

	for (i = 0; i < b->n; i++)
		if (cand_ok(b, c, i))
			total += weight_of(b->eps[i]);
	if (!total)
		return -ENOENT;
	x = draw_weighted(b, c, total, -1);
	if (x < 0 || total == weight_of(b->eps[x]))
		return x; /* the only candidate */
	y = draw_weighted(b, c, total - weight_of(b->eps[x]), x);
	if (y < 0)
		return x;
	cx = bal_cost(b->eps[x], now);
	cy = bal_cost(b->eps[y], now);
	return cy * BAL_COST_TIE < cx ? y : x;
}

/* Lowest active / weight; ties go by smooth weighted round-robin among the tied. */
static int pick_least(struct bal *b, const struct cands *c)
{
	double best_load = -1, load;
	int64_t total = 0;
	int best = -1;
	size_t i;

	for (i = 0; i < b->n; i++) {
		if (!cand_ok(b, c, i))
			continue;
		load = (double)b->eps[i]->active / (double)weight_of(b->eps[i]);
		if (best_load < 0 || load < best_load)
			best_load = load;
	}
	if (best_load < 0)
		return -ENOENT;
	for (i = 0; i < b->n; i++) {
		struct bal_endpoint *e = b->eps[i];

		if (!cand_ok(b, c, i) || (double)e->active / (double)weight_of(e) != best_load)
			continue;
		e->current += weight_of(e);
		total += weight_of(e);
		if (best < 0 || e->current > b->eps[best]->current)
			best = (int)i;
	}
	b->eps[best]->current -= total;
	return best;
}

static int pick_rr(struct bal *b, const struct cands *c)
{
	int64_t total = 0;
	int best = -1;
	size_t i;

	for (i = 0; i < b->n; i++) {
		struct bal_endpoint *e = b->eps[i];

		if (!cand_ok(b, c, i))
			continue;
		e->current += weight_of(e);
		total += weight_of(e);
		if (best < 0 || e->current > b->eps[best]->current)
			best = (int)i;
	}
	if (best < 0)
		return -ENOENT;
	b->eps[best]->current -= total;
	return best;
}

static int pick_mode(struct bal *b, const struct cands *c, double now)
{
	switch (b->mode) {
	case BAL_ROUND_ROBIN:
		return pick_rr(b, c);
	case BAL_LEAST_CONN:
		return pick_least(b, c);
	default:
		return pick_p2c(b, c, now);
	}
}

/*
 * With tiers (locality.h): the tier is drawn by the loads its ready share
 * gives, then the mode picks within it. A drawn tier with nothing ready left
 * to try (a retry) gives way to the others in order of preference; with
 * nothing ready anywhere, -ENOENT and the caller's panic mode. O(n).
 */
static int pick_tiered(struct bal *b, struct cands *c, double now)
{
	struct loc_plan p;
	size_t i;
	int t, r;

	memset(&p, 0, sizeof(p));
	p.n_tiers = b->n_tiers;
	for (i = 0; i < b->n; i++) {
		p.total[b->tier[i]]++;
		p.ready[b->tier[i]] += b->eps[i]->state == BAL_READY;
	}
	loc_loads(&p, b->overprov_pct);
	/* xorshift64* output (the high bits of x * M): the low bits of plain xorshift64 are weak */
	t = loc_draw(&p, (uint32_t)(((bal_rand(b) * 0x2545f4914f6cdd1dull) >> 32) % 100));
	if (t < 0)
		return -ENOENT;
	c->tier = t;
	r = pick_mode(b, c, now);
	for (i = 0; r < 0 && i < p.n_tiers; i++) {
		if ((int)i == t || !p.ready[i])
			continue;
		c->tier = (int)i;
		r = pick_mode(b, c, now);
	}
	c->tier = -1;
	return r;
}

int bal_pick(struct bal *b, uint64_t tried, double now)
{
	struct cands c = { .tried = tried, .panic = false, .tier = -1 };
	size_t i;
	int r;

	/* a due probe goes first: one connection decides whether it is back */
	for (i = 0; i < b->n; i++) {
		struct bal_endpoint *e = b->eps[i];

		if (tried_has(tried, i))
			continue;
		if ((e->state == BAL_EJECTED && now >= e->ejected_until) ||
		    (e->state == BAL_PROBING && now >= e->probe_deadline)) {
			e->state = BAL_PROBING;
			e->probe_deadline = now + BAL_PROBE_TIMEOUT_S;
			picked(e, now);
			return (int)i;
		}
	}
	if (b->tier && (r = pick_tiered(b, &c, now)) >= 0) {
		picked(b->eps[r], now);
		return r;
	}
	for (;;) {
		r = pick_mode(b, &c, now);
		if (r >= 0 || c.panic)
			break;
		/* nothing ready: balance over everything rather than fail */
		c.panic = true;
		for (i = 0; i < b->n && tried_has(tried, i); i++)
			;
		if (i == b->n && b->n <= 64)
			break;
		b->panics++;
	}
	if (r >= 0)
		picked(b->eps[r], now);
	return r;
}

size_t bal_ejected(const struct bal *b)
{
	size_t i, n = 0;

	for (i = 0; i < b->n; i++)
		n += b->eps[i]->state != BAL_READY;
	return n;
}

/* min(max, base * 2^(level-1)), times a jitter in [0.75, 1.25) so ejections do not synchronise */
static double backoff(struct bal *b, uint32_t level)
{
	double d = b->brk.base_ejection_s;
	uint32_t k;

	for (k = 1; k < level && d < b->brk.max_ejection_s; k++)
		d *= 2;
	if (d > b->brk.max_ejection_s)
		d = b->brk.max_ejection_s;
	return d * (0.75 + 0.5 * (double)(bal_rand(b) >> 11) / (double)(1ull << 53));
}

/* fresh: a new ejection (counted); else a failed probe extending the current one */
static void eject(struct bal *b, struct bal_endpoint *e, double now, bool fresh)
{
	e->state = BAL_EJECTED;
	e->backoff_level++;
	if (fresh)
		e->ejections++;
	e->ejected_until = now + backoff(b, e->backoff_level);
}

enum bal_event bal_report(struct bal *b, size_t i, bool ok, double now)
{
	struct bal_endpoint *e;

	if (i >= b->n)
		return BAL_EV_NONE;
	e = b->eps[i];
	if (ok) {
		e->consecutive = 0;
		if (e->state == BAL_READY)
			return BAL_EV_NONE;
		/* a probe (or a panic-mode pick) got through: back in, back-off reset */
		e->state = BAL_READY;
		e->backoff_level = 0;
		return BAL_EV_READMITTED;
	}
	e->failures++;
	e->consecutive++;
	if (e->state == BAL_PROBING || e->state == BAL_EJECTED) {
		eject(b, e, now, false); /* failed probe (or panic pick): out again, for longer */
		return BAL_EV_EJECTED;
	}
	if (!b->brk.consecutive_failures || e->consecutive < b->brk.consecutive_failures)
		return BAL_EV_NONE;
	if ((bal_ejected(b) + 1) * 100 > (size_t)b->brk.max_ejection_percent * b->n)
		return BAL_EV_SPARED;
	eject(b, e, now, true);
	return BAL_EV_EJECTED;
}

/*
 * No "peak" (a sample above the average replacing it, as Finagle's peak-EWMA
 * does): with "the clearly cheaper wins", one slow outlier would starve an
 * endpoint until its next probe, and an endpoint with more traffic sees more
 * outliers, so weights among equal endpoints would not hold on a noisy host
 * (measured end to end with a peak: 3:1 came out anywhere from 0.3:1 to 7:1).
 * A clearly slow endpoint needs no peak to be seen: a probe's answer is taken
 * whole, and an endpoint turning 50x slower is past BAL_COST_TIE at its third
 * answer.
 *
 * The first samples after a restart are averaged evenly (weight 1/k for the
 * k-th) until BAL_EWMA_ALPHA takes over, so the restart's single sample (often
 * a cold first request) is not remembered for a hundred answers. A probe
 * answered at least twice as fast as the estimate it replaces restarts the
 * probe back-off: an endpoint that was unlucky, or is warming up, is asked
 * again soon.
 */
void bal_observe(struct bal_endpoint *e, double sample_us, double now)
{
	double w;

	if (!lat_known(e, now)) {
		/* the first sample, a probe's answer, or one after a stale spell */
		if (e->ewma_at > 0 && sample_us * 2 <= e->ewma_us)
			e->lat_probes = 0;
		e->ewma_us = sample_us;
		e->lat_samples = 1;
	} else {
		if (e->lat_samples < UINT32_MAX)
			e->lat_samples++;
		w = 1.0 - (1.0 - BAL_EWMA_ALPHA) * exp(-(now - e->ewma_at) / BAL_EWMA_DECAY_S);
		if (w < 1.0 / e->lat_samples)
			w = 1.0 / e->lat_samples;
		e->ewma_us += (sample_us - e->ewma_us) * w;
	}
	e->ewma_at = now;
}
