/* Shard specs, plans and the even cut (see shard.h).
 *
 * Invariants of a plan: count >= 1; count - 1 cut keys, each 1..SHARD_KEY_MAX
 * bytes without NUL, strictly increasing as byte strings. Immutable once
 * made, so one plan may be read by any number of threads. */
#include "common/compat.h"

#include "agent/shard.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct shard_plan {
	unsigned count;
	bool even;
	char **cuts; /* count - 1 NUL-terminated keys */
	size_t *lens;
};

/* ---- specs ---- */

/* A decimal count 0..max from text (all of it). */
static int parse_uint(const char *s, size_t len, unsigned max, unsigned *out)
{
	if (len == 0 || len > 9)
		return -EINVAL;
	unsigned v = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

static const char *env_or(const char *(*get)(const char *), const char *name)
{
	const char *v = get ? get(name) : getenv(name);
	return v && *v ? v : NULL;
}

static int env_uint(const char *(*get)(const char *), const char *name, unsigned max, unsigned *out,
		    struct dth_err *err)
{
	const char *v = env_or(get, name);
	if (!v)
		return -ENOENT;
	if (parse_uint(v, strlen(v), max, out))
		return err_set(err, -EINVAL, "--shard auto: %s is not a number up to %u", name,
			       max);
	return 0;
}

/* The index (and, when the scheduler gives it, the count) from the
 * environment. */
static int auto_index(const char *(*get)(const char *), unsigned *idx, unsigned *count,
		      struct dth_err *err)
{
	const unsigned big = 1000000000u;
	*count = 0;
	int rc = env_uint(get, "SLURM_ARRAY_TASK_ID", big, idx, err);
	if (rc == 0) {
		unsigned min = 0;
		rc = env_uint(get, "SLURM_ARRAY_TASK_MIN", big, &min, err);
		if (rc && rc != -ENOENT)
			return rc;
		if (min > *idx)
			return err_set(err, -EINVAL,
				       "--shard auto: SLURM_ARRAY_TASK_ID is below "
				       "SLURM_ARRAY_TASK_MIN");
		*idx -= min;
		rc = env_uint(get, "SLURM_ARRAY_TASK_COUNT", big, count, err);
		return rc == -ENOENT ? 0 : rc;
	}
	if (rc != -ENOENT)
		return rc;
	static const char *const vars[] = {"JOB_COMPLETION_INDEX", "AWS_BATCH_JOB_ARRAY_INDEX",
					   "DTH_SHARD_INDEX"};
	for (size_t i = 0; i < ARRAY_SIZE(vars); i++) {
		rc = env_uint(get, vars[i], big, idx, err);
		if (rc != -ENOENT)
			return rc;
	}
	return err_set(err, -EINVAL,
		       "--shard auto: no shard index in the environment (SLURM_ARRAY_TASK_ID, "
		       "JOB_COMPLETION_INDEX, AWS_BATCH_JOB_ARRAY_INDEX or DTH_SHARD_INDEX); "
		       "give --shard I/N");
}

/* Split "A/B" (B may be absent: *b NULL). */
static void split_spec(const char *text, size_t *alen, const char **b)
{
	const char *slash = strchr(text, '/');
	*alen = slash ? (size_t)(slash - text) : strlen(text);
	*b = slash ? slash + 1 : NULL;
}

int shard_spec_check(const char *text, struct dth_err *err)
{
	size_t alen;
	const char *b;
	unsigned i = 0, n = 0;
	split_spec(text, &alen, &b);
	bool is_auto = alen == 4 && !memcmp(text, "auto", 4);
	if (!is_auto && (!b || parse_uint(text, alen, SHARD_COUNT_MAX, &i)))
		return err_set(err, -EINVAL, "expected I/N (0 <= I < N <= %d), auto or auto/N",
			       SHARD_COUNT_MAX);
	if (b && (parse_uint(b, strlen(b), SHARD_COUNT_MAX, &n) || n == 0))
		return err_set(err, -EINVAL, "the count N is 1 to %d", SHARD_COUNT_MAX);
	if (!is_auto && i >= n)
		return err_set(err, -EINVAL, "the index %u is not below the count %u", i, n);
	return 0;
}

int shard_spec_parse(const char *text, const char *(*getenv_fn)(const char *name),
		     struct shard_spec *out, struct dth_err *err)
{
	int rc = shard_spec_check(text, err);
	if (rc) {
		err_prefix(err, "--shard %.40s", text);
		return rc;
	}
	size_t alen;
	const char *b;
	split_spec(text, &alen, &b);
	unsigned n = 0, i = 0, env_count = 0;
	if (b && parse_uint(b, strlen(b), SHARD_COUNT_MAX, &n))
		return err_set(err, -EINVAL, "shard: bad count");
	if (!(alen == 4 && !memcmp(text, "auto", 4))) {
		if (parse_uint(text, alen, SHARD_COUNT_MAX, &i))
			return err_set(err, -EINVAL, "shard: bad index");
	} else {
		if ((rc = auto_index(getenv_fn, &i, &env_count, err)))
			return rc;
		if (!n)
			n = env_count;
		if (!n && (rc = env_uint(getenv_fn, "DTH_SHARD_COUNT", SHARD_COUNT_MAX, &n, err)))
			return rc == -ENOENT
				   ? err_set(err, -EINVAL,
					     "--shard auto: the scheduler gives no shard count: "
					     "use --shard auto/N or set DTH_SHARD_COUNT")
				   : rc;
		if (n == 0 || n > SHARD_COUNT_MAX)
			return err_set(err, -EINVAL, "--shard auto: the count %u is not 1 to %d", n,
				       SHARD_COUNT_MAX);
		if (env_count && env_count != n)
			return err_set(err, -EINVAL,
				       "--shard auto/%u: the scheduler runs %u shards, not %u", n,
				       env_count, n);
		if (i >= n)
			return err_set(
			    err, -EINVAL,
			    "--shard auto: the index %u from the environment is not below "
			    "the count %u",
			    i, n);
	}
	out->index = i;
	out->count = n;
	return 0;
}

/* ---- plans ---- */

static struct shard_plan *plan_alloc(unsigned n)
{
	struct shard_plan *p = xcalloc(1, sizeof(*p));
	p->count = n;
	p->cuts = xcalloc(n, sizeof(*p->cuts));
	p->lens = xcalloc(n, sizeof(*p->lens));
	return p;
}

void shard_plan_free(struct shard_plan *p)
{
	if (!p)
		return;
	for (unsigned i = 0; i + 1 < p->count; i++)
		free(p->cuts[i]);
	free(p->cuts);
	free(p->lens);
	free(p);
}

/* The even cut: cut i is the value floor(i * 95^2 / n) written as two
 * base-95 digits over the bytes 0x20..0x7e. n <= 4096 < 95^2 / 2, so the
 * values strictly increase and no two cuts are equal. */
struct shard_plan *shard_plan_even(unsigned n)
{
	if (n == 0 || n > SHARD_COUNT_MAX)
		return NULL;
	struct shard_plan *p = plan_alloc(n);
	p->even = true;
	for (unsigned i = 1; i < n; i++) {
		unsigned v = (unsigned)((uint64_t)i * 95 * 95 / n);
		char *k = xmalloc(3);
		k[0] = (char)(0x20 + v / 95);
		k[1] = (char)(0x20 + v % 95);
		k[2] = '\0';
		p->cuts[i - 1] = k;
		p->lens[i - 1] = 2;
	}
	return p;
}

struct shard_plan *shard_plan_from_cuts(unsigned n, const char *const *keys, const size_t *lens,
					struct dth_err *err)
{
	if (n == 0 || n > SHARD_COUNT_MAX) {
		err_set(err, -EINVAL, "a plan has 1 to %d shards", SHARD_COUNT_MAX);
		return NULL;
	}
	for (unsigned i = 0; i + 1 < n; i++) {
		const char *why = NULL;
		if (lens[i] == 0 || lens[i] > SHARD_KEY_MAX)
			why = "is empty or too long";
		else if (memchr(keys[i], '\0', lens[i]))
			why = "holds a NUL byte";
		else if (i && bytes_order(keys[i - 1], lens[i - 1], keys[i], lens[i]) >= 0)
			why = "is not after the one before it";
		if (why) {
			err_set(err, -EINVAL, "cut key %u of the plan %s", i + 1, why);
			return NULL;
		}
	}
	struct shard_plan *p = plan_alloc(n);
	for (unsigned i = 0; i + 1 < n; i++) {
		p->cuts[i] = xstrndup(keys[i], lens[i]);
		p->lens[i] = lens[i];
	}
	return p;
}

unsigned shard_plan_count(const struct shard_plan *p)
{
	return p->count;
}

bool shard_plan_is_even(const struct shard_plan *p)
{
	return p->even;
}

void shard_plan_range(const struct shard_plan *p, unsigned i, const char **lo, const char **hi)
{
	*lo = i > 0 && i < p->count ? p->cuts[i - 1] : NULL;
	*hi = i + 1 < p->count ? p->cuts[i] : NULL;
}

unsigned shard_plan_find(const struct shard_plan *p, const char *key, size_t len)
{
	/* the first cut >= key names the shard; none: the last shard */
	unsigned lo = 0, hi = p->count - 1;
	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		if (bytes_order(key, len, p->cuts[mid], p->lens[mid]) <= 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

void shard_plan_id(const struct shard_plan *p, char out[32])
{
	if (p->even) {
		xsnprintf(out, 32, "even");
		return;
	}
	uint64_t h = 1469598103934665603ULL; /* FNV-1a over the lengths and bytes */
	for (unsigned i = 0; i + 1 < p->count; i++) {
		for (size_t j = 0; j < sizeof(size_t); j++)
			h = (h ^ (unsigned char)(p->lens[i] >> (8 * j))) * 1099511628211ULL;
		for (size_t j = 0; j < p->lens[i]; j++)
			h = (h ^ (unsigned char)p->cuts[i][j]) * 1099511628211ULL;
	}
	xsnprintf(out, 32, "plan:%016llx", (unsigned long long)h);
}

/* ---- the plan file ---- */

static bool plain_byte(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~' || c == '/';
}

void shard_key_encode(const char *key, size_t len, struct buf *out)
{
	static const char hex[] = "0123456789ABCDEF";
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)key[i];
		if (plain_byte(c)) {
			buf_addch(out, (char)c);
		} else {
			char e[3] = {'%', hex[c >> 4], hex[c & 15]};
			buf_add(out, e, 3);
		}
	}
}

int shard_key_decode(const char *text, size_t len, struct buf *out)
{
	for (size_t i = 0; i < len; i++) {
		if (text[i] != '%') {
			if (!plain_byte((unsigned char)text[i]))
				return -EINVAL;
			buf_addch(out, text[i]);
			continue;
		}
		int a = i + 2 < len ? hex_digit(text[i + 1]) : -1;
		int b = i + 2 < len ? hex_digit(text[i + 2]) : -1;
		if (a < 0 || b < 0)
			return -EINVAL;
		buf_addch(out, (char)(a * 16 + b));
		i += 2;
	}
	return 0;
}

void shard_plan_format(const struct shard_plan *p, struct buf *out)
{
	buf_addf(out, "dth-shard-plan %d %u\n", SHARD_PLAN_VERSION, p->count);
	for (unsigned i = 0; i + 1 < p->count; i++) {
		shard_key_encode(p->cuts[i], p->lens[i], out);
		buf_addch(out, '\n');
	}
}

int shard_plan_save(const struct shard_plan *p, const char *path, struct dth_err *err)
{
	struct buf text = BUF_INIT, tmp = BUF_INIT;
	shard_plan_format(p, &text);
	buf_addf(&tmp, "%s.tmp.%ld", path, (long)getpid());
	int rc = 0;
	FILE *f = fopen(tmp.data, "w");
	if (!f) {
		rc = err_set(err, -errno, "%s: %s", tmp.data, strerror(errno));
		goto out;
	}
	bool ok = fwrite(text.data, 1, text.len, f) == text.len;
	ok = (fflush(f) == 0) && ok && fsync(fileno(f)) == 0;
	if (fclose(f) != 0 || !ok) {
		rc = err_set(err, -EIO, "writing %s: %s", tmp.data, strerror(errno));
		unlink(tmp.data);
		goto out;
	}
	if (rename(tmp.data, path) != 0) {
		rc = err_set(err, -errno, "renaming to %s: %s", path, strerror(errno));
		unlink(tmp.data);
	}
out:
	buf_release(&text);
	buf_release(&tmp);
	return rc;
}

/* The cut keys of a plan file's lines after the header. */
struct plan_lines {
	unsigned n, got;
	char **keys;
	size_t *lens;
};

static int header_parse(const char *line, unsigned *n, struct dth_err *err)
{
	int ver = 0, used = 0;
	unsigned count = 0;
	if (sscanf(line, "dth-shard-plan %d %u%n", &ver, &count, &used) != 2 || line[used] != '\0')
		return err_set(err, -EINVAL,
			       "line 1 is not a plan header (\"dth-shard-plan VERSION N\")");
	if (ver != SHARD_PLAN_VERSION)
		return err_set(err, -EINVAL, "plan version %d: this dth reads version %d", ver,
			       SHARD_PLAN_VERSION);
	if (count == 0 || count > SHARD_COUNT_MAX)
		return err_set(err, -EINVAL, "the plan's count %u is not 1 to %d", count,
			       SHARD_COUNT_MAX);
	*n = count;
	return 0;
}

static int line_take(struct plan_lines *pl, const char *line, size_t len, unsigned lineno,
		     struct dth_err *err)
{
	if (pl->got + 1 >= pl->n)
		return err_set(err, -EINVAL, "line %u: more cut keys than the header's %u - 1",
			       lineno, pl->n);
	struct buf k = BUF_INIT;
	if (shard_key_decode(line, len, &k)) {
		buf_release(&k);
		return err_set(err, -EINVAL, "line %u: not a percent-encoded key", lineno);
	}
	pl->lens[pl->got] = k.len;
	pl->keys[pl->got++] = buf_detach(&k, NULL);
	return 0;
}

static int plan_read(FILE *f, struct plan_lines *pl, struct dth_err *err)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	unsigned lineno = 0;
	int rc = 0;
	while (!rc && (len = getline(&line, &cap, f)) >= 0) {
		lineno++;
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		if ((size_t)len != strlen(line)) {
			rc = err_set(err, -EINVAL, "line %u holds a NUL byte", lineno);
		} else if (lineno == 1) {
			if (!(rc = header_parse(line, &pl->n, err))) {
				pl->keys = xcalloc(pl->n, sizeof(*pl->keys));
				pl->lens = xcalloc(pl->n, sizeof(*pl->lens));
			}
		} else {
			rc = line_take(pl, line, (size_t)len, lineno, err);
		}
	}
	free(line);
	if (!rc && lineno == 0)
		rc = err_set(err, -EINVAL, "the file is empty");
	if (!rc && pl->got + 1 != pl->n)
		rc = err_set(err, -EINVAL, "%u cut keys for %u shards: a plan has N - 1", pl->got,
			     pl->n);
	return rc;
}

struct shard_plan *shard_plan_load(const char *path, struct dth_err *err)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		err_set(err, -errno, "shard plan %s: %s", path, strerror(errno));
		return NULL;
	}
	struct plan_lines pl = {0};
	struct shard_plan *p = NULL;
	int rc = plan_read(f, &pl, err);
	if (ferror(f) && !rc)
		rc = err_set(err, -EIO, "reading: %s", strerror(errno));
	fclose(f);
	if (!rc)
		p = shard_plan_from_cuts(pl.n, (const char *const *)pl.keys, pl.lens, err);
	if (!p)
		err_prefix(err, "shard plan %s", path);
	for (unsigned i = 0; i < pl.got; i++)
		free(pl.keys[i]);
	free(pl.keys);
	free(pl.lens);
	return p;
}

/* ---- a run's shard ---- */

int shard_bind_open(const char *spec_text, const char *plan_path, struct shard_bind *b,
		    struct dth_err *err)
{
	memset(b, 0, sizeof(*b));
	int rc = shard_spec_parse(spec_text, NULL, &b->spec, err);
	if (rc)
		return rc;
	b->plan = plan_path ? shard_plan_load(plan_path, err) : shard_plan_even(b->spec.count);
	if (!b->plan)
		return -EINVAL;
	if (shard_plan_count(b->plan) != b->spec.count) {
		err_set(err, -EINVAL, "shard plan %s cuts %u shards, and --shard %s asks for %u",
			plan_path, shard_plan_count(b->plan), spec_text, b->spec.count);
		shard_bind_release(b);
		return -EINVAL;
	}
	shard_plan_range(b->plan, b->spec.index, &b->lo, &b->hi);
	return 0;
}

void shard_bind_release(struct shard_bind *b)
{
	shard_plan_free(b->plan);
	memset(b, 0, sizeof(*b));
}

bool shard_range_holds(const char *lo, const char *hi, const char *key, size_t len)
{
	if (lo && bytes_order(key, len, lo, strlen(lo)) <= 0)
		return false;
	return !hi || bytes_order(key, len, hi, strlen(hi)) <= 0;
}

void shard_bind_note(const struct shard_bind *b, struct buf *out)
{
	char id[32];
	shard_plan_id(b->plan, id);
	buf_addf(out, "%u/%u %s", b->spec.index, b->spec.count, id);
}

static void bound_line(const char *key, struct buf *out)
{
	if (!key) {
		buf_adds(out, "-\n");
		return;
	}
	buf_addch(out, '=');
	shard_key_encode(key, strlen(key), out);
	buf_addch(out, '\n');
}

void shard_bounds_format(const struct shard_bind *b, struct buf *out)
{
	bound_line(b->lo, out);
	bound_line(b->hi, out);
}

static int bound_parse(const char **p, const char *end, struct buf *key, bool *has)
{
	const char *nl = memchr(*p, '\n', (size_t)(end - *p));
	if (!nl || nl == *p)
		return -EPROTO;
	buf_reset(key);
	*has = **p == '=';
	if (!*has && (**p != '-' || nl != *p + 1))
		return -EPROTO;
	if (*has && shard_key_decode(*p + 1, (size_t)(nl - *p - 1), key))
		return -EPROTO;
	*p = nl + 1;
	return 0;
}

int shard_bounds_parse(const char *text, size_t len, struct buf *lo, bool *has_lo, struct buf *hi,
		       bool *has_hi)
{
	const char *p = text, *end = text + len;
	if (bound_parse(&p, end, lo, has_lo) || bound_parse(&p, end, hi, has_hi) || p != end)
		return -EPROTO;
	return 0;
}
