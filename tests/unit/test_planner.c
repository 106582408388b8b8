/* The planner's merge-join, fed by in-memory streams that stand in for the
 * listing (s3_lister_next) and the manifest cursor (manifest_cursor_next):
 * every decision of the table in agent/planner.c, bounds, filters, and the
 * refusal of unordered or foreign keys. */
#include "common/compat.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent/filter.h"
#include "agent/planner.h"
#include "manifest/manifest.h"
#include "remote/s3.h"
#include "tests/unit/tap.h"

struct fent {
	const char *key;
	uint64_t size;
	const char *etag;
};

struct s3_lister {
	const struct fent *e;
	size_t n, i;
	size_t calls;
	struct s3_list_entry cur;
};

int s3_lister_next(struct s3_lister *l, const struct s3_list_entry **e, struct dth_err *err)
{
	(void)err;
	l->calls++;
	if (l->i >= l->n)
		return 0;
	const struct fent *f = &l->e[l->i++];
	memset(&l->cur, 0, sizeof(l->cur));
	l->cur.key = f->key;
	l->cur.key_len = strlen(f->key);
	l->cur.size = f->size;
	str_copy_fit(l->cur.etag, f->etag, sizeof(l->cur.etag));
	*e = &l->cur;
	return 1;
}

struct mrec {
	const char *key;
	uint64_t size;
	const char *etag;
	int status;
};

struct manifest_cursor {
	const struct mrec *r;
	size_t n, i;
};

int manifest_cursor_next(struct manifest_cursor *c, const char **key, size_t *kl,
			 struct obj_record *rec)
{
	if (c->i >= c->n)
		return 0;
	const struct mrec *m = &c->r[c->i++];
	memset(rec, 0, sizeof(*rec));
	*key = m->key;
	*kl = strlen(m->key);
	rec->size = m->size;
	str_copy_fit(rec->etag, m->etag, sizeof(rec->etag));
	rec->status = (uint8_t)m->status;
	return 1;
}

#define E1 "0123456789abcdef0123456789abcdef"
#define E2 "fedcba9876543210fedcba9876543210"

static const struct fent src[] = {{"p/a", 1, E1}, {"p/b", 2, E1}, {"p/c", 3, E1},
				  {"p/d", 4, E1}, {"p/f", 6, E1}, {"p/g", 7, E1}};
static const struct mrec man[] = {{"b", 2, E1, OBJ_DONE},   {"c", 3, E2, OBJ_DONE},
				  {"d", 4, E1, OBJ_FAILED}, {"e", 5, E1, OBJ_DONE},
				  {"f", 6, E1, OBJ_DONE},   {"h", 1, E1, OBJ_DELETED}};
static const struct fent dst[] = {
    {"q/a", 1, E1}, {"q/b", 2, E1}, {"q/e", 5, E1}, {"q/h", 1, E1}, {"q/z", 9, E1}};

/* Run a planner to the end; "key=action key=action ..." into out. */
static int plan_all(struct planner *pl, char *out, size_t outsz, struct dth_err *err)
{
	struct plan p;
	int rc;
	out[0] = '\0';
	size_t len = 0;
	while ((rc = planner_next(pl, &p, err)) == 1)
		len += (size_t)snprintf(out + len, outsz - len, "%s%.*s=%s", len ? " " : "",
					(int)p.key_len, p.key, sync_action_name(p.action));
	return rc;
}

static void test_decisions(void)
{
	char got[512];
	struct dth_err err;
	for (int del = 0; del < 2; del++) {
		struct s3_lister ls = {src, ARRAY_SIZE(src), 0, 0, {0}};
		struct s3_lister ld = {dst, ARRAY_SIZE(dst), 0, 0, {0}};
		struct manifest_cursor mc = {man, ARRAY_SIZE(man), 0};
		struct planner *pl = planner_new(&ls, "p/", &mc, &ld, "q/", NULL, del);
		err_clear(&err);
		int rc = plan_all(pl, got, sizeof(got), &err);
		is_int(rc, 0, "merge of source, manifest and destination ends cleanly (delete=%d)",
		       del);
		is_str(got,
		       del ? "a=adopt b=skip c=changed d=retry e=delete f=missing g=new h=delete "
			     "z=delete"
			   : "a=adopt b=skip c=changed d=retry e=gone f=missing g=new",
		       "every decision (delete=%d)", del);
		is_int(planner_listed(pl), 6, "six source keys listed");
		planner_free(pl);
	}
}

static void test_without_destination(void)
{
	char got[512];
	struct dth_err err;
	struct s3_lister ls = {src, ARRAY_SIZE(src), 0, 0, {0}};
	struct manifest_cursor mc = {man, ARRAY_SIZE(man), 0};
	struct planner *pl = planner_new(&ls, "p/", &mc, NULL, "q/", NULL, false);
	err_clear(&err);
	is_int(plan_all(pl, got, sizeof(got), &err), 0, "rescan without a destination listing");
	is_str(got, "a=new b=skip c=changed d=retry e=gone f=skip g=new",
	       "a rescan trusts the manifest for done objects");
	planner_free(pl);
}

static void test_bounds(void)
{
	char got[512];
	struct dth_err err;
	struct s3_lister ls = {src, ARRAY_SIZE(src), 0, 0, {0}};
	struct manifest_cursor mc = {man, ARRAY_SIZE(man), 0};
	struct planner *pl = planner_new(&ls, "p/", &mc, NULL, "q/", NULL, false);
	planner_set_bounds(pl, "b", "d");
	err_clear(&err);
	is_int(plan_all(pl, got, sizeof(got), &err), 0, "bounded plan");
	is_str(got, "c=changed d=retry", "only keys in (b, d]");
	/* a, b, c, d read; d is the top, so the listing is not asked again */
	is_int(ls.calls, 4, "the listing stops at the upper bound without another call");
	planner_free(pl);
}

static void test_filter(void)
{
	char got[512];
	struct dth_err err;
	err_clear(&err);
	struct filter *f = filter_new();
	ok(filter_add(f, false, "c", &err) == 0, "exclude c");
	struct s3_lister ls = {src, ARRAY_SIZE(src), 0, 0, {0}};
	struct manifest_cursor mc = {man, ARRAY_SIZE(man), 0};
	struct planner *pl = planner_new(&ls, "p/", &mc, NULL, "q/", f, true);
	is_int(plan_all(pl, got, sizeof(got), &err), 0, "filtered plan");
	is_str(got, "a=new b=skip d=retry e=delete f=skip g=new",
	       "an excluded key is neither copied nor deleted");
	planner_free(pl);
	filter_free(f);
}

struct hooked {
	char keys[256];
	int n;
};

static void hook(void *ctx, const char *key, size_t len, bool page_last)
{
	struct hooked *h = ctx;
	size_t at = strlen(h->keys);
	snprintf(h->keys + at, sizeof(h->keys) - at, "%s%.*s", at ? " " : "", (int)len, key);
	h->n++;
	(void)page_last;
}

/* The source hook (the listing's sample) sees every source key in the
 * bounds, filtered or not, and none past the top. */
static void test_source_hook(void)
{
	char got[512];
	struct dth_err err;
	err_clear(&err);
	struct filter *f = filter_new();
	ok(filter_add(f, false, "c", &err) == 0, "exclude c");
	struct s3_lister ls = {src, ARRAY_SIZE(src), 0, 0, {0}};
	struct manifest_cursor mc = {man, ARRAY_SIZE(man), 0};
	struct planner *pl = planner_new(&ls, "p/", &mc, NULL, "q/", f, false);
	struct hooked h = {"", 0};
	planner_set_bounds(pl, "a", "d");
	planner_set_source_hook(pl, hook, &h);
	is_int(plan_all(pl, got, sizeof(got), &err), 0, "hooked plan");
	is_str(h.keys, "b c d", "the hook saw b, c (filtered out) and d, nothing past d");
	planner_free(pl);
	filter_free(f);
}

static void test_refusals(void)
{
	char got[512];
	struct dth_err err;
	static const struct fent unordered[] = {{"p/b", 1, E1}, {"p/a", 1, E1}};
	struct s3_lister lu = {unordered, 2, 0, 0, {0}};
	struct planner *pl = planner_new(&lu, "p/", NULL, NULL, NULL, NULL, true);
	err_clear(&err);
	is_int(plan_all(pl, got, sizeof(got), &err), -EPROTO, "an unordered listing is refused");
	ok(strstr(err.message, "ascending") != NULL, "and the message says why: %s", err.message);
	planner_free(pl);

	static const struct fent outside[] = {{"x/b", 1, E1}};
	struct s3_lister lo = {outside, 1, 0, 0, {0}};
	pl = planner_new(&lo, "p/", NULL, NULL, NULL, NULL, true);
	err_clear(&err);
	is_int(plan_all(pl, got, sizeof(got), &err), -EPROTO,
	       "a key outside the prefix is refused");
	planner_free(pl);

	static const struct mrec dup[] = {{"a", 1, E1, OBJ_DONE}, {"a", 1, E1, OBJ_DONE}};
	struct s3_lister le = {NULL, 0, 0, 0, {0}};
	struct manifest_cursor md = {dup, 2, 0};
	pl = planner_new(&le, "p/", &md, NULL, NULL, NULL, true);
	err_clear(&err);
	is_int(plan_all(pl, got, sizeof(got), &err), -EPROTO,
	       "a repeated manifest key is refused before anything is deleted");
	planner_free(pl);
}

int main(void)
{
	test_decisions();
	test_without_destination();
	test_bounds();
	test_filter();
	test_refusals();
	test_source_hook();
	return tap_done();
}
