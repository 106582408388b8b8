/* Unit tests of agent/spool.c: the deletes a run holds back until its
 * listing is complete. */
#include "common/compat.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "agent/spool.h"
#include "common/buf.h"
#include "tests/unit/tap.h"

static int entries(const char *dir)
{
	DIR *d = opendir(dir);
	int n = 0;
	struct dirent *e;
	while (d && (e = readdir(d)))
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	if (d)
		closedir(d);
	return n;
}

static void test_round_trip(const char *dir)
{
	struct dth_err err;
	err_clear(&err);
	struct spool *s = spool_new(dir, &err);
	ok(s != NULL, "spool_new (%s)", err.message);
	if (!s)
		return;
	is_int(entries(dir), 0, "the spool file is unlinked at once");
	struct obj_record rec;
	memset(&rec, 0, sizeof(rec));
	rec.size = 42;
	rec.status = OBJ_DONE;
	str_copy_fit(rec.etag, "0123456789abcdef0123456789abcdef", sizeof(rec.etag));
	int rc = spool_add(s, "a\0b", 3, &rec, &err);
	rc |= spool_add(s, "", 0, NULL, &err);
	struct buf big = BUF_INIT;
	for (int i = 0; i < 5000; i++)
		buf_addch(&big, (char)('a' + i % 26));
	for (int i = 0; i < 1000; i++)
		rc |= spool_add(s, big.data, (size_t)(i % 7) * 700, i % 2 ? &rec : NULL, &err);
	is_int(rc, 0, "1002 records added");
	is_int(spool_count(s), 1002, "spool_count");
	is_int(spool_rewind(s, &err), 0, "rewind");

	const char *key;
	size_t len;
	bool has;
	struct obj_record got;
	rc = spool_next(s, &key, &len, &has, &got, &err);
	ok(rc == 1 && len == 3 && memcmp(key, "a\0b", 3) == 0,
	   "a key holding a NUL comes back whole");
	ok(has && got.size == 42 && got.status == OBJ_DONE && !strcmp(got.etag, rec.etag),
	   "with its record");
	rc = spool_next(s, &key, &len, &has, &got, &err);
	ok(rc == 1 && len == 0 && !has, "an empty key without a record");
	bool all = true;
	for (int i = 0; i < 1000; i++) {
		rc = spool_next(s, &key, &len, &has, &got, &err);
		size_t want = (size_t)(i % 7) * 700;
		if (rc != 1 || len != want || memcmp(key, big.data, want) || has != (i % 2 == 1))
			all = false;
	}
	ok(all, "1000 records in order, lengths and records intact");
	is_int(spool_next(s, &key, &len, &has, &got, &err), 0, "then the end");
	buf_release(&big);
	spool_free(s);
}

static void test_errors(void)
{
	struct dth_err err;
	err_clear(&err);
	struct spool *s = spool_new("/nonexistent-dir-for-dth-tests", &err);
	ok(s == NULL && err.code == -ENOENT, "a missing directory: -ENOENT (%s)", err.message);
	ok(strstr(err.message, "delete spool") != NULL, "the message names the spool");
}

int main(void)
{
	char dir[] = "/tmp/dth-spool-test.XXXXXX";
	if (!mkdtemp(dir)) {
		printf("Bail out! mkdtemp\n");
		return 1;
	}
	test_round_trip(dir);
	test_errors();
	rmdir(dir);
	return tap_done();
}
