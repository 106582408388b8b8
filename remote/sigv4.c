/* AWS Signature Version 4. See remote/sigv4.h. */
#include "common/compat.h"

#include "remote/sigv4.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "common/secret.h"
#include "common/uri.h"

#define SIGV4_ALGORITHM "AWS4-HMAC-SHA256"

/* Write v as exactly width decimal digits (v is clamped to fit). */
static char *put_digits(char *out, int v, int width)
{
	int max = 1;
	for (int i = 0; i < width; i++)
		max *= 10;
	if (v < 0)
		v = 0;
	if (v >= max)
		v = max - 1;
	for (int i = width - 1; i >= 0; i--) {
		out[i] = (char)('0' + v % 10);
		v /= 10;
	}
	return out + width;
}

void sigv4_amz_date(time_t t, char out[17])
{
	struct tm tm;
	if (!gmtime_r(&t, &tm)) {
		memset(&tm, 0, sizeof(tm));
		tm.tm_year = 70;
		tm.tm_mday = 1;
	}
	char *p = out;
	p = put_digits(p, tm.tm_year + 1900, 4);
	p = put_digits(p, tm.tm_mon + 1, 2);
	p = put_digits(p, tm.tm_mday, 2);
	*p++ = 'T';
	p = put_digits(p, tm.tm_hour, 2);
	p = put_digits(p, tm.tm_min, 2);
	p = put_digits(p, tm.tm_sec, 2);
	*p++ = 'Z';
	*p = '\0';
}

static int sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != SHA256_DIGEST_LENGTH)
		return -EIO;
	hex_encode(md, mdlen, out);
	return 0;
}

static int hmac_sha256(const void *key, size_t keylen, const void *data, size_t len,
		       unsigned char out[32])
{
	unsigned int outlen = 0;
	if (keylen > INT32_MAX)
		return -EINVAL;
	if (!HMAC(EVP_sha256(), key, (int)keylen, data, len, out, &outlen) || outlen != 32)
		return -EIO;
	return 0;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static char lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static int check_input(const struct sigv4_input *in)
{
	if (!in || !in->method || !*in->method || !in->path || in->path[0] != '/' ||
	    !in->payload_hash || !*in->payload_hash || !in->region || !*in->region ||
	    !in->service || !*in->service || (in->n_headers && !in->headers))
		return -EINVAL;
	bool host = false;
	for (size_t i = 0; i < in->n_headers; i++) {
		const char *n = in->headers[i].name;
		if (!n || !*n || !in->headers[i].value)
			return -EINVAL;
		for (const char *p = n; *p; p++)
			if (is_space(*p) || *p == ':' || *p == ';')
				return -EINVAL;
		if (str_ieq(n, "host"))
			host = true;
	}
	return host ? 0 : -EINVAL;
}

/* ---- path ---------------------------------------------------------------- */

struct seg {
	const char *p;
	size_t len;
};

/* Remove dot segments, fold repeated slashes and encode each segment. */
static void canonical_path_normalized(const char *path, struct buf *out)
{
	size_t len = strlen(path), n = 0;
	struct seg *segs = xcalloc(len / 2 + 1, sizeof(*segs));
	bool trailing = false;
	const char *p = path, *end = path + len;
	while (p < end) {
		while (p < end && *p == '/')
			p++;
		if (p == end) {
			trailing = true;
			break;
		}
		const char *s = p;
		while (p < end && *p != '/')
			p++;
		size_t sl = (size_t)(p - s);
		if (sl == 1 && s[0] == '.') {
			trailing = true;
		} else if (sl == 2 && s[0] == '.' && s[1] == '.') {
			if (n)
				n--;
			trailing = true;
		} else {
			segs[n].p = s;
			segs[n].len = sl;
			n++;
			trailing = false;
		}
	}
	buf_addch(out, '/');
	for (size_t i = 0; i < n; i++) {
		uri_encode(out, segs[i].p, segs[i].len, false);
		if (i + 1 < n || trailing)
			buf_addch(out, '/');
	}
	free(segs);
}

/* ---- query --------------------------------------------------------------- */

struct qparam {
	char *key; /* encoded the SigV4 way */
	char *val;
};

static int qparam_cmp(const void *a, const void *b)
{
	const struct qparam *x = a, *y = b;
	int c = strcmp(x->key, y->key);
	return c ? c : strcmp(x->val, y->val);
}

/* Decode then re-encode s[0..len) into a new string; NULL on a malformed escape. */
static char *reencode(const char *s, size_t len)
{
	struct buf dec = BUF_INIT, enc = BUF_INIT;
	if (uri_decode(&dec, s, len) < 0) {
		buf_release(&dec);
		return NULL;
	}
	uri_encode(&enc, buf_str(&dec), dec.len, false);
	buf_release(&dec);
	return buf_detach(&enc, NULL);
}

/* Append the canonical query string built from the '&'-joined parts of q1 and
 * q2 (either may be NULL). */
static int canonical_query(const char *q1, const char *q2, struct buf *out)
{
	const char *qs[2] = {q1, q2};
	size_t cap = 0, n = 0;
	struct qparam *v = NULL;
	int rc = 0;
	for (int k = 0; k < 2; k++) {
		const char *p = qs[k];
		if (!p)
			continue;
		while (*p) {
			const char *amp = strchr(p, '&');
			size_t plen = amp ? (size_t)(amp - p) : strlen(p);
			if (plen) {
				const char *eq = memchr(p, '=', plen);
				size_t klen = eq ? (size_t)(eq - p) : plen;
				if (n == cap) {
					cap = cap ? cap * 2 : 8;
					v = xrealloc(v, cap * sizeof(*v));
				}
				v[n].key = reencode(p, klen);
				v[n].val = eq ? reencode(eq + 1, plen - klen - 1) : xstrdup("");
				n++;
				if (!v[n - 1].key || !v[n - 1].val) {
					rc = -EINVAL;
					goto cleanup;
				}
			}
			p += plen;
			if (*p == '&')
				p++;
		}
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), qparam_cmp);
	for (size_t i = 0; i < n; i++) {
		if (i)
			buf_addch(out, '&');
		buf_adds(out, v[i].key);
		buf_addch(out, '=');
		buf_adds(out, v[i].val);
	}
cleanup:
	for (size_t i = 0; i < n; i++) {
		free(v[i].key);
		free(v[i].val);
	}
	free(v);
	return rc;
}

/* ---- headers ------------------------------------------------------------- */

struct hdr_ref {
	char *lname;
	const char *value;
	size_t idx;
};

static int hdr_ref_cmp(const void *a, const void *b)
{
	const struct hdr_ref *x = a, *y = b;
	int c = strcmp(x->lname, y->lname);
	if (c)
		return c;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Headers sorted by lowercase name, duplicates in their original order. */
static struct hdr_ref *sorted_headers(const struct sigv4_input *in)
{
	struct hdr_ref *h = xcalloc(in->n_headers ? in->n_headers : 1, sizeof(*h));
	for (size_t i = 0; i < in->n_headers; i++) {
		h[i].lname = xstrdup(in->headers[i].name);
		for (char *p = h[i].lname; *p; p++)
			*p = lower(*p);
		h[i].value = in->headers[i].value;
		h[i].idx = i;
	}
	if (in->n_headers > 1)
		qsort(h, in->n_headers, sizeof(*h), hdr_ref_cmp);
	return h;
}

static void free_headers(struct hdr_ref *h, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(h[i].lname);
	free(h);
}

/* Trim the value and fold inner runs of whitespace into one space. */
static void add_header_value(struct buf *out, const char *v)
{
	while (*v && is_space(*v))
		v++;
	bool pending_space = false;
	for (; *v; v++) {
		if (is_space(*v)) {
			pending_space = true;
			continue;
		}
		if (pending_space)
			buf_addch(out, ' ');
		pending_space = false;
		buf_addch(out, *v);
	}
}

static void signed_headers(const struct hdr_ref *h, size_t n, struct buf *out)
{
	for (size_t i = 0; i < n; i++) {
		if (i && !strcmp(h[i].lname, h[i - 1].lname))
			continue;
		if (i)
			buf_addch(out, ';');
		buf_adds(out, h[i].lname);
	}
}

static int signed_headers_of(const struct sigv4_input *in, struct buf *out)
{
	int rc = check_input(in);
	if (rc < 0)
		return rc;
	struct hdr_ref *h = sorted_headers(in);
	signed_headers(h, in->n_headers, out);
	free_headers(h, in->n_headers);
	return 0;
}

/* ---- canonical request / string to sign / signature ---------------------- */

static int canonical_request_ex(const struct sigv4_input *in, const char *extra_query,
				struct buf *out)
{
	int rc = check_input(in);
	if (rc < 0)
		return rc;
	size_t start = out->len;
	buf_adds(out, in->method);
	buf_addch(out, '\n');
	if (in->normalize_path)
		canonical_path_normalized(in->path, out);
	else
		buf_adds(out, in->path);
	buf_addch(out, '\n');
	rc = canonical_query(in->query, extra_query, out);
	if (rc < 0) {
		buf_setlen(out, start);
		return rc;
	}
	buf_addch(out, '\n');

	struct hdr_ref *h = sorted_headers(in);
	for (size_t i = 0; i < in->n_headers; i++) {
		if (i && !strcmp(h[i].lname, h[i - 1].lname)) {
			buf_addch(out, ',');
		} else {
			if (i)
				buf_addch(out, '\n');
			buf_adds(out, h[i].lname);
			buf_addch(out, ':');
		}
		add_header_value(out, h[i].value);
	}
	if (in->n_headers)
		buf_addch(out, '\n');
	buf_addch(out, '\n');
	signed_headers(h, in->n_headers, out);
	free_headers(h, in->n_headers);
	buf_addch(out, '\n');
	buf_adds(out, in->payload_hash);
	return 0;
}

int sigv4_canonical_request(const struct sigv4_input *in, struct buf *out)
{
	return canonical_request_ex(in, NULL, out);
}

static void credential_scope(const struct sigv4_input *in, struct buf *out)
{
	char date[17];
	sigv4_amz_date(in->when, date);
	buf_add(out, date, 8);
	buf_addf(out, "/%s/%s/aws4_request", in->region, in->service);
}

int sigv4_string_to_sign(const struct sigv4_input *in, const char *canonical_request,
			 struct buf *out)
{
	if (!in || !in->region || !*in->region || !in->service || !*in->service ||
	    !canonical_request)
		return -EINVAL;
	char date[17], hash[65];
	int rc = sha256_hex(canonical_request, strlen(canonical_request), hash);
	if (rc < 0)
		return rc;
	sigv4_amz_date(in->when, date);
	buf_adds(out, SIGV4_ALGORITHM "\n");
	buf_adds(out, date);
	buf_addch(out, '\n');
	credential_scope(in, out);
	buf_addch(out, '\n');
	buf_adds(out, hash);
	return 0;
}

int sigv4_signature(const struct sigv4_input *in, const struct sigv4_creds *c,
		    const char *string_to_sign, char out[65])
{
	if (!in || !c || !c->secret_access_key || !in->region || !in->service || !string_to_sign)
		return -EINVAL;
	char date[17];
	sigv4_amz_date(in->when, date);
	struct buf key = BUF_INIT;
	buf_adds(&key, "AWS4");
	buf_adds(&key, c->secret_access_key);
	unsigned char k[32], k2[32];
	int rc = hmac_sha256(key.data, key.len, date, 8, k);
	if (rc < 0)
		goto cleanup;
	rc = hmac_sha256(k, sizeof(k), in->region, strlen(in->region), k2);
	if (rc < 0)
		goto cleanup;
	rc = hmac_sha256(k2, sizeof(k2), in->service, strlen(in->service), k);
	if (rc < 0)
		goto cleanup;
	rc = hmac_sha256(k, sizeof(k), "aws4_request", strlen("aws4_request"), k2);
	if (rc < 0)
		goto cleanup;
	rc = hmac_sha256(k2, sizeof(k2), string_to_sign, strlen(string_to_sign), k);
	if (rc < 0)
		goto cleanup;
	hex_encode(k, sizeof(k), out);
cleanup:
	OPENSSL_cleanse(k, sizeof(k));
	OPENSSL_cleanse(k2, sizeof(k2));
	OPENSSL_cleanse(key.data, key.len);
	buf_release(&key);
	return rc;
}

/* More than the canonical request of in can take (every byte of the path and
 * query percent-encoded, every header name twice). */
static size_t canonical_bound(const struct sigv4_input *in, const char *extra_query)
{
	size_t n =
	    256 + strlen(in->method ? in->method : "") + 3 * strlen(in->path ? in->path : "");
	n += 3 * (strlen(in->query ? in->query : "") + strlen(extra_query ? extra_query : ""));
	n += strlen(in->payload_hash ? in->payload_hash : "");
	for (size_t i = 0; i < in->n_headers; i++)
		n += 2 * strlen(in->headers[i].name ? in->headers[i].name : "") + 3 +
		     strlen(in->headers[i].value ? in->headers[i].value : "");
	return n;
}

/* Canonical request (with extra_query) -> string to sign -> signature. The
 * canonical request holds the signed header values, the session token among
 * them: it is built in a buffer of its final size (no reallocation leaves a
 * copy behind) and wiped. */
static int sign(const struct sigv4_input *in, const struct sigv4_creds *c, const char *extra_query,
		char sig[65])
{
	struct buf creq = BUF_INIT, sts = BUF_INIT;
	if (in)
		buf_grow(&creq, canonical_bound(in, extra_query));
	int rc = canonical_request_ex(in, extra_query, &creq);
	if (rc < 0)
		goto cleanup;
	rc = sigv4_string_to_sign(in, buf_str(&creq), &sts);
	if (rc < 0)
		goto cleanup;
	rc = sigv4_signature(in, c, buf_str(&sts), sig);
cleanup:
	secret_buf_release(&creq);
	buf_release(&sts);
	return rc;
}

int sigv4_authorization(const struct sigv4_input *in, const struct sigv4_creds *c, struct buf *out)
{
	if (!c || !c->access_key_id || !*c->access_key_id || !c->secret_access_key)
		return -EINVAL;
	char sig[65];
	struct buf sh = BUF_INIT;
	int rc = signed_headers_of(in, &sh);
	if (rc < 0)
		goto cleanup;
	rc = sign(in, c, NULL, sig);
	if (rc < 0)
		goto cleanup;
	buf_adds(out, SIGV4_ALGORITHM " Credential=");
	buf_adds(out, c->access_key_id);
	buf_addch(out, '/');
	credential_scope(in, out);
	buf_adds(out, ", SignedHeaders=");
	buf_add(out, sh.data, sh.len);
	buf_adds(out, ", Signature=");
	buf_adds(out, sig);
cleanup:
	buf_release(&sh);
	return rc;
}

int sigv4_presign(const struct sigv4_input *in, const struct sigv4_creds *c,
		  unsigned expires_seconds, struct buf *out)
{
	if (!c || !c->access_key_id || !*c->access_key_id || !c->secret_access_key)
		return -EINVAL;
	char date[17], sig[65];
	struct buf sh = BUF_INIT, tmp = BUF_INIT, cred = BUF_INIT, token = BUF_INIT;
	int rc = signed_headers_of(in, &sh);
	if (rc < 0)
		goto cleanup;
	sigv4_amz_date(in->when, date);

	buf_adds(&tmp, c->access_key_id);
	buf_addch(&tmp, '/');
	credential_scope(in, &tmp);
	uri_encode(&cred, tmp.data, tmp.len, false);
	buf_reset(&tmp);
	uri_encode(&tmp, sh.data, sh.len, false);
	buf_reset(&sh);
	buf_add(&sh, tmp.data, tmp.len); /* sh now holds the encoded list */
	bool has_token = c->session_token && *c->session_token;
	if (has_token)
		uri_encode(&token, c->session_token, strlen(c->session_token), false);

	/* The parameters added to the request, in the order they are sent. */
	buf_reset(&tmp);
	buf_addf(&tmp, "X-Amz-Algorithm=" SIGV4_ALGORITHM "&X-Amz-Credential=%s&X-Amz-Date=%s",
		 buf_str(&cred), date);
	buf_addf(&tmp, "&X-Amz-SignedHeaders=%s&X-Amz-Expires=%u", buf_str(&sh), expires_seconds);
	if (has_token)
		buf_addf(&tmp, "&X-Amz-Security-Token=%s", buf_str(&token));

	rc = sign(in, c, buf_str(&tmp), sig);
	if (rc < 0)
		goto cleanup;
	if (in->query && *in->query) {
		buf_adds(out, in->query);
		buf_addch(out, '&');
	}
	buf_add(out, tmp.data, tmp.len);
	buf_adds(out, "&X-Amz-Signature=");
	buf_adds(out, sig);
cleanup:
	buf_release(&sh);
	buf_release(&tmp);
	buf_release(&cred);
	buf_release(&token);
	return rc;
}
