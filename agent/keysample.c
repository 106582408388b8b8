/* A bounded sample of a listing (see keysample.h).
 *
 * Invariants: a grid holds at most KEYSAMPLE_CAP entries, in increasing
 * position (so in increasing key order: a listing is strictly increasing);
 * while keys are added, a grid keeps exactly the entries whose number is a
 * multiple of its step (2^k): the number of a page-grid entry counts the
 * page boundaries seen, of a fine-grid entry the keys (position + 1).
 * Keys that cannot be a cut (empty, or holding a NUL) are counted, never
 * kept. */
#include "common/compat.h"

#include "agent/keysample.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct entry {
	uint64_t pos; /* position in the listing, from 0 */
	uint64_t no;  /* number in its grid, from 1 (pages seen, or pos + 1) */
	char *key;    /* NUL-terminated */
	size_t len;
};

struct grid {
	struct entry *e;
	size_t n;
	uint64_t step;
};

struct keysample {
	uint64_t total;
	uint64_t pages; /* page boundaries seen */
	struct grid page, fine;
};

struct keysample *keysample_new(void)
{
	struct keysample *s = xcalloc(1, sizeof(*s));
	s->page.e = xcalloc(KEYSAMPLE_CAP, sizeof(struct entry));
	s->fine.e = xcalloc(KEYSAMPLE_CAP, sizeof(struct entry));
	s->page.step = 1;
	s->fine.step = 1;
	return s;
}

static void grid_release(struct grid *g)
{
	for (size_t i = 0; i < g->n; i++)
		free(g->e[i].key);
	free(g->e);
}

void keysample_free(struct keysample *s)
{
	if (!s)
		return;
	grid_release(&s->page);
	grid_release(&s->fine);
	free(s);
}

/* Double the step: keep the entries on twice the step; when that frees no
 * room (positions off the step, after an append), every other entry. */
static void grid_halve(struct grid *g)
{
	size_t k = 0;
	uint64_t step = g->step * 2;
	for (size_t i = 0; i < g->n; i++) {
		if (g->e[i].no % step == 0)
			g->e[k++] = g->e[i];
		else
			free(g->e[i].key);
	}
	if (k == g->n) {
		k = 0;
		for (size_t i = 0; i < g->n; i++) {
			if (i % 2 == 1)
				g->e[k++] = g->e[i];
			else
				free(g->e[i].key);
		}
	}
	g->n = k;
	g->step = step;
}

/* Add the entry numbered no (from 1) of its grid when its step allows. */
static void grid_push(struct grid *g, uint64_t no, uint64_t pos, const char *key, size_t len)
{
	if (no % g->step != 0)
		return;
	if (g->n == KEYSAMPLE_CAP) {
		grid_halve(g);
		if (no % g->step != 0)
			return;
	}
	g->e[g->n].pos = pos;
	g->e[g->n].no = no;
	g->e[g->n].key = xstrndup(key, len);
	g->e[g->n].len = len;
	g->n++;
}

void keysample_add(struct keysample *s, const char *key, size_t len, bool page_last)
{
	uint64_t pos = s->total++;
	if (page_last)
		s->pages++;
	if (len == 0 || memchr(key, '\0', len))
		return;
	if (page_last)
		grid_push(&s->page, s->pages, pos, key, len);
	grid_push(&s->fine, pos + 1, pos, key, len);
}

uint64_t keysample_total(const struct keysample *s)
{
	return s->total;
}

uint64_t keysample_pages(const struct keysample *s)
{
	return s->pages;
}

size_t keysample_entries(const struct keysample *s)
{
	return s->page.n + s->fine.n;
}

static void grid_append(struct grid *d, const struct grid *src, uint64_t off, uint64_t no_off)
{
	for (size_t i = 0; i < src->n; i++) {
		if (d->n == KEYSAMPLE_CAP)
			grid_halve(d);
		d->e[d->n].pos = src->e[i].pos + off;
		d->e[d->n].no = src->e[i].no + no_off;
		d->e[d->n].key = xstrndup(src->e[i].key, src->e[i].len);
		d->e[d->n].len = src->e[i].len;
		d->n++;
	}
	if (src->step > d->step)
		d->step = src->step;
}

void keysample_append(struct keysample *dst, const struct keysample *src)
{
	grid_append(&dst->page, &src->page, dst->total, dst->pages);
	grid_append(&dst->fine, &src->fine, dst->total, dst->total);
	dst->total += src->total;
	dst->pages += src->pages;
}

/* The first entry at or after position pos (n when none). */
static size_t grid_seek(const struct grid *g, uint64_t pos)
{
	size_t lo = 0, hi = g->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (g->e[mid].pos < pos)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

unsigned keysample_cuts(const struct keysample *s, unsigned n, bool page_only, struct buf *out)
{
	if (n < 2 || s->total == 0)
		return 0;
	const struct grid *g = &s->page;
	if (g->n < n - 1 && !page_only)
		g = &s->fine;
	size_t m = g->n;
	unsigned want = n - 1, got = 0;
	if (m < want) { /* too few: every entry is a cut */
		for (size_t j = 0; j < m; j++, got++) {
			buf_add(out, g->e[j].key, g->e[j].len);
			buf_addch(out, '\0');
		}
		return got;
	}
	size_t prev = 0;
	for (unsigned i = 1; i <= want; i++) {
		/* range i - 1 ends at about the key at position total * i / n - 1 */
		uint64_t t = (uint64_t)((unsigned __int128)s->total * i / n);
		uint64_t target = t ? t - 1 : 0;
		size_t j = grid_seek(g, target);
		if (j == m || (j > 0 && target - g->e[j - 1].pos <= g->e[j].pos - target))
			j = j > 0 ? j - 1 : 0;
		size_t min = i == 1 ? 0 : prev + 1, max = m - (want - i) - 1;
		if (j < min)
			j = min;
		if (j > max)
			j = max;
		buf_add(out, g->e[j].key, g->e[j].len);
		buf_addch(out, '\0');
		prev = j;
		got++;
	}
	return got;
}

/* ---- the binary form: "DKS1", u64 total, u64 pages, u64 page step, u64 fine step,
 * u32 page entries, u32 fine entries, then each entry: u64 position, u64
 * number, u32 length, the key's bytes. Integers big-endian. ---- */

static void put_be(struct buf *b, uint64_t v, int bytes)
{
	for (int i = bytes - 1; i >= 0; i--)
		buf_addch(b, (char)(unsigned char)(v >> (8 * i)));
}

static int get_be(const unsigned char **p, const unsigned char *end, int bytes, uint64_t *v)
{
	if (end - *p < bytes)
		return -EPROTO;
	*v = 0;
	for (int i = 0; i < bytes; i++)
		*v = (*v << 8) | (*p)[i];
	*p += bytes;
	return 0;
}

void keysample_encode(const struct keysample *s, struct buf *out)
{
	buf_add(out, "DKS1", 4);
	put_be(out, s->total, 8);
	put_be(out, s->pages, 8);
	put_be(out, s->page.step, 8);
	put_be(out, s->fine.step, 8);
	put_be(out, s->page.n, 4);
	put_be(out, s->fine.n, 4);
	const struct grid *gs[2] = {&s->page, &s->fine};
	for (int k = 0; k < 2; k++) {
		for (size_t i = 0; i < gs[k]->n; i++) {
			put_be(out, gs[k]->e[i].pos, 8);
			put_be(out, gs[k]->e[i].no, 8);
			put_be(out, gs[k]->e[i].len, 4);
			buf_add(out, gs[k]->e[i].key, gs[k]->e[i].len);
		}
	}
}

static int grid_decode(struct grid *g, uint64_t n, const unsigned char **p,
		       const unsigned char *end)
{
	if (n > KEYSAMPLE_CAP)
		return -EPROTO;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t pos, no, len;
		if (get_be(p, end, 8, &pos) || get_be(p, end, 8, &no) || get_be(p, end, 4, &len) ||
		    (uint64_t)(end - *p) < len || len == 0 || memchr(*p, '\0', len) ||
		    (g->n && pos <= g->e[g->n - 1].pos))
			return -EPROTO;
		g->e[g->n].pos = pos;
		g->e[g->n].no = no;
		g->e[g->n].key = xstrndup((const char *)*p, len);
		g->e[g->n].len = len;
		g->n++;
		*p += len;
	}
	return 0;
}

int keysample_decode(const void *data, size_t len, struct keysample **out)
{
	const unsigned char *p = data, *end = p + len;
	*out = NULL;
	if (len < 4 || memcmp(p, "DKS1", 4))
		return -EPROTO;
	p += 4;
	struct keysample *s = keysample_new();
	uint64_t np, nf;
	int rc = get_be(&p, end, 8, &s->total);
	if (!rc)
		rc = get_be(&p, end, 8, &s->pages);
	if (!rc)
		rc = get_be(&p, end, 8, &s->page.step);
	if (!rc)
		rc = get_be(&p, end, 8, &s->fine.step);
	if (!rc)
		rc = get_be(&p, end, 4, &np);
	if (!rc)
		rc = get_be(&p, end, 4, &nf);
	if (!rc)
		rc = grid_decode(&s->page, np, &p, end);
	if (!rc)
		rc = grid_decode(&s->fine, nf, &p, end);
	if (!rc && (p != end || !s->page.step || !s->fine.step))
		rc = -EPROTO;
	if (rc) {
		keysample_free(s);
		return rc;
	}
	*out = s;
	return 0;
}
