/* Unit tests of fs/inode.c (the FUSE view's inode table) and fs/xattr.c. */
#include "common/compat.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "fs/inode.h"
#include "fs/xattr.h"
#include "manifest/codec.h"
#include "remote/s3.h"
#include "tap.h"

static struct inode_attr file_attr(uint64_t size, const char *etag)
{
	struct inode_attr a = {.is_dir = false, .size = size, .mtime = 1700000000, .etag = etag};
	return a;
}

static const struct inode_attr dir_attr = {.is_dir = true};

static void test_basics(void)
{
	struct inode_table *t = inode_table_new(123);
	struct inode_info i;
	inode_info_init(&i);
	is_int(inode_table_get(t, INODE_ROOT, &i), 0, "root exists");
	is_str(i.key.data, "", "root key is empty");
	ok(i.is_dir && i.mtime == 123, "root is a directory with the given mtime");
	is_int(inode_table_count(t), 1, "one inode");

	uint64_t a = inode_table_link(t, INODE_ROOT, "a", 1, &dir_attr, 0);
	ok(a > INODE_ROOT, "directory a gets a new number");
	struct inode_attr fa = file_attr(42, "abc");
	uint64_t f = inode_table_link(t, a, "file.txt", 8, &fa, 99);
	is_int(inode_table_get(t, f, &i), 0, "file found by number");
	is_str(i.key.data, "a/file.txt", "file key is parent key + name");
	is_int(i.size, 42, "size kept");
	is_str(i.etag, "abc", "etag kept");
	is_int(i.parent, a, "parent kept");
	is_int(i.attr_until_ms, 99, "freshness kept");
	is_int(inode_table_get(t, a, &i), 0, "dir found");
	is_str(i.key.data, "a/", "directory key ends in a slash");

	/* Linking again finds the same inode and updates attributes. */
	fa = file_attr(43, "def");
	is_int(inode_table_link(t, a, "file.txt", 8, &fa, 100), f, "same name, same inode");
	is_int(inode_table_get(t, f, &i), 0, "still there");
	ok(i.size == 43 && !strcmp(i.etag, "def"), "attributes updated");

	/* A type change gets a new inode; the old one stays until forgotten. */
	uint64_t f2 = inode_table_link(t, a, "file.txt", 8, &dir_attr, 0);
	ok(f2 != f, "file became a directory: new inode");
	is_int(inode_table_get(t, f, &i), 0, "old inode still known by number");
	is_int(inode_table_get(t, f2, &i), 0, "new inode known");
	is_str(i.key.data, "a/file.txt/", "new inode is a directory");

	/* Forget: the file was looked up twice. */
	inode_table_forget(t, f, 1);
	is_int(inode_table_get(t, f, &i), 0, "one lookup left");
	inode_table_forget(t, f, 1);
	is_int(inode_table_get(t, f, &i), -ENOENT, "gone after the last forget");
	inode_table_forget(t, INODE_ROOT, 100);
	is_int(inode_table_get(t, INODE_ROOT, &i), 0, "root is never forgotten");
	is_int(inode_table_link(t, 9999, "x", 1, &dir_attr, 0), 0, "unknown parent gives 0");
	is_int(inode_table_link(t, f2 + 100, "x", 1, &dir_attr, 0), 0, "unknown parent gives 0");

	/* Page cache: keep only when the etag is the same as last open. */
	struct inode_attr ga = file_attr(1, "e1");
	uint64_t g = inode_table_link(t, INODE_ROOT, "g", 1, &ga, 0);
	ok(!inode_table_cache_check(t, g, "e1"), "first open drops the cache");
	ok(inode_table_cache_check(t, g, "e1"), "second open with the same etag keeps it");
	ok(!inode_table_cache_check(t, g, "e2"), "a new etag drops it");

	/* xattr blob cache */
	struct buf b = BUF_INIT;
	is_int(inode_table_xattr_get(t, g, &b), 0, "no blob yet");
	inode_table_xattr_set(t, g, "abc", 3, now_mono_ms() + 100000);
	is_int(inode_table_xattr_get(t, g, &b), 1, "blob cached");
	ok(b.len == 3 && !memcmp(b.data, "abc", 3), "blob bytes");
	buf_reset(&b);
	inode_table_xattr_set(t, g, "abc", 3, 0);
	is_int(inode_table_xattr_get(t, g, &b), 0, "stale blob not returned");
	buf_release(&b);
	inode_info_release(&i);
	inode_table_free(t);
}

static void test_many(void)
{
	struct inode_table *t = inode_table_new(0);
	char name[32];
	uint64_t inos[5000];
	for (int k = 0; k < 5000; k++) {
		int n = snprintf(name, sizeof(name), "n%05d", k);
		struct inode_attr a = file_attr((uint64_t)k, "x");
		inos[k] = inode_table_link(t, INODE_ROOT, name, (size_t)n, &a, 0);
	}
	is_int(inode_table_count(t), 5001, "5000 inodes after growth");
	int bad = 0;
	struct inode_info i;
	inode_info_init(&i);
	for (int k = 0; k < 5000; k++) {
		snprintf(name, sizeof(name), "n%05d", k);
		if (inode_table_get(t, inos[k], &i) || strcmp(i.key.data, name) ||
		    i.size != (uint64_t)k)
			bad++;
		struct inode_attr a = file_attr((uint64_t)k, "x");
		if (inode_table_link(t, INODE_ROOT, name, strlen(name), &a, 0) != inos[k])
			bad++;
	}
	is_int(bad, 0, "every inode found by number and by name after rehashing");
	for (int k = 0; k < 5000; k++)
		inode_table_forget(t, inos[k], 2);
	is_int(inode_table_count(t), 1, "all forgotten");
	inode_info_release(&i);
	inode_table_free(t);
}

struct th {
	struct inode_table *t;
	int base;
};

static void *worker(void *arg)
{
	struct th *w = arg;
	char name[32];
	for (int k = 0; k < 2000; k++) {
		int n = snprintf(name, sizeof(name), "w%d-%d", w->base, k % 100);
		struct inode_attr a = file_attr(1, "e");
		uint64_t ino = inode_table_link(w->t, INODE_ROOT, name, (size_t)n, &a, 0);
		inode_table_forget(w->t, ino, 1);
	}
	return NULL;
}

static void test_threads(void)
{
	struct inode_table *t = inode_table_new(0);
	pthread_t th[4];
	struct th w[4];
	for (int k = 0; k < 4; k++) {
		w[k].t = t;
		w[k].base = k;
		pthread_create(&th[k], NULL, worker, &w[k]);
	}
	for (int k = 0; k < 4; k++)
		pthread_join(th[k], NULL);
	is_int(inode_table_count(t), 1, "concurrent link/forget leaves only the root");
	inode_table_free(t);
}

static void test_xattr(void)
{
	struct s3_object_head h;
	memset(&h, 0, sizeof(h));
	h.meta.content_type = "text/plain";
	struct s3_kv user[2] = {{"color", "blue"}, {"empty", ""}};
	h.meta.user = user;
	h.meta.n_user = 2;
	struct obj_record rec;
	memset(&rec, 0, sizeof(rec));
	rec.status = OBJ_DONE;
	str_copy_fit(rec.dest_etag, "d-etag", sizeof(rec.dest_etag));
	struct buf blob = BUF_INIT, names = BUF_INIT;
	xattr_build(&blob, "etag1", &h, &rec);
	is_int(xattr_names(blob.data, blob.len, &names), 0, "names listed");
	const char want[] = "user.s3.etag\0user.s3.content_type\0user.s3.meta.color\0"
			    "user.s3.meta.empty\0user.dth.status\0user.dth.dest_etag";
	ok(names.len == sizeof(want) && !memcmp(names.data, want, sizeof(want)),
	   "names in order, NUL-separated");
	const void *v;
	size_t vl;
	is_int(xattr_find(blob.data, blob.len, "user.s3.meta.color", &v, &vl), 0, "meta found");
	ok(vl == 4 && !memcmp(v, "blue", 4), "meta value");
	is_int(xattr_find(blob.data, blob.len, "user.s3.meta.empty", &v, &vl), 0, "empty found");
	is_int(vl, 0, "empty value");
	is_int(xattr_find(blob.data, blob.len, "user.dth.status", &v, &vl), 0, "status found");
	ok(vl == 4 && !memcmp(v, "done", 4), "status value");
	is_int(xattr_find(blob.data, blob.len, "user.nope", &v, &vl), -ENODATA, "absent");
	/* Every truncation of the blob is refused or parses a prefix, never overreads. */
	int bad = 0;
	for (size_t cut = 0; cut < blob.len; cut++) {
		buf_reset(&names);
		int rc = xattr_names(blob.data, cut, &names);
		if (rc != 0 && rc != -EPROTO)
			bad++;
	}
	is_int(bad, 0, "truncated blobs handled");
	buf_reset(&blob);
	xattr_build(&blob, NULL, NULL, NULL);
	is_int(blob.len, 0, "nothing known: empty blob");
	buf_release(&blob);
	buf_release(&names);
}

int main(void)
{
	log_set_level(LOG_ERROR);
	test_basics();
	test_many();
	test_threads();
	test_xattr();
	return tap_done();
}
