/* Minimal INI reader: `[section name]`, `key = value`, comments with # or ;
 * (whole lines, or after whitespace in a value), blank lines. Calls fn for each
 * key; a non-zero return from fn stops parsing and is returned. Keys before the
 * first header have section "". Section names, keys and values are trimmed;
 * error messages never quote a line's text (it may hold a secret). */
#ifndef DTH_INI_H
#define DTH_INI_H

#include <stddef.h>

#include "common/err.h"
#include "common/util.h"

typedef int (*ini_fn)(void *ctx, const char *section, const char *key, const char *value,
		      unsigned line);

/* Returns 0, fn's non-zero value, or -EINVAL with err naming origin:line. */
int ini_parse(const char *text, size_t len, const char *origin, ini_fn fn, void *ctx,
	      struct dth_err *err) WUR;

/* Called at each `[section]` header, before that section's keys (so sections
 * without keys are seen too); a non-zero return stops parsing. */
typedef int (*ini_section_fn)(void *ctx, const char *section, unsigned line);

/* ini_parse that also calls section_fn (may be NULL) at each section header. */
int ini_parse_sections(const char *text, size_t len, const char *origin, ini_fn fn,
		       ini_section_fn section_fn, void *ctx, struct dth_err *err) WUR;

#endif
