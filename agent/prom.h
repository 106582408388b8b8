/* The Prometheus text exposition format (version 0.0.4), written so that the
 * caller cannot produce a broken or lint-failing page: names are checked
 * when a family is declared, label names when a sample is added, label values
 * and help texts are escaped, a family's samples are printed together
 * whatever order they were added in, and a series added twice is refused.
 *
 * Use: prom_new(), declare the families (prom_family), add the samples
 * (prom_add, prom_add_u64, prom_histogram), prom_write() into a struct buf,
 * prom_free(). prom_clear() drops the samples and keeps the families, for a
 * writer reused from one scrape to the next. Not thread-safe: one writer per
 * thread, or the caller's lock.
 *
 * What is checked (more than the format needs: also what `promtool check
 * metrics` lints, so its exit status is 0):
 *  - metric names: [a-z_][a-z0-9_]* (snake_case; no ':', which is for
 *    recording rules; no leading "__"), at most PROM_NAME_MAX bytes; a
 *    counter's ends in "_total" and no other's does; no family but a
 *    histogram ends in "_bucket", "_count" or "_sum", and a histogram's ends
 *    in none of them; no "_counter", "_gauge" or "_histogram" in a name of
 *    that type; units in base form: no abbreviation as a word ("_ms", "_s",
 *    "_b", "_mb", "_h"...), no "_milliseconds", "_minutes", "_kilobytes",
 *    "_bits"...: use "_seconds" and "_bytes";
 *  - help: required (non-empty); "\\" and newlines escaped, invalid UTF-8
 *    replaced by U+FFFD;
 *  - label names: [a-z_][a-z0-9_]*, not "__..." (reserved), not "le" or
 *    "quantile" (histogram and summary), each once in a sample;
 *  - label values: any NUL-terminated bytes; "\\", "\"" and newline are
 *    escaped, and each byte that is not part of valid UTF-8 becomes U+FFFD;
 *  - series: two samples of one family whose labels print the same (in any
 *    order: labels are printed sorted by name) are refused with -EEXIST;
 *    note that label values differing only in invalid bytes print the same;
 *  - values: counters finite and >= 0; gauges any double (NaN and the
 *    infinities are printed as NaN, +Inf, -Inf); integers are printed as
 *    integers, other values with %.17g so that they read back exactly.
 *
 * Families are printed in the order they were declared, each with its HELP
 * and TYPE lines even when it has no samples (a scraper sees every metric
 * the agent has, before the first task runs; promtool accepts it). Samples
 * are printed in the order they were added. Every line ends with a newline;
 * a writer with no family writes nothing. */
#ifndef DTH_PROM_H
#define DTH_PROM_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/util.h"

#define PROM_NAME_MAX 200

enum prom_type {
	PROM_COUNTER,
	PROM_GAUGE,
	PROM_HISTOGRAM,
};

/* One label of a sample. Both strings are borrowed for the call only. */
struct prom_label {
	const char *name;
	const char *value;
};

struct prom;
/* A family, owned by its struct prom: valid until prom_free(). */
struct prom_family;

struct prom *prom_new(void);
/* Frees p, its families and samples. NULL is fine. */
void prom_free(struct prom *p);
/* Drop every sample; the families stay declared (their handles stay valid). */
void prom_clear(struct prom *p);

/* Declare a family: name and help are copied. *out is set on success.
 * Returns 0, -EINVAL (a name or help that breaks the rules above, or an
 * unknown type), or -EEXIST (a family of that name exists). */
int prom_family(struct prom *p, const char *name, enum prom_type type, const char *help,
		struct prom_family **out) WUR;

/* Add one sample of a counter or gauge family; labels (n of them, NULL when
 * n is 0) are copied. Returns 0; -EINVAL for a bad label name, a label named
 * twice, a histogram family, or a counter value that is negative or not
 * finite; -EEXIST for a series already added since the last prom_clear. On
 * error nothing is added. */
int prom_add(struct prom_family *f, const struct prom_label *labels, size_t n, double value) WUR;
/* The same with an integer value, printed exactly (a byte count over 2^53
 * loses nothing). */
int prom_add_u64(struct prom_family *f, const struct prom_label *labels, size_t n,
		 uint64_t value) WUR;

/* Add one series of a histogram family: nb buckets, where bucket i counts
 * the observations <= bounds[i] (cumulative, as the format wants). bounds
 * must be finite and strictly increasing, counts non-decreasing and at most
 * count; the "+Inf" bucket (= count), _sum and _count are added here. nb may
 * be 0. Returns 0, -EINVAL (as prom_add, or a family that is not a
 * histogram, or bounds/counts that break these rules), -EEXIST. */
int prom_histogram(struct prom_family *f, const struct prom_label *labels, size_t n,
		   const double *bounds, const uint64_t *counts, size_t nb, double sum,
		   uint64_t count) WUR;

/* Append the exposition to out (which the caller owns and has initialised).
 * Cannot fail. Content-Type: text/plain; version=0.0.4; charset=utf-8. */
void prom_write(const struct prom *p, struct buf *out);

#endif
