/* manifest/multi.c: several state directories read as one task (the k-way
 * merge of their cursors, overlaps, empty directories, summed stats, the
 * errors naming a directory, and merging into one manifest). */
#include "common/compat.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "manifest/manifest.h"
#include "manifest/multi.h"
#include "tests/unit/tap.h"
#include "tests/unit/testutil.h"

static char base[256];

static const char *dir_of(const char *name)
{
	static char dirs[8][512];
	static unsigned next;
	char *d = dirs[next++ % 8];
	snprintf(d, 512, "%s/%s", base, name);
	return d;
}

/* A manifest in base/name with task "t" copying src -> dst and the given
 * keys (sizes: the key's index + 1, status done unless 'f' first). */
static void make_dir(const char *name, const char *src, char **keys, size_t n)
{
	struct dth_err err;
	struct manifest *m = manifest_open(dir_of(name), MANIFEST_RDWR, &err);
	if (!m) {
		printf("# open %s: %s\n", name, err.message);
		return;
	}
	struct task_record t;
	memset(&t, 0, sizeof(t));
	snprintf(t.name, sizeof(t.name), "t");
	snprintf(t.src, sizeof(t.src), "%s", src);
	snprintf(t.dst, sizeof(t.dst), "dst:b");
	snprintf(t.kind, sizeof(t.kind), "s3");
	snprintf(t.state, sizeof(t.state), "idle");
	t.last_exit = -1;
	uint32_t id;
	bool created;
	if (manifest_task_ensure(m, &t, &id, &created))
		printf("# task_ensure %s failed\n", name);
	struct manifest_writer *w = manifest_writer_new(m, 256, 10, &err);
	for (size_t i = 0; w && i < n; i++) {
		struct obj_record r;
		memset(&r, 0, sizeof(r));
		r.size = strlen(keys[i]) * 10;
		r.status = keys[i][0] == 'f' ? OBJ_FAILED : OBJ_DONE;
		snprintf(r.etag, sizeof(r.etag), "e-%s", keys[i]);
		if (manifest_writer_put_obj(w, id, keys[i], strlen(keys[i]), &r))
			printf("# put failed\n");
	}
	if (w && manifest_writer_free(w))
		printf("# writer failed\n");
	manifest_free(m);
}

static struct manifest_set *open_set(const char **names, size_t n, struct dth_err *err)
{
	static char paths[32][512];
	const char *dirs[32];
	for (size_t i = 0; i < n && i < 32; i++) {
		snprintf(paths[i], sizeof(paths[i]), "%s/%s", base, names[i]);
		dirs[i] = paths[i];
	}
	return manifest_set_open(dirs, n, "t", err);
}

/* Read the merged stream into out (newline-joined keys); its return code. */
static int drain(struct manifest_set *s, const char *prefix, char *out, size_t cap, size_t *count,
		 uint64_t *bytes)
{
	struct dth_err err;
	struct manifest_cursor *c = manifest_set_cursor(s, prefix, &err);
	if (!c)
		return err.code ? err.code : -EIO;
	const char *k;
	size_t len, o = 0;
	struct obj_record r;
	int rc;
	*count = 0;
	*bytes = 0;
	out[0] = '\0';
	while ((rc = manifest_cursor_next(c, &k, &len, &r)) == 1) {
		if (o + len + 2 < cap) {
			memcpy(out + o, k, len);
			o += len;
			out[o++] = '\n';
			out[o] = '\0';
		}
		(*count)++;
		*bytes += r.size;
	}
	manifest_cursor_free(c);
	return rc;
}

static void test_order_and_empty(void)
{
	char *a[] = {"a", "c", "e/1", "e/3", "fz"};
	char *b[] = {"b", "d", "e/2"};
	char *c[] = {"0", "zz"};
	make_dir("A", "src:b", a, 5);
	make_dir("B", "src:b", b, 3);
	make_dir("C", "src:b", c, 2);
	make_dir("E", "src:b", NULL, 0);
	const char *names[] = {"C", "E", "A", "B"};
	struct dth_err err;
	struct manifest_set *s = open_set(names, 4, &err);
	ok(s != NULL, "four directories open (%s)", s ? "" : err.message);
	if (!s)
		return;
	char out[512];
	size_t n;
	uint64_t bytes;
	is_int(drain(s, NULL, out, sizeof(out), &n, &bytes), 0, "the merge reads to the end");
	is_str(out, "0\na\nb\nc\nd\ne/1\ne/2\ne/3\nfz\nzz\n", "keys of all directories in order");
	is_int(n, 10, "every record once");
	is_int(drain(s, "e/", out, sizeof(out), &n, &bytes), 0, "a prefix");
	is_str(out, "e/1\ne/2\ne/3\n", "only the prefix's keys, from two directories");
	struct task_stats st;
	ok(manifest_set_stats(s, &st, &err) == 0, "stats read");
	is_int(st.count[OBJ_DONE], 9, "done counts summed");
	is_int(st.count[OBJ_FAILED], 1, "failed counts summed");
	is_int(st.bytes[OBJ_DONE] + st.bytes[OBJ_FAILED], 180, "bytes summed");
	manifest_set_free(s);

	const char *only_empty[] = {"E"};
	s = open_set(only_empty, 1, &err);
	ok(s && drain(s, NULL, out, sizeof(out), &n, &bytes) == 0 && n == 0,
	   "an empty directory alone gives nothing");
	manifest_set_free(s);
	const char *empties[] = {"E", "E2"};
	make_dir("E2", "src:b", NULL, 0);
	s = open_set(empties, 2, &err);
	ok(s && drain(s, NULL, out, sizeof(out), &n, &bytes) == 0 && n == 0,
	   "two empty directories give nothing");
	manifest_set_free(s);
}

static void test_overlap(void)
{
	char *a[] = {"k1", "k3", "k5"};
	char *b[] = {"k2", "k5", "k6"};
	make_dir("OA", "src:b", a, 3);
	make_dir("OB", "src:b", b, 3);
	make_dir("OE", "src:b", NULL, 0);
	const char *names[] = {"OE", "OA", "OB"};
	struct dth_err err;
	struct manifest_set *s = open_set(names, 3, &err);
	ok(s != NULL, "overlapping directories open");
	if (!s)
		return;
	char out[256];
	size_t n;
	uint64_t bytes;
	is_int(drain(s, NULL, out, sizeof(out), &n, &bytes), -EEXIST,
	       "a key in two directories is an error");
	is_str(out, "k1\nk2\nk3\n", "the keys before it were given in order");
	const char *msg = manifest_set_error(s)->message;
	ok(strstr(msg, "'k5'") && strstr(msg, "/OA") && strstr(msg, "/OB"),
	   "the error names the key and both directories: %s", msg);
	manifest_set_free(s);
}

static int str_cmp(const void *x, const void *y)
{
	const char *const *a = x, *const *b = y;
	return strcmp(*a, *b);
}

/* Random keys dealt to 13 directories (some left empty): the merge gives the
 * sorted union, and a merge into one manifest reads back the same. */
static void test_random_many(void)
{
	enum { N = 3000, D = 13 };
	static char store[N][16];
	static char *keys[N], *per[D][N];
	size_t np[D] = {0};
	for (size_t i = 0; i < N; i++) {
		/* distinct: 7919 is invertible modulo the prime 1000003 */
		snprintf(store[i], sizeof(store[i]), "k%08llu",
			 (unsigned long long)(i * 7919ULL % 1000003ULL));
		keys[i] = store[i];
		size_t d = rnd() % (D - 2); /* the last two stay empty */
		per[d][np[d]++] = store[i];
	}
	const char *names[D];
	char nm[D][8];
	for (size_t d = 0; d < D; d++) {
		snprintf(nm[d], sizeof(nm[d]), "R%zu", d);
		names[d] = nm[d];
		qsort(per[d], np[d], sizeof(char *), str_cmp);
		make_dir(nm[d], "src:b", per[d], np[d]);
	}
	qsort(keys, N, sizeof(char *), str_cmp);
	static char want[N * 12 + 1], got[N * 12 + 1];
	size_t o = 0;
	for (size_t i = 0; i < N; i++)
		o += (size_t)snprintf(want + o, sizeof(want) - o, "%s\n", keys[i]);
	struct dth_err err;
	struct manifest_set *s = open_set(names, D, &err);
	ok(s != NULL, "13 directories open");
	if (!s)
		return;
	size_t n;
	uint64_t bytes;
	is_int(drain(s, NULL, got, sizeof(got), &n, &bytes), 0, "the merge of 13 reads through");
	ok(n == N && strcmp(got, want) == 0, "3000 random keys in order, each once");
	uint64_t wrote = 0;
	ok(manifest_set_merge_into(s, dir_of("MERGED"), &wrote, &err) == 0,
	   "merged into one manifest (%s)", err.message);
	is_int(wrote, N, "every record written");
	ok(manifest_set_merge_into(s, dir_of("MERGED"), &wrote, &err) == -ENOTEMPTY,
	   "merging into a directory holding a manifest is refused");
	struct task_stats st1, st2;
	ok(manifest_set_stats(s, &st1, &err) == 0, "stats of the 13");
	manifest_set_free(s);
	const char *one[] = {"MERGED"};
	s = open_set(one, 1, &err);
	ok(s != NULL, "the merged manifest opens");
	if (!s)
		return;
	is_int(drain(s, NULL, got, sizeof(got), &n, &bytes), 0, "the merged manifest reads");
	ok(n == N && strcmp(got, want) == 0, "it holds the same keys");
	ok(manifest_set_stats(s, &st2, &err) == 0 && memcmp(&st1, &st2, sizeof(st1)) == 0,
	   "and the same stats");
	manifest_set_free(s);
}

static void test_open_errors(void)
{
	struct dth_err err;
	const char *missing[] = {"A", "nope"};
	ok(!open_set(missing, 2, &err) && err.code == -ENOENT && strstr(err.message, "/nope"),
	   "a directory that does not exist is named: %s", err.message);
	if (mkdir(dir_of("plain"), 0700))
		printf("# mkdir failed\n");
	const char *plain[] = {"plain"};
	ok(!open_set(plain, 1, &err) && strstr(err.message, "/plain") &&
	       strstr(err.message, "not a dth manifest"),
	   "a directory without a manifest is named: %s", err.message);
	struct stat st;
	char lock[600];
	snprintf(lock, sizeof(lock), "%s/data.mdb", dir_of("plain"));
	ok(stat(lock, &st) != 0, "and nothing was created in it");
	const char *twice[] = {"A", "B", "A"};
	ok(!open_set(twice, 3, &err) && strstr(err.message, "twice"),
	   "a directory given twice is refused: %s", err.message);
	make_dir("OTHER", "src:other", NULL, 0);
	const char *other[] = {"A", "OTHER"};
	ok(!open_set(other, 2, &err) && strstr(err.message, "/OTHER") &&
	       strstr(err.message, "not shards of one task"),
	   "a task with another source is refused: %s", err.message);
	const char *dirs[] = {dir_of("A")};
	ok(!manifest_set_open(dirs, 1, "nosuch", &err) && err.code == -ENOENT &&
	       strstr(err.message, "nosuch"),
	   "a missing task is named: %s", err.message);
}

int main(void)
{
	if (scratch_dir(base, sizeof(base), "dth-multi")) {
		perror("mkdtemp");
		return 1;
	}
	test_order_and_empty();
	test_overlap();
	test_random_many();
	test_open_errors();
	rm_rf(base);
	return tap_done();
}
