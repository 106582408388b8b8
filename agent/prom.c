#include "common/compat.h"

#include "agent/prom.h"

#include <errno.h>
#include <math.h>

/* Design: each family keeps its sample lines, already formatted, in its own
 * buffer, so prom_write is a concatenation and a family's lines stay together
 * whatever order samples are added in. A sample is formatted into a scratch
 * buffer first and appended only once every check has passed: an error adds
 * nothing. Series are told apart by their printed label text (labels sorted
 * by name), kept in one open-addressing table keyed by (family, text); that
 * is exactly what a reader of the page would compare. Numbers are formatted
 * with the C library in the "C" locale (dth never calls setlocale). */

struct prom_family {
	struct prom *owner;
	char *name;
	struct buf help; /* escaped */
	enum prom_type type;
	struct buf lines;
};

struct series {
	const struct prom_family *f; /* NULL: free slot */
	char *key;		     /* printed labels, malloc'd */
	size_t len;
	uint64_t hash;
};

struct prom {
	struct prom_family **fams;
	size_t nfams, capfams;
	struct series *tab; /* capacity a power of two, at most half full */
	size_t tabcap, tabn;
};

static const char *const type_names[] = {"counter", "gauge", "histogram"};

struct prom *prom_new(void)
{
	return xcalloc(1, sizeof(struct prom));
}

static void table_clear(struct prom *p)
{
	for (size_t i = 0; i < p->tabcap; i++)
		free(p->tab[i].key);
	free(p->tab);
	p->tab = NULL;
	p->tabcap = p->tabn = 0;
}

void prom_clear(struct prom *p)
{
	table_clear(p);
	for (size_t i = 0; i < p->nfams; i++)
		buf_reset(&p->fams[i]->lines);
}

void prom_free(struct prom *p)
{
	if (!p)
		return;
	table_clear(p);
	for (size_t i = 0; i < p->nfams; i++) {
		free(p->fams[i]->name);
		buf_release(&p->fams[i]->help);
		buf_release(&p->fams[i]->lines);
		free(p->fams[i]);
	}
	free(p->fams);
	free(p);
}

/* ---- names ---- */

/* [a-z_][a-z0-9_]*, not "__...", 1..PROM_NAME_MAX bytes. */
static bool snake_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > PROM_NAME_MAX || (s[0] >= '0' && s[0] <= '9') || str_startswith(s, "__"))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

/* Words that promtool takes for abbreviated units. */
static const char *const unit_abbrev[] = {"s",	"ms", "us", "ns", "sec", "b", "kb",
					  "mb", "gb", "tb", "pb", "m",	 "h", "d"};
/* Units it knows; the first ones are base units. */
#define BASE_UNITS 10
static const char *const units[] = {
    "amperes", "bytes",	 "celsius", "grams", "joules", "kelvin",   "meters",  "metres",
    "seconds", "volts",	 "minutes", "hours", "days",   "weeks",	   "kelvins", "fahrenheit",
    "rankine", "inches", "yards",   "miles", "bits",   "calories", "pounds",  "ounces"};
static const char *const unit_prefixes[] = {"pico", "nano",  "micro", "milli", "centi", "deci",
					    "deca", "hecto", "kilo",  "kilos", "mega",	"giga",
					    "tera", "peta",  "exa",   "zetta", "yotta"};

static int unit_index(const char *w, size_t n)
{
	for (size_t i = 0; i < ARRAY_SIZE(units); i++)
		if (strlen(units[i]) == n && !memcmp(w, units[i], n))
			return (int)i;
	return -1;
}

/* One word of a name (between underscores) that is not a unit in base form. */
static bool word_bad(const char *w, size_t n)
{
	for (size_t i = 0; i < ARRAY_SIZE(unit_abbrev); i++)
		if (strlen(unit_abbrev[i]) == n && !memcmp(w, unit_abbrev[i], n))
			return true;
	int u = unit_index(w, n);
	if (u >= 0)
		return u >= BASE_UNITS;
	for (size_t i = 0; i < ARRAY_SIZE(unit_prefixes); i++) {
		size_t k = strlen(unit_prefixes[i]);
		if (n > k && !memcmp(w, unit_prefixes[i], k) && unit_index(w + k, n - k) >= 0)
			return true;
	}
	return false;
}

static bool units_ok(const char *name)
{
	const char *w = name;
	for (;;) {
		const char *e = strchr(w, '_');
		size_t n = e ? (size_t)(e - w) : strlen(w);
		if (word_bad(w, n))
			return false;
		if (!e)
			return true;
		w = e + 1;
	}
}

static bool type_in_name(const char *name, enum prom_type t)
{
	char mid[16];
	xsnprintf(mid, sizeof(mid), "_%s_", type_names[t]);
	if (strstr(name, mid))
		return true;
	mid[strlen(mid) - 1] = '\0';
	return str_endswith(name, mid);
}

static bool metric_name_ok(const char *name, enum prom_type t)
{
	if (!snake_ok(name) || !units_ok(name) || type_in_name(name, t))
		return false;
	if (str_endswith(name, "_total") != (t == PROM_COUNTER))
		return false;
	return !str_endswith(name, "_bucket") && !str_endswith(name, "_count") &&
	       !str_endswith(name, "_sum");
}

static bool label_name_ok(const char *name)
{
	return name && snake_ok(name) && strcmp(name, "le") && strcmp(name, "quantile");
}

/* ---- escaping ---- */

static const char replacement[] = "\xEF\xBF\xBD"; /* U+FFFD */

/* Append s, with "\\" and newline escaped (and '"' when quote), invalid
 * UTF-8 replaced. */
static void add_escaped(struct buf *b, const char *s, bool quote)
{
	size_t len = strlen(s);
	for (size_t i = 0; i < len;) {
		size_t k = utf8_seq_len(s + i, len - i);
		if (!k) {
			buf_adds(b, replacement);
			i++;
			continue;
		}
		char c = s[i];
		if (c == '\\')
			buf_adds(b, "\\\\");
		else if (c == '\n')
			buf_adds(b, "\\n");
		else if (c == '"' && quote)
			buf_adds(b, "\\\"");
		else
			buf_add(b, s + i, k);
		i += k;
	}
}

/* ---- families ---- */

int prom_family(struct prom *p, const char *name, enum prom_type type, const char *help,
		struct prom_family **out)
{
	if (!name || !help || !*help || (unsigned)type >= ARRAY_SIZE(type_names) ||
	    !metric_name_ok(name, type))
		return -EINVAL;
	for (size_t i = 0; i < p->nfams; i++)
		if (!strcmp(p->fams[i]->name, name))
			return -EEXIST;
	if (p->nfams == p->capfams) {
		p->capfams = p->capfams ? 2 * p->capfams : 16;
		p->fams = xrealloc(p->fams, p->capfams * sizeof(*p->fams));
	}
	struct prom_family *f = xcalloc(1, sizeof(*f));
	f->owner = p;
	f->name = xstrdup(name);
	f->type = type;
	buf_init(&f->help);
	buf_init(&f->lines);
	add_escaped(&f->help, help, false);
	p->fams[p->nfams++] = f;
	*out = f;
	return 0;
}

/* ---- series ---- */

static uint64_t hash_key(const struct prom_family *f, const char *key, size_t len)
{
	uint64_t h = 1469598103934665603ULL ^ (uint64_t)(uintptr_t)f;
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)key[i];
		h *= 1099511628211ULL;
	}
	return h;
}

static struct series *slot_of(struct series *tab, size_t cap, const struct prom_family *f,
			      const char *key, size_t len, uint64_t h)
{
	for (size_t i = h & (cap - 1);; i = (i + 1) & (cap - 1)) {
		struct series *s = &tab[i];
		if (!s->f ||
		    (s->f == f && s->hash == h && s->len == len && !memcmp(s->key, key, len)))
			return s;
	}
}

static void table_grow(struct prom *p)
{
	size_t cap = p->tabcap ? 2 * p->tabcap : 64;
	struct series *tab = xcalloc(cap, sizeof(*tab));
	for (size_t i = 0; i < p->tabcap; i++) {
		struct series *o = &p->tab[i];
		if (o->f)
			*slot_of(tab, cap, o->f, o->key, o->len, o->hash) = *o;
	}
	free(p->tab);
	p->tab = tab;
	p->tabcap = cap;
}

/* The free slot for (f, key), or NULL when that series exists. */
static struct series *series_find_free(struct prom *p, const struct prom_family *f, const char *key,
				       size_t len, uint64_t *hash)
{
	if (2 * (p->tabn + 1) > p->tabcap)
		table_grow(p);
	*hash = hash_key(f, key, len);
	struct series *s = slot_of(p->tab, p->tabcap, f, key, len, *hash);
	return s->f ? NULL : s;
}

static void series_take(struct prom *p, struct series *s, const struct prom_family *f,
			const char *key, size_t len, uint64_t hash)
{
	s->f = f;
	s->key = xmemdup(key, len);
	s->len = len;
	s->hash = hash;
	p->tabn++;
}

/* ---- samples ---- */

/* Print the labels sorted by name into b: name="value",... Returns 0 or
 * -EINVAL (a bad or repeated label name). */
static int format_labels(struct buf *b, const struct prom_label *labels, size_t n)
{
	if (n && !labels)
		return -EINVAL;
	size_t *ord = xmalloc((n ? n : 1) * sizeof(*ord));
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		if (!label_name_ok(labels[i].name) || !labels[i].value) {
			rc = -EINVAL;
			goto out;
		}
		size_t j = i;
		for (; j > 0 && strcmp(labels[ord[j - 1]].name, labels[i].name) > 0; j--)
			ord[j] = ord[j - 1];
		ord[j] = i;
	}
	for (size_t i = 0; i < n; i++) {
		const struct prom_label *l = &labels[ord[i]];
		if (i && !strcmp(labels[ord[i - 1]].name, l->name)) {
			rc = -EINVAL;
			goto out;
		}
		buf_addf(b, "%s%s=\"", i ? "," : "", l->name);
		add_escaped(b, l->value, true);
		buf_addch(b, '"');
	}
out:
	free(ord);
	return rc;
}

static void add_double(struct buf *b, double v)
{
	if (isnan(v)) {
		buf_adds(b, "NaN");
	} else if (isinf(v)) {
		buf_adds(b, v > 0 ? "+Inf" : "-Inf");
	} else if (v == floor(v) && fabs(v) <= 9007199254740992.0) {
		buf_addf(b, "%.0f", v); /* an integer, exactly */
	} else {
		/* The shortest of %.15g..%.17g that reads back as v. */
		char s[40];
		for (int prec = 15; prec <= 17; prec++) {
			xsnprintf(s, sizeof(s), "%.*g", prec, v);
			if (strtod(s, NULL) == v)
				break;
		}
		buf_adds(b, s);
	}
}

/* name{labels} (no braces without labels) then a space. */
static void line_start(struct buf *b, const char *name, const char *suffix, const struct buf *lab)
{
	buf_adds(b, name);
	buf_adds(b, suffix);
	if (lab->len) {
		buf_addch(b, '{');
		buf_add(b, lab->data, lab->len);
		buf_addch(b, '}');
	}
	buf_addch(b, ' ');
}

struct value {
	bool is_u64;
	double d;
	uint64_t u;
};

static int add_sample(struct prom_family *f, const struct prom_label *labels, size_t n,
		      struct value v)
{
	if (f->type == PROM_HISTOGRAM)
		return -EINVAL;
	if (!v.is_u64 && f->type == PROM_COUNTER && !(isfinite(v.d) && v.d >= 0))
		return -EINVAL;
	struct buf lab;
	buf_init(&lab);
	int rc = format_labels(&lab, labels, n);
	if (rc)
		goto out;
	uint64_t h;
	struct prom *p = f->owner;
	struct series *s = series_find_free(p, f, lab.data, lab.len, &h);
	if (!s) {
		rc = -EEXIST;
		goto out;
	}
	series_take(p, s, f, lab.data, lab.len, h);
	line_start(&f->lines, f->name, "", &lab);
	if (v.is_u64)
		buf_addf(&f->lines, "%llu", (unsigned long long)v.u);
	else
		add_double(&f->lines, v.d);
	buf_addch(&f->lines, '\n');
out:
	buf_release(&lab);
	return rc;
}

int prom_add(struct prom_family *f, const struct prom_label *labels, size_t n, double value)
{
	return add_sample(f, labels, n, (struct value){false, value, 0});
}

int prom_add_u64(struct prom_family *f, const struct prom_label *labels, size_t n, uint64_t value)
{
	return add_sample(f, labels, n, (struct value){true, 0, value});
}

static bool buckets_ok(const double *bounds, const uint64_t *counts, size_t nb, uint64_t count)
{
	if (nb && (!bounds || !counts))
		return false;
	for (size_t i = 0; i < nb; i++) {
		if (!isfinite(bounds[i]) || counts[i] > count)
			return false;
		if (i && (bounds[i] <= bounds[i - 1] || counts[i] < counts[i - 1]))
			return false;
	}
	return true;
}

static void bucket_line(struct prom_family *f, const struct buf *lab, const char *le,
			uint64_t count)
{
	buf_adds(&f->lines, f->name);
	buf_adds(&f->lines, "_bucket{");
	buf_add(&f->lines, lab->data, lab->len);
	buf_addf(&f->lines, "%sle=\"%s\"} %llu\n", lab->len ? "," : "", le,
		 (unsigned long long)count);
}

int prom_histogram(struct prom_family *f, const struct prom_label *labels, size_t n,
		   const double *bounds, const uint64_t *counts, size_t nb, double sum,
		   uint64_t count)
{
	if (f->type != PROM_HISTOGRAM || !buckets_ok(bounds, counts, nb, count))
		return -EINVAL;
	struct buf lab, le;
	buf_init(&lab);
	buf_init(&le);
	int rc = format_labels(&lab, labels, n);
	if (rc)
		goto out;
	uint64_t h;
	struct prom *p = f->owner;
	struct series *s = series_find_free(p, f, lab.data, lab.len, &h);
	if (!s) {
		rc = -EEXIST;
		goto out;
	}
	series_take(p, s, f, lab.data, lab.len, h);
	for (size_t i = 0; i < nb; i++) {
		buf_reset(&le);
		add_double(&le, bounds[i]);
		bucket_line(f, &lab, buf_str(&le), counts[i]);
	}
	bucket_line(f, &lab, "+Inf", count);
	line_start(&f->lines, f->name, "_sum", &lab);
	add_double(&f->lines, sum);
	buf_addch(&f->lines, '\n');
	line_start(&f->lines, f->name, "_count", &lab);
	buf_addf(&f->lines, "%llu\n", (unsigned long long)count);
out:
	buf_release(&lab);
	buf_release(&le);
	return rc;
}

void prom_write(const struct prom *p, struct buf *out)
{
	for (size_t i = 0; i < p->nfams; i++) {
		const struct prom_family *f = p->fams[i];
		buf_addf(out, "# HELP %s ", f->name);
		buf_add(out, f->help.data, f->help.len);
		buf_addch(out, '\n');
		buf_addf(out, "# TYPE %s %s\n", f->name, type_names[f->type]);
		buf_add(out, f->lines.data, f->lines.len);
	}
}
