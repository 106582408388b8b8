/* Unit tests for fs/readahead.c: the read cache's own logic (blocks, windows,
 * memory budget, sharing, errors) driven through an in-memory fetch function
 * that serves a deterministic byte pattern per key and ETag. */
#include "common/compat.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <unistd.h>

#include "common/util.h"
#include "fs/readahead.h"
#include "tests/unit/tap.h"

#define KIB ((uint64_t)1024)
#define MIB (1024 * KIB)

/* ---- the pattern and the in-memory fetch function ---- */

static uint64_t seed_of(const char *key, const char *etag)
{
	uint64_t h = 1469598103934665603ull;
	for (const char *s = key; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	h = (h ^ 0xff) * 1099511628211ull;
	for (const char *s = etag; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static unsigned char pat(uint64_t seed, uint64_t pos)
{
	uint64_t x = (pos ^ seed) * 0x9e3779b97f4a7c15ull;
	x ^= x >> 29;
	x *= 0xbf58476d1ce4e5b9ull;
	return (unsigned char)(x >> 56);
}

struct fake {
	pthread_mutex_t mu;
	char etag[16];	   /* every object's current ETag */
	unsigned delay_us; /* per fetch */
	int fail_next;	   /* the next fetches that fail */
	uint64_t fail_off; /* the first fetch at this offset fails (UINT64_MAX: none) */
	bool fail_always;
	int fail_err;
	uint64_t calls, failures, bytes, max_len, bad_reserve, bad_off;
	uint64_t size; /* fetches beyond it are a bug */
};

static void fake_init(struct fake *fk, uint64_t size)
{
	memset(fk, 0, sizeof(*fk));
	pthread_mutex_init(&fk->mu, NULL);
	str_copy_fit(fk->etag, "e1", sizeof(fk->etag));
	fk->fail_off = UINT64_MAX;
	fk->fail_err = -EIO;
	fk->size = size;
}

static void fake_set_etag(struct fake *fk, const char *etag)
{
	pthread_mutex_lock(&fk->mu);
	str_copy_fit(fk->etag, etag, sizeof(fk->etag));
	pthread_mutex_unlock(&fk->mu);
}

static uint64_t fake_get(struct fake *fk, const uint64_t *field)
{
	pthread_mutex_lock(&fk->mu);
	uint64_t v = *field;
	pthread_mutex_unlock(&fk->mu);
	return v;
}

static int fake_fetch(void *ctx, const char *key, const char *etag, uint64_t off, uint64_t len,
		      struct buf *out)
{
	struct fake *fk = ctx;
	int fail = 0;

	pthread_mutex_lock(&fk->mu);
	fk->calls++;
	if (out->len != 0 || out->cap < len + 1)
		fk->bad_reserve++;
	if (len == 0 || off + len > fk->size)
		fk->bad_off++;
	if (len > fk->max_len)
		fk->max_len = len;
	if (strcmp(etag, fk->etag) != 0) {
		fail = -ESTALE;
	} else if (fk->fail_always || fk->fail_next > 0 || off == fk->fail_off) {
		fail = fk->fail_err;
		if (fk->fail_next > 0)
			fk->fail_next--;
		if (off == fk->fail_off)
			fk->fail_off = UINT64_MAX;
	}
	if (fail)
		fk->failures++;
	unsigned delay = fk->delay_us;
	pthread_mutex_unlock(&fk->mu);
	if (delay)
		usleep(delay);
	if (fail)
		return fail;

	uint64_t seed = seed_of(key, etag);
	unsigned char tmp[4096];
	for (uint64_t done = 0; done < len;) {
		size_t n = len - done < sizeof(tmp) ? (size_t)(len - done) : sizeof(tmp);
		for (size_t i = 0; i < n; i++)
			tmp[i] = pat(seed, off + done + i);
		buf_add(out, tmp, n);
		done += n;
	}
	pthread_mutex_lock(&fk->mu);
	fk->bytes += len;
	pthread_mutex_unlock(&fk->mu);
	return 0;
}

static struct ra_cache *cache_new(struct fake *fk, uint64_t memory, uint64_t min_window,
				  uint64_t max_window, uint64_t chunk, unsigned threads)
{
	struct ra_config cfg = {
	    .memory = memory,
	    .min_window = min_window,
	    .max_window = max_window,
	    .chunk = chunk,
	    .threads = threads,
	    .fetch = fake_fetch,
	    .ctx = fk,
	};
	return ra_cache_new(&cfg);
}

static const char *key_of(uint64_t ident, char *buf, size_t sz)
{
	snprintf(buf, sz, "dir/obj-%" PRIu64, ident);
	return buf;
}

#define WRONG_BYTES (-10000)

/* Read [off, off+len) through f and compare with the pattern of key/etag.
 * Returns ra_read's error, WRONG_BYTES, or 0; *slices gets view.n. */
static int read_check(struct ra_file *f, const char *key, const char *etag, uint64_t size,
		      uint64_t off, size_t len, int *slices)
{
	struct ra_view v;
	int r = ra_read(f, off, len, &v);
	if (r)
		return r;
	uint64_t want = off >= size ? 0 : (len < size - off ? len : size - off);
	uint64_t seed = seed_of(key, etag), pos = off;
	bool bad = v.bytes != want || (want == 0) != (v.n == 0) || v.n > RA_VIEW_MAX;
	for (int i = 0; i < v.n && !bad; i++) {
		const unsigned char *d = v.iov[i].iov_base;
		for (size_t j = 0; j < v.iov[i].iov_len; j++) {
			if (d[j] != pat(seed, pos + j)) {
				bad = true;
				break;
			}
		}
		pos += v.iov[i].iov_len;
	}
	if (pos - off != want)
		bad = true;
	if (slices)
		*slices = v.n;
	ra_view_release(&v);
	return bad ? WRONG_BYTES : 0;
}

/* Read the whole object sequentially in reads of rd bytes; returns the number
 * of reads or a negative error. */
static long read_all(struct ra_file *f, const char *key, const char *etag, uint64_t size, size_t rd)
{
	long reads = 0;
	for (uint64_t off = 0;; off += rd) {
		int r = read_check(f, key, etag, size, off, rd, NULL);
		if (r)
			return r;
		reads++;
		if (off >= size)
			break;
	}
	return reads;
}

/* ---- tests ---- */

static void test_sequential(void)
{
	uint64_t size = 8 * MIB + 12345;
	struct fake fk;
	char key[64];
	struct ra_stats st;

	fake_init(&fk, size);
	struct ra_cache *c = cache_new(&fk, 64 * MIB, 256 * KIB, 2 * MIB, 512 * KIB, 4);
	ok(c != NULL, "cache starts");
	key_of(1, key, sizeof(key));
	struct ra_file *f = ra_file_open(c, 1, key, "e1", size);
	long reads = read_all(f, key, "e1", size, 128 * 1024);
	ok(reads > 0, "sequential read of %" PRIu64 " bytes in 128 KiB reads is exact (%ld)", size,
	   reads);
	ra_cache_stats(c, &st);
	is_int(st.fetched_bytes, size, "every byte fetched exactly once");
	ok(st.fetches * 3 < (uint64_t)reads,
	   "few fetches for many reads: %" PRIu64 " fetches, %ld reads", st.fetches, reads);
	is_int(fake_get(&fk, &fk.max_len), 512 * KIB, "the window grew to whole chunks");
	is_int(fake_get(&fk, &fk.bad_reserve), 0, "every fetch got an empty, reserved buffer");
	is_int(fake_get(&fk, &fk.bad_off), 0, "no fetch beyond the end of the object");
	ok(st.peak_bytes <= 64 * MIB && st.held_bytes == size, "all blocks held within budget");

	int n = -1;
	is_int(read_check(f, key, "e1", size, size, 4096, &n), 0, "read at EOF succeeds");
	is_int(n, 0, "read at EOF gives no slices");
	is_int(read_check(f, key, "e1", size, size + 100000, 4096, &n), 0,
	       "read after EOF succeeds");
	is_int(n, 0, "read after EOF gives no slices");
	is_int(read_check(f, key, "e1", size, size - 10, 4096, NULL), 0,
	       "read crossing EOF gives the last bytes");
	is_int(read_check(f, key, "e1", size, 5, 0, &n), 0, "zero-length read");
	is_int(n, 0, "zero-length read gives no slices");
	ra_file_close(f);
	ra_cache_free(c);
}

/* The default chunk (cfg.chunk 0) is 4 MiB - 64 KiB, smaller than a 4 MiB
 * stripe (see "Chunk size" in readahead.c): a long sequential read fetches
 * whole ranges of that size and nothing larger. */
static void test_default_chunk(void)
{
	uint64_t size = 64 * MIB + 777;
	struct fake fk;
	char key[64];
	struct ra_stats st;

	fake_init(&fk, size);
	struct ra_cache *c = cache_new(&fk, 256 * MIB, 0, 64 * MIB, 0, 8);
	key_of(9, key, sizeof(key));
	struct ra_file *f = ra_file_open(c, 9, key, "e1", size);
	ok(read_all(f, key, "e1", size, 1024 * 1024) > 0,
	   "sequential read in 1 MiB reads is exact");
	ra_cache_stats(c, &st);
	is_int(st.fetched_bytes, size, "every byte fetched exactly once");
	is_int(fake_get(&fk, &fk.max_len), 4 * MIB - RA_ALIGN,
	       "the largest fetch is the default chunk, 4 MiB - 64 KiB");
	ok(st.fetches >= size / (4 * MIB - RA_ALIGN) &&
	       st.fetches <= size / (4 * MIB - RA_ALIGN) + 8,
	   "about one fetch per chunk (%" PRIu64 ")", st.fetches);
	ra_file_close(f);
	ra_cache_free(c);
}

static void test_random(void)
{
	uint64_t size = 64 * MIB;
	struct fake fk;
	char key[64];
	struct ra_stats st;

	fake_init(&fk, size);
	struct ra_cache *c = cache_new(&fk, 64 * MIB, 1 * MIB, 16 * MIB, 0, 4);
	key_of(2, key, sizeof(key));
	struct ra_file *f = ra_file_open(c, 2, key, "e1", size);
	uint64_t x = 88172645463325252ull;
	int bad = 0;
	for (int i = 0; i < 100; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		uint64_t off = 1 + x % (size - 8192);
		if (read_check(f, key, "e1", size, off, 4096, NULL))
			bad++;
	}
	is_int(bad, 0, "100 random 4 KiB reads are exact");
	ra_cache_stats(c, &st);
	ok(st.fetches <= 100, "at most one fetch per random read (%" PRIu64 ")", st.fetches);
	ok(st.fetched_bytes <= 100 * 2 * RA_ALIGN,
	   "random reads fetch only their aligned ranges (%" PRIu64 " bytes)", st.fetched_bytes);
	ok(st.fetched_bytes >= 100 * 4096, "and at least what they read");
	ra_file_close(f);
	ra_cache_free(c);
}

struct worker {
	struct ra_cache *c;
	int id;
	uint64_t sizes[17];
	int bad;
	int errors;
};

static void *budget_worker(void *arg)
{
	struct worker *w = arg;
	char keys[5][64];
	struct ra_file *f[5];
	uint64_t ids[5], pos[5] = {0};

	for (int i = 0; i < 4; i++)
		ids[i] = (uint64_t)(w->id + 4 * i);
	ids[4] = 16; /* every worker also reads this one, through its own handle */
	for (int i = 0; i < 5; i++) {
		key_of(ids[i], keys[i], sizeof(keys[i]));
		f[i] = ra_file_open(w->c, ids[i], keys[i], "e1", w->sizes[ids[i]]);
	}
	uint64_t x = 0x1234567ull + (uint64_t)w->id;
	for (bool more = true; more;) {
		more = false;
		for (int i = 0; i < 5; i++) {
			uint64_t size = w->sizes[ids[i]];
			if (pos[i] >= size)
				continue;
			more = true;
			int r = read_check(f[i], keys[i], "e1", size, pos[i], 128 * 1024, NULL);
			if (r == WRONG_BYTES)
				w->bad++;
			else if (r)
				w->errors++;
			pos[i] += 128 * 1024;
			/* and now and then a random read */
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			if (x % 5 == 0) {
				uint64_t off = x % size;
				r = read_check(f[i], keys[i], "e1", size, off, 7000, NULL);
				if (r == WRONG_BYTES)
					w->bad++;
				else if (r)
					w->errors++;
			}
		}
	}
	for (int i = 0; i < 5; i++)
		ra_file_close(f[i]);
	return NULL;
}

static void test_budget(void)
{
	uint64_t memory = 1 * MIB;
	struct fake fk;
	struct ra_stats st;
	struct worker w[4];
	pthread_t t[4];

	fake_init(&fk, 4 * MIB);
	fk.delay_us = 100;
	struct ra_cache *c = cache_new(&fk, memory, 128 * KIB, 512 * KIB, 0, 4);
	for (int i = 0; i < 4; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].c = c;
		w[i].id = i;
		for (int j = 0; j < 17; j++)
			w[i].sizes[j] = 3 * MIB / 2 + (uint64_t)j * 4099;
		pthread_create(&t[i], NULL, budget_worker, &w[i]);
	}
	int bad = 0, errors = 0;
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		bad += w[i].bad;
		errors += w[i].errors;
	}
	ra_cache_stats(c, &st);
	is_int(errors, 0, "16 files read by 4 threads in a 1 MiB budget: no errors");
	is_int(bad, 0, "and every byte exact");
	ok(st.peak_bytes <= memory, "memory never above the budget (peak %" PRIu64 ")",
	   st.peak_bytes);
	ok(st.held_bytes <= memory, "held now within the budget");
	is_int(fake_get(&fk, &fk.bad_off), 0, "no fetch beyond the end of an object");
	ra_cache_free(c);
}

struct same_handle {
	struct ra_file *f;
	const char *key;
	uint64_t size;
	int id;
	int bad;
};

static void *same_handle_worker(void *arg)
{
	struct same_handle *s = arg;
	for (uint64_t off = (uint64_t)s->id * 128 * KIB; off < s->size; off += 4 * 128 * KIB)
		if (read_check(s->f, s->key, "e1", s->size, off, 128 * 1024, NULL))
			s->bad++;
	return NULL;
}

static void test_same_handle_threads(void)
{
	uint64_t size = 6 * MIB + 333;
	struct fake fk;
	char key[64];
	struct same_handle s[4];
	pthread_t t[4];
	struct ra_stats st;

	fake_init(&fk, size);
	struct ra_cache *c = cache_new(&fk, 2 * MIB, 256 * KIB, 1 * MIB, 256 * KIB, 3);
	key_of(3, key, sizeof(key));
	struct ra_file *f = ra_file_open(c, 3, key, "e1", size);
	for (int i = 0; i < 4; i++) {
		s[i] = (struct same_handle){f, key, size, i, 0};
		pthread_create(&t[i], NULL, same_handle_worker, &s[i]);
	}
	int bad = 0;
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		bad += s[i].bad;
	}
	is_int(bad, 0, "4 threads reading through one handle get exact bytes");
	ra_cache_stats(c, &st);
	ok(st.peak_bytes <= 2 * MIB, "within the budget (peak %" PRIu64 ")", st.peak_bytes);
	ra_file_close(f);
	ra_cache_free(c);
}

static void test_big_read(void)
{
	uint64_t size = 5 * MIB + 77;
	uint64_t memory = 1 * MIB;
	struct fake fk;
	char key[64];
	struct ra_stats st;
	int n = 0;

	fake_init(&fk, size);
	struct ra_cache *c = cache_new(&fk, memory, 128 * KIB, 512 * KIB, 0, 4);
	key_of(4, key, sizeof(key));
	struct ra_file *f = ra_file_open(c, 4, key, "e1", size);
	is_int(read_check(f, key, "e1", size, 100, 3 * MIB, &n), 0,
	       "a 3 MiB read in a 1 MiB budget is exact");
	is_int(n, 1, "and comes as one copied slice");
	is_int(read_check(f, key, "e1", size, 2 * MIB + 5, 64 * KIB, NULL), 0, "a small read");
	is_int(read_check(f, key, "e1", size, 0, 16 * MIB, &n), 0,
	       "a read of the whole object, partly cached, is exact");
	ra_cache_stats(c, &st);
	ok(st.peak_bytes <= memory, "peak %" PRIu64 " within the 1 MiB budget", st.peak_bytes);
	ra_file_close(f);
	ra_cache_free(c);
}

static void test_errors(void)
{
	uint64_t size = 4 * MIB;
	struct fake fk;
	char key[64];

	fake_init(&fk, size);
	/* no readahead: every fetch is a read's own */
	struct ra_cache *c = cache_new(&fk, 16 * MIB, 0, 0, 0, 2);
	key_of(5, key, sizeof(key));
	struct ra_file *f = ra_file_open(c, 5, key, "e1", size);

	fk.fail_next = 1;
	is_int(read_check(f, key, "e1", size, 0, 64 * 1024, NULL), 0,
	       "a failed fetch is retried once and the read succeeds");
	is_int(fake_get(&fk, &fk.calls), 2, "two fetches");
	is_int(fake_get(&fk, &fk.failures), 1, "one failure");

	pthread_mutex_lock(&fk.mu);
	fk.fail_always = true;
	fk.fail_err = -EACCES;
	pthread_mutex_unlock(&fk.mu);
	is_int(read_check(f, key, "e1", size, 1 * MIB, 64 * 1024, NULL), -EACCES,
	       "a persistent error is returned");
	is_int(fake_get(&fk, &fk.calls), 4, "after exactly one retry");
	is_int(read_check(f, key, "e1", size, 1 * MIB, 64 * 1024, NULL), -EACCES,
	       "the next read tries again and fails again");
	is_int(fake_get(&fk, &fk.calls), 6, "with its own two fetches");
	pthread_mutex_lock(&fk.mu);
	fk.fail_always = false;
	fk.fail_err = -EIO;
	pthread_mutex_unlock(&fk.mu);
	is_int(read_check(f, key, "e1", size, 1 * MIB, 64 * 1024, NULL), 0,
	       "once the store answers again, the read succeeds");
	is_int(read_check(f, key, "e1", size, 0, 64 * 1024, NULL), 0, "cached bytes still exact");
	is_int(fake_get(&fk, &fk.calls), 7, "and were not fetched again");
	ra_file_close(f);
	ra_cache_free(c);

	/* a readahead fetch fails: the read that needs its bytes fetches again */
	fake_init(&fk, size);
	c = cache_new(&fk, 16 * MIB, 256 * KIB, 1 * MIB, 256 * KIB, 2);
	f = ra_file_open(c, 5, key, "e1", size);
	fk.fail_off = 128 * KIB; /* the first readahead block */
	is_int(read_check(f, key, "e1", size, 0, 128 * 1024, NULL), 0, "first read");
	is_int(read_check(f, key, "e1", size, 128 * KIB, 128 * 1024, NULL), 0,
	       "the read needing a failed readahead block succeeds");
	long reads = read_all(f, key, "e1", size, 128 * 1024);
	ok(reads > 0, "the rest of the object reads exact");
	is_int(fake_get(&fk, &fk.failures), 1, "the readahead fetch failed once");
	ra_file_close(f);
	ra_cache_free(c);
}

static void test_estale(void)
{
	uint64_t size = 4 * MIB;
	struct fake fk;
	char key[64];
	struct ra_stats st;

	fake_init(&fk, size);
	struct ra_cache *c = cache_new(&fk, 64 * MIB, 256 * KIB, 1 * MIB, 256 * KIB, 2);
	key_of(6, key, sizeof(key));
	struct ra_file *f1 = ra_file_open(c, 6, key, "e1", size);
	struct ra_file *f2 = ra_file_open(c, 6, key, "e1", size);
	is_int(read_check(f1, key, "e1", size, 0, 128 * 1024, NULL), 0, "read before the change");
	fake_set_etag(&fk, "e2"); /* the object is overwritten */
	is_int(read_check(f1, key, "e1", size, 3 * MIB, 128 * 1024, NULL), -ESTALE,
	       "a read needing a fetch after the change gets ESTALE");
	is_int(read_check(f1, key, "e1", size, 0, 128 * 1024, NULL), -ESTALE,
	       "a later read of cached bytes gets ESTALE too");
	is_int(read_check(f2, key, "e1", size, 0, 4096, NULL), -ESTALE,
	       "another handle of the same version gets ESTALE");
	is_int(read_check(f2, key, "e1", size, size + 1, 4096, NULL), -ESTALE, "even past the end");

	uint64_t size2 = 3 * MIB + 1;
	pthread_mutex_lock(&fk.mu);
	fk.size = size2;
	pthread_mutex_unlock(&fk.mu);
	struct ra_file *f3 = ra_file_open(c, 6, key, "e2", size2);
	ok(read_all(f3, key, "e2", size2, 128 * 1024) > 0, "a handle of the new version reads it");
	ra_file_close(f1);
	ra_file_close(f2);
	ra_file_close(f3);
	ra_cache_free(c);

	/* without readahead no fetch is in flight when the change is seen */
	fake_init(&fk, size);
	c = cache_new(&fk, 64 * MIB, 0, 0, 0, 2);
	f1 = ra_file_open(c, 6, key, "e1", size);
	is_int(read_check(f1, key, "e1", size, 0, 1 * MIB, NULL), 0, "read before the change");
	ra_cache_stats(c, &st);
	is_int(st.held_bytes, 1 * MIB, "its blocks are held");
	fake_set_etag(&fk, "e2");
	is_int(read_check(f1, key, "e1", size, 2 * MIB, 4096, NULL), -ESTALE, "change seen");
	ra_cache_stats(c, &st);
	is_int(st.held_bytes, 0, "the old version's blocks are dropped");
	is_int(read_check(f1, key, "e1", size, 0, 4096, NULL), -ESTALE, "and stay unreadable");
	ra_file_close(f1);
	ra_cache_free(c);
}

/* A long sequential read reuses the buffers of blocks it has read through
 * once the cache holds a quarter of its budget: the blocks held stay near a
 * quarter of the budget plus the window, not the whole budget; a short file
 * stays cached whole (test_shared). */
static void test_recycle(void)
{
	uint64_t size = 48 * MIB + 777;
	struct fake fk;
	char key[64];
	struct ra_stats st;

	fake_init(&fk, size);
	struct ra_cache *c = cache_new(&fk, 64 * MIB, 1 * MIB, 4 * MIB, 1 * MIB, 4);
	key_of(11, key, sizeof(key));
	struct ra_file *f = ra_file_open(c, 11, key, "e1", size);
	ok(read_all(f, key, "e1", size, 128 * 1024) > 0, "48 MiB read in order, exact");
	ra_cache_stats(c, &st);
	is_int(st.fetched_bytes, size, "every byte fetched once");
	ok(st.peak_bytes <= 16 * MIB + 4 * MIB + 4 * MIB,
	   "held at most a quarter of the budget, the window and a chunk per thread: %" PRIu64,
	   st.peak_bytes);
	ok(st.peak_bytes >= 16 * MIB, "a quarter of the budget stays cached: %" PRIu64,
	   st.peak_bytes);
	/* the end of the object is still cached: read again without a fetch */
	uint64_t before = st.fetches;
	is_int(read_check(f, key, "e1", size, size - 2 * MIB, 2 * MIB, NULL), 0,
	       "the last 2 MiB read again");
	ra_cache_stats(c, &st);
	is_int(st.fetches, before, "from the cache");
	ra_file_close(f);
	ra_cache_free(c);
}

static void test_shared(void)
{
	uint64_t size = 5 * MIB + 5;
	struct fake fk;
	char key[64];
	struct ra_stats a, b;

	fake_init(&fk, size);
	struct ra_cache *c = cache_new(&fk, 64 * MIB, 256 * KIB, 2 * MIB, 512 * KIB, 4);
	key_of(7, key, sizeof(key));
	struct ra_file *f1 = ra_file_open(c, 7, key, "e1", size);
	ok(read_all(f1, key, "e1", size, 128 * 1024) > 0, "first handle reads the object");
	ra_cache_stats(c, &a);
	struct ra_file *f2 = ra_file_open(c, 7, key, "e1", size);
	ok(read_all(f2, key, "e1", size, 128 * 1024) > 0, "second handle reads it too");
	ra_cache_stats(c, &b);
	is_int(b.fetches, a.fetches, "the second handle fetched nothing");
	ra_file_close(f1);
	ra_file_close(f2);

	/* blocks stay cached with no handle open */
	struct ra_file *f3 = ra_file_open(c, 7, key, "e1", size);
	ok(read_all(f3, key, "e1", size, 100000) > 0, "a reopened handle reads it");
	ra_cache_stats(c, &b);
	is_int(b.fetches, a.fetches, "from the cache");
	ra_file_close(f3);

	/* a new version replaces the old one */
	fake_set_etag(&fk, "e9");
	struct ra_file *f4 = ra_file_open(c, 7, key, "e9", size);
	ok(read_all(f4, key, "e9", size, 128 * 1024) > 0, "the new version reads exact");
	ra_cache_stats(c, &b);
	is_int(b.held_bytes, size, "only the new version's blocks are held");
	ra_file_close(f4);
	ra_cache_free(c);
}

static void test_close_inflight(void)
{
	uint64_t size = 16 * MIB;
	struct fake fk;
	char key[64];
	struct ra_stats st;

	fake_init(&fk, size);
	fk.delay_us = 20000;
	struct ra_cache *c = cache_new(&fk, 64 * MIB, 2 * MIB, 8 * MIB, 128 * KIB, 2);
	key_of(8, key, sizeof(key));
	struct ra_file *f = ra_file_open(c, 8, key, "e1", size);
	is_int(read_check(f, key, "e1", size, 0, 128 * 1024, NULL), 0, "first read");
	ra_file_close(f); /* readahead still queued and in flight */
	f = ra_file_open(c, 8, key, "e1", size);
	is_int(read_check(f, key, "e1", size, 0, 128 * 1024, NULL), 0, "reopen reads cached bytes");
	is_int(read_check(f, key, "e1", size, 128 * KIB, 128 * 1024, NULL), 0,
	       "and the next ones exact");
	ra_file_close(f);
	ra_cache_stats(c, &st);
	ok(st.held_bytes <= 64 * MIB, "held within the budget");
	ra_cache_free(c); /* with fetches in flight: joins them, frees everything */
	ok(1, "cache freed with fetches in flight");
}

static void test_view_max(void)
{
	uint64_t size = 2 * MIB;
	struct fake fk;
	char key[64];
	struct ra_stats st;
	int n = 0;

	fake_init(&fk, size);
	struct ra_cache *c = cache_new(&fk, 64 * MIB, 0, 0, 0, 2);
	key_of(9, key, sizeof(key));
	struct ra_file *f = ra_file_open(c, 9, key, "e1", size);
	int bad = 0;
	for (uint64_t k = 0; k < 12; k++)
		bad += read_check(f, key, "e1", size, k * RA_ALIGN + 7, 1, NULL) != 0;
	is_int(bad, 0, "12 one-byte reads in 12 aligned blocks");
	ra_cache_stats(c, &st);
	is_int(st.fetches, 12, "fetch one block each");
	is_int(read_check(f, key, "e1", size, RA_ALIGN + 1, 2 * RA_ALIGN, &n), 0,
	       "a read over 3 blocks is exact");
	is_int(n, 3, "as 3 slices of the blocks");
	is_int(read_check(f, key, "e1", size, 5, 12 * RA_ALIGN - 10, &n), 0,
	       "a read over 12 blocks is exact");
	is_int(n, 1, "as one copied slice");
	ra_cache_stats(c, &st);
	is_int(st.fetches, 12, "and fetches nothing more");
	is_int(st.held_bytes, 12 * RA_ALIGN, "the blocks are still held (pins released)");
	ra_file_close(f);
	ra_cache_free(c);
}

/* A FUSE session can end without releasing every open file: the cache frees
 * the handles left open (ASan's leak check in CI makes this test count). */
static void test_free_with_open_files(void)
{
	uint64_t size = 1 * MIB;
	struct fake fk;
	char key[64];
	fake_init(&fk, size);
	struct ra_cache *c = cache_new(&fk, 8 * MIB, 0, 4 * MIB, 0, 2);
	key_of(11, key, sizeof(key));
	struct ra_file *f1 = ra_file_open(c, 11, key, "e1", size);
	struct ra_file *f2 = ra_file_open(c, 12, key, "e1", size);
	struct ra_file *f3 = ra_file_open(c, 11, key, "e1", size);
	is_int(read_check(f1, key, "e1", size, 0, 4096, NULL), 0, "a read before the end");
	ra_file_close(f3); /* one closed in the middle of the list */
	(void)f2;
	ra_cache_free(c); /* f1 and f2 still open */
	ok(1, "cache freed with two handles still open");
}

int main(void)
{
	test_sequential();
	test_default_chunk();
	test_random();
	test_budget();
	test_same_handle_threads();
	test_big_read();
	test_errors();
	test_estale();
	test_shared();
	test_recycle();
	test_close_inflight();
	test_view_max();
	test_free_with_open_files();
	return tap_done();
}
