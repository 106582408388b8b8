#include "common/compat.h"

#include "agent/planner.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agent/filter.h"
#include "common/buf.h"
#include "manifest/manifest.h"
#include "remote/s3.h"

/* The head of one input stream: a copy of its current record. */
struct head {
	bool valid;
	bool done;
	struct buf key;	 /* relative key */
	struct buf prev; /* previous key, for the order check */
	bool have_prev;
	uint64_t size;
	char etag[S3_ETAG_MAX];
	int64_t last_modified;
	struct obj_record rec; /* manifest stream only */
	bool last;	       /* the key at the upper bound was taken: done next */
};

struct planner {
	struct s3_lister *src;
	struct manifest_cursor *cur;
	struct s3_lister *dst;
	char *lo;	       /* exclusive lower bound, or NULL */
	char *hi;	       /* inclusive upper bound, or NULL */
	size_t lo_len, hi_len; /* their lengths (compared with every listed key) */
	const char *src_prefix;
	size_t src_plen;
	const char *dst_prefix;
	size_t dst_plen;
	const struct filter *filter;
	bool delete_gone;
	struct head hs, hm, hd;
	struct buf key; /* key of the item returned last */
	void (*hook)(void *ctx, const char *key, size_t len, bool page_last);
	void *hook_ctx;
	uint64_t listed;
	uint64_t dst_listed;
};

const char *sync_action_name(enum sync_action a)
{
	static const char *const names[SYNC__COUNT] = {"new",  "changed", "retry",  "missing",
						       "skip", "adopt",	  "delete", "gone"};
	return (unsigned)a < SYNC__COUNT ? names[a] : "?";
}

static void head_init(struct head *h)
{
	memset(h, 0, sizeof(*h));
	buf_init(&h->key);
	buf_init(&h->prev);
}

static void head_release(struct head *h)
{
	buf_release(&h->key);
	buf_release(&h->prev);
}

struct planner *planner_new(struct s3_lister *src, const char *src_prefix,
			    struct manifest_cursor *cur, struct s3_lister *dst,
			    const char *dst_prefix, const struct filter *filter, bool delete_gone)
{
	struct planner *p = xcalloc(1, sizeof(*p));
	p->src = src;
	p->cur = cur;
	p->dst = dst;
	p->src_prefix = src_prefix ? src_prefix : "";
	p->src_plen = strlen(p->src_prefix);
	p->dst_prefix = dst_prefix ? dst_prefix : "";
	p->dst_plen = strlen(p->dst_prefix);
	p->filter = filter;
	p->delete_gone = delete_gone;
	head_init(&p->hs);
	head_init(&p->hm);
	head_init(&p->hd);
	p->hm.done = cur == NULL;
	p->hd.done = dst == NULL;
	buf_init(&p->key);
	return p;
}

void planner_free(struct planner *p)
{
	if (!p)
		return;
	head_release(&p->hs);
	head_release(&p->hm);
	head_release(&p->hd);
	buf_release(&p->key);
	free(p->lo);
	free(p->hi);
	free(p);
}

void planner_set_bounds(struct planner *p, const char *lo, const char *hi)
{
	free(p->lo);
	free(p->hi);
	p->lo = lo ? xstrdup(lo) : NULL;
	p->hi = hi ? xstrdup(hi) : NULL;
	p->lo_len = lo ? strlen(lo) : 0;
	p->hi_len = hi ? strlen(hi) : 0;
}

void planner_set_source_hook(struct planner *p,
			     void (*fn)(void *ctx, const char *key, size_t len, bool page_last),
			     void *ctx)
{
	p->hook = fn;
	p->hook_ctx = ctx;
}

/* -1: below the range (skip it), 0: inside, 1: at its top (last one), 2: above. */
static int bound_check(const struct planner *p, const char *key, size_t len)
{
	if (p->lo && bytes_order(key, len, p->lo, p->lo_len) <= 0)
		return -1;
	if (p->hi) {
		int c = bytes_order(key, len, p->hi, p->hi_len);
		if (c > 0)
			return 2;
		if (c == 0)
			return 1;
	}
	return 0;
}

uint64_t planner_listed(const struct planner *p)
{
	return p->listed;
}

uint64_t planner_dst_listed(const struct planner *p)
{
	return p->dst_listed;
}

static bool wanted(const struct planner *p, const char *key, size_t len)
{
	return !p->filter || filter_match(p->filter, key, len);
}

/* Record the new head key and check that the stream is strictly increasing. */
static int head_set_key(struct head *h, const char *key, size_t len, const char *what,
			struct dth_err *err)
{
	if (h->have_prev && bytes_order(key, len, h->prev.data, h->prev.len) <= 0)
		return err_set(err, -EPROTO,
			       "%s keys are not in ascending byte order (\"%.200s\" after "
			       "\"%.200s\"): refusing to plan from an unordered listing",
			       what, key, buf_str(&h->prev));
	buf_reset(&h->key);
	buf_add(&h->key, key, len);
	buf_reset(&h->prev);
	buf_add(&h->prev, key, len);
	h->have_prev = true;
	h->valid = true;
	return 0;
}

/* Advance a listing stream to its next wanted entry. */
static int fill_listing(struct planner *p, struct head *h, struct s3_lister *l, size_t plen,
			bool is_src, struct dth_err *err)
{
	while (!h->valid && !h->done) {
		if (h->last) {
			h->done = true;
			break;
		}
		const struct s3_list_entry *e;
		int rc = s3_lister_next(l, &e, err);
		if (rc < 0) {
			err_prefix(err, "listing the %s", is_src ? "source" : "destination");
			return rc;
		}
		if (rc == 0) {
			h->done = true;
			break;
		}
		if (e->is_prefix)
			continue;
		/* Every listed key must start with the prefix: stripping blindly would
		 * plan (and with --delete, delete) a different key than was listed. */
		if (e->key_len < plen ||
		    memcmp(e->key, is_src ? p->src_prefix : p->dst_prefix, plen) != 0)
			return err_set(err, -EPROTO,
				       "the %s listing returned \"%.200s\", outside the prefix "
				       "\"%.200s\": refusing to plan from it",
				       is_src ? "source" : "destination", e->key,
				       is_src ? p->src_prefix : p->dst_prefix);
		const char *rel = e->key + plen;
		size_t rlen = e->key_len - plen;
		if (rlen == 0) {
			/* the prefix itself (a folder marker equal to the prefix):
			 * not planned, but sampled, as it fills a listing page */
			if (is_src && p->hook && !p->lo)
				p->hook(p->hook_ctx, rel, 0, e->page_last);
			continue;
		}
		int b = bound_check(p, rel, rlen);
		if (b < 0)
			continue;
		if (b == 2) {
			h->done = true;
			break;
		}
		h->last = b == 1;
		if (is_src && p->hook)
			p->hook(p->hook_ctx, rel, rlen, e->page_last);
		if (!wanted(p, rel, rlen))
			continue;
		rc = head_set_key(h, rel, rlen, is_src ? "source" : "destination", err);
		if (rc)
			return rc;
		h->size = e->size;
		str_copy_fit(h->etag, e->etag, sizeof(h->etag));
		h->last_modified = e->last_modified;
		if (is_src)
			p->listed++;
		else
			p->dst_listed++;
	}
	return 0;
}

static int fill_manifest(struct planner *p, struct dth_err *err)
{
	struct head *h = &p->hm;
	while (!h->valid && !h->done) {
		const char *key;
		size_t len;
		int rc = manifest_cursor_next(p->cur, &key, &len, &h->rec);
		if (rc < 0)
			return err_set(err, rc, "reading the manifest: %s", strerror(-rc));
		if (rc == 0) {
			h->done = true;
			break;
		}
		int b = bound_check(p, key, len);
		if (b < 0)
			continue;
		if (b == 2) {
			h->done = true;
			break;
		}
		if (!wanted(p, key, len))
			continue;
		rc = head_set_key(h, key, len, "manifest", err);
		if (rc)
			return rc;
		h->size = h->rec.size;
		str_copy_fit(h->etag, h->rec.etag, sizeof(h->etag));
		h->last_modified = h->rec.last_modified;
	}
	return 0;
}

static bool etag_eq(const char *a, const char *b)
{
	return a[0] && strcasecmp(a, b) == 0;
}

int planner_next(struct planner *p, struct plan *out, struct dth_err *err)
{
	for (;;) {
		int rc;
		if ((rc = fill_listing(p, &p->hs, p->src, p->src_plen, true, err)))
			return rc;
		if ((rc = fill_manifest(p, err)))
			return rc;
		if (p->dst && (rc = fill_listing(p, &p->hd, p->dst, p->dst_plen, false, err)))
			return rc;

		/* The smallest key among the valid heads. */
		struct head *heads[3] = {&p->hs, &p->hm, &p->hd};
		struct head *min = NULL;
		for (int i = 0; i < 3; i++) {
			struct head *h = heads[i];
			if (!h->valid)
				continue;
			if (!min ||
			    bytes_order(h->key.data, h->key.len, min->key.data, min->key.len) < 0)
				min = h;
		}
		if (!min)
			return 0;
		buf_reset(&p->key);
		buf_add(&p->key, min->key.data, min->key.len);
		bool s = false, m = false, d = false;
		for (int i = 0; i < 3; i++) {
			struct head *h = heads[i];
			if (h->valid &&
			    bytes_order(h->key.data, h->key.len, p->key.data, p->key.len) == 0) {
				if (i == 0)
					s = true;
				else if (i == 1)
					m = true;
				else
					d = true;
			}
		}

		memset(out, 0, sizeof(*out));
		out->key = p->key.data;
		out->key_len = p->key.len;
		out->in_src = s;
		out->has_rec = m;
		out->in_dst = d;
		if (s) {
			out->size = p->hs.size;
			str_copy_fit(out->etag, p->hs.etag, sizeof(out->etag));
			out->last_modified = p->hs.last_modified;
		}
		if (m)
			out->rec = p->hm.rec;
		if (d) {
			out->dst_size = p->hd.size;
			str_copy_fit(out->dst_etag, p->hd.etag, sizeof(out->dst_etag));
		}
		/* Consume the heads that matched. */
		if (s)
			p->hs.valid = false;
		if (m)
			p->hm.valid = false;
		if (d)
			p->hd.valid = false;

		bool dst_same =
		    d && out->dst_size == out->size && etag_eq(out->dst_etag, out->etag);
		bool emit = true;
		if (s && !m) {
			out->action = dst_same ? SYNC_ADOPT : SYNC_COPY_NEW;
		} else if (s && m) {
			const struct obj_record *r = &out->rec;
			bool same = r->size == out->size && strcasecmp(r->etag, out->etag) == 0;
			if (!same || r->status == OBJ_DELETED)
				out->action = dst_same ? SYNC_ADOPT : SYNC_COPY_CHANGED;
			else if (r->status == OBJ_DONE || r->status == OBJ_SKIPPED)
				out->action = (p->dst && !d) ? SYNC_COPY_MISSING : SYNC_SKIP;
			else
				out->action = dst_same ? SYNC_ADOPT : SYNC_COPY_RETRY;
		} else if (m) {
			/* Gone from the source. */
			if (out->rec.status == OBJ_DELETED && !d)
				emit = false;
			else if (p->delete_gone)
				out->action = SYNC_DELETE;
			else if (out->rec.status == OBJ_DELETED)
				emit = false;
			else
				out->action = SYNC_GONE;
		} else {
			/* Only at the destination. */
			if (p->delete_gone)
				out->action = SYNC_DELETE;
			else
				emit = false;
		}
		if (emit)
			return 1;
	}
}
