/* Task schedules. See agent/schedule.h.
 *
 * Design. A schedule is parsed once into an immutable struct: the kind, the
 * period of `every`, the cron fields as bit sets, and the time zone as a sorted
 * table of transitions (from the TZif file's 64-bit data) plus the footer's
 * POSIX rule for times after the last one. Nothing is cached or changed later,
 * so schedules are shared between threads without locks.
 *
 * Time arithmetic works on two scales: instants (Unix seconds, UTC) and local
 * seconds (the wall-clock date and time in the zone, counted as if it were UTC,
 * so the Gregorian calendar functions apply to both). The zone maps an instant
 * to its offset and the next instant the offset changes (zone_lookup); walking
 * those constant-offset intervals finds the first instant whose wall clock
 * reads at least a given local time (zone_first_instant), which is exactly the
 * gap and overlap rule of the header: a time in a gap maps to the end of the
 * gap, a repeated time to its first occurrence, and the map never goes back.
 * The next cron time is then the first matching local minute whose instant is
 * after the reference (cron_after).
 *
 * Bounds: every loop has a fixed limit. Offsets are kept within -25 h..+26 h
 * (RFC 8536), instants within years 1..9999, cron searches within 400 years
 * (the Gregorian calendar repeats every 400 years, so a cron expression that
 * matches nothing in 400 years never matches, which parse checks). */
#include "common/compat.h"

#include "agent/schedule.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/util.h"

#define TEXT_MAX    256
#define TZNAME_MAX  255
#define TZIF_MAX    65536
#define FOOTER_MAX  128
#define EVERY_MAX   (366 * 86400)
#define OFF_MIN	    (-89999) /* RFC 8536: utoff SHOULD be in -89999..93599 */
#define OFF_MAX	    93599
#define SHIFT_MAX   (27 * 3600)	     /* more than any |offset| */
#define T_MIN	    (-62135596800LL) /* 0001-01-01T00:00:00Z */
#define T_MAX	    253402300799LL   /* 9999-12-31T23:59:59Z */
#define YEAR_LAST   9999
#define CRON_YEARS  400
#define NONE	    INT64_MAX
#define WALK_MAX    1000 /* constant-offset intervals looked at per conversion */
#define OVERLAP_MAX 5000 /* matching minutes skipped in an overlap */

/* ---- the Gregorian calendar ---- */

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	if (a % b != 0 && (a < 0) != (b < 0))
		q--;
	return q;
}

static bool is_leap(int64_t y)
{
	return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

static int days_in_month(int64_t y, int m)
{
	static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian): count whole 400-year eras
 * of years starting in March, so the leap day is the last day of a year. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = floor_div(y, 400);
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* The inverse of days_from_civil. */
static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	z += 719468;
	int64_t era = floor_div(z, 146097);
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = era * 400 + yoe + (*m <= 2);
}

/* 0 = Sunday; 1970-01-01 was a Thursday. */
static int weekday(int64_t days)
{
	return (int)(days - floor_div(days + 4, 7) * 7 + 4);
}

/* ---- POSIX TZ rules (the TZif footer) ---- */

enum { DATE_J, DATE_N, DATE_M };

struct tzdate {
	int kind;	 /* DATE_J: Jn (1-365, no Feb 29), DATE_N: n (0-365), DATE_M */
	int n, m, w, wd; /* DATE_M: month, week (5 = last), weekday */
	int32_t secs;	 /* local time of day of the change, -167 h to 167 h */
};

struct tzrule {
	int32_t std_off, dst_off; /* seconds east of UTC */
	bool has_dst;
	struct tzdate start, end;
};

static bool tzp_num(const char **pp, int maxdigits, int max, int *out)
{
	const char *p = *pp;
	int v = 0, n = 0;
	while (*p >= '0' && *p <= '9' && n < maxdigits) {
		v = v * 10 + (*p++ - '0');
		n++;
	}
	if (n == 0 || (*p >= '0' && *p <= '9') || v > max)
		return false;
	*pp = p;
	*out = v;
	return true;
}

static bool tzp_name(const char **pp)
{
	const char *p = *pp;
	size_t n = 0;
	if (*p == '<') {
		for (p++; (*p >= '0' && *p <= '9') || (*p >= 'A' && *p <= 'Z') ||
			  (*p >= 'a' && *p <= 'z') || *p == '+' || *p == '-';
		     p++)
			n++;
		if (*p++ != '>')
			return false;
	} else {
		for (; (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z'); p++)
			n++;
	}
	if (n < 3)
		return false;
	*pp = p;
	return true;
}

/* [+-]hh[:mm[:ss]] with hh at most maxh. */
static bool tzp_hms(const char **pp, int maxh, int32_t *out)
{
	const char *p = *pp;
	int sign = 1, h, m = 0, s = 0;
	if (*p == '+' || *p == '-')
		sign = *p++ == '-' ? -1 : 1;
	if (!tzp_num(&p, 3, maxh, &h))
		return false;
	if (*p == ':') {
		p++;
		if (!tzp_num(&p, 2, 59, &m))
			return false;
		if (*p == ':') {
			p++;
			if (!tzp_num(&p, 2, 59, &s))
				return false;
		}
	}
	*pp = p;
	*out = sign * (h * 3600 + m * 60 + s);
	return true;
}

static bool tzp_date(const char **pp, struct tzdate *dt)
{
	const char *p = *pp;
	memset(dt, 0, sizeof(*dt));
	if (*p == 'J') {
		p++;
		dt->kind = DATE_J;
		if (!tzp_num(&p, 3, 365, &dt->n) || dt->n < 1)
			return false;
	} else if (*p == 'M') {
		p++;
		dt->kind = DATE_M;
		if (!tzp_num(&p, 2, 12, &dt->m) || dt->m < 1 || *p++ != '.' ||
		    !tzp_num(&p, 1, 5, &dt->w) || dt->w < 1 || *p++ != '.' ||
		    !tzp_num(&p, 1, 6, &dt->wd))
			return false;
	} else {
		dt->kind = DATE_N;
		if (!tzp_num(&p, 3, 365, &dt->n))
			return false;
	}
	dt->secs = 7200;
	if (*p == '/') {
		p++;
		if (!tzp_hms(&p, 167, &dt->secs))
			return false;
	}
	*pp = p;
	return true;
}

/* std offset [dst [offset] [,start[/time],end[/time]]]; POSIX offsets count
 * west of UTC, ours east. A DST name without rules gets the US rules, as glibc
 * does (zic never writes one). */
static bool tzrule_parse(const char *s, struct tzrule *r)
{
	const char *p = s;
	int32_t off;
	memset(r, 0, sizeof(*r));
	if (!tzp_name(&p) || !tzp_hms(&p, 24, &off))
		return false;
	r->std_off = -off;
	if (!*p)
		return true;
	if (!tzp_name(&p))
		return false;
	r->has_dst = true;
	r->dst_off = r->std_off + 3600;
	if (*p && *p != ',') {
		if (!tzp_hms(&p, 24, &off))
			return false;
		r->dst_off = -off;
	}
	if (!*p) {
		r->start = (struct tzdate){.kind = DATE_M, .m = 3, .w = 2, .wd = 0, .secs = 7200};
		r->end = (struct tzdate){.kind = DATE_M, .m = 11, .w = 1, .wd = 0, .secs = 7200};
		return true;
	}
	if (*p++ != ',' || !tzp_date(&p, &r->start) || *p++ != ',' || !tzp_date(&p, &r->end))
		return false;
	return *p == '\0';
}

/* The day (days since the epoch) a rule date falls on in year y. */
static int64_t tzdate_day(const struct tzdate *dt, int64_t y)
{
	int64_t jan1 = days_from_civil(y, 1, 1);
	switch (dt->kind) {
	case DATE_J:
		return jan1 + dt->n - 1 + (is_leap(y) && dt->n >= 60);
	case DATE_N:
		return jan1 + dt->n;
	default: {
		int64_t first = days_from_civil(y, dt->m, 1);
		int day = 1 + (dt->wd - weekday(first) + 7) % 7 + 7 * (dt->w - 1);
		if (day > days_in_month(y, dt->m))
			day -= 7;
		return first + day - 1;
	}
	}
}

struct tzevent {
	int64_t t;
	bool dst; /* the offset from t on */
};

/* Offset at t under the rule, and the next instant after t it may change. The
 * changes of the years around t's are sorted; at equal instants the change to
 * standard time comes first, so a rule with DST all year ("J365/25" ending
 * where the next year's start is) stays in DST. */
static void tzrule_lookup(const struct tzrule *r, int64_t t, int32_t *off, int64_t *next)
{
	*next = NONE;
	*off = r->std_off;
	if (!r->has_dst)
		return;
	int64_t y;
	int m, d;
	civil_from_days(floor_div(t, 86400), &y, &m, &d);
	struct tzevent ev[10];
	size_t n = 0;
	for (int64_t yy = y - 2; yy <= y + 2; yy++) {
		ev[n++] = (struct tzevent){
		    tzdate_day(&r->start, yy) * 86400 + r->start.secs - r->std_off, true};
		ev[n++] = (struct tzevent){
		    tzdate_day(&r->end, yy) * 86400 + r->end.secs - r->dst_off, false};
	}
	for (size_t i = 1; i < n; i++) {
		struct tzevent e = ev[i];
		size_t j = i;
		while (j > 0 &&
		       (ev[j - 1].t > e.t || (ev[j - 1].t == e.t && ev[j - 1].dst && !e.dst))) {
			ev[j] = ev[j - 1];
			j--;
		}
		ev[j] = e;
	}
	bool dst = !ev[0].dst;
	for (size_t i = 0; i < n; i++) {
		if (ev[i].t > t) {
			*next = ev[i].t;
			break;
		}
		dst = ev[i].dst;
	}
	*off = dst ? r->dst_off : r->std_off;
}

/* ---- zones (TZif, RFC 8536) ---- */

struct zone {
	uint32_t ntrans;
	int64_t *trans;	 /* strictly ascending */
	uint8_t *tidx;	 /* type of each transition, < ntypes */
	uint32_t ntypes; /* >= 1 */
	int32_t *types;	 /* utoff of each type, OFF_MIN..OFF_MAX */
	bool has_rule;	 /* the footer's rule applies from the last transition on */
	struct tzrule rule;
};

static void zone_release(struct zone *z)
{
	free(z->trans);
	free(z->tidx);
	free(z->types);
	memset(z, 0, sizeof(*z));
}

static void zone_utc(struct zone *z)
{
	memset(z, 0, sizeof(*z));
	z->ntypes = 1;
	z->types = xcalloc(1, sizeof(int32_t));
}

/* The offset at instant t and the next instant after t where it may change
 * (NONE if never). Before the first transition type 0 applies; after the
 * last, the footer's rule (or, without one, the last transition's type). */
static void zone_lookup(const struct zone *z, int64_t t, int32_t *off, int64_t *next)
{
	uint32_t n = z->ntrans;
	if (n == 0 || t >= z->trans[n - 1]) {
		if (z->has_rule) {
			tzrule_lookup(&z->rule, t, off, next);
			return;
		}
		*off = z->types[n == 0 ? 0 : z->tidx[n - 1]];
		*next = NONE;
		return;
	}
	if (t < z->trans[0]) {
		*off = z->types[0];
		*next = z->trans[0];
		return;
	}
	uint32_t lo = 0, hi = n - 1; /* trans[lo] <= t < trans[hi] */
	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (z->trans[mid] <= t)
			lo = mid;
		else
			hi = mid;
	}
	*off = z->types[z->tidx[lo]];
	*next = z->trans[hi];
}

static int32_t zone_offset(const struct zone *z, int64_t t)
{
	int32_t off;
	int64_t next;
	zone_lookup(z, t, &off, &next);
	return off;
}

/* The first instant whose wall clock reads local time L or later (L within the
 * instant range plus or minus a day). Instants before L - SHIFT_MAX read less
 * than L whatever the offset, so the walk over constant-offset intervals
 * starts there; in an interval with offset o the first such instant is
 * max(start, L - o) if that is still inside it. */
static int64_t zone_first_instant(const struct zone *z, int64_t L)
{
	int64_t cur = L - SHIFT_MAX;
	for (int i = 0; i < WALK_MAX; i++) {
		int32_t off;
		int64_t next;
		zone_lookup(z, cur, &off, &next);
		int64_t cand = L - off > cur ? L - off : cur;
		if (cand < next)
			return cand;
		cur = next;
	}
	return cur; /* a hostile file with very many transitions: any instant will do */
}

struct rd {
	const uint8_t *p;
	size_t n;
};

static const uint8_t *rd_take(struct rd *r, size_t n)
{
	if (n > r->n)
		return NULL;
	const uint8_t *p = r->p;
	r->p += n;
	r->n -= n;
	return p;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const uint8_t *p)
{
	return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

struct tzhead {
	uint8_t version; /* 0, or '2' and up */
	uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
};

static const char *tzif_head(struct rd *r, struct tzhead *h)
{
	const uint8_t *p = rd_take(r, 44);
	if (!p)
		return "truncated header";
	if (memcmp(p, "TZif", 4) != 0)
		return "not a TZif file";
	h->version = p[4];
	if (h->version != 0 && h->version < '2')
		return "unknown version";
	uint32_t c[6];
	for (int i = 0; i < 6; i++) {
		c[i] = be32(p + 20 + 4 * i);
		if (c[i] > TZIF_MAX) /* more than the file can hold */
			return "truncated data";
	}
	h->isutcnt = c[0];
	h->isstdcnt = c[1];
	h->leapcnt = c[2];
	h->timecnt = c[3];
	h->typecnt = c[4];
	h->charcnt = c[5];
	if (h->typecnt == 0 || h->typecnt > 256)
		return "bad number of time types";
	if (h->charcnt == 0)
		return "no time zone designations";
	if ((h->isstdcnt != 0 && h->isstdcnt != h->typecnt) ||
	    (h->isutcnt != 0 && h->isutcnt != h->typecnt))
		return "bad standard/UT indicator count";
	return NULL;
}

/* Bytes of the data block after header h, with times of tsize bytes (counts
 * are at most TZIF_MAX, so this cannot overflow). */
static size_t tzif_block_len(const struct tzhead *h, size_t tsize)
{
	return (size_t)h->timecnt * (tsize + 1) + (size_t)h->typecnt * 6 + h->charcnt +
	       (size_t)h->leapcnt * (tsize + 4) + h->isstdcnt + h->isutcnt;
}

static const char *tzif_block(struct rd *r, const struct tzhead *h, size_t tsize, struct zone *z)
{
	if (h->leapcnt)
		return "leap-second zones are not supported";
	const uint8_t *p = rd_take(r, tzif_block_len(h, tsize));
	if (!p)
		return "truncated data";
	const uint8_t *times = p, *idx = p + (size_t)h->timecnt * tsize;
	const uint8_t *types = idx + h->timecnt;
	z->ntrans = h->timecnt;
	z->ntypes = h->typecnt;
	z->trans = xcalloc(h->timecnt ? h->timecnt : 1, sizeof(int64_t));
	z->tidx = xcalloc(h->timecnt ? h->timecnt : 1, 1);
	z->types = xcalloc(h->typecnt, sizeof(int32_t));
	for (uint32_t i = 0; i < h->timecnt; i++) {
		z->trans[i] = tsize == 8 ? be64(times + 8 * i) : (int32_t)be32(times + 4 * i);
		if (i > 0 && z->trans[i] <= z->trans[i - 1])
			return "transition times not ascending";
		z->tidx[i] = idx[i];
		if (idx[i] >= h->typecnt)
			return "transition type out of range";
	}
	for (uint32_t i = 0; i < h->typecnt; i++) {
		const uint8_t *t = types + 6 * i;
		int32_t off = (int32_t)be32(t);
		if (off < OFF_MIN || off > OFF_MAX)
			return "UT offset out of range";
		if (t[4] > 1)
			return "bad DST indicator";
		if (t[5] >= h->charcnt)
			return "designation index out of range";
		z->types[i] = off;
	}
	const uint8_t *ind = types + (size_t)h->typecnt * 6 + h->charcnt;
	for (uint32_t i = 0; i < h->isstdcnt + h->isutcnt; i++)
		if (ind[i] > 1)
			return "bad standard/UT indicator";
	return NULL;
}

/* The footer of a version 2+ file: "\n" TZ-string "\n". */
static const char *tzif_footer(struct rd *r, struct zone *z)
{
	if (r->n < 2 || r->p[0] != '\n')
		return "missing footer";
	const uint8_t *end = memchr(r->p + 1, '\n', r->n - 1);
	if (!end)
		return "unterminated footer";
	size_t len = (size_t)(end - (r->p + 1));
	if (len == 0)
		return NULL;
	if (len > FOOTER_MAX || memchr(r->p + 1, '\0', len))
		return "bad TZ string in footer";
	char s[FOOTER_MAX + 1];
	memcpy(s, r->p + 1, len);
	s[len] = '\0';
	if (!tzrule_parse(s, &z->rule))
		return "bad TZ string in footer";
	if (z->rule.dst_off < OFF_MIN || z->rule.dst_off > OFF_MAX)
		return "UT offset out of range";
	z->has_rule = true;
	return NULL;
}

/* Parse a TZif file into z. NULL, or why it is malformed (z then released). */
static const char *tzif_parse(const uint8_t *data, size_t len, struct zone *z)
{
	struct rd r = {data, len};
	struct tzhead h;
	const char *why = NULL;
	memset(z, 0, sizeof(*z));
	if (len > TZIF_MAX)
		why = "file too large";
	if (!why)
		why = tzif_head(&r, &h);
	if (!why && h.version == 0) {
		why = tzif_block(&r, &h, 4, z);
	} else if (!why) {
		if (!rd_take(&r, tzif_block_len(&h, 4)))
			why = "truncated data";
		struct tzhead h2;
		if (!why)
			why = tzif_head(&r, &h2);
		if (!why && h2.version != h.version)
			why = "headers disagree on the version";
		if (!why)
			why = tzif_block(&r, &h2, 8, z);
		if (!why)
			why = tzif_footer(&r, z);
	}
	if (why)
		zone_release(z);
	return why;
}

static bool zone_name_ok(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > TZNAME_MAX || name[0] == '/' || name[n - 1] == '/' ||
	    strstr(name, "//") || strstr(name, ".."))
		return false;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || *p == '+' || *p == '-' || *p == '/'))
			return false;
	return true;
}

/* Read the whole zone file (at most TZIF_MAX bytes) into *data (caller frees). */
static int zone_read(const char *dir, const char *name, uint8_t **data, size_t *len,
		     struct dth_err *err)
{
	struct buf path = BUF_INIT;
	buf_addf(&path, "%s/%s", dir, name);
	int rc = 0, fd = open(path.data, O_RDONLY | O_CLOEXEC);
	struct stat st;
	uint8_t *d = NULL;
	size_t n = 0;
	if (fd < 0 && (errno == ENOENT || errno == ENOTDIR)) {
		rc =
		    err_set(err, -EINVAL, "unknown time zone \"%s\" (no file %s)", name, path.data);
		goto out;
	}
	if (fd < 0) {
		rc = err_set(err, -errno, "time zone \"%s\": cannot open %s", name, path.data);
		goto out;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		rc = err_set(err, -EINVAL, "unknown time zone \"%s\" (%s is not a zone file)", name,
			     path.data);
		goto out;
	}
	d = xmalloc(TZIF_MAX + 1);
	while (n <= TZIF_MAX) {
		ssize_t got = read(fd, d + n, TZIF_MAX + 1 - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			rc = err_set(err, -errno, "time zone \"%s\": cannot read %s", name,
				     path.data);
			goto out;
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
	if (n > TZIF_MAX) {
		rc = err_set(err, -EINVAL, "time zone \"%s\": %s is larger than %d bytes", name,
			     path.data, TZIF_MAX);
		goto out;
	}
	*data = d;
	*len = n;
	d = NULL;
out:
	free(d);
	if (fd >= 0)
		close(fd);
	buf_release(&path);
	return rc;
}

static int zone_load(struct zone *z, const char *name, const char *dir, const void *tzif,
		     size_t len, struct dth_err *err)
{
	if (!zone_name_ok(name)) {
		struct buf shown = BUF_INIT;
		buf_add_printable(&shown, name, strnlen(name, TZNAME_MAX + 1));
		err_set(err, -EINVAL,
			"bad time zone name \"%s\" (expected an IANA name like Europe/Paris)",
			shown.data);
		buf_release(&shown);
		return -EINVAL;
	}
	uint8_t *data = NULL;
	if (!tzif) {
		int rc = zone_read(dir, name, &data, &len, err);
		if (rc)
			return rc;
		tzif = data;
	}
	const char *why = tzif_parse(tzif, len, z);
	free(data);
	if (why)
		return err_set(err, -EINVAL, "time zone \"%s\": malformed zone file (%s)", name,
			       why);
	return 0;
}

/* ---- cron expressions ---- */

struct cron {
	uint64_t min;  /* bit 0-59 */
	uint32_t hour; /* bit 0-23 */
	uint32_t dom;  /* bit 1-31 */
	uint32_t mon;  /* bit 1-12 */
	uint32_t dow;  /* bit 0-6, 0 = Sunday */
	bool dom_star, dow_star;
};

struct field_def {
	const char *name;
	int lo, hi;		  /* values allowed */
	int star_hi;		  /* what '*' covers: hi, but 6 for DOW */
	const char *const *names; /* 3-letter names of lo, lo+1, ..., or NULL */
};

static const char *const mon_names[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
					"JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
static const char *const dow_names[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

static const struct field_def fields[5] = {
    {"minute", 0, 59, 59, NULL},	 {"hour", 0, 23, 23, NULL},
    {"day-of-month", 1, 31, 31, NULL},	 {"month", 1, 12, 12, mon_names},
    {"day-of-week", 0, 7, 6, dow_names},
};

static const struct {
	const char *name, *expr;
} macros[] = {
    {"@hourly", "0 * * * *"},	{"@daily", "0 0 * * *"},   {"@midnight", "0 0 * * *"},
    {"@weekly", "0 0 * * 0"},	{"@monthly", "0 0 1 * *"}, {"@yearly", "0 0 1 1 *"},
    {"@annually", "0 0 1 1 *"},
};

static bool is_alpha(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* One value of a field: a number or (MON, DOW) a name. */
static int cron_value(const char **pp, const struct field_def *f, const char *text, int *out,
		      struct dth_err *err)
{
	const char *p = *pp;
	if (is_digit(*p)) {
		int v = 0, n = 0;
		for (; is_digit(p[n]); n++)
			v = n < 3 ? v * 10 + (p[n] - '0') : 1000;
		if (v < f->lo || v > f->hi)
			return err_set(err, -EINVAL,
				       "cron %s field \"%s\": %.*s is out of range %d-%d", f->name,
				       text, n, p, f->lo, f->hi);
		p += n;
		*out = v;
	} else if (is_alpha(*p) && f->names) {
		size_t n = 0;
		while (is_alpha(p[n]))
			n++;
		int found = -1;
		for (int i = 0; n == 3 && i <= f->star_hi - f->lo; i++)
			if (strncasecmp(p, f->names[i], 3) == 0)
				found = f->lo + i;
		if (found < 0)
			return err_set(err, -EINVAL, "cron %s field \"%s\": unknown name \"%.*s\"",
				       f->name, text, (int)n, p);
		p += n;
		*out = found;
	} else {
		return err_set(err, -EINVAL, "cron %s field \"%s\": expected %s at \"%s\"", f->name,
			       text, f->names ? "a number or a name" : "a number", p);
	}
	*pp = p;
	return 0;
}

/* One item of a field's list: * | A | A-B, then optionally /S after * or A-B. */
static int cron_item(const char **pp, const struct field_def *f, const char *text, uint64_t *bits,
		     struct dth_err *err)
{
	const char *p = *pp;
	int a, b, step = 1, rc;
	bool single = false;
	if (*p == '*') {
		p++;
		a = f->lo;
		b = f->star_hi;
	} else {
		if ((rc = cron_value(&p, f, text, &a, err)))
			return rc;
		b = a;
		single = *p != '-';
		if (*p == '-') {
			p++;
			if ((rc = cron_value(&p, f, text, &b, err)))
				return rc;
			if (f->names == dow_names && b == 0 && a > 0)
				b = 7; /* FRI-SUN */
			if (b < a)
				return err_set(err, -EINVAL,
					       "cron %s field \"%s\": range %d-%d is reversed",
					       f->name, text, a, b);
		}
	}
	if (*p == '/') {
		p++;
		int span = f->star_hi - f->lo + 1, n = 0;
		step = 0;
		while (is_digit(*p) && n < 3) {
			step = step * 10 + (*p++ - '0');
			n++;
		}
		if (single)
			return err_set(err, -EINVAL,
				       "cron %s field \"%s\": a step needs * or a range before it",
				       f->name, text);
		if (n == 0 || is_digit(*p) || step < 1 || step > span)
			return err_set(err, -EINVAL,
				       "cron %s field \"%s\": the step must be a number from 1 "
				       "to %d",
				       f->name, text, span);
	}
	if (*p != ',' && *p != '\0')
		return err_set(err, -EINVAL, "cron %s field \"%s\": unexpected \"%s\"", f->name,
			       text, p);
	for (int v = a; v <= b; v += step)
		*bits |= 1ULL << (f->names == dow_names && v == 7 ? 0 : v);
	*pp = p;
	return 0;
}

static int cron_field(const char *text, const struct field_def *f, uint64_t *bits,
		      struct dth_err *err)
{
	const char *p = text;
	*bits = 0;
	for (;;) {
		if (*p == ',' || *p == '\0')
			return err_set(err, -EINVAL, "cron %s field \"%s\": empty list item",
				       f->name, text);
		int rc = cron_item(&p, f, text, bits, err);
		if (rc)
			return rc;
		if (*p == '\0')
			return 0;
		p++; /* ',' */
	}
}

static bool cron_day_ok(const struct cron *c, int64_t days, int d)
{
	bool dom = c->dom >> d & 1, dow = c->dow >> weekday(days) & 1;
	return c->dom_star || c->dow_star ? dom && dow : dom || dow;
}

/* The lowest bit >= from set in bits (below limit), or -1. */
static int next_bit(uint64_t bits, int from, int limit)
{
	for (int i = from; i < limit; i++)
		if (bits >> i & 1)
			return i;
	return -1;
}

/* The first local minute >= L (minute-aligned local seconds) matching c, or
 * NONE when there is none within CRON_YEARS years or before year 10000. */
static int64_t cron_match(const struct cron *c, int64_t L)
{
	int64_t days = floor_div(L, 86400), y;
	int sod = (int)(L - days * 86400), m, d, h = sod / 3600, mi = sod % 3600 / 60;
	civil_from_days(days, &y, &m, &d);
	int64_t y0 = y;
	for (;;) {
		if (y > y0 + CRON_YEARS || y > YEAR_LAST)
			return NONE;
		if (!(c->mon >> m & 1) || d > days_in_month(y, m)) {
			d = 1;
			h = mi = 0;
			if (++m > 12) {
				m = 1;
				y++;
			}
			continue;
		}
		int64_t today = days_from_civil(y, m, d);
		if (cron_day_ok(c, today, d)) {
			/* this hour from minute mi on, else a later hour from its minute 0 */
			int hh = next_bit(c->hour, h, 24), mm = -1;
			if (hh == h)
				mm = next_bit(c->min, mi, 60);
			if (hh >= 0 && mm < 0)
				hh = next_bit(c->hour, h + 1, 24);
			if (hh >= 0 && mm < 0)
				mm = next_bit(c->min, 0, 60);
			if (hh >= 0 && mm >= 0)
				return today * 86400 + hh * 3600 + mm * 60;
		}
		d++;
		h = mi = 0;
	}
}

/* Parse the text after "cron" (quotes, 5 fields or a macro) into c; the
 * canonical text goes to canon. */
static int cron_parse(const char *s, struct cron *c, struct buf *canon, struct dth_err *err)
{
	char tmp[TEXT_MAX + 1];
	size_t n = strlen(s);
	if (n > TEXT_MAX)
		return err_set(err, -EINVAL, "cron expression too long");
	if (n > 0 && (s[0] == '"' || s[0] == '\'')) {
		if (n < 2 || s[n - 1] != s[0])
			return err_set(err, -EINVAL, "cron expression: unbalanced %c", s[0]);
		s++;
		n -= 2;
	}
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	char *fld[6];
	int nf = 0;
	for (char *p = tmp; *p;) {
		while (is_blank(*p))
			*p++ = '\0';
		if (!*p)
			break;
		if (nf == 6)
			break;
		fld[nf++] = p;
		while (*p && !is_blank(*p))
			p++;
	}
	if (nf == 1 && fld[0][0] == '@') {
		for (size_t i = 0; i < ARRAY_SIZE(macros); i++)
			if (str_ieq(fld[0], macros[i].name)) {
				struct buf ignore = BUF_INIT;
				int rc = cron_parse(macros[i].expr, c, &ignore, err);
				buf_release(&ignore);
				buf_addf(canon, "cron \"%s\"", macros[i].name);
				return rc;
			}
		return err_set(err, -EINVAL,
			       "unknown cron shorthand \"%s\" (known: @hourly, @daily, @weekly, "
			       "@monthly, @yearly)",
			       fld[0]);
	}
	if (nf != 5)
		return err_set(err, -EINVAL,
			       "cron needs 5 fields (MIN HOUR DOM MON DOW), found %s%d",
			       nf == 6 ? "more than " : "", nf == 6 ? 5 : nf);
	uint64_t bits[5];
	for (int i = 0; i < 5; i++) {
		int rc = cron_field(fld[i], &fields[i], &bits[i], err);
		if (rc)
			return rc;
	}
	c->min = bits[0];
	c->hour = (uint32_t)bits[1];
	c->dom = (uint32_t)bits[2];
	c->mon = (uint32_t)bits[3];
	c->dow = (uint32_t)bits[4];
	c->dom_star = fld[2][0] == '*';
	c->dow_star = fld[4][0] == '*';
	if (cron_match(c, days_from_civil(2000, 1, 1) * 86400) == NONE)
		return err_set(
		    err, -EINVAL,
		    "cron \"%s %s %s %s %s\" never matches (no such day in those months)", fld[0],
		    fld[1], fld[2], fld[3], fld[4]);
	buf_addf(canon, "cron \"%s %s %s %s %s\"", fld[0], fld[1], fld[2], fld[3], fld[4]);
	return 0;
}

/* ---- every DURATION ---- */

static int duration_parse(const char *s, int64_t *out, struct dth_err *err)
{
	static const char units[] = "dhms";
	static const int64_t secs[] = {86400, 3600, 60, 1};
	const char *p = s;
	int64_t total = 0;
	int last = -1;
	if (!*p)
		return err_set(err, -EINVAL, "every needs a duration (like 30s, 5m, 1h30m)");
	do {
		int64_t v = 0;
		int n = 0;
		while (is_digit(*p) && n < 10) {
			v = v * 10 + (*p++ - '0');
			n++;
		}
		if (n == 0 || is_digit(*p))
			return err_set(err, -EINVAL,
				       "bad duration \"%s\" (expected like 90, 30s, 5m, 1h30m, 1d)",
				       s);
		if (*p == '\0' && last < 0) { /* a bare number of seconds */
			total = v;
			break;
		}
		if (*p == '\0')
			return err_set(err, -EINVAL,
				       "bad duration \"%s\": a unit is missing at the end", s);
		const char *u = is_alpha(*p) ? strchr(units, *p | 0x20) : NULL;
		if (!u)
			return err_set(err, -EINVAL,
				       "bad duration \"%s\": unknown unit (use d, h, m or s)", s);
		int ui = (int)(u - units);
		if (ui <= last)
			return err_set(
			    err, -EINVAL,
			    "bad duration \"%s\": units go in the order d, h, m, s, each "
			    "once",
			    s);
		last = ui;
		p++;
		total += v * secs[ui]; /* at most 4 * 10^10 * 86400: no overflow */
	} while (*p);
	if (total < 1 || total > EVERY_MAX)
		return err_set(err, -EINVAL, "duration \"%s\" is out of range (1s to 366d)", s);
	*out = total;
	return 0;
}

static void duration_text(struct buf *b, int64_t v)
{
	static const char units[] = "dhms";
	static const int64_t secs[] = {86400, 3600, 60, 1};
	for (int i = 0; i < 4; i++)
		if (v >= secs[i]) {
			buf_addf(b, "%lld%c", (long long)(v / secs[i]), units[i]);
			v %= secs[i];
		}
}

/* ---- the schedule ---- */

struct schedule {
	enum schedule_kind kind;
	int64_t period; /* every */
	struct cron cron;
	struct zone zone;
	char *text; /* canonical */
	char *tz;
};

/* Parse the schedule text (not the zone) into s. */
static int text_parse(const char *text, struct schedule *s, struct dth_err *err)
{
	struct buf canon = BUF_INIT;
	int rc = 0;
	size_t n = strlen(text);
	while (n && is_blank(text[n - 1]))
		n--;
	while (n && is_blank(*text)) {
		text++;
		n--;
	}
	if (n > TEXT_MAX)
		return err_set(err, -EINVAL, "schedule too long (more than %d bytes)", TEXT_MAX);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)text[i] < 0x20 ? text[i] != '\t'
						  : (unsigned char)text[i] >= 0x7f)
			return err_set(err, -EINVAL,
				       "schedule has a byte that is not printable ASCII (at %zu)",
				       i);
	char t[TEXT_MAX + 1];
	for (size_t i = 0; i < n; i++) /* a tab is a blank: messages show it as one */
		t[i] = text[i] == '\t' ? ' ' : text[i];
	t[n] = '\0';
	size_t kw = 0;
	while (is_alpha(t[kw]))
		kw++;
	const char *rest = t + kw;
	while (is_blank(*rest))
		rest++;
	if (kw == 4 && strncasecmp(t, "once", 4) == 0 && !*rest) {
		s->kind = SCHEDULE_ONCE;
		buf_adds(&canon, "once");
	} else if (kw == 5 && strncasecmp(t, "every", 5) == 0 && (is_blank(t[kw]) || !t[kw])) {
		s->kind = SCHEDULE_EVERY;
		rc = duration_parse(rest, &s->period, err);
		buf_adds(&canon, "every ");
		duration_text(&canon, s->period);
	} else if (kw == 4 && strncasecmp(t, "cron", 4) == 0 && (is_blank(t[kw]) || !t[kw])) {
		s->kind = SCHEDULE_CRON;
		rc = cron_parse(rest, &s->cron, &canon, err);
	} else if (t[0] == '@') {
		s->kind = SCHEDULE_CRON;
		rc = cron_parse(t, &s->cron, &canon, err);
	} else {
		rc = err_set(err, -EINVAL,
			     "bad schedule \"%s\" (expected once, every DURATION or cron \"MIN "
			     "HOUR DOM MON DOW\")",
			     t);
	}
	if (!rc)
		s->text = buf_detach(&canon, NULL);
	buf_release(&canon);
	return rc;
}

static int parse(const char *text, const char *tz, const char *dir, const void *tzif, size_t len,
		 struct schedule **out, struct dth_err *err)
{
	*out = NULL;
	if (!text)
		return err_set(err, -EINVAL, "no schedule");
	struct schedule *s = xcalloc(1, sizeof(*s));
	int rc = text_parse(text, s, err);
	if (rc)
		goto fail;
	bool utc = !tz || !*tz;
	if (!tzif && !utc && (strcmp(tz, "UTC") == 0 || strcmp(tz, "Etc/UTC") == 0))
		utc = true;
	if (utc) {
		zone_utc(&s->zone);
	} else if ((rc = zone_load(&s->zone, tz, dir, tzif, len, err))) {
		goto fail;
	}
	s->tz = xstrdup(tz && *tz ? tz : "UTC");
	*out = s;
	return 0;
fail:
	schedule_free(s);
	return rc;
}

int schedule_parse(const char *text, const char *tz, struct schedule **out, struct dth_err *err)
{
	return parse(text, tz, SCHEDULE_ZONEINFO, NULL, 0, out, err);
}

int schedule_parse_in(const char *text, const char *tz, const char *zoneinfo_dir,
		      struct schedule **out, struct dth_err *err)
{
	return parse(text, tz, zoneinfo_dir, NULL, 0, out, err);
}

int schedule_parse_tzif(const char *text, const char *tz, const void *tzif, size_t len,
			struct schedule **out, struct dth_err *err)
{
	if (!tz || !tzif) {
		*out = NULL;
		return err_set(err, -EINVAL, "no time zone name or data");
	}
	return parse(text, tz, NULL, tzif, len, out, err);
}

void schedule_free(struct schedule *s)
{
	if (!s)
		return;
	zone_release(&s->zone);
	free(s->text);
	free(s->tz);
	free(s);
}

/* The first matching instant strictly after ref. Local minutes are tried from
 * the one after ref's wall-clock time: an earlier one maps to an instant <= ref
 * (the map from local time to instants never goes back). In an overlap the
 * local times after ref's may still map before it (first occurrences): skip. */
static int64_t cron_after(const struct schedule *s, int64_t ref)
{
	if (ref >= T_MAX)
		return INT64_MAX;
	if (ref < T_MIN)
		ref = T_MIN;
	int64_t L = floor_div(ref + zone_offset(&s->zone, ref), 60) * 60 + 60;
	for (int i = 0; i < OVERLAP_MAX; i++) {
		L = cron_match(&s->cron, L);
		if (L == NONE)
			return INT64_MAX;
		int64_t t = zone_first_instant(&s->zone, L);
		if (t > ref)
			return t > T_MAX ? INT64_MAX : t;
		L += 60;
	}
	return INT64_MAX;
}

int64_t schedule_next(const struct schedule *s, int64_t last_start, int64_t now)
{
	bool ran = last_start >= 0;
	if (ran && last_start > now)
		last_start = now;
	switch (s->kind) {
	case SCHEDULE_ONCE:
		return ran ? INT64_MAX : now;
	case SCHEDULE_EVERY:
		if (!ran)
			return now;
		return last_start > INT64_MAX - s->period ? INT64_MAX : last_start + s->period;
	case SCHEDULE_CRON:
	default:
		if (ran)
			return cron_after(s, last_start);
		return cron_after(s, now < INT64_MIN + 60 ? INT64_MIN : now - 60);
	}
}

const char *schedule_text(const struct schedule *s)
{
	return s->text;
}

const char *schedule_tz(const struct schedule *s)
{
	return s->tz;
}

enum schedule_kind schedule_kind(const struct schedule *s)
{
	return s->kind;
}

int32_t schedule_utc_offset(const struct schedule *s, int64_t t)
{
	if (t < T_MIN)
		t = T_MIN;
	if (t > T_MAX)
		t = T_MAX;
	return zone_offset(&s->zone, t);
}
