/* Unit tests of agent/schedule.c: the forms of the text and their canonical
 * text, bad input and its messages, once/every, cron fields and Vixie's
 * DOM/DOW rule, month ends and leap days, a year-long walk in UTC against a
 * minute-by-minute matcher built on gmtime_r, time zones (Paris, New York,
 * Kolkata, Lord Howe, dates far past the last transition) with expected values
 * printed by `TZ=... date`, a year-long walk in Paris and New York against
 * glibc's localtime_r (the test alone sets TZ; the module never does), POSIX TZ
 * footers against glibc reading the same strings, and malformed TZif files
 * (truncated at every length, bytes flipped, counts too large, a zone
 * directory of our own). */
#include "common/compat.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/schedule.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/util.h"
#include "tests/unit/tap.h"

#define NEVER INT64_MAX

static struct schedule *parse_tz(const char *text, const char *tz)
{
	struct schedule *s = NULL;
	struct dth_err e;
	err_clear(&e);
	if (schedule_parse(text, tz, &s, &e) != 0) {
		printf("# unexpected: '%s' in %s refused: %s\n", text, tz ? tz : "UTC", e.message);
		return NULL;
	}
	return s;
}

/* ---- forms and canonical text ---- */

static void test_forms(void)
{
	static const struct {
		const char *text, *canon;
		enum schedule_kind kind;
	} c[] = {
	    {"once", "once", SCHEDULE_ONCE},
	    {"  ONCE\t", "once", SCHEDULE_ONCE},
	    {"every 30s", "every 30s", SCHEDULE_EVERY},
	    {"every 5m", "every 5m", SCHEDULE_EVERY},
	    {"every 2h", "every 2h", SCHEDULE_EVERY},
	    {"every 1d", "every 1d", SCHEDULE_EVERY},
	    {"every 1h30m", "every 1h30m", SCHEDULE_EVERY},
	    {"every 90", "every 1m30s", SCHEDULE_EVERY},
	    {"every 90m", "every 1h30m", SCHEDULE_EVERY},
	    {"Every 1D12H", "every 1d12h", SCHEDULE_EVERY},
	    {"every 1s", "every 1s", SCHEDULE_EVERY},
	    {"every 366d", "every 366d", SCHEDULE_EVERY},
	    {"every 1d2h3m4s", "every 1d2h3m4s", SCHEDULE_EVERY},
	    {"every 3600s", "every 1h", SCHEDULE_EVERY},
	    {"cron \"*/5 * * * *\"", "cron \"*/5 * * * *\"", SCHEDULE_CRON},
	    {"cron */5 * * * *", "cron \"*/5 * * * *\"", SCHEDULE_CRON},
	    {"cron '0 0 * * MON-FRI'", "cron \"0 0 * * MON-FRI\"", SCHEDULE_CRON},
	    {"CRON   0  12\t*  * *  ", "cron \"0 12 * * *\"", SCHEDULE_CRON},
	    {"cron \" 1,2,3 0-23/2 1-31 jan-Dec sun-sat \"",
	     "cron \"1,2,3 0-23/2 1-31 jan-Dec sun-sat\"", SCHEDULE_CRON},
	    {"@daily", "cron \"@daily\"", SCHEDULE_CRON},
	    {"cron @hourly", "cron \"@hourly\"", SCHEDULE_CRON},
	    {"cron \"@weekly\"", "cron \"@weekly\"", SCHEDULE_CRON},
	    {"@MONTHLY", "cron \"@monthly\"", SCHEDULE_CRON},
	    {"@yearly", "cron \"@yearly\"", SCHEDULE_CRON},
	    {"@annually", "cron \"@annually\"", SCHEDULE_CRON},
	    {"@midnight", "cron \"@midnight\"", SCHEDULE_CRON},
	    {"cron 0 0 29 2 *", "cron \"0 0 29 2 *\"", SCHEDULE_CRON},
	    {"cron 0 0 * * 7", "cron \"0 0 * * 7\"", SCHEDULE_CRON},
	};
	for (size_t i = 0; i < ARRAY_SIZE(c); i++) {
		struct schedule *s = parse_tz(c[i].text, NULL);
		ok(s != NULL, "'%s' parses", c[i].text);
		if (!s)
			continue;
		is_str(schedule_text(s), c[i].canon, "'%s' reads back as '%s'", c[i].text,
		       c[i].canon);
		is_int(schedule_kind(s), c[i].kind, "'%s' kind", c[i].text);
		is_str(schedule_tz(s), "UTC", "'%s' is in UTC", c[i].text);
		/* the canonical text maps to the same text and the same times */
		struct schedule *s2 = parse_tz(schedule_text(s), "");
		ok(s2 && strcmp(schedule_text(s2), schedule_text(s)) == 0 &&
		       schedule_next(s2, 1704067200, 1704067300) ==
			   schedule_next(s, 1704067200, 1704067300),
		   "'%s' round trips", c[i].canon);
		schedule_free(s2);
		schedule_free(s);
	}
}

/* ---- bad input ---- */

static void bad(const char *text, const char *tz, const char *want)
{
	struct schedule *s = (struct schedule *)1;
	struct dth_err e;
	err_clear(&e);
	int rc = schedule_parse(text, tz, &s, &e);
	struct buf shown = BUF_INIT;
	buf_add_printable(&shown, text, strlen(text));
	ok(rc == -EINVAL && e.code == -EINVAL && s == NULL && strstr(e.message, want),
	   "'%s'%s%s refused: %s", shown.data, tz ? " in " : "", tz ? tz : "", e.message);
	buf_release(&shown);
	if (!strstr(e.message, want))
		printf("#   wanted the message to hold: %s\n", want);
	if (rc == 0)
		schedule_free(s);
}

static void test_bad(void)
{
	bad("", NULL, "bad schedule");
	bad("sometimes", NULL, "expected once, every DURATION or cron");
	bad("once more", NULL, "bad schedule \"once more\"");
	bad("every", NULL, "every needs a duration");
	bad("every5m", NULL, "bad schedule");
	bad("every 0s", NULL, "out of range (1s to 366d)");
	bad("every 0", NULL, "out of range");
	bad("every 367d", NULL, "out of range");
	bad("every 366d1s", NULL, "out of range");
	bad("every 5x", NULL, "unknown unit");
	bad("every 5 m", NULL, "unknown unit");
	bad("every 30m1h", NULL, "units go in the order d, h, m, s");
	bad("every 1h1h", NULL, "units go in the order");
	bad("every 1h30", NULL, "a unit is missing");
	bad("every -5m", NULL, "bad duration \"-5m\"");
	bad("every 99999999999s", NULL, "bad duration");
	bad("every m", NULL, "bad duration");
	bad("cron", NULL, "cron needs 5 fields (MIN HOUR DOM MON DOW), found 0");
	bad("cron 1 2 3 4", NULL, "found 4");
	bad("cron 1 2 3 4 5 6", NULL, "found more than 5");
	bad("cron \"1 2 3 4 5", NULL, "unbalanced \"");
	bad("cron \"", NULL, "unbalanced");
	bad("cron 60 * * * *", NULL, "cron minute field \"60\": 60 is out of range 0-59");
	bad("cron * 24 * * *", NULL, "cron hour field \"24\": 24 is out of range 0-23");
	bad("cron * * 0 * *", NULL, "cron day-of-month field \"0\": 0 is out of range 1-31");
	bad("cron * * 32 * *", NULL, "32 is out of range 1-31");
	bad("cron * * * 13 *", NULL, "cron month field \"13\": 13 is out of range 1-12");
	bad("cron * * * * 8", NULL, "cron day-of-week field \"8\": 8 is out of range 0-7");
	bad("cron 00000000007 * * * *", NULL, "00000000007 is out of range");
	bad("cron * * * FOO *", NULL, "cron month field \"FOO\": unknown name \"FOO\"");
	bad("cron * * * * MONDAY", NULL, "unknown name \"MONDAY\"");
	bad("cron * * * * JAN", NULL, "unknown name \"JAN\"");
	bad("cron * * * 1-MON *", NULL, "unknown name \"MON\"");
	bad("cron MON * * * *", NULL, "cron minute field \"MON\": expected a number");
	bad("cron 5-1 * * * *", NULL, "range 5-1 is reversed");
	bad("cron * * * * FRI-MON", NULL, "range 5-1 is reversed");
	bad("cron */0 * * * *", NULL, "the step must be a number from 1 to 60");
	bad("cron */61 * * * *", NULL, "from 1 to 60");
	bad("cron * */ * * *", NULL, "from 1 to 24");
	bad("cron 5/10 * * * *", NULL, "a step needs * or a range before it");
	bad("cron 1,,2 * * * *", NULL, "empty list item");
	bad("cron 1, * * * *", NULL, "empty list item");
	bad("cron ,1 * * * *", NULL, "empty list item");
	bad("cron ** * * * *", NULL, "unexpected \"*\"");
	bad("cron 1-2-3 * * * *", NULL, "unexpected \"-3\"");
	bad("cron 0 0 30 2 *", NULL, "never matches");
	bad("cron 0 0 31 4,6,9,11 *", NULL, "never matches");
	bad("@reboot", NULL, "unknown cron shorthand \"@reboot\"");
	bad("cron @daily 5", NULL, "cron needs 5 fields");
	bad("once\n", NULL, "not printable ASCII");
	bad("cron 0 0 * * \xc3\xa9", NULL, "not printable ASCII");
	char longtext[400];
	memset(longtext, ' ', sizeof(longtext));
	memcpy(longtext, "every", 5);
	memcpy(longtext + 390, "5m", 3);
	bad(longtext, NULL, "schedule too long");

	bad("once", "../etc/passwd", "bad time zone name \"../etc/passwd\"");
	bad("once", "/etc/localtime", "bad time zone name");
	bad("once", "Europe/../../etc/passwd", "bad time zone name");
	bad("once", "Europe//Paris", "bad time zone name");
	bad("once", "Europe/Paris/", "bad time zone name");
	bad("once", "Europe/Paris;rm", "bad time zone name");
	bad("once", "Europe/Paris ", "bad time zone name");
	bad("once", "Nowhere/City", "unknown time zone \"Nowhere/City\"");
	bad("once", "Europe", "unknown time zone \"Europe\"");
	bad("once", "right/Europe/Paris", "leap-second zones are not supported");
	char longtz[300];
	memset(longtz, 'A', sizeof(longtz) - 1);
	longtz[sizeof(longtz) - 1] = '\0';
	bad("once", longtz, "bad time zone name");
	/* the text is checked before the zone */
	bad("cron 61 * * * *", "Europe/Paris", "61 is out of range");
}

/* ---- once and every ---- */

static void test_once_every(void)
{
	struct schedule *s = parse_tz("once", NULL);
	is_int(schedule_next(s, -1, 1000), 1000, "once: due now when it never ran");
	is_int(schedule_next(s, -1, 5000), 5000, "once: still due now later on");
	is_int(schedule_next(s, 1000, 5000), NEVER, "once: never again after its run");
	is_int(schedule_next(s, 0, 5000), NEVER, "once: a run at time 0 counts");
	schedule_free(s);

	s = parse_tz("every 2m", "Europe/Paris");
	is_int(schedule_next(s, -1, 1000), 1000, "every: due now when it never ran");
	is_int(schedule_next(s, 1000, 1050), 1120, "every: the start of the last run + D");
	is_int(schedule_next(s, 1000, 1120), 1120, "every: due exactly at last + D");
	is_int(schedule_next(s, 1000, 100000), 1120,
	       "every: after a downtime, due in the past (runs once, at once)");
	is_int(schedule_next(s, 100000, 100000), 100120, "every: the rate restarts from that run");
	is_int(schedule_next(s, 5000, 1000), 1120, "every: a last start after now counts as now");
	is_int(schedule_next(s, INT64_MAX - 10, INT64_MAX), NEVER, "every: no overflow");
	is_int(schedule_next(s, 1120, 1200), 1240,
	       "every: skipping a due run: pass it as the start");
	schedule_free(s);
}

/* ---- cron in UTC ---- */

static int64_t utc(int y, int mo, int d, int h, int mi)
{
	struct tm tm = {
	    .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi};
	return (int64_t)timegm(&tm);
}

static void test_cron_basics(void)
{
	struct schedule *s = parse_tz("cron */5 * * * *", NULL);
	int64_t t0 = utc(2024, 1, 1, 0, 0);
	is_int(schedule_next(s, t0, t0), t0 + 300, "*/5: strictly after the last start");
	is_int(schedule_next(s, t0 + 1, t0 + 1), t0 + 300, "*/5: a late start does not repeat");
	is_int(schedule_next(s, t0 - 1, t0 - 1), t0, "*/5: from a second before");
	is_int(schedule_next(s, -1, t0 + 30), t0, "never ran: the current minute if it matches");
	is_int(schedule_next(s, -1, t0 + 59), t0, "never ran: up to its last second");
	is_int(schedule_next(s, -1, t0 + 60), t0 + 300, "never ran: else the next match");
	is_int(schedule_next(s, -1, t0 - 1), t0, "never ran: a match one second ahead");
	schedule_free(s);

	s = parse_tz("cron 0 3 * * *", NULL);
	int64_t last = utc(2024, 1, 1, 3, 0), now = utc(2024, 1, 4, 12, 0);
	is_int(schedule_next(s, last, now), utc(2024, 1, 2, 3, 0),
	       "missed runs: the first missed time, in the past (catch up once)");
	is_int(schedule_next(s, now, now), utc(2024, 1, 5, 3, 0), "then the next future time");
	is_int(schedule_next(s, last + 86400, last + 86400 + 100), utc(2024, 1, 3, 3, 0),
	       "skipping a due run: pass it as the last start");
	is_int(schedule_next(s, utc(2024, 6, 1, 0, 0), utc(2024, 5, 1, 0, 0)),
	       utc(2024, 5, 1, 3, 0), "a last start after now (clock went back) counts as now");
	is_int(schedule_next(s, utc(9999, 12, 31, 3, 0), utc(9999, 12, 31, 3, 0)), NEVER,
	       "nothing after year 9999");
	is_int(schedule_next(s, INT64_MAX, INT64_MAX), NEVER, "INT64_MAX in, never out");
	is_int(schedule_next(s, 0, 0), 3 * 3600, "from the epoch");
	schedule_free(s);
}

static void test_cron_days(void)
{
	static const struct {
		const char *expr;
		int from[5], want[5];
	} c[] = {
	    {"0 0 29 2 *", {2024, 3, 1, 0, 0}, {2028, 2, 29, 0, 0}},
	    {"0 0 29 2 *", {2024, 2, 28, 23, 59}, {2024, 2, 29, 0, 0}},
	    {"0 0 29 2 *", {2096, 3, 1, 0, 0}, {2104, 2, 29, 0, 0}}, /* 2100 is no leap year */
	    {"0 0 29 2 *", {2399, 3, 1, 0, 0}, {2400, 2, 29, 0, 0}}, /* 2400 is one */
	    {"0 12 31 * *", {2024, 1, 31, 12, 0}, {2024, 3, 31, 12, 0}},
	    {"0 12 31 * *", {2024, 3, 31, 12, 0}, {2024, 5, 31, 12, 0}},
	    {"0 12 30 * *", {2024, 1, 30, 12, 0}, {2024, 3, 30, 12, 0}},
	    {"59 23 31 12 *", {2024, 6, 1, 0, 0}, {2024, 12, 31, 23, 59}},
	    {"0 0 1 1 *", {2024, 12, 31, 23, 59}, {2025, 1, 1, 0, 0}},
	    /* Vixie: DOM and DOW both restricted, either matches */
	    {"0 0 13 * 5", {2024, 9, 1, 0, 0}, {2024, 9, 6, 0, 0}},   /* Friday 6th */
	    {"0 0 13 * 5", {2024, 9, 10, 0, 0}, {2024, 9, 13, 0, 0}}, /* Friday 13th */
	    {"0 0 13 * 5", {2024, 9, 26, 0, 0}, {2024, 9, 27, 0, 0}},
	    {"0 0 13 * 5", {2024, 10, 11, 0, 0}, {2024, 10, 13, 0, 0}}, /* Sunday 13th */
	    {"0 0 29 2 1", {2024, 2, 27, 0, 0}, {2024, 2, 29, 0, 0}},
	    {"0 0 29 2 1", {2025, 2, 24, 0, 0}, {2026, 2, 2, 0, 0}}, /* Mondays of Feb */
	    /* a field starting with '*' counts as unrestricted: both must match */
	    {"0 0 */2 * 5", {2024, 9, 1, 0, 0}, {2024, 9, 13, 0, 0}}, /* odd day and Friday */
	    {"0 0 13 * *", {2024, 9, 1, 0, 0}, {2024, 9, 13, 0, 0}},
	    {"0 0 * * 5", {2024, 9, 1, 0, 0}, {2024, 9, 6, 0, 0}},
	    {"0 0 * * 7", {2024, 9, 1, 0, 0}, {2024, 9, 8, 0, 0}}, /* 7 is Sunday */
	    {"0 0 * * 0", {2024, 9, 1, 0, 0}, {2024, 9, 8, 0, 0}},
	    {"0 0 * * 5-7", {2024, 9, 8, 0, 0}, {2024, 9, 13, 0, 0}},
	    {"0 0 * * sat-sun", {2024, 9, 8, 0, 0}, {2024, 9, 14, 0, 0}},
	    {"0 0 * * FRI-SUN", {2024, 9, 9, 0, 0}, {2024, 9, 13, 0, 0}},
	    {"0 0 * * 6-0", {2024, 9, 9, 0, 0}, {2024, 9, 14, 0, 0}},
	    {"0 0 1 jul *", {2024, 9, 1, 0, 0}, {2025, 7, 1, 0, 0}},
	    {"0 0 29 2 *", {9997, 1, 1, 0, 0}, {0, 0, 0, 0, 0}}, /* past 9999: never */
	};
	for (size_t i = 0; i < ARRAY_SIZE(c); i++) {
		struct buf text = BUF_INIT;
		buf_addf(&text, "cron %s", c[i].expr);
		struct schedule *s = parse_tz(text.data, NULL);
		buf_release(&text);
		if (!s) {
			ok(0, "'%s' parses", c[i].expr);
			continue;
		}
		const int *f = c[i].from, *w = c[i].want;
		int64_t want = w[0] ? utc(w[0], w[1], w[2], w[3], w[4]) : NEVER;
		int64_t from = utc(f[0], f[1], f[2], f[3], f[4]);
		is_int(schedule_next(s, from, from), want,
		       "'%s' after %04d-%02d-%02d %02d:%02d: %04d-%02d-%02d %02d:%02d", c[i].expr,
		       f[0], f[1], f[2], f[3], f[4], w[0], w[1], w[2], w[3], w[4]);
		schedule_free(s);
	}
}

/* A year-long walk: each expression's times from schedule_next, one after the
 * other, against every minute of the year tested by a predicate written from
 * the cron rules (on gmtime_r's or localtime_r's fields). */
struct walk {
	const char *expr;
	bool (*match)(const struct tm *tm);
};

static bool w_every7(const struct tm *t)
{
	return t->tm_min % 7 == 0;
}
static bool w_0230(const struct tm *t)
{
	return t->tm_hour == 2 && t->tm_min == 30;
}
static bool w_vixie(const struct tm *t)
{
	return t->tm_min == 15 && t->tm_hour == 10 &&
	       (t->tm_mday == 1 || t->tm_mday == 15 || (t->tm_wday >= 1 && t->tm_wday <= 5));
}
static bool w_and(const struct tm *t)
{
	return t->tm_min == 0 && t->tm_hour % 6 == 0 && t->tm_mday % 2 == 1 && t->tm_wday == 1;
}
static bool w_31(const struct tm *t)
{
	return t->tm_min == 0 && t->tm_hour == 0 && t->tm_mday == 31;
}
static bool w_janjul(const struct tm *t)
{
	return t->tm_min == 5 && t->tm_hour == 4 && (t->tm_mon == 0 || t->tm_mon == 6) &&
	       t->tm_wday == 0;
}
static bool w_list(const struct tm *t)
{
	return (t->tm_min % 5 == 0 ? t->tm_min <= 10 : t->tm_min == 58) && t->tm_hour >= 22 &&
	       (t->tm_wday == 6 || t->tm_wday == 0);
}
static bool w_monthly(const struct tm *t)
{
	return t->tm_min == 0 && t->tm_hour == 0 && t->tm_mday == 1;
}
static bool w_firstweek(const struct tm *t)
{
	return t->tm_min == 0 && t->tm_hour == 0 && (t->tm_mday <= 7 || t->tm_wday == 5);
}
static bool w_quarter(const struct tm *t)
{
	return t->tm_min % 15 == 0 && t->tm_hour >= 1 && t->tm_hour <= 3;
}
static bool w_nightly(const struct tm *t)
{
	return t->tm_min == 0 && (t->tm_hour == 1 || t->tm_hour == 2 || t->tm_hour == 3);
}

static const struct walk walks[] = {
    {"cron */7 * * * *", w_every7},
    {"cron 30 2 * * *", w_0230},
    {"cron 15 10 1,15 * 1-5", w_vixie},
    {"cron 0 */6 */2 * MON", w_and},
    {"cron 0 0 31 * *", w_31},
    {"cron 5 4 * JAN,jul sun", w_janjul},
    {"cron 0-10/5,58 22-23 * * 6,7", w_list},
    {"@monthly", w_monthly},
    {"cron 0 0 1-7 * 5", w_firstweek},
    {"cron */15 1-3 * * *", w_quarter},
    {"cron 0 1,2,3 * * *", w_nightly},
};

/* Compare schedule_next's sequence from t0 to t1 with the oracle's: local
 * minute L fires at the first instant whose wall clock reads L or later, so
 * an instant fires when a matching local minute lies in (the highest local
 * time before it, its own local time]: a gap's minutes fire at its end, an
 * overlap's repeated minutes never. In UTC this is just "the minute matches". */
static void walk(const struct walk *w, const char *tz, int64_t t0, int64_t t1)
{
	struct schedule *s = parse_tz(w->expr, tz);
	if (!s) {
		ok(0, "'%s' parses", w->expr);
		return;
	}
	int64_t got = schedule_next(s, t0 - 1, t0 - 1);
	int64_t maxlocal = INT64_MIN;
	long fired = 0, wrong = 0;
	for (int64_t t = t0; t < t1; t += 60) {
		struct tm tm;
		time_t tt = (time_t)t;
		if (tz)
			localtime_r(&tt, &tm);
		else
			gmtime_r(&tt, &tm);
		int64_t local = t + tm.tm_gmtoff,
			from = maxlocal == INT64_MIN ? local : maxlocal + 60;
		bool fire = false;
		for (int64_t L = from; L <= local && !fire; L += 60) {
			time_t lt = (time_t)L;
			struct tm ltm;
			gmtime_r(&lt, &ltm);
			fire = w->match(&ltm);
		}
		if (local > maxlocal)
			maxlocal = local;
		if (!fire)
			continue;
		fired++;
		if (got != t && wrong++ < 3)
			printf("#   %s in %s: expected %lld, got %lld\n", w->expr, tz ? tz : "UTC",
			       (long long)t, (long long)got);
		got = schedule_next(s, t, t);
	}
	if (got < t1 && wrong++ < 3)
		printf("#   %s: extra time %lld\n", w->expr, (long long)got);
	ok(wrong == 0 && fired > 0, "a year of '%s' in %s: %ld times, all as the oracle says",
	   w->expr, tz ? tz : "UTC", fired);
	schedule_free(s);
}

static void test_walk_utc(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(walks); i++)
		walk(&walks[i], NULL, utc(2024, 1, 1, 0, 0), utc(2025, 1, 2, 0, 0));
}

static void test_walk_zones(void)
{
	static const char *const zones[] = {"Europe/Paris", "America/New_York"};
	for (size_t z = 0; z < ARRAY_SIZE(zones); z++) {
		setenv("TZ", zones[z], 1);
		tzset();
		for (size_t i = 0; i < ARRAY_SIZE(walks); i++)
			walk(&walks[i], zones[z], utc(2024, 1, 1, 0, 0), utc(2025, 1, 2, 0, 0));
	}
	/* far past the last transition of the file (2037): the footer's rule */
	setenv("TZ", "America/New_York", 1);
	tzset();
	walk(&walks[ARRAY_SIZE(walks) - 2], "America/New_York", utc(2150, 1, 1, 0, 0),
	     utc(2151, 1, 1, 0, 0));
	unsetenv("TZ");
	tzset();
}

/* ---- time zones, against `TZ=ZONE date` ---- */

struct seq {
	const char *tz, *expr;
	int64_t from;
	int64_t want[3];
	const char *what;
};

static void test_zones(void)
{
	static const struct seq c[] = {
	    {"Europe/Paris",
	     "cron 30 2 * * *",
	     1711796400,	       /* 2024-03-30 12:00 CET */
	     {1711846800, 1711931400}, /* 03-31 03:00 CEST (gap end), 04-01 02:30 CEST */
	     "Paris spring forward: 02:30 does not exist, fires at 03:00"},
	    {"Europe/Paris",
	     "cron 30 2,3 * * *",
	     1711796400,
	     {1711846800, 1711848600, 1711931400}, /* 03:00 once, 03:30, next day 02:30 */
	     "Paris: the gap's time and the time after it fire once"},
	    {"Europe/Paris",
	     "cron 30 2 * * *",
	     1729936800,	       /* 2024-10-26 12:00 CEST */
	     {1729989000, 1730079000}, /* 10-27 02:30 CEST (first), 10-28 02:30 CET */
	     "Paris fall back: 02:30 fires once, at its first occurrence"},
	    {"America/New_York",
	     "cron 30 2 * * *",
	     1710003600,	       /* 2024-03-09 12:00 EST */
	     {1710054000, 1710138600}, /* 03-10 03:00 EDT, 03-11 02:30 EDT */
	     "New York spring forward"},
	    {"America/New_York",
	     "cron 30 1 * * *",
	     1730563200,	       /* 2024-11-02 12:00 EDT */
	     {1730611800, 1730701800}, /* 11-03 01:30 EDT, 11-04 01:30 EST */
	     "New York fall back: 01:30 once"},
	    {"America/New_York",
	     "cron */30 * * * *",
	     1730610000 - 600,
	     {1730610000, 1730611800, 1730617200}, /* 01:00 EDT, 01:30 EDT, 02:00 EST */
	     "New York fall back: the repeated hour does not fire again"},
	    {"Asia/Kolkata",
	     "cron 0 9 * * *",
	     1717200000,		       /* 2024-06-01 00:00 UTC */
	     {1717212600, 1717212600 + 86400}, /* 09:00 IST = 03:30 UTC */
	     "Kolkata (+5:30)"},
	    {"Australia/Lord_Howe",
	     "cron 15 2 * * *",
	     1728091800,	       /* 2024-10-05 12:00 +1030 */
	     {1728142200, 1728227700}, /* 10-06 02:30 +11 (gap end), 10-07 02:15 +11 */
	     "Lord Howe: a 30-minute gap"},
	    {"Australia/Lord_Howe",
	     "cron 45 1 * * *",
	     1743814800,		       /* 2025-04-05 12:00 +11 */
	     {1743864300, 1743866100 + 86400}, /* 04-06 01:45 +11 (first), 04-07 01:45 +1030 */
	     "Lord Howe: a 30-minute overlap"},
	    {"Europe/Paris",
	     "cron 0 12 1 7 *",
	     4102484400,   /* 2100-01-01 12:00 CET */
	     {4118119200}, /* 2100-07-01 12:00 CEST */
	     "Paris in 2100 (the footer's rule)"},
	    {"America/New_York",
	     "cron 30 2 * * *",
	     5685958800,	       /* 2150-03-07 12:00 EST */
	     {5686009200, 5686093800}, /* 03-08 03:00 EDT (gap end), 03-09 02:30 EDT */
	     "New York spring forward in 2150"},
	    {"America/New_York",
	     "cron 30 1 * * *",
	     5706518400,	       /* 2150-10-31 12:00 EDT */
	     {5706567000, 5706657000}, /* 11-01 01:30 EDT, 11-02 01:30 EST */
	     "New York fall back in 2150"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(c); i++) {
		struct schedule *s = parse_tz(c[i].expr, c[i].tz);
		if (!s) {
			ok(0, "%s", c[i].what);
			continue;
		}
		int64_t t = c[i].from;
		bool good = true;
		for (int k = 0; k < 3 && c[i].want[k]; k++) {
			t = schedule_next(s, t, t);
			if (t != c[i].want[k]) {
				printf("#   time %d: got %lld, expected %lld\n", k + 1,
				       (long long)t, (long long)c[i].want[k]);
				good = false;
			}
		}
		ok(good, "%s (%s in %s)", c[i].what, c[i].expr, c[i].tz);
		schedule_free(s);
	}

	/* a never-run task in the repeated hour does not take the first 02:30 again */
	struct schedule *s = parse_tz("cron 30 2 * * *", "Europe/Paris");
	is_int(schedule_next(s, -1, 1729989000 + 3600 + 30), 1730079000,
	       "Paris: never ran, asked at the second 02:30: the next day");
	is_int(schedule_next(s, -1, 1729989000 + 30), 1729989000,
	       "Paris: never ran, asked at the first 02:30: now");
	schedule_free(s);

	static const struct {
		const char *tz;
		int64_t t;
		int32_t off;
	} o[] = {
	    {"Europe/Paris", 1711846799, 3600},	      /* 2024-03-31 01:59:59 +0100 */
	    {"Europe/Paris", 1711846800, 7200},	      /* 2024-03-31 03:00:00 +0200 */
	    {"Europe/Paris", 4102444800, 3600},	      /* 2100-01-01 01:00:00 +0100 */
	    {"Europe/Paris", 4118054400, 7200},	      /* 2100-06-30 18:00:00 +0200 */
	    {"Europe/Paris", 5715000000, 3600},	      /* 2151-02-06 21:00:00 +0100 */
	    {"America/New_York", 1730617200, -18000}, /* 2024-11-03 02:00:00 -0500 */
	    {"America/New_York", 1730613599, -14400}, /* 2024-11-03 01:59:59 -0400 */
	    {"America/New_York", 1730613600, -18000}, /* 2024-11-03 01:00:00 -0500 */
	    {"America/New_York", 5700000000, -14400}, /* 2150-08-17 01:20:00 -0400 */
	    {"America/New_York", 4102444800, -18000}, /* 2099-12-31 19:00:00 -0500 */
	    {"Asia/Kolkata", 1712000000, 19800},      /* +0530 */
	    {"Asia/Kolkata", 5715000000, 19800},
	    {"Australia/Lord_Howe", 1743864300, 39600}, /* 2025-04-06 01:45:00 +1100 */
	    {"Australia/Lord_Howe", 1743866100, 37800}, /* 2025-04-06 01:45:00 +1030 */
	    {"Australia/Lord_Howe", 5700000000, 37800}, /* 2150-08-17 15:50:00 +1030 */
	    {"Australia/Lord_Howe", 5715000000, 39600}, /* 2151-02-07 07:00:00 +1100 */
	    {"Australia/Lord_Howe", 4118054400, 37800}, /* 2100-07-01 02:30:00 +1030 */
	    {"UTC", 1712000000, 0},
	};
	for (size_t i = 0; i < ARRAY_SIZE(o); i++) {
		s = parse_tz("once", o[i].tz);
		is_int(s ? schedule_utc_offset(s, o[i].t) : -1, o[i].off, "%s at %lld: %+d s",
		       o[i].tz, (long long)o[i].t, o[i].off);
		if (s && strcmp(o[i].tz, "UTC") != 0)
			is_str(schedule_tz(s), o[i].tz, "schedule_tz names %s", o[i].tz);
		schedule_free(s);
	}
}

/* ---- TZif files of our own ---- */

static void put32(struct buf *b, uint32_t v)
{
	unsigned char c[4] = {v >> 24, v >> 16, v >> 8, v};
	buf_add(b, c, 4);
}

static void put64(struct buf *b, int64_t v)
{
	put32(b, (uint32_t)((uint64_t)v >> 32));
	put32(b, (uint32_t)v);
}

/* A TZif file: version ('\0' or '2' and up), n transitions at times t to
 * types idx, ntypes types of UT offsets off (isdst 0, designation "XYZ"), and
 * the footer (versions 2 and up). */
static void tzif(struct buf *b, char version, uint32_t n, const int64_t *t, const uint8_t *idx,
		 uint32_t ntypes, const int32_t *off, const char *footer)
{
	for (int pass = 0; pass < (version ? 2 : 1); pass++) {
		bool v2 = pass == 1;
		buf_add(b, "TZif", 4);
		buf_addch(b, version);
		buf_add(b, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 15);
		uint32_t cnt[6] = {0, 0, 0, n, ntypes, 4};
		for (int i = 0; i < 6; i++)
			put32(b, cnt[i]);
		for (uint32_t i = 0; i < n; i++)
			if (v2)
				put64(b, t[i]);
			else
				put32(b, (uint32_t)t[i]);
		buf_add(b, idx, n);
		for (uint32_t i = 0; i < ntypes; i++) {
			put32(b, (uint32_t)off[i]);
			buf_addch(b, 0);
			buf_addch(b, 0);
		}
		buf_add(b, "XYZ", 4);
	}
	if (version)
		buf_addf(b, "\n%s\n", footer);
}

static int parse_bytes(const char *text, const struct buf *b, struct schedule **s,
		       struct dth_err *e)
{
	err_clear(e);
	return schedule_parse_tzif(text, "Test/Zone", b->data, b->len, s, e);
}

static void test_tzif_own(void)
{
	struct buf b = BUF_INIT;
	struct schedule *s;
	struct dth_err e;
	/* version 1: +01:00 until 2000-01-01, then +02:00 for ever */
	int64_t t[1] = {946684800};
	uint8_t idx[1] = {1};
	int32_t off[2] = {3600, 7200};
	tzif(&b, 0, 1, t, idx, 2, off, NULL);
	ok(parse_bytes("cron 0 12 * * *", &b, &s, &e) == 0, "a version 1 file: %s", e.message);
	if (s) {
		is_int(schedule_utc_offset(s, 946684799), 3600, "v1: before the transition");
		is_int(schedule_utc_offset(s, 946684800), 7200, "v1: at it");
		is_int(schedule_utc_offset(s, 5000000000), 7200, "v1: the last type for ever");
		is_int(schedule_next(s, 946684800, 946684800), 946684800 + 10 * 3600,
		       "v1: 12:00 at +02:00 is 10:00 UTC");
		is_str(schedule_tz(s), "Test/Zone", "the zone keeps the name given");
		schedule_free(s);
	}

	/* version 2, no transitions, the footer alone rules (Paris's rule) */
	buf_reset(&b);
	tzif(&b, '2', 0, NULL, NULL, 1, off, "CET-1CEST,M3.5.0,M10.5.0/3");
	ok(parse_bytes("cron 30 2 * * *", &b, &s, &e) == 0, "footer only: %s", e.message);
	if (s) {
		is_int(schedule_utc_offset(s, 1711846799), 3600, "footer only: CET");
		is_int(schedule_utc_offset(s, 1711846800), 7200, "footer only: CEST");
		is_int(schedule_next(s, 1711796400, 1711796400), 1711846800,
		       "footer only: the Paris gap");
		schedule_free(s);
	}

	/* a footer of one fixed offset */
	buf_reset(&b);
	tzif(&b, '4', 0, NULL, NULL, 1, off, "<+0530>-5:30");
	ok(parse_bytes("once", &b, &s, &e) == 0 && schedule_utc_offset(s, 1712000000) == 19800,
	   "a footer <+0530>-5:30: %s", e.message);
	schedule_free(s);

	/* an empty footer: the last type stays */
	buf_reset(&b);
	tzif(&b, '2', 1, t, idx, 2, off, "");
	ok(parse_bytes("once", &b, &s, &e) == 0 && schedule_utc_offset(s, 5000000000) == 7200,
	   "an empty footer: %s", e.message);
	schedule_free(s);

	/* malformed files */
	static const struct {
		char version;
		uint32_t n, ntypes;
		int64_t t[2];
		uint8_t idx[2];
		int32_t off[2];
		const char *footer, *why;
	} m[] = {
	    {'2', 2, 2, {10, 5}, {0, 1}, {0, 3600}, "", "transition times not ascending"},
	    {'2', 2, 2, {5, 5}, {0, 1}, {0, 3600}, "", "transition times not ascending"},
	    {'2', 1, 2, {5}, {2}, {0, 3600}, "", "transition type out of range"},
	    {'2', 0, 1, {0}, {0}, {100000}, "", "UT offset out of range"},
	    {'2', 0, 1, {0}, {0}, {INT32_MIN}, "", "UT offset out of range"},
	    {'2', 0, 0, {0}, {0}, {0}, "", "bad number of time types"},
	    {'2', 0, 1, {0}, {0}, {0}, "CET-1CEST,M3.5.0", "bad TZ string in footer"},
	    {'2', 0, 1, {0}, {0}, {0}, "CET-1CEST,M13.5.0,M10.5.0", "bad TZ string"},
	    {'2', 0, 1, {0}, {0}, {0}, "CET-25", "bad TZ string"},
	    {'2', 0, 1, {0}, {0}, {0}, "CE-1", "bad TZ string"},
	    {'2', 0, 1, {0}, {0}, {0}, "CET-1CEST,J0,J365", "bad TZ string"},
	    {'2', 0, 1, {0}, {0}, {0}, "CET-1CEST,M3.5.0/168,M10.5.0", "bad TZ string"},
	    {'2', 0, 1, {0}, {0}, {0}, "CET-1 ", "bad TZ string"},
	    {'1', 0, 1, {0}, {0}, {0}, "", "unknown version"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(m); i++) {
		buf_reset(&b);
		tzif(&b, m[i].version, m[i].n, m[i].t, m[i].idx, m[i].ntypes, m[i].off,
		     m[i].footer);
		s = (struct schedule *)1;
		int rc = parse_bytes("once", &b, &s, &e);
		ok(rc == -EINVAL && !s && strstr(e.message, "time zone \"Test/Zone\"") &&
		       strstr(e.message, m[i].why),
		   "malformed (%s): %s", m[i].why, e.message);
		if (!rc)
			schedule_free(s);
	}

	/* counts larger than the file */
	buf_reset(&b);
	tzif(&b, '2', 0, NULL, NULL, 1, off, "");
	static const int count_at[] = {20, 24, 28, 32, 36, 40};
	for (size_t i = 0; i < ARRAY_SIZE(count_at); i++) {
		struct buf c = BUF_INIT;
		buf_add(&c, b.data, b.len);
		memset(c.data + count_at[i], 0xff, 4);
		s = (struct schedule *)1;
		int rc = parse_bytes("once", &c, &s, &e);
		ok(rc == -EINVAL && !s, "count %zu of the header all ones: %s", i, e.message);
		if (!rc)
			schedule_free(s);
		buf_release(&c);
	}
	/* the two headers disagree */
	size_t second = 44 + 6 + 4; /* after the first header, one type, 4 bytes of names */
	b.data[second + 4] = '3';
	s = (struct schedule *)1;
	ok(parse_bytes("once", &b, &s, &e) == -EINVAL && strstr(e.message, "disagree"),
	   "headers of different versions: %s", e.message);
	ok(s == NULL, "no schedule on error");
	buf_release(&b);
}

/* POSIX TZ footers against glibc reading the same string as TZ. */
static void test_footer_rules(void)
{
	static const char *const rules[] = {
	    "CET-1CEST,M3.5.0,M10.5.0/3",
	    "EST5EDT,M3.2.0,M11.1.0",
	    "AEST-10AEDT,M10.1.0,M4.1.0/3",
	    "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0",
	    "NZST-12NZDT,M9.5.0,M4.1.0/3",
	    "IST-1GMT0,M10.5.0,M3.5.0/1", /* Dublin: negative DST */
	    "<-03>3<-02>,M3.5.0/-2,M10.5.0/-1",
	    "XXX3YYY,J60/2,J300/2",
	    "XXX-3YYY-4,59/2,300/2:30:15",
	    "<-0930>9:30",
	    "ABC+4:15:30DEF,M1.1.1/167,M12.5.6/-167",
	    "UTC0",
	};
	int32_t zero = 0;
	for (size_t i = 0; i < ARRAY_SIZE(rules); i++) {
		struct buf b = BUF_INIT;
		tzif(&b, '3', 0, NULL, NULL, 1, &zero, rules[i]);
		struct schedule *s;
		struct dth_err e;
		if (parse_bytes("once", &b, &s, &e) != 0) {
			ok(0, "footer '%s' accepted: %s", rules[i], e.message);
			buf_release(&b);
			continue;
		}
		setenv("TZ", rules[i], 1);
		tzset();
		long checks = 0, wrong = 0;
		for (int64_t t = 946684800; t < 4102444800; t += 86400 * 3 + 1799) {
			struct tm tm;
			time_t tt = (time_t)t;
			localtime_r(&tt, &tm);
			checks++;
			if (tm.tm_gmtoff != schedule_utc_offset(s, t) && wrong++ < 3)
				printf("#   at %lld: glibc %ld, ours %d\n", (long long)t,
				       (long)tm.tm_gmtoff, schedule_utc_offset(s, t));
		}
		ok(wrong == 0, "footer '%s': %ld offsets from 2000 to 2100 as glibc's", rules[i],
		   checks);
		schedule_free(s);
		buf_release(&b);
	}
	unsetenv("TZ");
	tzset();

	/* Strings glibc reads otherwise. DST all year (RFC 8536 3.3.1: always 4 h
	 * behind UT; glibc takes the first hours of each year as EST). */
	struct buf b = BUF_INIT;
	struct schedule *s;
	struct dth_err e;
	tzif(&b, '3', 0, NULL, NULL, 1, &zero, "EST5EDT,0/0,J365/25");
	ok(parse_bytes("once", &b, &s, &e) == 0, "footer 'EST5EDT,0/0,J365/25': %s", e.message);
	if (s) {
		static const int64_t at[] = {946684800, 946702799, 946702800, 962409600,
					     978307199, 978325200, 4102444800};
		bool all = true;
		for (size_t i = 0; i < ARRAY_SIZE(at); i++)
			all &= schedule_utc_offset(s, at[i]) == -14400;
		ok(all, "DST all year: always -4 h, at the turns of years too");
		schedule_free(s);
	}
	/* DST without rules: the US rules (glibc reads posixrules instead) */
	buf_reset(&b);
	tzif(&b, '3', 0, NULL, NULL, 1, &zero, "PST8PDT");
	struct buf b2 = BUF_INIT;
	tzif(&b2, '3', 0, NULL, NULL, 1, &zero, "PST8PDT,M3.2.0,M11.1.0");
	struct schedule *s2 = NULL;
	if (parse_bytes("once", &b, &s, &e) == 0 && parse_bytes("once", &b2, &s2, &e) == 0) {
		bool same = true;
		for (int64_t t = 946684800; t < 4102444800; t += 86400 * 3 + 1799)
			same &= schedule_utc_offset(s, t) == schedule_utc_offset(s2, t);
		ok(same, "footer 'PST8PDT': the rules M3.2.0,M11.1.0");
		schedule_free(s);
		schedule_free(s2);
	} else {
		ok(0, "footer 'PST8PDT' accepted: %s", e.message);
	}
	buf_release(&b);
	buf_release(&b2);
}

/* ---- a real file, damaged ---- */

static bool read_file(const char *path, struct buf *b)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return false;
	char tmp[4096];
	size_t n;
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		buf_add(b, tmp, n);
	fclose(f);
	return b->len > 0;
}

static bool write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return false;
	bool good = fwrite(data, 1, len, f) == len;
	return fclose(f) == 0 && good;
}

static void test_damaged(void)
{
	struct buf paris = BUF_INIT;
	if (!read_file(SCHEDULE_ZONEINFO "/Europe/Paris", &paris)) {
		ok(0, "read " SCHEDULE_ZONEINFO "/Europe/Paris (is tzdata installed?)");
		return;
	}
	struct schedule *s;
	struct dth_err e;
	ok(parse_bytes("once", &paris, &s, &e) == 0, "Paris's bytes parse: %s", e.message);
	schedule_free(s);

	/* every truncation is refused (the footer ends the file) */
	size_t refused = 0, named = 0;
	for (size_t len = 0; len < paris.len; len++) {
		char *copy = xmemdup(paris.data, len); /* exact size: ASan sees any overread */
		err_clear(&e);
		s = (struct schedule *)1;
		int rc = schedule_parse_tzif("once", "Europe/Paris", copy, len, &s, &e);
		refused += rc == -EINVAL && s == NULL;
		named +=
		    strstr(e.message, "time zone \"Europe/Paris\": malformed zone file") != NULL;
		if (rc == 0)
			schedule_free(s);
		free(copy);
	}
	is_int(refused, paris.len, "every one of %zu truncations is -EINVAL", paris.len);
	is_int(named, paris.len, "and its message names the zone");

	/* bytes flipped one at a time: accepted or -EINVAL, never a crash */
	size_t accepted = 0, rejected = 0;
	for (size_t i = 0; i < paris.len; i++) {
		for (int k = 0; k < 3; k++) {
			static const unsigned char flips[3] = {0x01, 0x80, 0xff};
			char *copy = xmemdup(paris.data, paris.len);
			copy[i] = (char)(copy[i] ^ flips[k]);
			err_clear(&e);
			int rc = schedule_parse_tzif("cron 30 2 * * *", "Europe/Paris", copy,
						     paris.len, &s, &e);
			if (rc == 0) {
				accepted++;
				(void)schedule_next(s, 1711796400, 1711796400);
				(void)schedule_next(s, 5685958800, 5685958800);
				(void)schedule_utc_offset(s, -1000000000);
				schedule_free(s);
			} else if (rc == -EINVAL && s == NULL) {
				rejected++;
			}
			free(copy);
		}
	}
	is_int(accepted + rejected, paris.len * 3,
	       "bytes flipped: %zu accepted, %zu refused, nothing else", accepted, rejected);

	/* a zone directory of our own */
	char dir[] = "/tmp/dth-schedule-test.XXXXXX";
	if (!mkdtemp(dir)) {
		ok(0, "mkdtemp");
		buf_release(&paris);
		return;
	}
	struct buf p = BUF_INIT;
	buf_addf(&p, "%s/Test", dir);
	mkdir(p.data, 0700);
	buf_reset(&p);
	buf_addf(&p, "%s/Test/Good", dir);
	ok(write_file(p.data, paris.data, paris.len), "write Test/Good");
	err_clear(&e);
	int rc = schedule_parse_in("cron 30 2 * * *", "Test/Good", dir, &s, &e);
	ok(rc == 0 && schedule_next(s, 1711796400, 1711796400) == 1711846800,
	   "a zone from a directory of our own: %s", e.message);
	if (!rc)
		schedule_free(s);
	buf_reset(&p);
	buf_addf(&p, "%s/Test/Cut", dir);
	ok(write_file(p.data, paris.data, paris.len / 2), "write Test/Cut");
	err_clear(&e);
	s = (struct schedule *)1;
	rc = schedule_parse_in("once", "Test/Cut", dir, &s, &e);
	ok(rc == -EINVAL && !s && strstr(e.message, "time zone \"Test/Cut\": malformed zone file"),
	   "a truncated zone file: %s", e.message);
	buf_reset(&p);
	buf_addf(&p, "%s/Test/Huge", dir);
	struct buf huge = BUF_INIT;
	buf_add(&huge, paris.data, paris.len);
	while (huge.len <= 65536)
		buf_addch(&huge, '\n');
	ok(write_file(p.data, huge.data, huge.len), "write Test/Huge");
	err_clear(&e);
	rc = schedule_parse_in("once", "Test/Huge", dir, &s, &e);
	ok(rc == -EINVAL && strstr(e.message, "larger than 65536 bytes"),
	   "a zone file too large: %s", e.message);
	err_clear(&e);
	rc = schedule_parse_in("once", "Test", dir, &s, &e);
	ok(rc == -EINVAL && strstr(e.message, "is not a zone file"), "a directory: %s", e.message);
	err_clear(&e);
	rc = schedule_parse_in("once", "UTC", dir, &s, &e);
	ok(rc == 0 && schedule_utc_offset(s, 1712000000) == 0, "UTC needs no file: %s", e.message);
	if (!rc)
		schedule_free(s);
	const char *names[] = {"Test/Good", "Test/Cut", "Test/Huge", "Test"};
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		buf_reset(&p);
		buf_addf(&p, "%s/%s", dir, names[i]);
		if (i < 3)
			unlink(p.data);
		else
			rmdir(p.data);
	}
	rmdir(dir);
	buf_release(&p);
	buf_release(&huge);
	buf_release(&paris);
}

int main(void)
{
	test_forms();
	test_bad();
	test_once_every();
	test_cron_basics();
	test_cron_days();
	test_walk_utc();
	test_walk_zones();
	test_zones();
	test_tzif_own();
	test_footer_rules();
	test_damaged();
	return tap_done();
}
