/* Fuzz target for the answers the credential chain parses (remote/creds.h):
 * the EC2 instance metadata role listing (creds_parse_imds_role) and
 * credentials document (creds_parse_imds). The input is the answer's body.
 *
 * Checks: role: 0 with a role name of 1-128 allowed characters taken from
 * the first line, or -EACCES with an empty role. credentials: 0 with exactly
 * the document's AccessKeyId, SecretAccessKey and Token (never cut short),
 * or -EACCES with out untouched and a printable message that quotes neither
 * secret.
 * And a round trip: an Expiration derived from the input, written in ISO 8601
 * as Z, with a fraction, and with a +hh:mm or -hh:mm offset, parses back to
 * the same instant. */
#include "common/compat.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/err.h"
#include "remote/creds.h"
#include "tests/fuzz/fuzz.h"

static const char *jstr(json_t *doc, const char *key)
{
	return json_string_value(json_object_get(doc, key));
}

static void check_role(const uint8_t *data, size_t size)
{
	struct buf body = BUF_INIT, role = BUF_INIT;
	buf_add(&body, data, size);
	buf_adds(&role, "junk");
	int rc = creds_parse_imds_role(&body, &role);
	if (rc) {
		CHECK(rc == -EACCES && role.len == 0);
	} else {
		const char *r = buf_str(&role);
		CHECK(role.len >= 1 && role.len <= 128 && strlen(r) == role.len);
		for (const char *c = r; *c; c++)
			CHECK((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
			      (*c >= '0' && *c <= '9') || strchr("+=,.@_-", *c));
		const char *b = buf_str(&body);
		size_t line = strcspn(b, "\r\n");
		const char *at = strstr(b, r);
		CHECK(at && (size_t)(at - b) + role.len <= line);
	}
	buf_release(&body);
	buf_release(&role);
}

/* A secret worth looking for in a message: long enough not to occur by
 * chance, and found only once in the answer (a message may quote another
 * field, such as Code, that happens to hold the same bytes). */
static bool distinctive(const char *s, const uint8_t *data, size_t size)
{
	if (!s || strlen(s) < 8)
		return false;
	const uint8_t *first = memmem(data, size, s, strlen(s));
	return first && !memmem(first + 1, size - (size_t)(first + 1 - data), s, strlen(s));
}

static void check_creds(const uint8_t *data, size_t size)
{
	struct buf body = BUF_INIT;
	buf_add(&body, data, size);
	struct creds_value out, before;
	memset(&out, 0xa5, sizeof(out));
	before = out;
	struct dth_err e;
	err_clear(&e);
	int rc = creds_parse_imds("fuzzrole", &body, &out, &e);
	json_t *doc = json_loadb((const char *)data, size, 0, NULL);
	if (rc) {
		CHECK(rc == -EACCES && e.code == rc && e.message[0] && fuzz_printable(e.message));
		CHECK(memcmp(&out, &before, sizeof(out)) == 0);
		if (json_is_object(doc)) {
			const char *secret = jstr(doc, "SecretAccessKey");
			const char *token = jstr(doc, "Token");
			CHECK(!distinctive(secret, data, size) || !strstr(e.message, secret));
			CHECK(!distinctive(token, data, size) || !strstr(e.message, token));
		}
	} else {
		CHECK(json_is_object(doc));
		const char *code = jstr(doc, "Code");
		CHECK(!code || strcmp(code, "Success") == 0);
		const char *token = jstr(doc, "Token");
		CHECK(strcmp(out.access_key_id, jstr(doc, "AccessKeyId")) == 0);
		CHECK(strcmp(out.secret_access_key, jstr(doc, "SecretAccessKey")) == 0);
		CHECK(strcmp(out.session_token, token ? token : "") == 0);
		CHECK(jstr(doc, "Expiration") || out.expires == 0);
	}
	json_decref(doc);
	buf_release(&body);
}

static void expiration_roundtrip(const uint8_t *data, size_t size)
{
	/* an instant a day away from both ends of years 1970-9999 */
	const uint64_t span = 253402300799ULL - 2 * 86400;
	time_t t = (time_t)(86400 + fuzz_hash(data, size) % span);
	uint64_t h = fuzz_hash(data, size) >> 32;
	int off_min = (int)(h % (14 * 60 + 1));
	int sign = (h >> 16) & 1 ? -1 : 1;
	static const char *const fracs[] = {"", ".5", ".123", ".000000001"};
	const char *frac = fracs[(h >> 20) % 4];
	for (int form = 0; form < 2; form++) {
		time_t local = form ? t + sign * off_min * 60 : t;
		struct tm tm;
		CHECK(gmtime_r(&local, &tm));
		char when[64], zone[8];
		CHECK(strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm) > 0);
		if (form)
			snprintf(zone, sizeof(zone), "%c%02d:%02d", sign < 0 ? '-' : '+',
				 off_min / 60, off_min % 60);
		else
			snprintf(zone, sizeof(zone), "Z");
		struct buf body = BUF_INIT;
		buf_addf(&body,
			 "{\"Code\":\"Success\",\"LastUpdated\":\"2012-04-26T16:39:16Z\","
			 "\"Type\":\"AWS-HMAC\",\"AccessKeyId\":\"ASIAEXAMPLE\","
			 "\"SecretAccessKey\":\"wJalrXUtnFEMI\",\"Token\":\"tok\","
			 "\"Expiration\":\"%s%s%s\"}",
			 when, frac, zone);
		struct creds_value out;
		struct dth_err e;
		err_clear(&e);
		int rc = creds_parse_imds("r", &body, &out, &e);
		if (rc) {
			fprintf(stderr, "fuzz_creds: %s rejected: %s\n", buf_str(&body), e.message);
			abort();
		}
		CHECK(out.expires == t);
		CHECK(strcmp(out.session_token, "tok") == 0);
		buf_release(&body);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_role(data, size);
	check_creds(data, size);
	expiration_roundtrip(data, size);
	return 0;
}
