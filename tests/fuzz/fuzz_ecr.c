/* Fuzz target for the ECR GetAuthorizationToken answer
 * (ecr_parse_authorization, remote/ecr.h). The input is the answer's body,
 * loaded as the client loads it (a JSON object, else the client has already
 * refused it).
 *
 * Checks: 0 or -EPROTO; on an error out is empty and the message does not
 * quote the token; on success user (1-63 bytes, no ':') ":" password is
 * exactly what the token decodes to, and proxy_endpoint is the answer's,
 * whole. And a round trip: base64 of "AWS:" + the input (and of the input
 * itself when it starts with a short user name and a ':') in an answer gives
 * back the user and password byte for byte. */
#include "common/compat.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/util.h"
#include "remote/ecr.h"
#include "tests/fuzz/fuzz.h"

static bool all_zero(const void *p, size_t n)
{
	const unsigned char *c = p;
	for (size_t i = 0; i < n; i++)
		if (c[i])
			return false;
	return true;
}

static void check_answer(const uint8_t *data, size_t size)
{
	json_t *ans = json_loadb((const char *)data, size, 0, NULL);
	if (!json_is_object(ans)) {
		json_decref(ans);
		return;
	}
	struct ecr_auth out;
	memset(&out, 0xa5, sizeof(out));
	struct dth_err e;
	err_clear(&e);
	int rc = ecr_parse_authorization(ans, "fuzz", &out, &e);
	json_t *first = json_array_get(json_object_get(ans, "authorizationData"), 0);
	const char *tok = json_string_value(json_object_get(first, "authorizationToken"));
	if (rc) {
		CHECK(rc == -EPROTO && e.code == rc && e.message[0]);
		CHECK(all_zero(&out, sizeof(out)));
		/* a token worth looking for: long and with a digit (the fixed
		 * text of a message has none) */
		CHECK(!tok || strlen(tok) < 8 || !strpbrk(tok, "0123456789") ||
		      !strstr(e.message, tok));
		json_decref(ans);
		return;
	}
	CHECK(tok && out.password);
	size_t ul = strlen(out.user), pl = strlen(out.password);
	CHECK(ul >= 1 && ul < sizeof(out.user) && !strchr(out.user, ':'));
	size_t tl = strlen(tok);
	unsigned char *dec = malloc(tl + 1);
	CHECK(dec);
	int n = base64_decode(tok, tl, dec, tl + 1);
	CHECK(n >= 0 && (size_t)n == ul + 1 + pl);
	CHECK(memcmp(dec, out.user, ul) == 0 && dec[ul] == ':');
	CHECK(memcmp(dec + ul + 1, out.password, pl) == 0);
	free(dec);
	const char *pe = json_string_value(json_object_get(first, "proxyEndpoint"));
	CHECK(strcmp(out.proxy_endpoint, pe ? pe : "") == 0);
	CHECK(out.expires >= 0 && out.expires <= 253402300799LL);
	ecr_auth_release(&out);
	json_decref(ans);
}

static void roundtrip(const uint8_t *payload, size_t len, size_t user_len)
{
	char *b64 = malloc(4 * ((len + 2) / 3) + 1);
	CHECK(b64);
	base64_encode(payload, len, b64);
	struct buf body = BUF_INIT;
	buf_addf(&body,
		 "{\"authorizationData\":[{\"authorizationToken\":\"%s\",\"expiresAt\":"
		 "1.700000000123E9,\"proxyEndpoint\":\"https://123456789012.dkr.ecr.us-east-"
		 "1.amazonaws.com\"}]}",
		 b64);
	json_t *ans = json_loadb(body.data, body.len, 0, NULL);
	CHECK(ans);
	struct ecr_auth out;
	struct dth_err e;
	err_clear(&e);
	if (ecr_parse_authorization(ans, "fuzz", &out, &e) != 0) {
		fprintf(stderr, "fuzz_ecr: good token refused: %s\n", e.message);
		abort();
	}
	CHECK(strlen(out.user) == user_len && memcmp(out.user, payload, user_len) == 0);
	CHECK(strlen(out.password) == len - user_len - 1);
	CHECK(memcmp(out.password, payload + user_len + 1, len - user_len - 1) == 0);
	CHECK(out.expires == 1700000000);
	CHECK(strcmp(out.proxy_endpoint, "https://123456789012.dkr.ecr.us-east-1.amazonaws.com") ==
	      0);
	ecr_auth_release(&out);
	json_decref(ans);
	buf_release(&body);
	free(b64);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_answer(data, size);
	if (size > 4096 || memchr(data, '\0', size))
		return 0;
	uint8_t *p = malloc(size + 4);
	CHECK(p);
	memcpy(p, "AWS:", 4);
	if (size)
		memcpy(p + 4, data, size);
	roundtrip(p, size + 4, 3);
	const uint8_t *colon = memchr(data, ':', size);
	if (colon && colon > data && colon - data < 64)
		roundtrip(data, size, (size_t)(colon - data));
	free(p);
	return 0;
}
