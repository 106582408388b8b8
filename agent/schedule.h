/* When a task runs: its schedule (the config's `schedule =` and `timezone =`),
 * parsed once, and the time its next run is due.
 *
 * The text (keywords, units and names in any case; blanks around it ignored;
 * at most 256 bytes):
 *   once               the task runs one time (its first run), then never again
 *                      by schedule
 *   every DURATION     fixed rate: the next run is due DURATION after the start
 *                      of the previous one. DURATION is a number of seconds
 *                      ("90") or numbers with units in the order d, h, m, s, each
 *                      at most once ("30s", "5m", "2h", "1d", "1h30m"); from 1 s
 *                      to 366 d
 *   cron "MIN HOUR DOM MON DOW"   (the quotes, " or ', are optional)
 *                      standard 5-field cron. Each field is a list (a,b,...) of
 *                      `*`, N, A-B, `*`/S or A-B/S (S from 1 to the field's span).
 *                      MIN 0-59, HOUR 0-23, DOM 1-31, MON 1-12 or JAN-DEC, DOW 0-7
 *                      or SUN-SAT (0 and 7 are Sunday; a range may end on Sunday: FRI-SUN). Vixie's
 * day rule: when both DOM and DOW are restricted, a day matches if either does; a field starting
 * with '*' (also `*`/S) counts as unrestricted, so then both must match, as in Vixie cron and
 * cronie. A combination that never occurs ("0 0 30 2 *") is refused. cron @hourly | @daily |
 * @midnight | @weekly | @monthly | @yearly | @annually the usual shorthands, also without the word
 * cron The time zone is UTC (tz NULL, "", "UTC" or "Etc/UTC", which need no file) or an IANA name,
 * read from its TZif file (RFC 8536, versions 1 to 4, including the footer's POSIX TZ rule for
 * times after the file's last transition) under /usr/share/zoneinfo (Debian's tzdata package). A
 * zone name holds only [A-Za-z0-9_+-] and '/' between non-empty parts, no "..", at most 255 bytes;
 * the file is read whole (64 KiB at most) and checked as hostile input.
 * Leap-second ("right/") zones are refused. No process-global state is used
 * (no TZ, tzset or localtime), so any thread may parse.
 *
 * Cron times are wall-clock times in the zone. On a day whose clocks go forward
 * (a gap), a time that does not exist fires at the first instant after the gap
 * (02:30 on a spring-forward day from 02:00 to 03:00 fires at 03:00, once even
 * if 03:00 matches too), as cronie and systemd do. When clocks go back (an
 * overlap), each wall-clock time fires once, at its first occurrence; the
 * repeated times after the change do not fire again (so "0 * * * *" skips the
 * repeated hour). The result is always an instant (Unix seconds); times are
 * handled from year 1 to 9999 and anything later is "never".
 *
 * A struct schedule is immutable once parsed: every function below may be
 * called on the same schedule from many threads at once. */
#ifndef DTH_SCHEDULE_H
#define DTH_SCHEDULE_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/util.h"

struct schedule;

enum schedule_kind {
	SCHEDULE_ONCE,
	SCHEDULE_EVERY,
	SCHEDULE_CRON,
};

/* Where the zone files are. */
#define SCHEDULE_ZONEINFO "/usr/share/zoneinfo"

/* Parse text in time zone tz (NULL or "" for UTC). 0 with *out set (free it
 * with schedule_free), or -EINVAL with err naming the problem (the field and
 * value of a cron expression, the zone and what is wrong with its file), or
 * another negative errno when the zone file cannot be read (-EACCES, -EIO).
 * *out is NULL on error. */
int schedule_parse(const char *text, const char *tz, struct schedule **out,
		   struct dth_err *err) WUR;
/* schedule_parse reading zone files from zoneinfo_dir instead of
 * SCHEDULE_ZONEINFO (tests). */
int schedule_parse_in(const char *text, const char *tz, const char *zoneinfo_dir,
		      struct schedule **out, struct dth_err *err) WUR;
/* schedule_parse with the zone's TZif file given as bytes (len of them) instead
 * of read from a file; tz (required, checked like a zone name) only names it.
 * For tests and fuzzing. */
int schedule_parse_tzif(const char *text, const char *tz, const void *tzif, size_t len,
			struct schedule **out, struct dth_err *err) WUR;
/* NULL is fine. */
void schedule_free(struct schedule *s);

/* When the next run is due, in Unix seconds; the caller runs the task when the
 * result is <= now, and otherwise may sleep until the result and ask again.
 * last_start is the start of the previous run, or a negative value when the
 * task never ran; a last_start later than now (the clock went back) counts as
 * now. The result depends on now only as said below, so asking again later
 * gives the same due time until the task runs.
 *   once:  never ran: now; else INT64_MAX (never again).
 *   every D: never ran: now; else last_start + D. After a downtime longer than
 *          D the result is in the past: the task runs once at once and the rate
 *          restarts from that run (missed runs are caught up once, not one by
 *          one).
 *   cron:  ran: the first matching time strictly after last_start, so a time
 *          missed while the agent was down is caught up once, at once (like
 *          systemd's Persistent=true); never ran: the first matching time
 *          strictly after now - 60 s, i.e. the current minute when it matches
 *          (a caller waking up late within the minute still runs), else the next.
 * INT64_MAX means never. To skip a due run (the previous one still running),
 * pass the skipped due time as last_start: the result is the run after it. */
int64_t schedule_next(const struct schedule *s, int64_t last_start, int64_t now);

/* The canonical text, which schedule_parse accepts and maps to the same
 * schedule: "once", "every 1h30m", "cron \"30 2 * * 1-5\"", "cron \"@daily\"".
 * Valid until schedule_free. */
const char *schedule_text(const struct schedule *s);
/* The zone's name ("UTC" when none was given). Valid until schedule_free. */
const char *schedule_tz(const struct schedule *s);
enum schedule_kind schedule_kind(const struct schedule *s);
/* The zone's offset from UTC at instant t, in seconds east (3600 for Paris in
 * winter, -14400 for New York in summer). */
int32_t schedule_utc_offset(const struct schedule *s, int64_t t);

#endif
