/* Unit tests of remote/s3_local.c through the object client (s3.h): a
 * directory read as a bucket. Listing with prefix and bounds, HEAD (size,
 * tag, type), ranged and streamed reads, If-Match on the file's tag, reads
 * that cannot leave the tree (links, ".."), and every write refused. */
#include "common/compat.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "remote/s3.h"
#include "tests/unit/tap.h"

static char root[64];

static void put(const char *rel, const char *body)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	FILE *f = fopen(p, "w");
	if (f) {
		fputs(body, f);
		fclose(f);
	}
}

static int sink_buf(void *ctx, const void *data, size_t len)
{
	buf_add(ctx, data, len);
	return 0;
}

static void test_list(struct s3_client *c)
{
	struct s3_list_opts lo;
	memset(&lo, 0, sizeof(lo));
	struct buf got = BUF_INIT;
	struct dth_err err;
	struct s3_lister *l = s3_lister_new(c, "ignored", &lo);
	const struct s3_list_entry *e;
	int rc;
	while ((rc = s3_lister_next(l, &e, &err)) == 1)
		buf_addf(&got, "%s:%llu:%d|", e->key, (unsigned long long)e->size,
			 !strncmp(e->etag, "fs:", 3));
	s3_lister_free(l);
	is_int(rc, 0, "listed to the end");
	is_str(buf_str(&got), "a.html:5:1|d/x.txt:3:1|d/y:2:1|z:1:1|",
	       "files in key order with sizes and file tags; the link skipped");

	lo.prefix = "d/";
	lo.start_after = "d/x.txt";
	buf_reset(&got);
	l = s3_lister_new(c, "ignored", &lo);
	while ((rc = s3_lister_next(l, &e, &err)) == 1)
		buf_addf(&got, "%s|", e->key);
	s3_lister_free(l);
	is_str(buf_str(&got), "d/y|", "prefix and start-after");

	memset(&lo, 0, sizeof(lo));
	lo.end_before = "d/y";
	buf_reset(&got);
	l = s3_lister_new(c, "ignored", &lo);
	while ((rc = s3_lister_next(l, &e, &err)) == 1)
		buf_addf(&got, "%s|", e->key);
	s3_lister_free(l);
	is_str(buf_str(&got), "a.html|d/x.txt|", "end-before");
	buf_release(&got);
}

static void test_read(struct s3_client *c)
{
	struct s3_object_head h;
	struct dth_err err;
	is_int(s3_head_object(c, "b", "a.html", 0, &h, &err), 0, "HEAD a file");
	ok(h.size == 5 && !strncmp(h.etag, "fs:", 3) && h.meta.content_type &&
	       !strcmp(h.meta.content_type, "text/html"),
	   "size, tag %s and type from the extension", h.etag);
	char tag[S3_ETAG_MAX];
	str_copy_fit(tag, h.etag, sizeof(tag));
	s3_object_head_release(&h);

	struct buf b = BUF_INIT;
	buf_adds(&b, "<");
	is_int(s3_get_object(c, "b", "a.html", 1, 3, tag, &b, &h, &err), 0, "a ranged GET");
	is_str(buf_str(&b), "<ell", "appended the range");
	s3_object_head_release(&h);
	buf_reset(&b);
	is_int(s3_get_object(c, "b", "a.html", 0, 0, NULL, &b, NULL, &err), 0, "a whole GET");
	is_str(buf_str(&b), "hello", "the whole file");
	buf_reset(&b);
	is_int(s3_get_object(c, "b", "a.html", 3, 5, NULL, &b, NULL, &err), -ERANGE,
	       "a range beyond the end");
	buf_reset(&b);
	is_int(s3_get_object_to(c, "b", "d/x.txt", 0, 3, NULL, sink_buf, &b, &err), 0,
	       "a streamed GET");
	is_str(buf_str(&b), "xyz", "streamed bytes");

	/* the file changes: its tag no longer matches */
	char p[256];
	snprintf(p, sizeof(p), "%s/a.html", root);
	struct timespec ts[2] = {{0, UTIME_OMIT}, {1000000000, 5}};
	utimensat(AT_FDCWD, p, ts, 0);
	buf_reset(&b);
	is_int(s3_get_object(c, "b", "a.html", 0, 0, tag, &b, NULL, &err), -ESTALE,
	       "If-Match on the old tag: stale (%s)", err.message);
	is_int((int)b.len, 0, "nothing appended");
	is_int(s3_get_object_to(c, "b", "a.html", 0, 5, tag, sink_buf, &b, &err), -ESTALE,
	       "streamed If-Match: stale");

	is_int(s3_head_object(c, "b", "nope", 0, &h, &err), -ENOENT, "a missing file");
	is_int(s3_head_object(c, "b", "d", 0, &h, &err), -ENOENT, "a directory is no object");
	is_int(s3_head_object(c, "b", "link", 0, &h, &err), -ENOENT, "a link is not followed");
	is_int(s3_head_object(c, "b", "dl/passwd", 0, &h, &err), -ENOENT,
	       "nor a link to a directory on the path");
	is_int(s3_head_object(c, "b", "../outside", 0, &h, &err), -ENOENT,
	       "\"..\" cannot leave the tree");
	is_int(s3_head_object(c, "b", "/etc/passwd", 0, &h, &err), -ENOENT, "nor an absolute key");
	buf_release(&b);
}

static void test_writes(struct s3_client *c)
{
	struct dth_err err;
	struct s3_written w;
	is_int(s3_put_object(c, "b", "new", "x", 1, NULL, &w, &err), -ENOTSUP, "PUT refused");
	ok(strstr(err.message, "local directory") != NULL, "said why (%s)", err.message);
	is_int(s3_delete_object(c, "b", "z", &err), -ENOTSUP, "DELETE refused");
	char p[256];
	snprintf(p, sizeof(p), "%s/z", root);
	ok(access(p, F_OK) == 0, "the file is still there");
	is_int(s3_head_bucket(c, "b", &err), 0, "the root answers");
	uint64_t n[S3_REQ__COUNT];
	s3_client_counts(c, n);
	uint64_t sum = 0;
	for (int i = 0; i < S3_REQ__COUNT; i++)
		sum += n[i];
	is_int((int)sum, 0, "no requests counted");
}

int main(void)
{
	snprintf(root, sizeof(root), "/tmp/dth-test-s3local-XXXXXX");
	if (!mkdtemp(root))
		return 1;
	char p[256];
	put("a.html", "hello");
	snprintf(p, sizeof(p), "%s/d", root);
	mkdir(p, 0700);
	put("d/x.txt", "xyz");
	put("d/y", "yy");
	put("z", "z");
	snprintf(p, sizeof(p), "%s/link", root);
	ok(symlink("/etc/passwd", p) == 0, "a link out of the tree");
	snprintf(p, sizeof(p), "%s/dl", root);
	ok(symlink("/etc", p) == 0, "a link to a directory out of the tree");

	struct s3_client *c = NULL;
	struct dth_err err;
	is_int(s3_client_new_local("local", "/nonexistent-dth", &c, &err), -ENOENT,
	       "a missing root (%s)", err.message);
	is_int(s3_client_new_local("local", root, &c, &err), 0, "opened");
	ok(c && s3_client_is_local(c), "a local client");
	if (c) {
		test_list(c);
		test_read(c);
		test_writes(c);
	}
	s3_client_free(c);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	if (system(cmd))
		printf("# could not remove %s\n", root);
	return tap_done();
}
