/* Fuzz target for image references and names (remote/registry.h):
 * registry_parse_reference, registry_repo_valid, registry_tag_valid,
 * registry_digest_valid, registry_normalize_repo and registry_media_type_kind.
 * The input is one C string.
 *
 * Checks: a reference parses (0) or not (-EINVAL, every output NULL, a
 * printable message); its parts are valid and put back together give the
 * input; a valid repository parses as a reference without tag or digest, a
 * valid tag after "a:" as that tag; what the validators accept is what their
 * grammar says (lengths and alphabets); Docker Hub normalisation adds
 * "library/" exactly to names without '/'; a media type keeps its kind with
 * parameters and other case, and a known kind means a known type. */
#include "common/compat.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "common/err.h"
#include "remote/registry.h"
#include "tests/fuzz/fuzz.h"

static bool all_in(const char *s, const char *set)
{
	for (; *s; s++)
		if (!strchr(set, *s))
			return false;
	return true;
}

#define LOWER_DIGITS "abcdefghijklmnopqrstuvwxyz0123456789"
#define UPPER	     "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

static void check_reference(const char *s)
{
	char *repo = (char *)1, *tag = (char *)1, *digest = (char *)1;
	struct dth_err e;
	err_clear(&e);
	int rc = registry_parse_reference(s, &repo, &tag, &digest, &e);
	if (rc) {
		CHECK(rc == -EINVAL && e.code == rc);
		CHECK(!repo && !tag && !digest);
		CHECK(e.message[0] && fuzz_printable(e.message));
		return;
	}
	CHECK(registry_repo_valid(repo));
	CHECK(!tag || registry_tag_valid(tag));
	CHECK(!digest || registry_digest_valid(digest));
	struct buf b = BUF_INIT;
	buf_adds(&b, repo);
	if (tag)
		buf_addf(&b, ":%s", tag);
	if (digest)
		buf_addf(&b, "@%s", digest);
	CHECK(strcmp(buf_str(&b), s) == 0);
	buf_release(&b);
	free(repo);
	free(tag);
	free(digest);
}

static void check_names(const char *s)
{
	size_t n = strlen(s);
	if (registry_repo_valid(s)) {
		CHECK(n > 0 && n <= REGISTRY_REPO_MAX);
		CHECK(all_in(s, LOWER_DIGITS "._-/"));
		CHECK(!strstr(s, "//") && s[0] != '/' && s[n - 1] != '/');
		char *repo, *tag, *digest;
		CHECK(registry_parse_reference(s, &repo, &tag, &digest, NULL) == 0);
		CHECK(strcmp(repo, s) == 0 && !tag && !digest);
		free(repo);

		struct buf b = BUF_INIT;
		registry_normalize_repo("registry-1.docker.io", s, &b);
		if (strchr(s, '/'))
			CHECK(strcmp(buf_str(&b), s) == 0);
		else
			CHECK(strncmp(buf_str(&b), "library/", 8) == 0 &&
			      strcmp(buf_str(&b) + 8, s) == 0);
		CHECK(registry_repo_valid(buf_str(&b)) || n + 8 > REGISTRY_REPO_MAX);
		buf_reset(&b);
		registry_normalize_repo("registry.example.com", s, &b);
		CHECK(strcmp(buf_str(&b), s) == 0);
		buf_release(&b);
	}
	if (registry_tag_valid(s)) {
		CHECK(n > 0 && n <= REGISTRY_TAG_MAX);
		CHECK(all_in(s, LOWER_DIGITS UPPER "._-"));
		CHECK(s[0] != '.' && s[0] != '-');
		struct buf b = BUF_INIT;
		buf_addf(&b, "a:%s", s);
		char *repo, *tag, *digest;
		CHECK(registry_parse_reference(buf_str(&b), &repo, &tag, &digest, NULL) == 0);
		CHECK(strcmp(repo, "a") == 0 && tag && strcmp(tag, s) == 0 && !digest);
		free(repo);
		free(tag);
		buf_release(&b);
	}
	if (registry_digest_valid(s)) {
		CHECK(n == 71 && strncmp(s, "sha256:", 7) == 0);
		CHECK(all_in(s + 7, "0123456789abcdef"));
	}
}

static void check_media_type(const char *s)
{
	enum registry_manifest_kind k = registry_media_type_kind(s);
	CHECK(k >= REGISTRY_KIND_UNKNOWN && k <= REGISTRY_KIND_SCHEMA1);
	if (k == REGISTRY_KIND_UNKNOWN || strchr(s, ';'))
		return;
	static const char *const known[] = {
	    REGISTRY_MT_OCI_MANIFEST, REGISTRY_MT_OCI_INDEX, REGISTRY_MT_DOCKER_MANIFEST,
	    REGISTRY_MT_DOCKER_LIST,  REGISTRY_MT_DOCKER_V1, REGISTRY_MT_DOCKER_V1_SIGNED};
	const char *p = s;
	while (*p == ' ' || *p == '\t')
		p++;
	size_t n = strlen(p);
	while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
		n--;
	bool found = false;
	for (size_t i = 0; i < ARRAY_SIZE(known); i++)
		found |= strlen(known[i]) == n && strncasecmp(known[i], p, n) == 0;
	CHECK(found);
	struct buf b = BUF_INIT;
	buf_addf(&b, "%s ; charset=utf-8", s);
	CHECK(registry_media_type_kind(buf_str(&b)) == k);
	buf_release(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstr(data, size);
	check_reference(s);
	check_names(s);
	check_media_type(s);
	char d[REGISTRY_DIGEST_MAX];
	registry_digest_of(data, size, d);
	CHECK(registry_digest_valid(d));
	free(s);
	return 0;
}
