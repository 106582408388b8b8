/* Fuzz target for registry_parse_www_authenticate (remote/registry.h): the
 * input is a WWW-Authenticate value.
 *
 * Checks: 0 or -EINVAL, and nothing left allocated in out on an error; a
 * parsed scheme is a lowercase token of the input; a challenge written back
 * (scheme and its realm/service/scope/error as quoted-strings) parses to the
 * same challenge; a Bearer challenge is still the one picked when a Basic
 * challenge is put before it. */
#include "common/compat.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "remote/registry.h"
#include "tests/fuzz/fuzz.h"

static bool all_zero(const void *p, size_t n)
{
	const unsigned char *c = p;
	for (size_t i = 0; i < n; i++)
		if (c[i])
			return false;
	return true;
}

static bool is_tchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool opt_eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool challenge_eq(const struct registry_challenge *a, const struct registry_challenge *b)
{
	return strcmp(a->scheme, b->scheme) == 0 && opt_eq(a->realm, b->realm) &&
	       opt_eq(a->service, b->service) && opt_eq(a->scope, b->scope) &&
	       opt_eq(a->error, b->error);
}

static void add_param(struct buf *b, const char *name, const char *v, bool *first)
{
	if (!v)
		return;
	buf_adds(b, *first ? " " : ", ");
	*first = false;
	buf_adds(b, name);
	buf_adds(b, "=\"");
	for (; *v; v++) {
		if (*v == '"' || *v == '\\')
			buf_addch(b, '\\');
		buf_addch(b, *v);
	}
	buf_addch(b, '"');
}

static void write_back(const struct registry_challenge *ch, struct buf *b)
{
	bool first = true;
	buf_adds(b, ch->scheme);
	add_param(b, "realm", ch->realm, &first);
	add_param(b, "service", ch->service, &first);
	add_param(b, "scope", ch->scope, &first);
	add_param(b, "error", ch->error, &first);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *value = fuzz_cstr(data, size);
	struct registry_challenge ch;
	memset(&ch, 0xa5, sizeof(ch));
	int rc = registry_parse_www_authenticate(value, &ch);
	if (rc) {
		CHECK(rc == -EINVAL);
		CHECK(all_zero(&ch, sizeof(ch)));
		free(value);
		return 0;
	}
	size_t n = strlen(ch.scheme);
	CHECK(n > 0 && n < sizeof(ch.scheme));
	for (size_t i = 0; i < n; i++)
		CHECK(is_tchar(ch.scheme[i]));
	CHECK(strcasestr(value, ch.scheme) != NULL);
	const char *fields[] = {ch.realm, ch.service, ch.scope, ch.error};
	for (size_t i = 0; i < 4; i++)
		CHECK(!fields[i] || strlen(fields[i]) < strlen(value));

	/* written back, it parses to the same challenge */
	struct buf b = BUF_INIT;
	write_back(&ch, &b);
	struct registry_challenge again;
	CHECK(registry_parse_www_authenticate(buf_str(&b), &again) == 0);
	CHECK(challenge_eq(&ch, &again));
	registry_challenge_release(&again);

	/* a Bearer challenge wins over a Basic one before it */
	if (strcmp(ch.scheme, "bearer") == 0) {
		buf_reset(&b);
		buf_adds(&b, "Basic realm=\"other\", ");
		buf_adds(&b, value);
		CHECK(registry_parse_www_authenticate(buf_str(&b), &again) == 0);
		CHECK(challenge_eq(&ch, &again));
		registry_challenge_release(&again);
	}
	buf_release(&b);
	registry_challenge_release(&ch);
	CHECK(all_zero(&ch, sizeof(ch)));
	free(value);
	return 0;
}
