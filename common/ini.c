#include "common/compat.h"

#include "common/ini.h"

#include <errno.h>
#include <string.h>

#include "common/buf.h"

static bool ini_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Trim [*s, *e) of blanks on both sides. */
static void ini_trim(const char **s, const char **e)
{
	while (*s < *e && ini_blank(**s))
		(*s)++;
	while (*e > *s && ini_blank((*e)[-1]))
		(*e)--;
}

static int ini_section(const char *p, const char *end, const char *origin, unsigned line,
		       struct buf *section, struct dth_err *err)
{
	const char *close = memchr(p, ']', (size_t)(end - p));
	if (!close)
		return err_set(err, -EINVAL, "%s:%u: section header without a closing ']'", origin,
			       line);
	const char *rest = close + 1;
	while (rest < end && ini_blank(*rest))
		rest++;
	if (rest < end && *rest != '#' && *rest != ';')
		return err_set(err, -EINVAL, "%s:%u: unexpected text after the section header",
			       origin, line);
	const char *ns = p + 1, *ne = close;
	ini_trim(&ns, &ne);
	if (ns == ne)
		return err_set(err, -EINVAL, "%s:%u: empty section name", origin, line);
	buf_reset(section);
	buf_add(section, ns, (size_t)(ne - ns));
	return 0;
}

static int ini_keyval(const char *p, const char *end, const char *origin, unsigned line,
		      struct buf *key, struct buf *value, struct dth_err *err)
{
	const char *eq = memchr(p, '=', (size_t)(end - p));
	if (!eq)
		return err_set(err, -EINVAL, "%s:%u: expected 'key = value' (no '=' on the line)",
			       origin, line);
	const char *ks = p, *ke = eq;
	ini_trim(&ks, &ke);
	if (ks == ke)
		return err_set(err, -EINVAL, "%s:%u: empty key before '='", origin, line);
	/* An inline comment starts at # or ; preceded by whitespace. */
	const char *vs = eq + 1, *ve = end;
	for (const char *q = eq + 1; q < end; q++) {
		if ((*q == '#' || *q == ';') && q > eq + 1 && ini_blank(q[-1])) {
			ve = q;
			break;
		}
	}
	ini_trim(&vs, &ve);
	buf_reset(key);
	buf_add(key, ks, (size_t)(ke - ks));
	buf_reset(value);
	buf_add(value, vs, (size_t)(ve - vs));
	return 0;
}

int ini_parse_sections(const char *text, size_t len, const char *origin, ini_fn fn,
		       ini_section_fn section_fn, void *ctx, struct dth_err *err)
{
	struct buf section = BUF_INIT, key = BUF_INIT, value = BUF_INIT;
	size_t pos = 0;
	unsigned line = 0;
	int rc = 0;

	if (!origin)
		origin = "(config)";
	/* A UTF-8 byte order mark at the start is skipped. */
	if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
		pos = 3;
	while (pos < len) {
		const char *start = text + pos;
		const char *nl = memchr(start, '\n', len - pos);
		const char *end = nl ? nl : text + len;
		pos = nl ? (size_t)(nl - text) + 1 : len;
		line++;
		if (memchr(start, '\0', (size_t)(end - start))) {
			rc = err_set(err, -EINVAL, "%s:%u: nul byte in line", origin, line);
			goto cleanup;
		}
		const char *p = start, *e = end;
		ini_trim(&p, &e);
		if (p == e || *p == '#' || *p == ';')
			continue;
		if (*p == '[') {
			rc = ini_section(p, e, origin, line, &section, err);
			if (rc)
				goto cleanup;
			if (section_fn) {
				rc = section_fn(ctx, buf_str(&section), line);
				if (rc)
					goto cleanup;
			}
			continue;
		}
		rc = ini_keyval(p, e, origin, line, &key, &value, err);
		if (rc)
			goto cleanup;
		rc = fn(ctx, buf_str(&section), buf_str(&key), buf_str(&value), line);
		if (rc)
			goto cleanup;
	}
cleanup:
	buf_release(&section);
	buf_release(&key);
	buf_release(&value);
	return rc;
}

int ini_parse(const char *text, size_t len, const char *origin, ini_fn fn, void *ctx,
	      struct dth_err *err)
{
	return ini_parse_sections(text, len, origin, fn, NULL, ctx, err);
}
