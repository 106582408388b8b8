/* Fuzz target for the registry client's pagination and redirect helpers
 * (remote/registry.h): registry_parse_link_next and registry_resolve_url.
 *
 * Input: "BASE\nVALUE" (without a newline, BASE is one of a few fixed URLs
 * picked by the input's hash, and the whole input is VALUE). VALUE is parsed
 * as a Link header and resolved as a Location against BASE; the next link, if
 * any, is resolved too.
 *
 * Checks: link: 0, -ENOENT or -EINVAL, an empty out unless 0, a target that is
 * a piece of the value without '>', and that written back as
 * <TARGET>; rel="next" (alone or after another link) parses to itself.
 * resolve: 0 or -EINVAL, an empty out on an error; a result is an http(s) URL
 * with a host and without control bytes or spaces; an absolute target is kept
 * as it is, "//host" takes BASE's scheme, and anything else stays on BASE's
 * origin (scheme, host and port byte for byte), so a server cannot send the
 * client's credentials elsewhere with a relative link. */
#include "common/compat.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "remote/registry.h"
#include "tests/fuzz/fuzz.h"

static size_t scheme_len(const char *url)
{
	if (strncasecmp(url, "http://", 7) == 0)
		return 7;
	if (strncasecmp(url, "https://", 8) == 0)
		return 8;
	return 0;
}

/* Length of "scheme://host[:port]", 0 when url is not http(s). */
static size_t origin_len(const char *url)
{
	size_t s = scheme_len(url);
	return s ? s + strcspn(url + s, "/?#") : 0;
}

static bool has_ctl(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || *s == 0x7f)
			return true;
	return false;
}

static void check_resolve(const char *base, const char *target)
{
	struct buf out = BUF_INIT;
	buf_adds(&out, "junk");
	int rc = registry_resolve_url(base, target, &out);
	if (rc) {
		CHECK(rc == -EINVAL);
		CHECK(out.len == 0);
		buf_release(&out);
		return;
	}
	const char *u = buf_str(&out);
	size_t sl = scheme_len(u), ol = origin_len(u);
	CHECK(sl > 0 && ol > sl);
	if (!has_ctl(base))
		CHECK(!has_ctl(u));
	if (scheme_len(target)) {
		CHECK(strcmp(u, target) == 0);
	} else if (target[0] == '/' && target[1] == '/') {
		size_t bs = scheme_len(base);
		CHECK(bs > 0 && strncmp(u, base, bs - 2) == 0 && strcmp(u + bs - 2, target) == 0);
	} else {
		size_t bl = origin_len(base);
		CHECK(bl > 0 && ol == bl && memcmp(u, base, bl) == 0);
		CHECK(u[ol] == '/' || u[ol] == '?');
	}
	buf_release(&out);
}

static void check_link(const char *base, const char *value)
{
	struct buf out = BUF_INIT, again = BUF_INIT, w = BUF_INIT;
	buf_adds(&out, "junk");
	int rc = registry_parse_link_next(value, &out);
	if (rc) {
		CHECK(rc == -ENOENT || rc == -EINVAL);
		CHECK(out.len == 0);
		goto done;
	}
	const char *t = buf_str(&out);
	CHECK(!strchr(t, '>'));
	CHECK(strstr(value, t) != NULL);
	buf_addf(&w, "<%s>; rel=\"next\"", t);
	CHECK(registry_parse_link_next(buf_str(&w), &again) == 0);
	CHECK(strcmp(buf_str(&again), t) == 0);
	buf_reset(&w);
	buf_addf(&w, "</v2/x?last=a>; rel=\"prev\", <%s>; rel=next", t);
	CHECK(registry_parse_link_next(buf_str(&w), &again) == 0);
	CHECK(strcmp(buf_str(&again), t) == 0);
	if (*t)
		check_resolve(base, t);
done:
	buf_release(&out);
	buf_release(&again);
	buf_release(&w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const bases[] = {
	    "https://registry.example.com",
	    "http://127.0.0.1:5000/v2/_catalog?n=100",
	    "https://r.example.com:8443/v2/library/alpine/tags/list?n=2&last=a#frag",
	    "HTTPS://UPPER.example.com/a/b/",
	};
	char *text = fuzz_cstr(data, size);
	const char *base, *value;
	char *nl = strchr(text, '\n');
	if (nl) {
		*nl = '\0';
		base = text;
		value = nl + 1;
	} else {
		base = bases[fuzz_hash(data, size) % 4];
		value = text;
	}
	check_link(base, value);
	check_resolve(base, value);
	free(text);
	return 0;
}
