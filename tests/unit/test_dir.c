/* Unit tests of fs/dir.c: directory listings from a real LMDB manifest (the
 * S3 side is covered by the mount integration tests against radosgw), name
 * rules, de-duplication, and the listing cache. */
#include "common/compat.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"
#include "fs/dir.h"
#include "manifest/codec.h"
#include "manifest/manifest.h"
#include "tap.h"

static char base[64];

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	return remove(p);
}

static void put(struct manifest_writer *w, uint32_t task, const char *key, size_t klen,
		uint64_t size, int status)
{
	struct obj_record r;
	memset(&r, 0, sizeof(r));
	r.size = size;
	r.last_modified = 1700000000 + (int64_t)size;
	snprintf(r.etag, sizeof(r.etag), "etag-%llu", (unsigned long long)size);
	r.status = (uint8_t)status;
	if (manifest_writer_put_obj(w, task, key, klen, &r))
		printf("# put failed\n");
}

/* "name/" for directories, "name=size" for files, comma-separated. */
static void render(const struct dir_listing *l, struct buf *out)
{
	buf_reset(out);
	for (size_t i = 0; i < dir_listing_count(l); i++) {
		const struct dir_entry *e = dir_listing_at(l, i);
		buf_add(out, e->name, e->name_len);
		if (e->is_dir)
			buf_addch(out, '/');
		else
			buf_addf(out, "=%llu", (unsigned long long)e->size);
		buf_addch(out, ',');
	}
}

int main(void)
{
	log_set_level(LOG_ERROR);
	snprintf(base, sizeof(base), "/tmp/dth-test-dir-XXXXXX");
	if (!mkdtemp(base)) {
		printf("Bail out! mkdtemp\n");
		return 1;
	}
	struct dth_err err;
	err_clear(&err);
	struct manifest *m = manifest_open(base, MANIFEST_RDWR, &err);
	if (!m) {
		printf("Bail out! %s\n", err.message);
		return 1;
	}
	struct task_record t;
	memset(&t, 0, sizeof(t));
	str_copy_fit(t.name, "t", sizeof(t.name));
	str_copy_fit(t.kind, "s3", sizeof(t.kind));
	uint32_t id, other;
	bool created;
	is_int(manifest_task_ensure(m, &t, &id, &created), 0, "task");
	str_copy_fit(t.name, "other", sizeof(t.name));
	is_int(manifest_task_ensure(m, &t, &other, &created), 0, "other task");
	struct manifest_writer *w = manifest_writer_new(m, 0, 0, &err);
	put(w, id, "a.txt", 5, 1, OBJ_DONE);
	put(w, id, "b/", 2, 0, OBJ_DONE); /* folder marker */
	put(w, id, "b/one", 5, 2, OBJ_PENDING);
	put(w, id, "b/two", 5, 3, OBJ_FAILED);
	put(w, id, "c", 1, 4, OBJ_DONE);   /* file c ... */
	put(w, id, "c/x", 3, 5, OBJ_DONE); /* ... shadowed by directory c */
	put(w, id, "c-1", 3, 6, OBJ_DONE);
	put(w, id, "gone", 4, 7, OBJ_DELETED);
	put(w, id, "./dot", 5, 8, OBJ_DONE);	  /* directory "." : skipped */
	put(w, id, "x//y", 4, 9, OBJ_DONE);	  /* "x/" then an empty name */
	put(w, id, "nul\0byte", 8, 10, OBJ_DONE); /* not a file name */
	put(w, id, "\xc3\xa9t\xc3\xa9", 5, 11, OBJ_DONE);
	char big[300];
	memset(big, 'L', sizeof(big));
	put(w, id, big, sizeof(big), 12, OBJ_DONE); /* longer than 255 */
	for (int k = 0; k < 3000; k++) {
		char key[64];
		int n = snprintf(key, sizeof(key), "many/sub%d/f%04d", k % 3, k);
		put(w, id, key, (size_t)n, 100 + (uint64_t)k, OBJ_DONE);
	}
	put(w, other, "zzz", 3, 1, OBJ_DONE); /* another task's key is never seen */
	is_int(manifest_writer_free(w), 0, "writer committed");

	struct dir_source src;
	memset(&src, 0, sizeof(src));
	src.m = m;
	src.task = id;
	src.mf_prefix = "";
	struct dir_listing *l = NULL;
	struct buf out = BUF_INIT;
	is_int(dir_list(&src, "", &l, &err), 0, "list root");
	render(l, &out);
	is_str(out.data, "a.txt=1,b/,c/,c-1=6,many/,x/,\xc3\xa9t\xc3\xa9=11,",
	       "root: files, directories (c shadows the file c), bad names skipped");
	const struct dir_entry *e = dir_listing_find(l, "c-1", 3);
	ok(e && !e->is_dir && e->size == 6 && !strcmp(e->etag, "etag-6") &&
	       e->mtime == 1700000006 && e->status == OBJ_DONE,
	   "entry attributes from the record");
	ok(dir_listing_find(l, "c", 1) && dir_listing_find(l, "c", 1)->is_dir, "c is a directory");
	ok(!dir_listing_find(l, "gone", 4), "deleted record not listed");
	ok(!dir_listing_find(l, "zzz", 3), "other task not listed");
	ok(!dir_listing_find(l, "b/", 2), "find of a name with a slash fails");
	dir_listing_unref(l);

	is_int(dir_list(&src, "b/", &l, &err), 0, "list b/");
	render(l, &out);
	is_str(out.data, "one=2,two=3,", "b/: the folder marker itself is not an entry");
	ok(dir_listing_find(l, "one", 3)->status == OBJ_PENDING, "status carried");
	dir_listing_unref(l);

	is_int(dir_list(&src, "x/", &l, &err), 0, "list x/");
	is_int(dir_listing_count(l), 0, "x/: only an empty name, skipped");
	dir_listing_unref(l);

	is_int(dir_list(&src, "many/", &l, &err), 0, "list many/");
	render(l, &out);
	is_str(out.data, "sub0/,sub1/,sub2/,", "3000 keys collapse into three directories");
	dir_listing_unref(l);
	is_int(dir_list(&src, "many/sub1/", &l, &err), 0, "list many/sub1/");
	is_int(dir_listing_count(l), 1000, "1000 files in many/sub1/");
	int sorted = 1;
	for (size_t i = 1; i < dir_listing_count(l); i++) {
		const struct dir_entry *p = dir_listing_at(l, i - 1), *q = dir_listing_at(l, i);
		if (memcmp(p->name, q->name, 5) >= 0)
			sorted = 0;
	}
	ok(sorted, "entries sorted by name");
	ok(dir_listing_find(l, "f0001", 5) && dir_listing_find(l, "f2998", 5) &&
	       !dir_listing_find(l, "f0002", 5),
	   "binary search finds members only");
	dir_listing_unref(l);

	is_int(dir_list(&src, "nothing/", &l, &err), 0, "missing directory lists empty");
	is_int(dir_listing_count(l), 0, "no entries");
	dir_listing_unref(l);

	/* A mount of a subdirectory of the task. */
	src.mf_prefix = "many/";
	is_int(dir_list(&src, "", &l, &err), 0, "root of a sub-mount");
	render(l, &out);
	is_str(out.data, "sub0/,sub1/,sub2/,", "sub-mount root is many/");
	dir_listing_unref(l);
	src.mf_prefix = "";

	/* The cache: one listing per directory while fresh. */
	struct dir_cache *c = dir_cache_new(&src, 60000, 0);
	struct dir_listing *l1, *l2;
	is_int(dir_cache_get(c, "b/", &l1, &err), 0, "cache miss");
	is_int(dir_cache_get(c, "b/", &l2, &err), 0, "cache hit");
	ok(l1 == l2, "the same snapshot");
	is_int(dir_cache_listings(c), 1, "listed once");
	struct dir_listing *p = dir_cache_peek(c, "b/");
	ok(p == l1, "peek sees the fresh listing");
	ok(dir_cache_peek(c, "c/") == NULL, "peek of an uncached directory is NULL");
	is_int(dir_cache_listings(c), 1, "peek lists nothing");
	dir_listing_unref(p);
	dir_listing_unref(l1);
	dir_listing_unref(l2);
	dir_cache_free(c);

	/* ttl 0: every get lists. */
	c = dir_cache_new(&src, 0, 0);
	is_int(dir_cache_get(c, "b/", &l1, &err), 0, "uncached get");
	dir_listing_unref(l1);
	is_int(dir_cache_get(c, "b/", &l1, &err), 0, "uncached get again");
	dir_listing_unref(l1);
	is_int(dir_cache_listings(c), 2, "ttl 0 lists every time");
	ok(dir_cache_peek(c, "b/") == NULL, "ttl 0: peek never hits");
	dir_cache_free(c);

	/* Bounded: at most 1500 entries cached; a listing in use stays valid. */
	c = dir_cache_new(&src, 60000, 1500);
	is_int(dir_cache_get(c, "many/sub0/", &l1, &err), 0, "sub0");
	is_int(dir_cache_get(c, "many/sub1/", &l2, &err), 0, "sub1 evicts sub0");
	ok(dir_cache_peek(c, "many/sub0/") == NULL, "sub0 no longer cached");
	ok(dir_listing_count(l1) == 1000 && dir_listing_find(l1, "f0000", 5),
	   "the evicted listing is still readable by its holder");
	p = dir_cache_peek(c, "many/sub1/");
	ok(p == l2, "sub1 cached");
	dir_listing_unref(p);
	dir_listing_unref(l1);
	dir_listing_unref(l2);
	dir_cache_free(c);

	buf_release(&out);
	manifest_free(m);
	nftw(base, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	return tap_done();
}
