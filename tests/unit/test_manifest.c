#include "common/compat.h"

#include <errno.h>
#include <ftw.h>
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

static char base[256];

static uint64_t rng = 0x2545f4914f6cdd1dULL;
static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

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
	ok(manifest_writer_new(m, 0, 0, &err) == NULL && err.code == -EBUSY,
	   "a second writer is refused");
	struct obj_record r, g;
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

/* ---- reopen, quantiles, concurrent producers ---- */

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

static void test_quantiles(struct manifest *m)
{
	struct dth_err err;
	struct manifest_writer *w = manifest_writer_new(m, 1000, 5, &err);
	struct obj_record r;
	char key[64];
	int errs = 0;
	for (int i = 0; i < 10000; i++) {
		int n =
		    snprintf(key, sizeof(key), "%c/%05d", i % 2 ? 'x' : 'y', (int)(rnd() % 100000));
		rec_make(&r, 1, OBJ_DONE);
		errs += manifest_writer_put_obj(w, 40, key, (size_t)n, &r) != 0;
	}
	errs += manifest_writer_flush(w) != 0;
	is_int(errs, 0, "quantile data written");
	struct buf out = BUF_INIT;
	unsigned count = 0;
	is_int(manifest_key_quantiles(m, 40, NULL, 4, &out, &count), 0, "quantiles n=4");
	is_int(count, 3, "three split keys");
	/* count keys in each range */
	const char *s[3];
	const char *p = out.data;
	for (unsigned i = 0; i < count && i < 3; i++) {
		s[i] = p;
		p += strlen(p) + 1;
	}
	struct manifest_cursor *c = manifest_cursor_new(m, MANIFEST_OBJECTS, 40, NULL, NULL, &err);
	const char *k;
	size_t kl;
	long ranges[4] = {0}, total = 0;
	unsigned ri = 0;
	while (manifest_cursor_next(c, &k, &kl, NULL) == 1) {
		while (ri < 3 && count == 3 && bytes_cmp(k, kl, s[ri], strlen(s[ri])) >= 0)
			ri++;
		ranges[ri]++;
		total++;
	}
	manifest_cursor_free(c);
	long lo = total / 4 - 1, hi = total / 4 + 1;
	ok(ranges[0] >= lo && ranges[0] <= hi && ranges[1] >= lo && ranges[1] <= hi &&
	       ranges[2] >= lo && ranges[2] <= hi && ranges[3] >= lo && ranges[3] <= hi,
	   "ranges balanced: %ld %ld %ld %ld of %ld", ranges[0], ranges[1], ranges[2], ranges[3],
	   total);
	buf_reset(&out);
	is_int(manifest_key_quantiles(m, 40, "x/", 2, &out, &count), 0, "quantiles with prefix");
	ok(count == 1 && strncmp(out.data, "x/", 2) == 0, "one split inside the prefix: %s",
	   out.data);
	buf_reset(&out);
	is_int(manifest_key_quantiles(m, 40, NULL, 1, &out, &count), 0, "n=1");
	is_int(count, 0, "n=1: no split");
	/* more ranges than keys */
	errs = 0;
	for (int i = 0; i < 3; i++) {
		int n = snprintf(key, sizeof(key), "few%d", i);
		errs += manifest_writer_put_obj(w, 41, key, (size_t)n, &r) != 0;
	}
	errs += manifest_writer_flush(w) != 0;
	buf_reset(&out);
	is_int(manifest_key_quantiles(m, 41, NULL, 10, &out, &count), 0, "n=10 over 3 keys");
	ok(count == 2 && strcmp(out.data, "few1") == 0 && strcmp(out.data + 5, "few2") == 0,
	   "distinct splits only (%u)", count);
	buf_release(&out);
	is_int(manifest_writer_free(w), 0, "writer free");
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

int main(void)
{
	log_set_level(getenv("DEBUG") ? LOG_DEBUG : LOG_WARN);
	snprintf(base, sizeof(base), "/tmp/dth-test-manifest-XXXXXX");
	if (!mkdtemp(base)) {
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
	test_quantiles(m);
	test_producers(m);
	test_images_blobs(m);
	manifest_free(m);
	test_older_manifest();
	test_reopen(dir);
	test_map_growth();
	test_rdonly_process();
	test_full_disk();

	nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return tap_done();
}
