#include "common/compat.h"

#include <errno.h>
#include <limits.h>
#include <lmdb.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "manifest/manifest.h"
#include "manifest/manifest_i.h"
#include "tests/unit/tap.h"
#include "tests/unit/testutil.h"

static char base[256];

static void path_of(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", base, name);
}

static struct manifest *open_ok(const char *dir, int mode)
{
	struct dth_err err;
	struct manifest *m = manifest_open(dir, mode, &err);
	if (!m)
		printf("# manifest_open %s: %s\n", dir, err.message);
	return m;
}

static void rec_make(struct obj_record *r, uint64_t size, int status)
{
	memset(r, 0, sizeof(*r));
	r->size = size;
	r->status = (uint8_t)status;
	r->last_modified = 1700000000 + (int64_t)size;
	snprintf(r->etag, sizeof(r->etag), "etag-%llu", (unsigned long long)size);
}

/* lexicographic byte order (S3 listing order) */
struct key {
	char *p;
	size_t n;
	uint64_t id;
};
static int bytes_cmp(const char *a, size_t al, const char *b, size_t bl)
{
	size_t n = al < bl ? al : bl;
	int r = n ? memcmp(a, b, n) : 0;
	if (r)
		return r;
	return al < bl ? -1 : al > bl;
}
static int key_cmp(const void *x, const void *y)
{
	const struct key *a = x, *b = y;
	return bytes_cmp(a->p, a->n, b->p, b->n);
}

static long db_entries(struct manifest *m, MDB_dbi dbi)
{
	MDB_txn *txn;
	MDB_stat st;
	if (mf_read_begin(m, &txn))
		return -1;
	int rc = mdb_stat(txn, dbi, &st);
	mf_read_end(m, txn);
	return rc ? -1 : (long)st.ms_entries;
}

/* ---- open, schema, default dir ---- */

static void test_default_dir(void)
{
	struct buf b = BUF_INIT;
	setenv("DTH_STATE_DIR", "/srv/state", 1);
	manifest_default_dir(&b);
	is_str(buf_str(&b), "/srv/state", "default dir: DTH_STATE_DIR wins");
	unsetenv("DTH_STATE_DIR");
	buf_reset(&b);
	manifest_default_dir(&b);
	if (geteuid() == 0)
		is_str(buf_str(&b), "/var/lib/dth", "default dir: root uses /var/lib/dth");
	else
		ok(strstr(buf_str(&b), "dth") != NULL, "default dir: user dir");
	buf_release(&b);

	/* the non-root rules, in a child that drops privileges */
	if (geteuid() == 0) {
		pid_t pid = fork();
		if (pid == 0) {
			if (setgid(65534) || setuid(65534))
				_exit(10);
			struct buf c = BUF_INIT;
			setenv("XDG_STATE_HOME", "/xdg", 1);
			manifest_default_dir(&c);
			if (strcmp(buf_str(&c), "/xdg/dth") != 0)
				_exit(1);
			buf_reset(&c);
			unsetenv("XDG_STATE_HOME");
			setenv("HOME", "/home/u", 1);
			manifest_default_dir(&c);
			if (strcmp(buf_str(&c), "/home/u/.local/state/dth") != 0)
				_exit(2);
			_exit(0);
		}
		int st = -1;
		waitpid(pid, &st, 0);
		ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		   "default dir: XDG_STATE_HOME, then ~/.local/state (child status %d)", st);
	}
}

static void test_open(void)
{
	char dir[512], p[600];
	struct dth_err err;
	path_of(dir, sizeof(dir), "none");
	struct manifest *m = manifest_open(dir, MANIFEST_RDONLY, &err);
	ok(m == NULL && err.code == -ENOENT, "open rdonly of a missing manifest: -ENOENT");
	ok(strstr(err.message, dir) != NULL, "the message names the directory: %s", err.message);

	path_of(dir, sizeof(dir), "new/a/b");
	m = open_ok(dir, MANIFEST_RDWR);
	ok(m != NULL, "open rdwr creates nested directories");
	struct stat st;
	ok(stat(dir, &st) == 0 && (st.st_mode & 0777) == 0700, "state directory is 0700");
	snprintf(p, sizeof(p), "%s/data.mdb", dir);
	ok(stat(p, &st) == 0 && (st.st_mode & 0077) == 0, "data.mdb is private");
	is_str(manifest_dir(m), dir, "manifest_dir");
	ok(db_entries(m, m->dbi_meta) >= 2, "meta holds schema and created");
	manifest_free(m);

	m = open_ok(dir, MANIFEST_RDONLY);
	ok(m != NULL, "reopen read-only");
	manifest_free(m);

	/* a manifest written by a newer dth */
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	int rc = mdb_env_create(&env);
	mdb_env_set_maxdbs(env, 16);
	rc = rc ? rc : mdb_env_open(env, dir, 0, 0600);
	rc = rc ? rc : mdb_txn_begin(env, NULL, 0, &txn);
	rc = rc ? rc : mdb_dbi_open(txn, "meta", 0, &dbi);
	MDB_val k = {6, "schema"}, v = {1, "3"};
	rc = rc ? rc : mdb_put(txn, dbi, &k, &v, 0);
	rc = rc ? rc : mdb_txn_commit(txn);
	mdb_env_close(env);
	is_int(rc, 0, "schema set to 3 behind dth's back");
	m = manifest_open(dir, MANIFEST_RDWR, &err);
	ok(m == NULL && err.code == -ENOTSUP, "rdwr open of a newer schema: -ENOTSUP");
	ok(strstr(err.message, "newer") != NULL, "message says newer: %s", err.message);
	m = manifest_open(dir, MANIFEST_RDONLY, &err);
	ok(m == NULL && err.code == -ENOTSUP, "rdonly open of a newer schema: -ENOTSUP");

	/* a directory that is a file */
	path_of(p, sizeof(p), "afile");
	FILE *f = fopen(p, "w");
	if (f)
		fclose(f);
	m = manifest_open(p, MANIFEST_RDWR, &err);
	ok(m == NULL && err.code < 0, "rdwr open on a file fails: %s", err.message);
}

/* ---- tasks ---- */

static int each_cb(void *ctx, uint32_t id, const struct task_record *rec)
{
	struct buf *b = ctx;
	buf_addf(b, "%u:%s,", id, rec->name);
	return strcmp(rec->name, "stop") == 0 ? 42 : 0;
}

static void test_tasks(struct manifest *m)
{
	struct task_record t, got;
	uint32_t id = 0, id2 = 0;
	bool created = false;
	memset(&t, 0, sizeof(t));
	str_copy_fit(t.name, "alpha", sizeof(t.name));
	str_copy_fit(t.src, "src:bucket/pre", sizeof(t.src));
	str_copy_fit(t.kind, "s3", sizeof(t.kind));
	is_int(manifest_task_find(m, "alpha", &id, NULL), -ENOENT, "task find before create");
	is_int(manifest_task_ensure(m, &t, &id, &created), 0, "task ensure creates");
	ok(id == 1 && created, "first task gets id 1 (%u)", id);
	is_int(manifest_task_ensure(m, &t, &id2, &created), 0, "task ensure again");
	ok(id2 == 1 && !created, "same task, not created again");
	str_copy_fit(t.name, "beta", sizeof(t.name));
	is_int(manifest_task_ensure(m, &t, &id2, &created), 0, "second task");
	ok(id2 == 2 && created, "second task gets id 2");
	is_int(manifest_task_find(m, "alpha", &id, &got), 0, "find alpha");
	ok(id == 1 && strcmp(got.src, "src:bucket/pre") == 0, "find returns the record");
	str_copy_fit(got.state, "running", sizeof(got.state));
	got.runs = 3;
	is_int(manifest_task_put(m, 1, &got), 0, "task put");
	is_int(manifest_task_find(m, "alpha", &id, &got), 0, "find after put");
	ok(strcmp(got.state, "running") == 0 && got.runs == 3, "put replaced the record");
	memset(&t, 0, sizeof(t));
	is_int(manifest_task_ensure(m, &t, &id, &created), -EINVAL, "task without a name");
	str_copy_fit(t.name, "stop", sizeof(t.name));
	is_int(manifest_task_ensure(m, &t, &id, &created), 0, "third task");
	str_copy_fit(t.name, "after", sizeof(t.name));
	is_int(manifest_task_ensure(m, &t, &id, &created), 0, "fourth task");
	struct buf b = BUF_INIT;
	is_int(manifest_task_each(m, each_cb, &b), 42, "task each returns fn's stop value");
	is_str(buf_str(&b), "1:alpha,2:beta,3:stop,", "task each in id order, stops");
	buf_release(&b);
}

/* ---- writer basics, uploads ---- */

static void test_writer_basic(struct manifest *m)
{
	struct dth_err err;
	struct manifest_writer *w = manifest_writer_new(m, 0, 0, &err);
	ok(w != NULL, "writer new");
	/* A second writer (the agent runs tasks side by side): both commit. */
	struct manifest_writer *w2 = manifest_writer_new(m, 0, 0, &err);
	ok(w2 != NULL, "a second writer at once");
	struct obj_record r, g;
	rec_make(&r, 5, OBJ_DONE);
	for (int i = 0; i < 50; i++) {
		char k[16];
		msg_snprintf(k, sizeof(k), "w2-%02d", i);
		if (manifest_writer_put_obj(w2, 9, k, strlen(k), &r))
			break;
	}
	is_int(manifest_writer_free(w2), 0, "second writer flushed and freed");
	struct task_stats st2;
	is_int(manifest_stats_get(m, 9, &st2), 0, "stats of its task");
	is_int(st2.count[OBJ_DONE], 50, "its 50 objects counted");
	rec_make(&r, 77, OBJ_DONE);
	str_copy_fit(r.dest_etag, "dest", sizeof(r.dest_etag));
	is_int(manifest_writer_put_obj(w, 1, "a/b.txt", 7, &r), 0, "put obj");
	is_int(manifest_writer_flush(w), 0, "flush");
	is_int(manifest_obj_get(m, 1, "a/b.txt", 7, &g), 0, "get obj");
	ok(g.size == 77 && g.status == OBJ_DONE && strcmp(g.dest_etag, "dest") == 0,
	   "obj round trips through lmdb");
	is_int(manifest_obj_get(m, 2, "a/b.txt", 7, &g), -ENOENT, "other task does not see it");
	is_int(manifest_obj_get(m, 1, "a/b.tx", 6, &g), -ENOENT, "prefix key is absent");
	struct task_stats st;
	is_int(manifest_stats_get(m, 1, &st), 0, "stats get");
	ok(st.count[OBJ_DONE] == 1 && st.bytes[OBJ_DONE] == 77, "stats count the put");
	is_int(manifest_writer_del_obj(w, 1, "a/b.txt", 7), 0, "del obj");
	is_int(manifest_writer_del_obj(w, 1, "missing", 7), 0, "del of a missing obj is fine");
	is_int(manifest_writer_flush(w), 0, "flush del");
	is_int(manifest_obj_get(m, 1, "a/b.txt", 7, &g), -ENOENT, "deleted");
	is_int(manifest_stats_get(m, 1, &st), 0, "stats after del");
	ok(st.count[OBJ_DONE] == 0 && st.bytes[OBJ_DONE] == 0, "stats back to zero");
	is_int(manifest_stats_get(m, 999, &st), 0, "stats of a task without objects");
	ok(st.count[OBJ_PENDING] == 0, "are zero");
	rec_make(&r, 1, OBJ__COUNT);
	is_int(manifest_writer_put_obj(w, 1, "x", 1, &r), -EINVAL, "invalid status refused");
	char big[MANIFEST_KEY_MAX + 1];
	memset(big, 'k', sizeof(big));
	rec_make(&r, 1, OBJ_DONE);
	is_int(manifest_writer_put_obj(w, 1, big, sizeof(big), &r), -ENAMETOOLONG,
	       "key over MANIFEST_KEY_MAX refused");
	is_int(manifest_obj_get(m, 1, big, sizeof(big), &g), -ENAMETOOLONG, "get too long");

	/* uploads with 10,000 parts */
	struct upload_record u, ug;
	memset(&u, 0, sizeof(u));
	str_copy_fit(u.upload_id, "upload-id-xyz", sizeof(u.upload_id));
	str_copy_fit(u.src_etag, "abc-10000", sizeof(u.src_etag));
	u.part_size = 8 << 20;
	u.part_count = 10000;
	u.n_parts = 10000;
	u.parts = calloc(u.n_parts, sizeof(*u.parts));
	for (uint32_t i = 0; i < u.n_parts; i++) {
		u.parts[i].number = i + 1;
		u.parts[i].size = u.part_size;
		snprintf(u.parts[i].etag, sizeof(u.parts[i].etag), "\"%032x\"", i * 2654435761u);
	}
	u.object_size = (uint64_t)u.part_size * u.n_parts;
	is_int(manifest_writer_put_upload(w, 1, "big.bin", 7, &u), 0, "put upload");
	is_int(manifest_writer_put_upload(w, 1, "big2.bin", 8, &u), 0, "put second upload");
	is_int(manifest_writer_flush(w), 0, "flush upload");
	is_int(manifest_upload_get(m, 1, "big.bin", 7, &ug), 0, "get upload");
	int same = ug.n_parts == 10000 && ug.object_size == u.object_size &&
		   strcmp(ug.upload_id, u.upload_id) == 0;
	for (uint32_t i = 0; same && i < 10000; i++)
		same =
		    ug.parts[i].number == i + 1 && strcmp(ug.parts[i].etag, u.parts[i].etag) == 0;
	ok(same, "upload with 10000 parts round trips");
	codec_upload_release(&ug);

	struct manifest_cursor *c = manifest_cursor_new(m, MANIFEST_UPLOADS, 1, NULL, NULL, &err);
	const char *k;
	size_t kl;
	int n = 0, parts_ok = 1;
	while (manifest_cursor_next_upload(c, &k, &kl, &ug) == 1) {
		n++;
		parts_ok = parts_ok && ug.n_parts == 10000 && ug.parts[9999].number == 10000;
	}
	ok(n == 2 && parts_ok, "upload cursor returns both uploads with parts");
	manifest_cursor_free(c);
	c = manifest_cursor_new(m, MANIFEST_UPLOADS, 1, NULL, "big2", &err);
	struct obj_record dummy;
	ok(manifest_cursor_next(c, &k, &kl, &dummy) == 1 && kl == 8 &&
	       memcmp(k, "big2.bin", 8) == 0,
	   "cursor_next on an uploads cursor gives keys");
	manifest_cursor_free(c);
	c = manifest_cursor_new(m, MANIFEST_OBJECTS, 1, NULL, NULL, &err);
	is_int(manifest_cursor_next_upload(c, &k, &kl, &ug), -EINVAL,
	       "next_upload on an objects cursor: -EINVAL");
	manifest_cursor_free(c);
	is_int(manifest_writer_del_upload(w, 1, "big.bin", 7), 0, "del upload");
	is_int(manifest_writer_del_upload(w, 1, "never", 5), 0, "del of a missing upload");
	is_int(manifest_writer_flush(w), 0, "flush");
	is_int(manifest_upload_get(m, 1, "big.bin", 7, &ug), -ENOENT, "upload deleted");
	is_int(manifest_upload_get(m, 1, "big2.bin", 8, &ug), 0, "other upload kept");
	codec_upload_release(&ug);
	free(u.parts);
	is_int(manifest_writer_free(w), 0, "writer free");
}

/* ---- stats in step with a random sequence ---- */

#define NKEYS 300
static void test_stats_random(struct manifest *m)
{
	struct dth_err err;
	struct manifest_writer *w = manifest_writer_new(m, 64, 5, &err);
	bool present[NKEYS] = {0};
	uint8_t status[NKEYS];
	uint64_t size[NKEYS];
	char keys[NKEYS][700];
	size_t klen[NKEYS];
	for (int i = 0; i < NKEYS; i++) {
		/* a third of the keys are long (past the 506-byte chunk) */
		if (i % 3 == 0) {
			memset(keys[i], 'L', 600);
			klen[i] = 600 + (size_t)snprintf(keys[i] + 600, 100, "/%05d", i);
		} else {
			klen[i] =
			    (size_t)snprintf(keys[i], sizeof(keys[i]), "dir%d/file-%05d", i % 7, i);
		}
	}
	int errs = 0;
	for (int op = 0; op < 5000; op++) {
		int i = (int)(rnd() % NKEYS);
		if (rnd() % 4 == 0) {
			errs += manifest_writer_del_obj(w, 7, keys[i], klen[i]) != 0;
			present[i] = false;
		} else {
			struct obj_record r;
			rec_make(&r, rnd() % 100000, (int)(rnd() % OBJ__COUNT));
			errs += manifest_writer_put_obj(w, 7, keys[i], klen[i], &r) != 0;
			present[i] = true;
			status[i] = r.status;
			size[i] = r.size;
		}
		if (op % 1000 == 999)
			errs += manifest_writer_flush(w) != 0;
	}
	errs += manifest_writer_flush(w) != 0;
	is_int(errs, 0, "5000 random puts/status changes/deletes accepted");
	struct task_stats want, got;
	memset(&want, 0, sizeof(want));
	int npresent = 0;
	for (int i = 0; i < NKEYS; i++)
		if (present[i]) {
			want.count[status[i]]++;
			want.bytes[status[i]] += size[i];
			npresent++;
		}
	is_int(manifest_stats_get(m, 7, &got), 0, "stats get");
	ok(memcmp(&want, &got, sizeof(want)) == 0, "stats match the model (%d objects)", npresent);
	for (int s = 0; s < OBJ__COUNT; s++)
		if (want.count[s] != got.count[s] || want.bytes[s] != got.bytes[s])
			printf("#   %s: want %llu/%llu got %llu/%llu\n", obj_status_name(s),
			       (unsigned long long)want.count[s], (unsigned long long)want.bytes[s],
			       (unsigned long long)got.count[s], (unsigned long long)got.bytes[s]);
	int match = 1;
	for (int i = 0; i < NKEYS; i++) {
		struct obj_record g;
		int rc = manifest_obj_get(m, 7, keys[i], klen[i], &g);
		if (present[i])
			match = match && rc == 0 && g.status == status[i] && g.size == size[i];
		else
			match = match && rc == -ENOENT;
	}
	ok(match, "every record matches the model");
	struct manifest_cursor *c = manifest_cursor_new(m, MANIFEST_OBJECTS, 7, NULL, NULL, &err);
	const char *k;
	size_t kl;
	int n = 0;
	while (manifest_cursor_next(c, &k, &kl, NULL) == 1)
		n++;
	manifest_cursor_free(c);
	is_int(n, npresent, "cursor sees exactly the present keys");
	is_int(manifest_writer_free(w), 0, "writer free");
}

/* ---- long keys and ordering ---- */

static const unsigned char alpha_nul[] = {0x00, 0x01, 'a', 'b', 0xff};
static const unsigned char alpha_str[] = {0x01, 'a', 'b', 0xff};

static size_t build_keys(struct key **out, const unsigned char *alpha, size_t na, char *b,
			 size_t blen)
{
	static const size_t lens[] = {0,    1,	  2,	250,  504,  505,  506,	507,  508,
				      509,  600,  1006, 1007, 1008, 1009, 1010, 1011, 1012,
				      1023, 1024, 1510, 1511, 1512, 2000, 4096};
	static const size_t poss[] = {0, 1, 300, 504, 505, 506, 507, 1007, 1008, 1009, 1010, 1511};
	size_t cap = 4096, n = 0;
	struct key *k = calloc(cap, sizeof(*k));
	for (size_t i = 0; i < blen; i++)
		b[i] = (char)alpha[rnd() % na];
	for (size_t li = 0; li < ARRAY_SIZE(lens); li++) {
		size_t L = lens[li];
		if (L > blen)
			continue;
		k[n].p = malloc(L + 1);
		memcpy(k[n].p, b, L);
		k[n++].n = L;
		for (size_t pi = 0; pi < ARRAY_SIZE(poss); pi++) {
			if (poss[pi] >= L)
				continue;
			for (size_t a = 0; a < na; a++) {
				if ((unsigned char)b[poss[pi]] == alpha[a])
					continue;
				k[n].p = malloc(L + 1);
				memcpy(k[n].p, b, L);
				k[n].p[poss[pi]] = (char)alpha[a];
				k[n++].n = L;
			}
		}
	}
	/* random keys sharing a random part of the base */
	while (n < cap - 1) {
		size_t L = 1 + rnd() % 1024, share = rnd() % (L + 1);
		k[n].p = malloc(L + 1);
		memcpy(k[n].p, b, share);
		for (size_t i = share; i < L; i++)
			k[n].p[i] = (char)alpha[rnd() % na];
		k[n++].n = L;
		if (n > 1500)
			break;
	}
	qsort(k, n, sizeof(*k), key_cmp);
	size_t u = 0;
	for (size_t i = 0; i < n; i++) {
		if (u && key_cmp(&k[u - 1], &k[i]) == 0) {
			free(k[i].p);
			continue;
		}
		k[u++] = k[i];
	}
	for (size_t i = 0; i < u; i++)
		k[i].id = i;
	*out = k;
	return u;
}

static void insert_random(struct manifest_writer *w, uint32_t task, struct key *k, size_t n,
			  int *errs)
{
	size_t *ord = malloc(n * sizeof(*ord));
	for (size_t i = 0; i < n; i++)
		ord[i] = i;
	for (size_t i = n; i > 1; i--) {
		size_t j = rnd() % i, t = ord[i - 1];
		ord[i - 1] = ord[j];
		ord[j] = t;
	}
	for (size_t i = 0; i < n; i++) {
		struct obj_record r;
		rec_make(&r, k[ord[i]].id, OBJ_DONE);
		*errs += manifest_writer_put_obj(w, task, k[ord[i]].p, k[ord[i]].n, &r) != 0;
	}
	free(ord);
}

/* Scan with prefix/start and compare with the model; returns mismatches. */
static int scan_check(struct manifest *m, uint32_t task, struct key *k, size_t n,
		      const char *prefix, const char *start, size_t *seen)
{
	struct dth_err err;
	struct manifest_cursor *c =
	    manifest_cursor_new(m, MANIFEST_OBJECTS, task, prefix, start, &err);
	if (!c)
		return 1;
	size_t pl = prefix ? strlen(prefix) : 0, sl = start ? strlen(start) : 0;
	size_t i = 0, bad = 0;
	const char *key;
	size_t kl;
	struct obj_record r;
	*seen = 0;
	int rc;
	while ((rc = manifest_cursor_next(c, &key, &kl, &r)) == 1) {
		/* next expected model key */
		while (i < n && ((pl && (k[i].n < pl || memcmp(k[i].p, prefix, pl) != 0)) ||
				 (start && bytes_cmp(k[i].p, k[i].n, start, sl) < 0)))
			i++;
		if (i >= n || bytes_cmp(key, kl, k[i].p, k[i].n) != 0 || r.size != k[i].id)
			bad++;
		i++;
		(*seen)++;
	}
	if (rc < 0)
		bad++;
	while (i < n) {
		if (!((pl && (k[i].n < pl || memcmp(k[i].p, prefix, pl) != 0)) ||
		      (start && bytes_cmp(k[i].p, k[i].n, start, sl) < 0)))
			bad++; /* missed */
		i++;
	}
	manifest_cursor_free(c);
	return (int)bad;
}

static void test_long_keys(struct manifest *m)
{
	struct dth_err err;
	struct manifest_writer *w = manifest_writer_new(m, 100, 5, &err);
	char *b = malloc(4096);
	struct key *k;
	size_t n = build_keys(&k, alpha_nul, sizeof(alpha_nul), b, 4096);
	int errs = 0;
	long long_before = db_entries(m, m->dbi_long); /* other tasks' long keys */
	insert_random(w, 20, k, n, &errs);
	errs += manifest_writer_flush(w) != 0;
	is_int(errs, 0, "%zu keys with NUL, 0x01, 0xff, lengths 0..4096 inserted", n);
	ok(db_entries(m, m->dbi_long) > long_before, "long keys use the longkeys database");
	size_t seen;
	is_int(scan_check(m, 20, k, n, NULL, NULL, &seen), 0, "full scan in exact byte order");
	is_int(seen, n, "full scan sees all %zu keys", n);
	int gets = 0;
	for (size_t i = 0; i < n; i++) {
		struct obj_record r;
		gets += manifest_obj_get(m, 20, k[i].p, k[i].n, &r) != 0 || r.size != k[i].id;
	}
	is_int(gets, 0, "point get of every key");
	struct task_stats st;
	(void)!manifest_stats_get(m, 20, &st);
	is_int(st.count[OBJ_DONE], n, "stats count every key once");

	/* delete the long ones: their groups disappear */
	for (size_t i = 0; i < n; i++)
		if (k[i].n > 506)
			errs += manifest_writer_del_obj(w, 20, k[i].p, k[i].n) != 0;
	errs += manifest_writer_flush(w) != 0;
	is_int(errs, 0, "long keys deleted");
	is_int(db_entries(m, m->dbi_long), long_before, "their groups left the longkeys database");
	size_t u = 0;
	for (size_t i = 0; i < n; i++) {
		if (k[i].n > 506)
			free(k[i].p);
		else
			k[u++] = k[i];
	}
	is_int(scan_check(m, 20, k, u, NULL, NULL, &seen), 0, "short keys intact");
	is_int(seen, u, "%zu short keys remain", u);
	for (size_t i = 0; i < u; i++) {
		errs += manifest_writer_del_obj(w, 20, k[i].p, k[i].n) != 0;
		free(k[i].p);
	}
	errs += manifest_writer_flush(w) != 0;
	free(k);
	(void)!manifest_stats_get(m, 20, &st);
	ok(errs == 0 && st.count[OBJ_DONE] == 0 && st.bytes[OBJ_DONE] == 0, "all gone, stats zero");

	/* without NUL: prefix and start scans */
	n = build_keys(&k, alpha_str, sizeof(alpha_str), b, 4096);
	insert_random(w, 21, k, n, &errs);
	errs += manifest_writer_flush(w) != 0;
	is_int(errs, 0, "%zu NUL-free keys inserted", n);
	is_int(scan_check(m, 21, k, n, NULL, NULL, &seen), 0, "full scan");
	static const size_t plens[] = {1, 2, 100, 505, 506, 507, 508, 1000, 1008, 1009, 1010, 1024};
	int bad = 0, total = 0;
	char pfx[2048];
	for (size_t i = 0; i < ARRAY_SIZE(plens); i++) {
		memcpy(pfx, b, plens[i]);
		pfx[plens[i]] = '\0';
		bad += scan_check(m, 21, k, n, pfx, NULL, &seen);
		total += (int)seen;
		/* a prefix that only misses its last byte's neighbour */
		pfx[plens[i] - 1] = (char)(pfx[plens[i] - 1] == 'a' ? 'b' : 'a');
		bad += scan_check(m, 21, k, n, pfx, NULL, &seen);
	}
	is_int(bad, 0, "prefix scans (boundary lengths) match the model");
	ok(total > (int)ARRAY_SIZE(plens), "prefix scans returned keys (%d)", total);
	bad = 0;
	for (int t = 0; t < 200; t++) {
		size_t i = rnd() % n;
		if (k[i].n == 0 || k[i].n >= sizeof(pfx))
			continue;
		memcpy(pfx, k[i].p, k[i].n);
		pfx[k[i].n] = '\0';
		switch (t % 4) {
		case 0: /* an existing key */
			break;
		case 1: /* just after an existing key */
			pfx[k[i].n] = 0x01;
			pfx[k[i].n + 1] = '\0';
			break;
		case 2: /* a truncation */
			pfx[rnd() % k[i].n] = '\0';
			break;
		case 3: /* a bumped byte */
			pfx[rnd() % k[i].n] = 'b';
			break;
		}
		bad += scan_check(m, 21, k, n, NULL, pfx, &seen);
		/* start with a prefix: the base's first 506 bytes */
		char p2[600];
		memcpy(p2, b, 506);
		p2[506] = '\0';
		bad += scan_check(m, 21, k, n, p2, pfx, &seen);
		p2[5] = '\0';
		bad += scan_check(m, 21, k, n, p2, pfx, &seen);
	}
	is_int(bad, 0, "start-key scans (with and without prefix) match the model");
	for (size_t i = 0; i < n; i++)
		free(k[i].p);
	free(k);
	free(b);
	is_int(manifest_writer_free(w), 0, "writer free");
}

/* ---- cursor renewal with a concurrent writer ---- */

static void test_cursor_renewal(struct manifest *m)
{
	struct dth_err err;
	struct manifest_writer *w = manifest_writer_new(m, 500, 5, &err);
	const int N = 40000;
	char key[64];
	int errs = 0;
	struct obj_record r;
	for (int i = 0; i < N; i += 2) {
		int n = snprintf(key, sizeof(key), "k%08d", i);
		rec_make(&r, (uint64_t)i, OBJ_PENDING);
		errs += manifest_writer_put_obj(w, 30, key, (size_t)n, &r) != 0;
	}
	errs += manifest_writer_flush(w) != 0;
	is_int(errs, 0, "%d keys written", N / 2);

	struct manifest_cursor *c = manifest_cursor_new(m, MANIFEST_OBJECTS, 30, "k", NULL, &err);
	const char *k;
	size_t kl;
	char prev[64] = "";
	int seen = 0, evens = 0, order_ok = 1, far_ahead = 0, behind_seen = 0, updated_seen = 0;
	int rc;
	static bool wrote_behind[40000];
	while ((rc = manifest_cursor_next(c, &k, &kl, &r)) == 1) {
		char cur[64];
		memcpy(cur, k, kl);
		cur[kl] = '\0';
		if (seen && strcmp(prev, cur) >= 0)
			order_ok = 0;
		memcpy(prev, cur, kl + 1);
		int num = atoi(cur + 1);
		if (num % 2 == 0)
			evens++;
		else if (wrote_behind[num])
			behind_seen++;
		else
			far_ahead++;
		if (num % 2 == 0 && r.status == OBJ_DONE)
			updated_seen++;
		seen++;
		if (seen % 1000 == 0 && num + 10000 < N) {
			/* behind the cursor: a new key and an update */
			for (int j = 1; j < 20 && num - j * 2 - 1 > 0; j++) {
				int b = num - j * 2 - 1;
				wrote_behind[b] = true;
				int n = snprintf(key, sizeof(key), "k%08d", b);
				rec_make(&r, (uint64_t)b, OBJ_PENDING);
				errs += manifest_writer_put_obj(w, 30, key, (size_t)n, &r) != 0;
			}
			/* well ahead of it (more than one renewal interval of 4096
			 * records): a new key, and an update of an existing one */
			int a = num + 9001;
			int n = snprintf(key, sizeof(key), "k%08d", a);
			rec_make(&r, (uint64_t)a, OBJ_PENDING);
			errs += manifest_writer_put_obj(w, 30, key, (size_t)n, &r) != 0;
			n = snprintf(key, sizeof(key), "k%08d", num + 9000);
			rec_make(&r, (uint64_t)(num + 9000), OBJ_DONE);
			errs += manifest_writer_put_obj(w, 30, key, (size_t)n, &r) != 0;
			errs += manifest_writer_flush(w) != 0;
		}
	}
	manifest_cursor_free(c);
	is_int(rc, 0, "scan ended cleanly");
	is_int(errs, 0, "writes during the scan committed");
	ok(order_ok, "keys strictly increasing across renewals");
	is_int(evens, N / 2, "every original key seen exactly once");
	is_int(behind_seen, 0, "keys written behind the cursor not seen");
	ok(far_ahead >= 10, "keys written well ahead seen after renewal (%d)", far_ahead);
	ok(updated_seen >= 10, "updates well ahead seen after renewal (%d)", updated_seen);
	is_int(manifest_writer_free(w), 0, "writer free");
}

/* ---- map growth under a live cursor, and the size limit ---- */

static void test_map_growth(void)
{
	char dir[512];
	path_of(dir, sizeof(dir), "grow");
	size_t old_init = manifest_map_initial;
	manifest_map_initial = 256 << 10;
	struct manifest *m = open_ok(dir, MANIFEST_RDWR);
	manifest_map_initial = old_init;
	ok(m != NULL, "open with a 256 KiB map");
	struct dth_err err;
	struct manifest_writer *w = manifest_writer_new(m, 200, 5, &err);
	struct obj_record r;
	char key[64];
	int errs = 0;
	for (int i = 0; i < 2000; i += 2) {
		int n = snprintf(key, sizeof(key), "g%06d", i);
		rec_make(&r, (uint64_t)i, OBJ_DONE);
		errs += manifest_writer_put_obj(w, 1, key, (size_t)n, &r) != 0;
	}
	errs += manifest_writer_flush(w) != 0;
	MDB_envinfo info;
	mdb_env_info(m->env, &info);
	size_t before = info.me_mapsize;
	struct manifest_cursor *c = manifest_cursor_new(m, MANIFEST_OBJECTS, 1, NULL, NULL, &err);
	const char *k;
	size_t kl;
	int seen = 0, order = 1, rc;
	char prev[64] = "";
	while ((rc = manifest_cursor_next(c, &k, &kl, &r)) == 1) {
		if (strncmp(prev, k, kl) >= 0 && seen)
			order = 0;
		memcpy(prev, k, kl);
		prev[kl] = '\0';
		seen++;
		if (seen == 10) {
			/* enough big records to force several doublings */
			for (int i = 0; i < 6000; i++) {
				int n = snprintf(key, sizeof(key), "h%06d", i);
				rec_make(&r, 1, OBJ_FAILED);
				memset(r.last_error, 'e', sizeof(r.last_error) - 1);
				errs += manifest_writer_put_obj(w, 1, key, (size_t)n, &r) != 0;
			}
			errs += manifest_writer_flush(w) != 0;
		}
	}
	manifest_cursor_free(c);
	mdb_env_info(m->env, &info);
	is_int(errs, 0, "writes needing a bigger map succeeded");
	ok(info.me_mapsize > before, "map grew (%zu -> %zu)", before, info.me_mapsize);
	ok(order && rc == 0, "cursor survived the growth in order");
	is_int(seen, 1000 + 6000, "cursor saw old keys and the new ones ahead");
	is_int(manifest_writer_free(w), 0, "writer free");
	manifest_free(m);

	/* the limit: -ENOSPC, sticky, database stays consistent */
	path_of(dir, sizeof(dir), "full");
	size_t old_max = manifest_map_max;
	manifest_map_initial = 256 << 10;
	manifest_map_max = 1 << 20; /* 256 KiB, 512 KiB, 1 MiB, then -ENOSPC */
	m = open_ok(dir, MANIFEST_RDWR);
	manifest_map_initial = old_init;
	w = manifest_writer_new(m, 50, 5, &err);
	int committed = 0, frc = 0;
	for (int round = 0; round < 100 && !frc; round++) {
		for (int i = 0; i < 50; i++) {
			int n = snprintf(key, sizeof(key), "f%03d-%04d", round, i);
			rec_make(&r, 10, OBJ_FAILED);
			memset(r.last_error, 'x', sizeof(r.last_error) - 1);
			if (manifest_writer_put_obj(w, 1, key, (size_t)n, &r) != 0)
				break;
		}
		frc = manifest_writer_flush(w);
		if (!frc)
			committed += 50;
	}
	is_int(frc, -ENOSPC, "writing past the map limit: -ENOSPC");
	rec_make(&r, 1, OBJ_DONE);
	is_int(manifest_writer_put_obj(w, 1, "late", 4, &r), -ENOSPC, "the error is sticky");
	is_int(manifest_writer_free(w), -ENOSPC, "writer free returns it");
	manifest_free(m);
	manifest_map_max = old_max;
	m = open_ok(dir, MANIFEST_RDWR);
	ok(m != NULL, "reopen after -ENOSPC");
	c = manifest_cursor_new(m, MANIFEST_OBJECTS, 1, NULL, NULL, &err);
	seen = 0;
	while (manifest_cursor_next(c, &k, &kl, NULL) == 1)
		seen++;
	manifest_cursor_free(c);
	struct task_stats st;
	(void)!manifest_stats_get(m, 1, &st);
	ok(committed > 0 && seen >= committed && seen < committed + 50,
	   "every committed batch is there, the failed one is not (%d, %d)", seen, committed);
	is_int(st.count[OBJ_FAILED], seen, "stats consistent with the records");
	manifest_free(m);
}

/* ---- a read-only process beside the writer ---- */

static int child_reader(const char *dir, int rfd, int wfd)
{
	char ch;
	struct dth_err err;
	struct manifest *m = manifest_open(dir, MANIFEST_RDONLY, &err);
	if (!m)
		return 1;
	struct obj_record r;
	if (manifest_obj_get(m, 1, "p000010", 7, &r) != 0 || r.size != 10)
		return 2;
	struct manifest_cursor *c = manifest_cursor_new(m, MANIFEST_OBJECTS, 1, NULL, NULL, &err);
	const char *k;
	size_t kl;
	int n = 0;
	while (manifest_cursor_next(c, &k, &kl, NULL) == 1)
		n++;
	manifest_cursor_free(c);
	if (n != 100)
		return 3;
	struct task_record t;
	memset(&t, 0, sizeof(t));
	str_copy_fit(t.name, "newtask", sizeof(t.name));
	uint32_t id;
	if (manifest_task_ensure(m, &t, &id, NULL) != -EROFS)
		return 4;
	if (manifest_writer_new(m, 0, 0, &err) != NULL || err.code != -EROFS)
		return 5;
	if (write(wfd, "1", 1) != 1 || read(rfd, &ch, 1) != 1)
		return 6;
	/* the parent has grown the map meanwhile */
	c = manifest_cursor_new(m, MANIFEST_OBJECTS, 1, NULL, NULL, &err);
	if (!c)
		return 7;
	n = 0;
	int rc;
	while ((rc = manifest_cursor_next(c, &k, &kl, &r)) == 1)
		n++;
	manifest_cursor_free(c);
	if (rc != 0 || n != 100 + 8000)
		return 8;
	if (manifest_obj_get(m, 1, "q007999", 7, &r) != 0 || r.size != 7999)
		return 9;
	struct task_stats st;
	if (manifest_stats_get(m, 1, &st) != 0 || st.count[OBJ_DONE] != 8100)
		return 10;
	manifest_free(m);
	return 0;
}

static void test_rdonly_process(void)
{
	char dir[512];
	path_of(dir, sizeof(dir), "shared");
	size_t old_init = manifest_map_initial;
	manifest_map_initial = 256 << 10;
	struct manifest *m = open_ok(dir, MANIFEST_RDWR);
	manifest_map_initial = old_init;
	struct dth_err err;
	struct manifest_writer *w = manifest_writer_new(m, 100, 5, &err);
	struct obj_record r;
	char key[64];
	int errs = 0;
	for (int i = 0; i < 100; i++) {
		int n = snprintf(key, sizeof(key), "p%06d", i);
		rec_make(&r, (uint64_t)i, OBJ_DONE);
		errs += manifest_writer_put_obj(w, 1, key, (size_t)n, &r) != 0;
	}
	errs += manifest_writer_flush(w) != 0;
	int to_child[2], to_parent[2];
	if (pipe(to_child) || pipe(to_parent)) {
		ok(0, "pipe");
		return;
	}
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		close(to_child[1]);
		close(to_parent[0]);
		_exit(child_reader(dir, to_child[0], to_parent[1]));
	}
	close(to_child[0]);
	close(to_parent[1]);
	char ch;
	ok(read(to_parent[0], &ch, 1) == 1, "child read the manifest while it is open rdwr");
	MDB_envinfo info;
	mdb_env_info(m->env, &info);
	size_t before = info.me_mapsize;
	for (int i = 0; i < 8000; i++) {
		int n = snprintf(key, sizeof(key), "q%06d", i);
		rec_make(&r, (uint64_t)i, OBJ_DONE);
		memset(r.last_error, 'y', 200);
		errs += manifest_writer_put_obj(w, 1, key, (size_t)n, &r) != 0;
	}
	errs += manifest_writer_flush(w) != 0;
	mdb_env_info(m->env, &info);
	ok(info.me_mapsize > before, "parent grew the map under the child");
	is_int(errs, 0, "parent writes succeeded");
	ok(write(to_child[1], "2", 1) == 1, "tell child");
	int st = -1;
	waitpid(pid, &st, 0);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	   "read-only child: point get, scan, -EROFS, MAP_RESIZED adopted (exit %d)",
	   WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	close(to_child[1]);
	close(to_parent[0]);
	is_int(manifest_writer_free(w), 0, "writer free");
	manifest_free(m);
}

/* ---- a real full filesystem: a 3 MiB tmpfs in a private mount namespace ---- */

static int full_disk_child(const char *dir)
{
	if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
		return 77;
	mkdir(dir, 0700);
	if (mount("tmpfs", dir, "tmpfs", 0, "size=3m") != 0)
		return 77;
	char sd[600];
	snprintf(sd, sizeof(sd), "%s/state", dir);
	struct dth_err err;
	struct manifest *m = manifest_open(sd, MANIFEST_RDWR, &err);
	if (!m)
		return 1;
	struct manifest_writer *w = manifest_writer_new(m, 100, 5, &err);
	int committed = 0, rc = 0;
	char key[64];
	struct obj_record r;
	for (int round = 0; round < 1000 && !rc; round++) {
		for (int i = 0; i < 100; i++) {
			int n = snprintf(key, sizeof(key), "d%04d-%03d", round, i);
			rec_make(&r, 1, OBJ_DONE);
			memset(r.last_error, 'z', 250);
			if (manifest_writer_put_obj(w, 1, key, (size_t)n, &r) != 0)
				break;
		}
		rc = manifest_writer_flush(w);
		if (!rc)
			committed += 100;
	}
	if (rc != -ENOSPC || committed == 0)
		return 2;
	rec_make(&r, 1, OBJ_DONE);
	if (manifest_writer_put_obj(w, 1, "late", 4, &r) != -ENOSPC)
		return 3;
	if (manifest_writer_free(w) != -ENOSPC)
		return 4;
	manifest_free(m);
	m = manifest_open(sd, MANIFEST_RDONLY, &err);
	if (!m)
		return 5;
	struct manifest_cursor *c = manifest_cursor_new(m, MANIFEST_OBJECTS, 1, NULL, NULL, &err);
	const char *k;
	size_t kl;
	int n = 0;
	while (manifest_cursor_next(c, &k, &kl, NULL) == 1)
		n++;
	manifest_cursor_free(c);
	struct task_stats st;
	if (manifest_stats_get(m, 1, &st) != 0 || st.count[OBJ_DONE] != (uint64_t)n)
		return 6;
	if (n < committed || n >= committed + 100)
		return 7;
	manifest_free(m);
	return 0;
}

static void test_full_disk(void)
{
	char dir[512];
	path_of(dir, sizeof(dir), "tiny");
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0)
		_exit(full_disk_child(dir));
	int st = -1;
	waitpid(pid, &st, 0);
	int code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	if (code == 77)
		ok(1, "# SKIP full filesystem: cannot mount a tmpfs here");
	else
		ok(code == 0,
		   "full filesystem: -ENOSPC, sticky, committed batches intact (exit %d)", code);
}

/* ---- reopen, concurrent producers ---- */

static void test_reopen(const char *dir)
{
	struct manifest *m = open_ok(dir, MANIFEST_RDWR);
	uint32_t id;
	struct task_record t;
	ok(m && manifest_task_find(m, "beta", &id, &t) == 0 && id == 2, "task survives reopen");
	struct upload_record u;
	ok(manifest_upload_get(m, 1, "big2.bin", 8, &u) == 0 && u.n_parts == 10000,
	   "upload survives reopen");
	codec_upload_release(&u);
	struct task_stats st;
	(void)!manifest_stats_get(m, 21, &st);
	ok(st.count[OBJ_DONE] > 1000, "objects and stats survive reopen");
	manifest_free(m);
	m = open_ok(dir, MANIFEST_RDONLY);
	ok(m && manifest_task_find(m, "alpha", &id, &t) == 0 && strcmp(t.state, "running") == 0,
	   "read-only reopen sees the data");
	manifest_free(m);
}

/* Task notes: put, get, replace, delete, bounds, and gone with a purge. */
static void test_notes(void)
{
	char dir[512];
	path_of(dir, sizeof(dir), "notes");
	struct manifest *m = open_ok(dir, MANIFEST_RDWR);
	struct task_record t;
	memset(&t, 0, sizeof(t));
	str_copy_fit(t.name, "noted", sizeof(t.name));
	str_copy_fit(t.kind, "s3", sizeof(t.kind));
	uint32_t id, other;
	bool created;
	is_int(manifest_task_ensure(m, &t, &id, &created), 0, "notes: a task");
	str_copy_fit(t.name, "other", sizeof(t.name));
	is_int(manifest_task_ensure(m, &t, &other, &created), 0, "notes: another task");
	struct buf b = BUF_INIT;
	is_int(manifest_task_note_get(m, id, "shard", &b), -ENOENT, "notes: none yet");
	is_int(manifest_task_note_put(m, id, "shard", "1/4 even", 8), 0, "notes: put");
	is_int(manifest_task_note_put(m, other, "shard", "2/4 even", 8), 0, "notes: other's");
	ok(manifest_task_note_get(m, id, "shard", &b) == 0 && b.len == 8 &&
	       !memcmp(b.data, "1/4 even", 8),
	   "notes: read back");
	is_int(manifest_task_note_put(m, id, "shard", "0/2 even", 8), 0, "notes: replaced");
	ok(manifest_task_note_get(m, id, "shard", &b) == 0 && !memcmp(b.data, "0/2 even", 8),
	   "notes: the new value");
	char *big = xcalloc(1, MANIFEST_NOTE_MAX + 1);
	is_int(manifest_task_note_put(m, id, "sample", big, MANIFEST_NOTE_MAX + 1), -EINVAL,
	       "notes: over the bound refused");
	is_int(manifest_task_note_put(m, id, "sample", big, MANIFEST_NOTE_MAX), 0,
	       "notes: at the bound kept");
	free(big);
	is_int(manifest_task_note_put(m, id, "", "x", 1), -EINVAL, "notes: empty name refused");
	is_int(manifest_task_note_del(m, id, "sample"), 0, "notes: deleted");
	is_int(manifest_task_note_get(m, id, "sample", &b), -ENOENT, "notes: gone");
	is_int(manifest_task_note_put(m, id, "sample", "s", 1), 0, "notes: put again");
	struct dth_err err;
	is_int(manifest_task_purge(m, id, &err), 0, "notes: the task purged");
	ok(manifest_task_note_get(m, id, "shard", &b) == -ENOENT &&
	       manifest_task_note_get(m, id, "sample", &b) == -ENOENT,
	   "notes: the purge took the task's notes");
	ok(manifest_task_note_get(m, other, "shard", &b) == 0 && !memcmp(b.data, "2/4 even", 8),
	   "notes: the other task's note kept");
	manifest_free(m);
	m = open_ok(dir, MANIFEST_RDONLY);
	is_int(manifest_task_note_put(m, other, "shard", "x", 1), -EROFS,
	       "notes: read-only refused");
	ok(manifest_task_note_get(m, other, "shard", &b) == 0, "notes: read-only reads");
	manifest_free(m);
	buf_release(&b);
}

struct producer {
	struct manifest_writer *w;
	int base;
	int errs;
};

static void *producer_main(void *arg)
{
	struct producer *p = arg;
	char key[64];
	struct obj_record r;
	for (int i = 0; i < 10000; i++) {
		int n = snprintf(key, sizeof(key), "t%d-%05d", p->base, i);
		rec_make(&r, (uint64_t)i, OBJ_COPYING);
		p->errs += manifest_writer_put_obj(p->w, 50, key, (size_t)n, &r) != 0;
	}
	return NULL;
}

static void test_producers(struct manifest *m)
{
	struct dth_err err;
	/* tiny batches: the bounded queue fills and producers wait */
	struct manifest_writer *w = manifest_writer_new(m, 50, 1, &err);
	pthread_t th[2];
	struct producer p[2] = {{w, 0, 0}, {w, 1, 0}};
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, producer_main, &p[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	is_int(p[0].errs + p[1].errs, 0, "two producers enqueued 20000 ops");
	is_int(manifest_writer_free(w), 0, "free flushes everything");
	struct task_stats st;
	(void)!manifest_stats_get(m, 50, &st);
	is_int(st.count[OBJ_COPYING], 20000, "all 20000 committed");
	struct obj_record r;
	ok(manifest_obj_get(m, 50, "t1-09999", 8, &r) == 0 && r.size == 9999, "last op present");
}

struct repos_ctx {
	struct buf names;
	int n;
};

static int repos_cb(void *ctx, const struct blob_record *r)
{
	struct repos_ctx *c = ctx;
	buf_adds(&c->names, r->repo);
	buf_addch(&c->names, ',');
	c->n++;
	return 0;
}

static int stop_cb(void *ctx, const struct blob_record *r)
{
	(void)ctx, (void)r;
	return 42;
}

static void test_images_blobs(struct manifest *m)
{
	struct dth_err err;
	struct manifest_writer *w = manifest_writer_new(m, 0, 0, &err);
	ok(w != NULL, "images: writer");
	if (!w)
		return;
	struct image_record r, got;
	memset(&r, 0, sizeof(r));
	str_copy_fit(r.src_digest, "sha256:1111", sizeof(r.src_digest));
	str_copy_fit(r.media_type, "application/vnd.oci.image.index.v1+json", sizeof(r.media_type));
	r.status = OBJ_DONE;
	const char *refs[] = {"lib/alpine:3.19", "lib/alpine:latest", "bench/r01:v1", "zz:1"};
	int bad = 0;
	for (size_t i = 0; i < ARRAY_SIZE(refs); i++)
		bad += manifest_writer_put_image(w, 77, refs[i], strlen(refs[i]), &r) != 0;
	bad += manifest_writer_put_image(w, 78, "other:1", 7, &r) != 0;
	is_int(bad, 0, "images: four records of task 77, one of 78 queued");
	r.status = OBJ__COUNT;
	is_int(manifest_writer_put_image(w, 77, "x:1", 3, &r), -EINVAL,
	       "images: bad status refused");

	struct blob_record b;
	memset(&b, 0, sizeof(b));
	b.size = 1234;
	b.seen_at = 99;
	const char *reg = "http://127.0.0.1:5001";
	bad = manifest_writer_put_blob(w, reg, "lib/alpine", "sha256:aaaa", &b) != 0;
	bad += manifest_writer_put_blob(w, reg, "bench/r01", "sha256:aaaa", &b) != 0;
	bad += manifest_writer_put_blob(w, reg, "bench/r01", "sha256:aaaab", &b) != 0;
	bad += manifest_writer_put_blob(w, "http://127.0.0.1:5002", "lib/alpine", "sha256:aaaa",
					&b) != 0;
	is_int(bad, 0, "blobs: four records queued");
	is_int(manifest_writer_put_blob(w, reg, "", "sha256:aaaa", &b), -EINVAL,
	       "blobs: empty repository refused");
	is_int(manifest_writer_put_blob(w, reg, "r", "", &b), -EINVAL,
	       "blobs: empty digest refused");
	is_int(manifest_writer_flush(w), 0, "images and blobs committed");

	is_int(manifest_image_get(m, 77, "lib/alpine:latest", 17, &got), 0, "image get");
	ok(!strcmp(got.src_digest, "sha256:1111") && got.status == OBJ_DONE &&
	       !strcmp(got.media_type, "application/vnd.oci.image.index.v1+json"),
	   "image record round trips");
	is_int(manifest_image_get(m, 77, "other:1", 7, &got), -ENOENT, "image of another task");

	struct manifest_cursor *c = manifest_cursor_new(m, MANIFEST_IMAGES, 77, NULL, NULL, &err);
	struct buf seen = BUF_INIT;
	const char *k;
	size_t kl;
	int rc;
	while ((rc = manifest_cursor_next_image(c, &k, &kl, &got)) == 1) {
		buf_add(&seen, k, kl);
		buf_addch(&seen, ',');
	}
	is_int(rc, 0, "image cursor ends cleanly");
	is_str(seen.data, "bench/r01:v1,lib/alpine:3.19,lib/alpine:latest,zz:1,",
	       "image cursor: the task's refs in order");
	is_int(manifest_cursor_next(c, &k, &kl, NULL), 0, "image cursor stays ended");
	manifest_cursor_free(c);
	c = manifest_cursor_new(m, MANIFEST_IMAGES, 77, "lib/", NULL, &err);
	buf_reset(&seen);
	while ((rc = manifest_cursor_next_image(c, &k, &kl, &got)) == 1)
		buf_add(&seen, k, kl);
	is_str(seen.data, "lib/alpine:3.19lib/alpine:latest", "image cursor with a prefix");
	is_int(manifest_cursor_next_upload(c, &k, &kl, NULL), -EINVAL,
	       "an image cursor is not an upload cursor");
	manifest_cursor_free(c);

	struct blob_record bg;
	is_int(manifest_blob_get(m, reg, "bench/r01", "sha256:aaaa", &bg), 0, "blob get");
	ok(bg.size == 1234 && bg.seen_at == 99 && !strcmp(bg.repo, "bench/r01"), "blob record");
	is_int(manifest_blob_get(m, reg, "bench/r02", "sha256:aaaa", &bg), -ENOENT,
	       "blob of another repository");
	is_int(manifest_blob_get(m, reg, "bench/r01", "sha256:aaa", &bg), -ENOENT,
	       "blob with a digest that is a prefix of a known one");
	struct repos_ctx rc2 = {BUF_INIT, 0};
	is_int(manifest_blob_repos(m, reg, "sha256:aaaa", repos_cb, &rc2), 0, "blob repos");
	is_int(rc2.n, 2, "two repositories of that registry hold the digest");
	ok(strstr(rc2.names.data, "lib/alpine,") && strstr(rc2.names.data, "bench/r01,"),
	   "both named (not the other registry's, not the longer digest's)");
	is_int(manifest_blob_repos(m, reg, "sha256:aaaa", stop_cb, NULL), 42,
	       "a callback's non-zero return stops and is returned");
	is_int(manifest_writer_del_blob(w, reg, "lib/alpine", "sha256:aaaa"), 0, "blob delete");
	is_int(manifest_writer_del_image(w, 77, "zz:1", 4), 0, "image delete");
	is_int(manifest_writer_flush(w), 0, "deletes committed");
	is_int(manifest_blob_get(m, reg, "lib/alpine", "sha256:aaaa", &bg), -ENOENT, "blob gone");
	is_int(manifest_image_get(m, 77, "zz:1", 4, &got), -ENOENT, "image gone");
	is_int(manifest_writer_free(w), 0, "writer closed");
	buf_release(&seen);
	buf_release(&rc2.names);
}

/* A manifest written before the images and blobs databases existed: a reader
 * sees them as empty, a writer creates them. */
static void test_older_manifest(void)
{
	char dir[512];
	path_of(dir, sizeof(dir), "older");
	struct manifest *m = open_ok(dir, MANIFEST_RDWR);
	manifest_free(m);
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	int rc = mdb_env_create(&env);
	mdb_env_set_maxdbs(env, 16);
	rc = rc ? rc : mdb_env_open(env, dir, 0, 0600);
	rc = rc ? rc : mdb_txn_begin(env, NULL, 0, &txn);
	rc = rc ? rc : mdb_dbi_open(txn, "images", 0, &dbi);
	rc = rc ? rc : mdb_drop(txn, dbi, 1);
	rc = rc ? rc : mdb_dbi_open(txn, "blobs", 0, &dbi);
	rc = rc ? rc : mdb_drop(txn, dbi, 1);
	rc = rc ? rc : mdb_txn_commit(txn);
	mdb_env_close(env);
	is_int(rc, 0, "older: images and blobs databases removed");

	m = open_ok(dir, MANIFEST_RDONLY);
	ok(m != NULL, "older: a reader opens it");
	if (!m)
		return;
	struct image_record got;
	struct blob_record bg;
	is_int(manifest_image_get(m, 1, "a:b", 3, &got), -ENOENT, "older: no image records");
	is_int(manifest_blob_get(m, "r", "a", "sha256:x", &bg), -ENOENT, "older: no blob records");
	struct repos_ctx rc2 = {BUF_INIT, 0};
	is_int(manifest_blob_repos(m, "r", "sha256:x", repos_cb, &rc2), 0, "older: no repos");
	struct dth_err err;
	struct manifest_cursor *c = manifest_cursor_new(m, MANIFEST_IMAGES, 1, NULL, NULL, &err);
	const char *k;
	size_t kl;
	is_int(manifest_cursor_next_image(c, &k, &kl, &got), 0, "older: image cursor is empty");
	manifest_cursor_free(c);
	manifest_free(m);
	m = open_ok(dir, MANIFEST_RDWR);
	struct manifest_writer *w = manifest_writer_new(m, 0, 0, &err);
	struct blob_record b = {1, 2, ""};
	is_int(manifest_writer_put_blob(w, "r", "a", "sha256:x", &b), 0,
	       "older: writer adds a blob");
	is_int(manifest_writer_free(w), 0, "older: committed");
	is_int(manifest_blob_get(m, "r", "a", "sha256:x", &bg), 0, "older: blob found after RDWR");
	manifest_free(m);
	buf_release(&rc2.names);
}

/* ---- run history ---- */

static const char *dir_of(const char *name)
{
	static char dir[512];
	path_of(dir, sizeof(dir), name);
	return dir;
}

static struct manifest *open_fresh(const char *name)
{
	return open_ok(dir_of(name), MANIFEST_RDWR);
}

static uint32_t task_make(struct manifest *m, const char *name)
{
	struct task_record t;
	memset(&t, 0, sizeof(t));
	snprintf(t.name, sizeof(t.name), "%s", name);
	snprintf(t.kind, sizeof(t.kind), "s3");
	snprintf(t.state, sizeof(t.state), "idle");
	t.last_exit = -1;
	uint32_t id = 0;
	bool created;
	if (manifest_task_ensure(m, &t, &id, &created) != 0)
		printf("# task_ensure %s failed\n", name);
	return id;
}

struct runs_seen {
	uint64_t seq[256];
	unsigned n;
	int bad;
};

static int runs_cb(void *ctx, const struct run_record *r)
{
	struct runs_seen *s = ctx;
	if (s->n < ARRAY_SIZE(s->seq))
		s->seq[s->n++] = r->seq;
	/* each run's fields follow from its sequence (see test_runs) */
	if (r->started != 1000 + (int64_t)r->seq || r->ended != 2000 + (int64_t)r->seq ||
	    r->listed != r->seq * 3 || strcmp(r->trigger, "schedule") || strcmp(r->result, "ok"))
		s->bad++;
	return 0;
}

static int runs_stop_cb(void *ctx, const struct run_record *r)
{
	(void)r;
	return ++*(int *)ctx == 2 ? 77 : 0;
}

struct ev_seen {
	uint64_t seq[8];
	char key[8][192];
	unsigned n;
};

static int ev_cb(void *ctx, const struct manifest_event *ev)
{
	struct ev_seen *s = ctx;
	if (s->n < 8) {
		s->seq[s->n] = ev->seq;
		if (ev->has_hint)
			snprintf(s->key[s->n], sizeof(s->key[0]), "%.*s %llu %s", (int)ev->key_len,
				 ev->key, (unsigned long long)ev->size, ev->etag);
		else
			snprintf(s->key[s->n], sizeof(s->key[0]), "%.*s", (int)ev->key_len,
				 ev->key);
	}
	s->n++;
	return 0;
}

static void test_events(void)
{
	struct manifest *m = open_fresh("events");
	if (!m)
		return;
	uint32_t a = task_make(m, "ev-a"), b = task_make(m, "ev-b");
	struct manifest_event ev[3] = {
	    {.key = "k1", .key_len = 2},
	    {.key = "k2", .key_len = 2, .has_hint = true, .size = 7, .etag = "abc-2"},
	    {.key = "k1", .key_len = 2}};
	struct manifest_events_state st;
	is_int(manifest_events_add(m, 99, ev, 1, false, &st), -ENOENT, "events: no task, no event");
	struct manifest_event empty = {.key = "", .key_len = 0};
	is_int(manifest_events_add(m, a, &empty, 1, false, &st), -EINVAL,
	       "events: empty key refused");
	is_int(manifest_events_add(m, a, ev, 3, false, &st), 0, "events: add 3");
	ok(st.count == 3 && st.next == 4 && !st.rescan, "events: count 3, next 4");
	is_int(manifest_events_add(m, b, ev + 1, 1, false, &st), 0, "events: add 1 to b");
	struct ev_seen s;
	memset(&s, 0, sizeof(s));
	is_int(manifest_events_page(m, a, 2, ev_cb, &s), 2, "events: a page of 2");
	ok(s.n == 2 && s.seq[0] == 1 && s.seq[1] == 2 && !strcmp(s.key[0], "k1") &&
	       !strcmp(s.key[1], "k2 7 abc-2"),
	   "events: oldest first, the hint kept (%s, %s)", s.key[0], s.key[1]);
	is_int(manifest_events_ack(m, a, 2, false), 0, "events: ack up to 2");
	memset(&s, 0, sizeof(s));
	is_int(manifest_events_page(m, a, 100, ev_cb, &s), 1, "events: one left");
	ok(s.seq[0] == 3 && !strcmp(s.key[0], "k1"), "events: seq 3 left");
	is_int(manifest_events_state(m, a, &st), 0, "events: state");
	ok(st.count == 1 && st.next == 4, "events: count 1 after ack");
	memset(&s, 0, sizeof(s));
	is_int(manifest_events_page(m, b, 100, ev_cb, &s), 1, "events: b's own");
	ok(s.seq[0] == 1 && !strcmp(s.key[0], "k2 7 abc-2"), "events: b's seq 1");
	/* the bound: past it, the rescan flag instead */
	manifest_events_max = 3;
	is_int(manifest_events_add(m, a, ev, 3, false, &st), 0, "events: add over the bound");
	ok(st.count == 3 && st.rescan && st.next == 6, "events: 3 kept, rescan set (%llu)",
	   (unsigned long long)st.count);
	manifest_events_max = MANIFEST_EVENTS_MAX;
	is_int(manifest_events_ack(m, a, 6, true), 0, "events: ack all and the rescan");
	is_int(manifest_events_state(m, a, &st), 0, "events: state after");
	ok(st.count == 0 && !st.rescan && st.next == 6, "events: empty, sequences go on");
	is_int(manifest_events_add(m, a, NULL, 0, true, &st), 0, "events: only the flag");
	ok(st.rescan && st.count == 0, "events: flag alone");
	/* purge removes the task's events, not b's */
	struct dth_err err;
	is_int(manifest_task_purge(m, a, &err), 0, "events: purge a");
	is_int(manifest_events_state(m, a, &st), 0, "events: a's state");
	ok(st.count == 0 && !st.rescan && st.next == 1, "events: a's head gone");
	is_int(manifest_events_state(m, b, &st), 0, "events: b's state");
	ok(st.count == 1, "events: b's event kept");
	manifest_free(m);
}

static void test_runs(void)
{
	struct manifest *m = open_fresh("runs");
	if (!m)
		return;
	uint32_t a = task_make(m, "runs-a"), b = task_make(m, "runs-b");
	struct run_record r, got;
	uint64_t seq;
	int bad = 0;
	memset(&r, 0, sizeof(r));
	is_int(manifest_run_begin(m, 99, &r, &seq), -ENOENT, "runs: no task, no run");
	/* 130 runs of a, interleaved with 3 of b */
	for (uint64_t i = 1; i <= 130; i++) {
		memset(&r, 0, sizeof(r));
		r.started = 1000 + (int64_t)i;
		r.ended = 12345; /* begin stores 0 */
		snprintf(r.trigger, sizeof(r.trigger), "schedule");
		bad += manifest_run_begin(m, a, &r, &seq) != 0 || seq != i;
		bad += manifest_run_get(m, a, seq, &got) != 0 || got.ended != 0 || got.seq != i;
		r.ended = 2000 + (int64_t)i;
		snprintf(r.result, sizeof(r.result), "ok");
		r.listed = i * 3;
		if (i == 130)
			(void)codec_run_add_error(&r, "k: HTTP 500");
		bad += manifest_run_put(m, a, seq, &r) != 0;
		if (i % 50 == 0)
			bad += manifest_run_begin(m, b, &r, &seq) != 0 || seq != i / 50;
	}
	is_int(bad, 0, "runs: 130 begun and ended with increasing sequences");
	is_int(manifest_run_get(m, a, 130, &got), 0, "runs: get the last");
	ok(got.seq == 130 && got.ended == 2130 && got.n_errors == 1 &&
	       !strcmp(got.errors[0], "k: HTTP 500"),
	   "runs: the last run's fields");
	is_int(manifest_run_get(m, a, 30, &got), -ENOENT, "runs: run 30 trimmed");
	is_int(manifest_run_get(m, a, 31, &got), 0, "runs: run 31 kept");
	is_int(manifest_run_put(m, a, 30, &r), -ENOENT, "runs: a trimmed run is not put back");
	is_int(manifest_run_put(m, a, 131, &r), -ENOENT, "runs: nor one never begun");
	is_int(db_entries(m, m->dbi_runs), MANIFEST_RUNS_KEPT + 2,
	       "runs: 100 of a and 2 of b kept");

	struct runs_seen s = {{0}, 0, 0};
	is_int(manifest_run_each(m, a, 0, 0, runs_cb, &s), 0, "runs: each");
	ok(s.n == MANIFEST_RUNS_KEPT && s.seq[0] == 130 && s.seq[99] == 31 && !s.bad,
	   "runs: 100 newest first (%u, %llu..%llu)", s.n, (unsigned long long)s.seq[0],
	   (unsigned long long)s.seq[s.n ? s.n - 1 : 0]);
	/* paging with before */
	uint64_t before = 0, expect = 130;
	unsigned pages = 0;
	bad = 0;
	for (;;) {
		struct runs_seen p = {{0}, 0, 0};
		bad += manifest_run_each(m, a, before, 40, runs_cb, &p) != 0 || p.bad;
		if (!p.n)
			break;
		pages++;
		for (unsigned i = 0; i < p.n; i++)
			bad += p.seq[i] != expect--;
		before = p.seq[p.n - 1];
	}
	ok(!bad && pages == 3 && expect == 30, "runs: pages of 40 with before: 3, down to 31");
	s.n = 0;
	is_int(manifest_run_each(m, a, 100, 5, runs_cb, &s), 0, "runs: before 100");
	ok(s.n == 5 && s.seq[0] == 99 && s.seq[4] == 95, "runs: 99..95");
	s.n = 0;
	is_int(manifest_run_each(m, a, 31, 0, runs_cb, &s), 0, "runs: before the oldest");
	is_int(s.n, 0, "runs: none");
	s.n = 0;
	is_int(manifest_run_each(m, b, 0, 0, runs_cb, &s), 0, "runs: each of b");
	ok(s.n == 2 && s.seq[0] == 2 && s.seq[1] == 1, "runs: b's own, newest first");
	s.n = 0;
	is_int(manifest_run_each(m, 77, 0, 0, runs_cb, &s), 0, "runs: a task without runs");
	is_int(s.n, 0, "runs: none there");
	int calls = 0;
	is_int(manifest_run_each(m, a, 0, 0, runs_stop_cb, &calls), 77,
	       "runs: fn's non-zero return stops and is returned");
	manifest_free(m);
}

/* ---- taskdefs ---- */

static void test_taskdefs(void)
{
	struct manifest *m = open_fresh("taskdefs");
	if (!m)
		return;
	uint32_t a = task_make(m, "def-a"), b = task_make(m, "def-b");
	struct buf out = BUF_INIT;
	const char *json = "{\"name\":\"def-a\",\"source\":\"s:b/p\",\"schedule\":\"every 2s\"}";
	is_int(manifest_taskdef_get(m, a, &out), -ENOENT, "taskdef: none yet");
	is_int(manifest_taskdef_put(m, a, json, strlen(json)), 0, "taskdef: put");
	is_int(manifest_taskdef_get(m, a, &out), 0, "taskdef: get");
	ok(out.len == strlen(json) && !memcmp(out.data, json, out.len), "taskdef: same bytes");
	is_int(manifest_taskdef_put(m, a, "{}", 2), 0, "taskdef: replace");
	is_int(manifest_taskdef_get(m, a, &out), 0, "taskdef: get again");
	ok(out.len == 2 && !memcmp(out.data, "{}", 2), "taskdef: replaced (out reset)");
	char *big = malloc(MANIFEST_TASKDEF_MAX + 1);
	for (size_t i = 0; i <= MANIFEST_TASKDEF_MAX; i++)
		big[i] = (char)(i * 7);
	is_int(manifest_taskdef_put(m, b, big, MANIFEST_TASKDEF_MAX), 0, "taskdef: 64 KiB fits");
	is_int(manifest_taskdef_get(m, b, &out), 0, "taskdef: get 64 KiB");
	ok(out.len == MANIFEST_TASKDEF_MAX && !memcmp(out.data, big, out.len),
	   "taskdef: 64 KiB intact");
	is_int(manifest_taskdef_put(m, b, big, MANIFEST_TASKDEF_MAX + 1), -EFBIG,
	       "taskdef: one byte more is -EFBIG");
	is_int(manifest_taskdef_get(m, b, &out), 0, "taskdef: the old one stays");
	is_int(out.len, MANIFEST_TASKDEF_MAX, "taskdef: its size");
	is_int(manifest_taskdef_put(m, 99, "{}", 2), -ENOENT, "taskdef: no task, no definition");
	is_int(manifest_taskdef_put(m, a, NULL, 0), 0, "taskdef: empty");
	is_int(manifest_taskdef_get(m, a, &out), 0, "taskdef: get empty");
	is_int(out.len, 0, "taskdef: empty read back");
	is_int(manifest_taskdef_del(m, a), 0, "taskdef: del");
	is_int(manifest_taskdef_get(m, a, &out), -ENOENT, "taskdef: gone");
	is_int(manifest_taskdef_del(m, a), 0, "taskdef: del again is 0");
	is_int(manifest_taskdef_get(m, b, &out), 0, "taskdef: b's untouched");
	free(big);
	buf_release(&out);
	manifest_free(m);
	struct manifest *r = open_ok(dir_of("taskdefs"), MANIFEST_RDONLY);
	if (r) {
		is_int(manifest_taskdef_put(r, b, "{}", 2), -EROFS, "taskdef: read-only is -EROFS");
		manifest_free(r);
	}
}

/* ---- the status index and pages ---- */

struct page_seen {
	struct key *got; /* keys given (copies) */
	size_t n, cap;
	int bad; /* record does not match the key */
	int status;
};

static int page_cb(void *ctx, const char *key, size_t kl, const struct obj_record *rec)
{
	struct page_seen *p = ctx;
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 256;
		p->got = realloc(p->got, p->cap * sizeof(*p->got));
	}
	p->got[p->n].p = malloc(kl + 1);
	memcpy(p->got[p->n].p, key, kl);
	p->got[p->n].n = kl;
	p->got[p->n++].id = rec->size;
	if (p->status >= 0 && rec->status != p->status)
		p->bad++;
	return 0;
}

static void page_seen_release(struct page_seen *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->got[i].p);
	free(p->got);
	memset(p, 0, sizeof(*p));
}

/* Page through every object of task with status (random page sizes); 0 when
 * the keys given are exactly the model's keys i with st[i] == status (or
 * present, for -1), in order, each once. */
static int page_all(struct manifest *m, uint32_t task, int status, struct key *k, const int *st,
		    size_t n, unsigned *pages)
{
	struct page_seen p = {NULL, 0, 0, 0, status};
	struct buf after = BUF_INIT, next = BUF_INIT;
	bool more = true, first = true;
	int bad = 0;
	*pages = 0;
	while (more) {
		unsigned limit = 1 + (unsigned)(rnd() % 97);
		int rc = manifest_obj_page(m, task, status, first ? NULL : buf_str(&after),
					   after.len, limit, page_cb, &p, &next, &more);
		if (rc < 0 || (unsigned)rc > limit || (!more && next.len)) {
			bad++;
			break;
		}
		(*pages)++;
		first = false;
		buf_reset(&after);
		buf_add(&after, next.data, next.len);
	}
	size_t j = 0;
	for (size_t i = 0; i < n; i++) {
		if (st[i] < 0 || (status >= 0 && st[i] != status))
			continue;
		if (j >= p.n || key_cmp(&p.got[j], &k[i]) || p.got[j].id != k[i].id)
			bad++;
		j++;
	}
	bad += j != p.n;
	bad += p.bad;
	page_seen_release(&p);
	buf_release(&after);
	buf_release(&next);
	return bad;
}

/* The raw index entries of (task, status) against the model. */
static int index_check(struct manifest *m, uint32_t task, int status, struct key *k, const int *st,
		       size_t n)
{
	MDB_txn *txn;
	if (mf_read_begin(m, &txn))
		return 1;
	struct mf_node root;
	mf_root_sidx(&root, m->dbi_sidx, task, (uint8_t)status);
	struct mf_iter *it = malloc(sizeof(*it));
	mf_iter_init(it, m, txn, &root);
	int rc = mf_iter_seek(it, NULL, 0), bad = 0;
	size_t i = 0;
	for (; rc == 0; rc = mf_iter_next(it)) {
		while (i < n && st[i] != status)
			i++;
		if (i >= n || bytes_cmp((const char *)it->kb, it->klen, k[i].p, k[i].n))
			bad++;
		i++;
	}
	while (i < n)
		bad += st[i++] == status;
	bad += rc != MDB_NOTFOUND;
	mf_iter_close(it);
	free(it);
	mf_read_end(m, txn);
	return bad;
}

/* The objects by a full scan against the model. */
static int scan_model(struct manifest *m, uint32_t task, struct key *k, const int *st, size_t n)
{
	struct dth_err err;
	struct manifest_cursor *c =
	    manifest_cursor_new(m, MANIFEST_OBJECTS, task, NULL, NULL, &err);
	const char *key;
	size_t kl, i = 0;
	struct obj_record r;
	int rc, bad = 0;
	while ((rc = manifest_cursor_next(c, &key, &kl, &r)) == 1) {
		while (i < n && st[i] < 0)
			i++;
		if (i >= n || bytes_cmp(key, kl, k[i].p, k[i].n) || r.status != st[i] ||
		    r.size != k[i].id)
			bad++;
		i++;
	}
	while (i < n)
		bad += st[i++] >= 0;
	manifest_cursor_free(c);
	return bad + (rc != 0);
}

/* Pages from random after keys (present, absent, longer, shorter) against the model. */
static int page_after(struct manifest *m, uint32_t task, int status, struct key *k, const int *st,
		      size_t n)
{
	int bad = 0;
	for (int t = 0; t < 200; t++) {
		struct key a = k[rnd() % n];
		char *tmp = malloc(a.n + 2);
		memcpy(tmp, a.p, a.n);
		size_t al = a.n;
		switch (rnd() % 3) {
		case 1:
			if (al < MANIFEST_KEY_MAX)
				tmp[al++] = (char)(rnd() & 0xff);
			break;
		case 2:
			al = al ? rnd() % al : 0;
			break;
		}
		struct page_seen p = {NULL, 0, 0, 0, status};
		struct buf next = BUF_INIT;
		bool more;
		int rc = manifest_obj_page(m, task, status, tmp, al, 10, page_cb, &p, &next, &more);
		size_t j = 0;
		for (size_t i = 0; i < n && j < 10; i++) {
			if (st[i] != status || bytes_cmp(k[i].p, k[i].n, tmp, al) <= 0)
				continue;
			if (j >= p.n || key_cmp(&p.got[j], &k[i]))
				bad++;
			j++;
		}
		bad += rc < 0 || (size_t)rc != j || j != p.n || p.bad;
		if (getenv("DEBUG_PAGE") && (rc < 0 || (size_t)rc != j || j != p.n || p.bad))
			printf(
			    "# after len %zu (key %zu len %zu): rc %d, want %zu, got %zu, bad %d\n",
			    al, (size_t)a.id, a.n, rc, j, p.n, p.bad);
		page_seen_release(&p);
		buf_release(&next);
		free(tmp);
	}
	return bad;
}

static int sidx_checks(struct manifest *m, uint32_t task, struct key *k, const int *st, size_t n,
		       const char *what)
{
	int fails = 0;
	unsigned pages;
	struct task_stats ts;
	(void)!manifest_stats_get(m, task, &ts);
	for (int s = -1; s < OBJ__COUNT; s++) {
		size_t cnt = 0;
		for (size_t i = 0; i < n; i++)
			cnt += st[i] >= 0 && (s < 0 || st[i] == s);
		if (s >= 0 && mf_sidx_status(s)) {
			int b = index_check(m, task, s, k, st, n);
			ok(b == 0, "%s: index of %s exact (%zu keys, %d wrong)", what,
			   obj_status_name(s), cnt, b);
			fails += b != 0;
		}
		int b = page_all(m, task, s, k, st, n, &pages);
		ok(b == 0, "%s: pages of %s give its %zu objects in order (%u pages, %d wrong)",
		   what, s < 0 ? "any" : obj_status_name(s), cnt, pages, b);
		fails += b != 0;
		if (s >= 0) {
			ok(ts.count[s] == cnt, "%s: stats count %s = %zu", what, obj_status_name(s),
			   cnt);
			b = page_after(m, task, s, k, st, n);
			ok(b == 0, "%s: pages of %s after random keys (%d wrong)", what,
			   obj_status_name(s), b);
			fails += b != 0;
		}
	}
	return fails;
}

/* Random puts (random statuses) and deletions of long keys. */
static void random_ops(struct manifest *m, uint32_t task, struct key *k, int *st, size_t n,
		       unsigned ops)
{
	struct dth_err err;
	struct manifest_writer *w = manifest_writer_new(m, 500, 0, &err);
	int errs = 0;
	for (unsigned i = 0; i < ops; i++) {
		size_t j = rnd() % n;
		if (rnd() % 4 == 0) {
			errs += manifest_writer_del_obj(w, task, k[j].p, k[j].n) != 0;
			st[j] = -1;
		} else {
			struct obj_record r;
			st[j] = (int)(rnd() % OBJ__COUNT);
			rec_make(&r, k[j].id, st[j]);
			errs += manifest_writer_put_obj(w, task, k[j].p, k[j].n, &r) != 0;
		}
	}
	errs += manifest_writer_free(w) != 0;
	is_int(errs, 0, "%u random puts and deletions committed", ops);
}

static void free_keys(struct key *k, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(k[i].p);
	free(k);
}

static void test_status_index(void)
{
	struct manifest *m = open_fresh("sidx");
	if (!m)
		return;
	uint32_t a = task_make(m, "sidx-a"), b = task_make(m, "sidx-b");
	char base_key[4096];
	struct key *k;
	size_t n = build_keys(&k, alpha_nul, sizeof(alpha_nul), base_key, sizeof(base_key));
	int *st = malloc(n * sizeof(*st)), *stb = malloc(n * sizeof(*stb));
	for (size_t i = 0; i < n; i++)
		st[i] = stb[i] = -1;
	/* task b shares every key, so the index must keep tasks apart */
	random_ops(m, b, k, stb, n, 3000);
	random_ops(m, a, k, st, n, 20000);
	is_int(scan_model(m, a, k, st, n), 0, "sidx: full scan matches the model");
	unsigned saved = manifest_page_scan;
	manifest_page_scan = 150; /* scanned pages stop early, and resume */
	sidx_checks(m, a, k, st, n, "sidx a");
	sidx_checks(m, b, k, stb, n, "sidx b");
	manifest_page_scan = saved;
	sidx_checks(m, a, k, st, n, "sidx a (whole scans)");

	/* arguments */
	struct page_seen p = {NULL, 0, 0, 0, -1};
	bool more = true;
	struct buf next = BUF_INIT;
	buf_adds(&next, "junk");
	is_int(manifest_obj_page(m, a, OBJ__COUNT, NULL, 0, 10, page_cb, &p, &next, &more), -EINVAL,
	       "sidx: unknown status is -EINVAL");
	ok(!more && !next.len, "sidx: outputs cleared");
	is_int(manifest_obj_page(m, a, OBJ_FAILED, NULL, 0, 0, page_cb, &p, &next, &more), -EINVAL,
	       "sidx: limit 0 is -EINVAL");
	is_int(manifest_obj_page(m, a, OBJ_FAILED, NULL, 0, MANIFEST_PAGE_MAX + 1, page_cb, &p,
				 &next, &more),
	       -EINVAL, "sidx: limit over MANIFEST_PAGE_MAX is -EINVAL");
	is_int(manifest_obj_page(m, a, OBJ_FAILED, base_key, MANIFEST_KEY_MAX + 1, 1, page_cb, &p,
				 &next, &more),
	       -ENAMETOOLONG, "sidx: after too long");
	is_int(manifest_obj_page(m, 77, OBJ_FAILED, NULL, 0, 10, page_cb, &p, &next, &more), 0,
	       "sidx: a task without objects: empty page");
	ok(!more && !next.len && !p.n, "sidx: and no more");
	page_seen_release(&p);
	buf_release(&next);
	manifest_free(m);

	/* a reader sees the same */
	m = open_ok(dir_of("sidx"), MANIFEST_RDONLY);
	if (m) {
		unsigned pages;
		is_int(page_all(m, a, OBJ_FAILED, k, st, n, &pages), 0, "sidx: a reader's pages");
		manifest_free(m);
	}
	free(st);
	free(stb);
	free_keys(k, n);
}

/* n distinct keys in byte order: short ones, and long ones sharing 700- and
 * 1,100-byte prefixes (groups two and three levels deep). */
static struct key *gen_keys(size_t n)
{
	struct key *k = calloc(n, sizeof(*k));
	char longp[1200];
	memset(longp, 'x', sizeof(longp));
	for (size_t i = 0; i < n; i++) {
		char tail[32];
		int tl = snprintf(tail, sizeof(tail), "o/%07zu", i);
		size_t pre = i % 13 == 0 ? 1100 : i % 7 == 0 ? 700 : 0;
		k[i].n = pre + (size_t)tl;
		k[i].p = malloc(k[i].n + 1);
		memcpy(k[i].p, longp, pre);
		memcpy(k[i].p + pre, tail, (size_t)tl);
	}
	qsort(k, n, sizeof(*k), key_cmp);
	for (size_t i = 0; i < n; i++)
		k[i].id = i;
	return k;
}

static void put_all(struct manifest *m, uint32_t task, struct key *k, int *st, size_t n)
{
	struct dth_err err;
	struct manifest_writer *w = manifest_writer_new(m, 2000, 0, &err);
	int errs = 0;
	for (size_t i = 0; i < n; i++) {
		struct obj_record r;
		st[i] = (int)(rnd() % OBJ__COUNT);
		rec_make(&r, k[i].id, st[i]);
		errs += manifest_writer_put_obj(w, task, k[i].p, k[i].n, &r) != 0;
	}
	errs += manifest_writer_free(w) != 0;
	is_int(errs, 0, "%zu objects written", n);
}

static int raw_downgrade(const char *dir)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi, meta;
	int rc = mdb_env_create(&env);
	mdb_env_set_maxdbs(env, 16);
	rc = rc ? rc : mdb_env_open(env, dir, 0, 0600);
	rc = rc ? rc : mdb_txn_begin(env, NULL, 0, &txn);
	rc = rc ? rc : mdb_dbi_open(txn, "statusidx", 0, &dbi);
	rc = rc ? rc : mdb_drop(txn, dbi, 1);
	rc = rc ? rc : mdb_dbi_open(txn, "meta", 0, &meta);
	MDB_val k = {9, "statusidx"}, ks = {6, "schema"}, v = {1, "1"};
	rc = rc ? rc : mdb_del(txn, meta, &k, NULL);
	rc = rc ? rc : mdb_put(txn, meta, &ks, &v, 0);
	rc = rc ? rc : mdb_txn_commit(txn);
	mdb_env_close(env);
	return rc;
}

static void test_sidx_build(void)
{
	struct manifest *m = open_fresh("sidxold");
	if (!m)
		return;
	uint32_t a = task_make(m, "old-a"), b = task_make(m, "old-b");
	size_t na = 25000;
	struct key *ka = gen_keys(na), *kb;
	char base_key[4096];
	size_t nb = build_keys(&kb, alpha_nul, sizeof(alpha_nul), base_key, sizeof(base_key));
	int *sa = malloc(na * sizeof(int)), *sb = malloc(nb * sizeof(int));
	for (size_t i = 0; i < nb; i++)
		sb[i] = -1;
	put_all(m, a, ka, sa, na);
	random_ops(m, b, kb, sb, nb, 5000);
	manifest_free(m);
	is_int(raw_downgrade(dir_of("sidxold")), 0,
	       "sidx build: statusidx and its meta key removed, schema 1");

	m = open_ok(dir_of("sidxold"), MANIFEST_RDONLY);
	if (m) {
		unsigned pages;
		ok(!m->have_sidx, "sidx build: a reader finds no index");
		manifest_page_scan = 3000;
		is_int(page_all(m, a, OBJ_FAILED, ka, sa, na, &pages), 0,
		       "sidx build: a reader pages failed objects by scanning");
		ok(pages > na / 3000, "sidx build: in %u pages of a bounded scan", pages);
		manifest_page_scan = MANIFEST_PAGE_SCAN;
		is_int(page_all(m, b, OBJ_PENDING, kb, sb, nb, &pages), 0,
		       "sidx build: and pending ones of b");
		manifest_free(m);
	}
	m = open_ok(dir_of("sidxold"), MANIFEST_RDWR);
	if (!m)
		goto out;
	MDB_txn *txn;
	uint64_t schema = 0, built = 0;
	if (mf_read_begin(m, &txn) == 0) {
		(void)!mf_meta_get_u64(txn, m->dbi_meta, "schema", &schema);
		(void)!mf_meta_get_u64(txn, m->dbi_meta, "statusidx", &built);
		mf_read_end(m, txn);
	}
	ok(schema == 2 && built == 1,
	   "sidx build: RDWR open built it (schema %llu, statusidx %llu)",
	   (unsigned long long)schema, (unsigned long long)built);
	sidx_checks(m, a, ka, sa, na, "sidx built a");
	sidx_checks(m, b, kb, sb, nb, "sidx built b");
	/* and the writer keeps it from there */
	random_ops(m, a, ka, sa, na, 4000);
	for (int s = 0; s < OBJ__COUNT; s++)
		if (mf_sidx_status(s))
			is_int(index_check(m, a, s, ka, sa, na), 0,
			       "sidx build: %s exact after more writes", obj_status_name(s));
	manifest_free(m);
out:
	free(sa);
	free(sb);
	free_keys(ka, na);
	free_keys(kb, nb);
}

/* ---- purge ---- */

static void put_extras(struct manifest *m, uint32_t task, struct key *k, size_t n, size_t every,
		       unsigned runs)
{
	struct dth_err err;
	struct manifest_writer *w = manifest_writer_new(m, 0, 0, &err);
	int errs = 0;
	for (size_t i = 0; i < n; i += every) {
		struct upload_record u;
		struct upload_part part = {1, 5, "pe"};
		memset(&u, 0, sizeof(u));
		snprintf(u.upload_id, sizeof(u.upload_id), "up-%zu", i);
		u.parts = &part;
		u.n_parts = 1;
		errs += manifest_writer_put_upload(w, task, k[i].p, k[i].n, &u) != 0;
	}
	for (int i = 0; i < 20; i++) {
		struct image_record r;
		memset(&r, 0, sizeof(r));
		r.status = OBJ_DONE;
		char ref[64];
		int rl = snprintf(ref, sizeof(ref), "repo/%d:tag", i);
		errs += manifest_writer_put_image(w, task, ref, (size_t)rl, &r) != 0;
	}
	struct blob_record bl = {1, 2, ""};
	errs += manifest_writer_put_blob(w, "https://reg", "repo/0", "sha256:ab", &bl) != 0;
	errs += manifest_writer_free(w) != 0;
	for (unsigned i = 0; i < runs; i++) {
		struct run_record r;
		uint64_t seq;
		memset(&r, 0, sizeof(r));
		errs += manifest_run_begin(m, task, &r, &seq) != 0;
	}
	errs += manifest_taskdef_put(m, task, "{\"x\":1}", 7) != 0;
	is_int(errs, 0, "purge: uploads, images, a blob, runs and a definition of task %u", task);
}

static const char *const purge_dbs[] = {"objects", "uploads",  "images",    "stats", "longkeys",
					"runs",	   "taskdefs", "statusidx", "tasks", "blobs"};

static void db_counts(struct manifest *m, long *out)
{
	MDB_dbi dbis[] = {m->dbi_objects, m->dbi_uploads, m->dbi_images,   m->dbi_stats,
			  m->dbi_long,	  m->dbi_runs,	  m->dbi_taskdefs, m->dbi_sidx,
			  m->dbi_tasks,	  m->dbi_blobs};
	for (size_t i = 0; i < ARRAY_SIZE(dbis); i++)
		out[i] = db_entries(m, dbis[i]);
}

static int count_cursor(struct manifest *m, enum manifest_db db, uint32_t task)
{
	struct dth_err err;
	struct manifest_cursor *c = manifest_cursor_new(m, db, task, NULL, NULL, &err);
	const char *key;
	size_t kl;
	int n = 0, rc;
	struct upload_record u;
	struct image_record ir;
	while ((rc = db == MANIFEST_UPLOADS  ? manifest_cursor_next_upload(c, &key, &kl, &u)
		     : db == MANIFEST_IMAGES ? manifest_cursor_next_image(c, &key, &kl, &ir)
					     : manifest_cursor_next(c, &key, &kl, NULL)) == 1)
		n++;
	manifest_cursor_free(c);
	return rc < 0 ? -1 : n;
}

static void test_purge(void)
{
	struct manifest *m = open_fresh("purge");
	if (!m)
		return;
	struct dth_err err;
	uint32_t b = task_make(m, "keep");
	char base_key[4096];
	struct key *kb;
	size_t nb = build_keys(&kb, alpha_nul, sizeof(alpha_nul), base_key, sizeof(base_key));
	int *sb = malloc(nb * sizeof(int));
	for (size_t i = 0; i < nb; i++)
		sb[i] = -1;
	random_ops(m, b, kb, sb, nb, 4000);
	put_extras(m, b, kb, nb, 10, 3);
	struct task_stats bst, st2;
	(void)!manifest_stats_get(m, b, &bst);
	long before[ARRAY_SIZE(purge_dbs)], after[ARRAY_SIZE(purge_dbs)];

	/* the task to purge: 50,000 objects, long keys, every status */
	uint32_t a = task_make(m, "doomed");
	db_counts(m, before); /* with a's task record */
	size_t na = 50000;
	struct key *ka = gen_keys(na);
	int *sa = malloc(na * sizeof(int));
	put_all(m, a, ka, sa, na);
	put_extras(m, a, ka, na, 97, 5);
	db_counts(m, after);
	ok(after[0] > before[0] + 30000 && after[4] > before[4] && after[7] > before[7],
	   "purge: task a has objects, long-key groups and index entries");

	/* interrupted after 6 transactions (mark, 3 of the index, 2 of objects), as by a crash */
	manifest_purge_stop_after = 6;
	is_int(manifest_task_purge(m, a, &err), -EINTR, "purge: interrupted");
	manifest_purge_stop_after = 0;
	struct task_record tr;
	uint32_t id;
	is_int(manifest_task_find(m, "doomed", &id, &tr), 0, "purge: the task is still there");
	is_str(tr.state, "purging", "purge: marked purging");
	struct task_record again;
	memset(&again, 0, sizeof(again));
	snprintf(again.name, sizeof(again.name), "doomed");
	bool created;
	is_int(manifest_task_ensure(m, &again, &id, &created), -EBUSY,
	       "purge: ensure of a purging task is -EBUSY");
	int left = count_cursor(m, MANIFEST_OBJECTS, a);
	ok(left > 0 && left < (int)na, "purge: part of the objects left (%d)", left);
	manifest_free(m);

	m = open_ok(dir_of("purge"), MANIFEST_RDWR);
	if (!m)
		goto out;
	is_int(manifest_task_purge(m, a, &err), 0, "purge: finished after a restart");
	is_int(manifest_task_find(m, "doomed", &id, NULL), -ENOENT, "purge: task record gone");
	is_int(count_cursor(m, MANIFEST_OBJECTS, a), 0, "purge: no objects");
	is_int(count_cursor(m, MANIFEST_UPLOADS, a), 0, "purge: no uploads");
	is_int(count_cursor(m, MANIFEST_IMAGES, a), 0, "purge: no images");
	(void)!manifest_stats_get(m, a, &st2);
	uint64_t total = 0;
	for (int s = 0; s < OBJ__COUNT; s++)
		total += st2.count[s];
	is_int(total, 0, "purge: no stats");
	struct runs_seen rs = {{0}, 0, 0};
	is_int(manifest_run_each(m, a, 0, 0, runs_cb, &rs), 0, "purge: runs each");
	is_int(rs.n, 0, "purge: no runs");
	struct buf def = BUF_INIT;
	is_int(manifest_taskdef_get(m, a, &def), -ENOENT, "purge: no definition");
	db_counts(m, after);
	int same = 1;
	for (size_t i = 0; i < ARRAY_SIZE(purge_dbs); i++) {
		long want = before[i] - (!strcmp(purge_dbs[i], "tasks") ? 1 : 0);
		if (after[i] != want) {
			printf("# %s: %ld entries, %ld before task a\n", purge_dbs[i], after[i],
			       want);
			same = 0;
		}
	}
	ok(same, "purge: every database back to its entries before task a (no orphan groups)");
	struct blob_record bg;
	is_int(manifest_blob_get(m, "https://reg", "repo/0", "sha256:ab", &bg), 0,
	       "purge: blobs stay");

	/* the other task is intact */
	is_int(scan_model(m, b, kb, sb, nb), 0, "purge: the other task's objects intact");
	(void)!manifest_stats_get(m, b, &st2);
	ok(!memcmp(&bst, &st2, sizeof(bst)), "purge: its stats intact");
	for (int s = 0; s < OBJ__COUNT; s++)
		if (mf_sidx_status(s))
			is_int(index_check(m, b, s, kb, sb, nb), 0, "purge: its %s index intact",
			       obj_status_name(s));
	is_int(count_cursor(m, MANIFEST_UPLOADS, b), (int)((nb + 9) / 10), "purge: its uploads");
	is_int(count_cursor(m, MANIFEST_IMAGES, b), 20, "purge: its images");
	rs.n = 0;
	is_int(manifest_run_each(m, b, 0, 0, runs_cb, &rs), 0, "purge: its runs each");
	is_int(rs.n, 3, "purge: its runs");
	is_int(manifest_taskdef_get(m, b, &def), 0, "purge: its definition");
	buf_release(&def);

	is_int(manifest_task_purge(m, a, &err), 0, "purge: again is 0");
	is_int(manifest_task_purge(m, 999, &err), 0, "purge: of no task is 0");
	uint32_t c = task_make(m, "doomed");
	is_int(c, a, "purge: a new task may take the id");
	is_int(count_cursor(m, MANIFEST_OBJECTS, c), 0, "purge: and starts empty");
	manifest_free(m);
	m = open_ok(dir_of("purge"), MANIFEST_RDONLY);
	if (m) {
		is_int(manifest_task_purge(m, b, &err), -EROFS, "purge: read-only is -EROFS");
		manifest_free(m);
	}
out:
	free(sa);
	free(sb);
	free_keys(ka, na);
	free_keys(kb, nb);
}

/* Resident KiB of this process's map of path (/proc/self/smaps); -1 none. */
static long map_rss_kib(const char *path)
{
	FILE *f = fopen("/proc/self/smaps", "re");
	if (!f)
		return -1;
	char line[4096];
	long rss = -1;
	bool in = false;
	while (fgets(line, sizeof(line), f)) {
		size_t n = strlen(line);
		if (n && line[n - 1] == '\n')
			line[--n] = '\0';
		unsigned long lo, hi;
		char perms[8];
		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3) { /* a mapping's header */
			size_t pl = strlen(path);
			in = n >= pl && !strcmp(line + n - pl, path);
			continue;
		}
		long kib;
		if (in && sscanf(line, "Rss: %ld kB", &kib) == 1)
			rss = (rss < 0 ? 0 : rss) + kib;
	}
	fclose(f);
	return rss;
}

static void test_unmap_pages(void)
{
	struct manifest *m = open_fresh("unmap");
	if (!m)
		return;
	uint32_t a = task_make(m, "t");
	size_t n = 20000;
	struct key *k = gen_keys(n);
	int *st = malloc(n * sizeof(int));
	put_all(m, a, k, st, n);
	is_int(count_cursor(m, MANIFEST_OBJECTS, a), (int)n, "unmap: every record read");
	char path[600];
	snprintf(path, sizeof(path), "%s/data.mdb", dir_of("unmap"));
	char real[PATH_MAX];
	if (!realpath(path, real))
		snprintf(real, sizeof(real), "%s", path);
	long before = map_rss_kib(real);
	ok(before > 100, "unmap: the map's pages are resident (%ld KiB)", before);
	is_int(manifest_unmap_pages(m), 0, "unmap: 0");
	long after = map_rss_kib(real);
	ok(after >= 0 && after < before / 10, "unmap: resident after: %ld KiB", after);
	is_int(count_cursor(m, MANIFEST_OBJECTS, a), (int)n, "unmap: every record read again");
	struct task_stats ts;
	is_int(manifest_stats_get(m, a, &ts), 0, "unmap: stats read again");
	manifest_free(m);
	free(st);
	free_keys(k, n);
}

int main(void)
{
	log_set_level(getenv("DEBUG") ? LOG_DEBUG : LOG_WARN);
	rnd_seed(0x2545f4914f6cdd1dULL);
	if (scratch_dir(base, sizeof(base), "dth-test-manifest")) {
		printf("Bail out! mkdtemp\n");
		return 1;
	}
	char dir[512];
	path_of(dir, sizeof(dir), "main");

	test_default_dir();
	test_open();
	struct manifest *m = open_ok(dir, MANIFEST_RDWR);
	ok(m != NULL, "open main manifest");
	if (!m)
		return tap_done();
	test_tasks(m);
	test_writer_basic(m);
	test_stats_random(m);
	test_long_keys(m);
	test_cursor_renewal(m);
	test_producers(m);
	test_images_blobs(m);
	manifest_free(m);
	test_older_manifest();
	test_runs();
	test_events();
	test_taskdefs();
	test_status_index();
	test_sidx_build();
	test_purge();
	test_notes();
	test_unmap_pages();
	test_reopen(dir);
	test_map_growth();
	test_rdonly_process();
	test_full_disk();

	rm_rf(base);
	return tap_done();
}
