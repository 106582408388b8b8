/* Fuzz target for remote/sigv4.h. The input is NUL-separated fields: a flag
 * byte, the path, the query, then header name/value pairs (a "host" header is
 * added when none is given, so most inputs reach the canonical form). Every
 * signing function runs on them.
 *
 * Checks on an accepted request: the canonical request has exactly one line
 * per part (header values cannot add lines); the canonical query holds only
 * unreserved characters, %XX, '=' and '&', and does not depend on the order
 * of the parameters; a normalised path is a clean '/'-rooted encoded path; the
 * signed headers are sorted, lowercase and unique; the header order does not
 * matter when names are distinct; the Authorization header and presigned query
 * are produced and never hold the secret key. */
#include "common/compat.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/util.h"
#include "remote/sigv4.h"

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			fprintf(stderr, "fuzz_sigv4: check failed at line %d: %s\n", __LINE__,     \
				#c);                                                               \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

#define MAX_HEADERS 16
#define SECRET	    "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

static bool hexdig(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

/* Only unreserved bytes and %XX (uppercase), plus the bytes in extra. */
static bool encoded_ok(const char *s, size_t n, const char *extra)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (unreserved(c) || strchr(extra, c))
			continue;
		if (c == '%' && i + 2 < n && hexdig((unsigned char)s[i + 1]) &&
		    hexdig((unsigned char)s[i + 2])) {
			i += 2;
			continue;
		}
		return false;
	}
	return true;
}

static size_t count_char(const char *s, size_t n, char c)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += s[i] == c;
	return k;
}

static char lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static bool names_distinct(const struct sigv4_header *h, size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < i; j++)
			if (str_ieq(h[i].name, h[j].name))
				return false;
	return true;
}

static size_t distinct_names(const struct sigv4_header *h, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		bool dup = false;
		for (size_t j = 0; j < i && !dup; j++)
			dup = str_ieq(h[i].name, h[j].name);
		k += !dup;
	}
	return k;
}

/* The query with its '&'-separated parameters in reverse order. */
static char *reverse_query(const char *q)
{
	struct buf b = BUF_INIT;
	size_t n = strlen(q);
	size_t end = n;
	for (size_t i = n; i-- > 0;) {
		if (q[i] == '&') {
			buf_add(&b, q + i + 1, end - i - 1);
			buf_addch(&b, '&');
			end = i;
		}
	}
	buf_add(&b, q, end);
	return buf_detach(&b, NULL);
}

/* Split the canonical request into its lines; returns how many. */
static size_t split_lines(char *s, char **lines, size_t max)
{
	size_t n = 0;
	char *p = s;
	while (n < max) {
		lines[n++] = p;
		char *nl = strchr(p, '\n');
		if (!nl)
			break;
		*nl = '\0';
		p = nl + 1;
	}
	return n;
}

static void check_canonical(const struct sigv4_input *in, const char *creq)
{
	size_t len = strlen(creq);
	size_t k = distinct_names(in->headers, in->n_headers);
	bool simple = !strchr(in->method, '\n') && !strchr(in->payload_hash, '\n') &&
		      (in->normalize_path || !strchr(in->path, '\n'));
	if (!simple)
		return;
	/* method, path, query, k header lines, blank, signed headers, hash */
	CHECK(count_char(creq, len, '\n') == 5 + k);
	char *copy = xstrdup(creq);
	char *lines[MAX_HEADERS + 8];
	size_t n = split_lines(copy, lines, ARRAY_SIZE(lines));
	CHECK(n == 6 + k);
	CHECK(strcmp(lines[0], in->method) == 0);
	if (in->normalize_path) {
		const char *p = lines[1];
		CHECK(p[0] == '/');
		CHECK(encoded_ok(p, strlen(p), "/"));
		CHECK(!strstr(p, "//"));
		CHECK(!strstr(p, "/./") && !strstr(p, "/../"));
		CHECK(!str_endswith(p, "/.") && !str_endswith(p, "/.."));
	} else {
		CHECK(strcmp(lines[1], in->path) == 0);
	}
	CHECK(encoded_ok(lines[2], strlen(lines[2]), "=&"));
	/* header lines: sorted lowercase unique names, values trimmed */
	for (size_t i = 0; i < k; i++) {
		const char *l = lines[3 + i];
		const char *colon = strchr(l, ':');
		CHECK(colon && colon > l);
		for (const char *c = l; c < colon; c++)
			CHECK(*c == lower(*c));
		if (i) {
			/* strictly increasing names */
			char *prev = xstrndup(lines[2 + i], strcspn(lines[2 + i], ":"));
			char *cur = xstrndup(l, (size_t)(colon - l));
			CHECK(strcmp(prev, cur) < 0);
			free(prev);
			free(cur);
		}
		const char *v = colon + 1;
		size_t vl = strlen(v);
		if (vl) {
			CHECK(v[0] != ' ' && v[0] != '\t' && v[vl - 1] != ' ' && v[vl - 1] != '\t');
			CHECK(!strstr(v, "  "));
		}
	}
	CHECK(lines[3 + k][0] == '\0');
	/* signed headers: the names above, ';'-joined */
	struct buf names = BUF_INIT;
	for (size_t i = 0; i < k; i++) {
		if (i)
			buf_addch(&names, ';');
		buf_add(&names, lines[3 + i], strcspn(lines[3 + i], ":"));
	}
	CHECK(strcmp(lines[4 + k], names.data) == 0);
	CHECK(strcmp(lines[5 + k], in->payload_hash) == 0);
	buf_release(&names);
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t flags = data[0];
	/* NUL-separated fields after the flag byte */
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	const char *fields[2 + 2 * MAX_HEADERS];
	size_t nf = 0;
	for (size_t off = 0; off <= size - 1 && nf < ARRAY_SIZE(fields);) {
		fields[nf++] = text + off;
		off += strlen(text + off) + 1;
	}
	static const char *const methods[] = {"GET", "PUT", "HEAD", "POST", "DELETE", "G\nET"};
	const char *path = nf > 0 ? fields[0] : "/";
	const char *query = nf > 1 ? fields[1] : NULL;
	struct sigv4_header hdrs[MAX_HEADERS + 1];
	size_t nh = 0;
	bool host = false;
	for (size_t i = 2; i + 1 < nf && nh < MAX_HEADERS; i += 2) {
		hdrs[nh].name = fields[i];
		hdrs[nh].value = fields[i + 1];
		host |= str_ieq(fields[i], "host");
		nh++;
	}
	if (!host && !(flags & 0x40)) {
		hdrs[nh].name = "Host";
		hdrs[nh].value = "examplebucket.s3.amazonaws.com";
		nh++;
	}
	struct sigv4_input in = {
	    .method = methods[(flags >> 1) % ARRAY_SIZE(methods)],
	    .path = path,
	    .query = (flags & 0x80) ? NULL : query,
	    .headers = hdrs,
	    .n_headers = nh,
	    .payload_hash = (flags & 0x10) ? SIGV4_UNSIGNED_PAYLOAD : SIGV4_EMPTY_SHA256,
	    .region = (flags & 0x20) ? "cn-north-1" : "us-east-1",
	    .service = (flags & 0x08) ? "ecr" : "s3",
	    .when = (time_t)1440938160 + (time_t)(size * 86401),
	    .normalize_path = flags & 1,
	};
	struct sigv4_creds c = {.access_key_id = "AKIDEXAMPLE",
				.secret_access_key = SECRET,
				.session_token = (flags & 0x04) ? "token/with+chars=" : NULL};

	/* the secret may only show up where the input itself put it */
	bool secret_given = memmem(data, size, SECRET, strlen(SECRET)) != NULL;
	struct buf creq = BUF_INIT;
	int rc = sigv4_canonical_request(&in, &creq);
	if (rc) {
		CHECK(rc == -EINVAL);
		CHECK(creq.len == 0);
	} else {
		check_canonical(&in, creq.data);
		/* parameter order does not matter */
		if (in.query) {
			char *rq = reverse_query(in.query);
			struct sigv4_input in2 = in;
			in2.query = rq;
			struct buf c2 = BUF_INIT;
			CHECK(sigv4_canonical_request(&in2, &c2) == 0);
			CHECK(strcmp(c2.data, creq.data) == 0);
			buf_release(&c2);
			free(rq);
		}
		/* header order does not matter when the names are distinct */
		if (nh > 1 && names_distinct(hdrs, nh)) {
			struct sigv4_header rev[MAX_HEADERS + 1];
			for (size_t i = 0; i < nh; i++)
				rev[i] = hdrs[nh - 1 - i];
			struct sigv4_input in2 = in;
			in2.headers = rev;
			struct buf c2 = BUF_INIT;
			CHECK(sigv4_canonical_request(&in2, &c2) == 0);
			CHECK(strcmp(c2.data, creq.data) == 0);
			buf_release(&c2);
		}
		struct buf sts = BUF_INIT;
		CHECK(sigv4_string_to_sign(&in, creq.data, &sts) == 0);
		CHECK(count_char(sts.data, sts.len, '\n') == 3);
		char sig[65];
		CHECK(sigv4_signature(&in, &c, sts.data, sig) == 0);
		CHECK(strlen(sig) == 64 && encoded_ok(sig, 64, ""));
		buf_release(&sts);

		struct buf auth = BUF_INIT;
		CHECK(sigv4_authorization(&in, &c, &auth) == 0);
		CHECK(str_startswith(auth.data, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"));
		CHECK(strstr(auth.data, sig) != NULL);
		CHECK(secret_given || !strstr(auth.data, SECRET));
		CHECK(!strchr(auth.data, '\n'));
		buf_release(&auth);
	}
	/* presign: the request's own query must not be able to break out */
	struct buf pre = BUF_INIT;
	rc = sigv4_presign(&in, &c, 1 + (unsigned)(size % 604800), &pre);
	if (rc == 0) {
		/* the request's own query is passed through as given (it is the wire
		 * form); what is added after it is encoded */
		size_t ql = in.query && *in.query ? strlen(in.query) + 1 : 0;
		if (ql)
			CHECK(strncmp(pre.data, in.query, ql - 1) == 0 && pre.data[ql - 1] == '&');
		const char *added = pre.data + ql;
		CHECK(str_startswith(added, "X-Amz-Algorithm=AWS4-HMAC-SHA256&"));
		CHECK(strstr(added, "X-Amz-Signature=") != NULL);
		CHECK(encoded_ok(added, strlen(added), "=&"));
		CHECK(secret_given || !strstr(pre.data, SECRET));
	} else {
		CHECK(rc == -EINVAL);
	}
	buf_release(&pre);

	char date[17];
	sigv4_amz_date((time_t)(int64_t)((uint64_t)size * 0x9e3779b97f4aULL), date);
	CHECK(strlen(date) == 16 && date[8] == 'T' && date[15] == 'Z');

	buf_release(&creq);
	free(text);
	return 0;
}
