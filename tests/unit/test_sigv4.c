/* SigV4 against the AWS signing test suite (tests/data/sigv4) in both the
 * header and the query (presigned) form, plus S3-specific checks. */
#include "common/compat.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "common/buf.h"
#include "common/uri.h"
#include "common/util.h"
#include "remote/sigv4.h"
#include "tests/unit/tap.h"

#define DATA_DIR "tests/data/sigv4"

static char *read_whole(const char *dir, const char *name, size_t *len)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s/%s", DATA_DIR, dir, name);
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	struct buf b = BUF_INIT;
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_add(&b, chunk, n);
	fclose(f);
	return buf_detach(&b, len);
}

struct request {
	char *method;
	char *path;
	char *query; /* NULL when none */
	struct sigv4_header *headers;
	char **names, **values; /* owned copies behind headers[] */
	size_t n_headers;
	char *body;
	size_t body_len;
};

static void request_free(struct request *r)
{
	free(r->method);
	free(r->path);
	free(r->query);
	for (size_t i = 0; i < r->n_headers; i++) {
		free(r->names[i]);
		free(r->values[i]);
	}
	free(r->names);
	free(r->values);
	free(r->headers);
	free(r->body);
	memset(r, 0, sizeof(*r));
}

/* Parse a raw HTTP/1.1 request: request line (the target may hold spaces),
 * headers with obs-fold continuation lines, blank line, body. */
static int request_parse(const char *text, size_t len, struct request *r)
{
	memset(r, 0, sizeof(*r));
	const char *p = text, *end = text + len;
	const char *eol = memchr(p, '\n', (size_t)(end - p));
	if (!eol)
		eol = end;
	const char *sp1 = memchr(p, ' ', (size_t)(eol - p));
	const char *sp2 = eol;
	while (sp2 > p && sp2[-1] != ' ')
		sp2--;
	if (!sp1 || sp2 <= sp1 + 1)
		return -EINVAL;
	r->method = xstrndup(p, (size_t)(sp1 - p));
	const char *target = sp1 + 1;
	size_t tlen = (size_t)(sp2 - 1 - target);
	const char *q = memchr(target, '?', tlen);
	if (q) {
		r->path = xstrndup(target, (size_t)(q - target));
		r->query = xstrndup(q + 1, tlen - (size_t)(q - target) - 1);
	} else {
		r->path = xstrndup(target, tlen);
	}
	p = eol < end ? eol + 1 : end;
	size_t cap = 0;
	while (p < end) {
		eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			eol = end;
		size_t ll = (size_t)(eol - p);
		if (ll && p[ll - 1] == '\r')
			ll--;
		if (ll == 0) {
			p = eol < end ? eol + 1 : end;
			break;
		}
		if (p[0] == ' ' || p[0] == '\t') {
			/* obs-fold: belongs to the previous header's value */
			if (!r->n_headers)
				return -EINVAL;
			struct buf v = BUF_INIT;
			buf_adds(&v, r->values[r->n_headers - 1]);
			buf_addch(&v, '\n');
			buf_add(&v, p, ll);
			free(r->values[r->n_headers - 1]);
			r->values[r->n_headers - 1] = buf_detach(&v, NULL);
		} else {
			const char *colon = memchr(p, ':', ll);
			if (!colon)
				return -EINVAL;
			if (r->n_headers == cap) {
				cap = cap ? 2 * cap : 8;
				r->names = xrealloc(r->names, cap * sizeof(char *));
				r->values = xrealloc(r->values, cap * sizeof(char *));
			}
			r->names[r->n_headers] = xstrndup(p, (size_t)(colon - p));
			r->values[r->n_headers] = xstrndup(colon + 1, ll - (size_t)(colon - p) - 1);
			r->n_headers++;
		}
		p = eol < end ? eol + 1 : end;
	}
	r->body_len = (size_t)(end - p);
	r->body = xstrndup(p, r->body_len);
	return 0;
}

static void sha256_hex(const void *d, size_t n, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	if (!EVP_Digest(d, n, md, &mdlen, EVP_sha256(), NULL))
		abort();
	hex_encode(md, mdlen, out);
}

/* The query string of the first line of a *-signed-request.txt. */
static char *signed_query(const char *text)
{
	const char *eol = strchr(text, '\n');
	size_t ll = eol ? (size_t)(eol - text) : strlen(text);
	const char *q = memchr(text, '?', ll);
	const char *sp = text + ll;
	while (sp > text && *sp != ' ')
		sp--;
	if (!q || sp <= q)
		return NULL;
	return xstrndup(q + 1, (size_t)(sp - q - 1));
}

/* The value of the Authorization line of a header-signed-request.txt. */
static char *signed_authorization(const char *text)
{
	const char *p = strstr(text, "\nAuthorization:");
	if (!p)
		return NULL;
	p += strlen("\nAuthorization:");
	const char *eol = strchr(p, '\n');
	return xstrndup(p, eol ? (size_t)(eol - p) : strlen(p));
}

static time_t parse_iso8601(const char *s)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	if (sscanf(s, "%d-%d-%dT%d:%d:%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
		   &tm.tm_min, &tm.tm_sec) != 6)
		return (time_t)-1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return timegm(&tm);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int n_cases;

static void run_case(const char *name)
{
	size_t rlen = 0;
	char *raw = read_whole(name, "request.txt", &rlen);
	char *ctx_text = read_whole(name, "context.json", NULL);
	char *exp_hcr = read_whole(name, "header-canonical-request.txt", NULL);
	char *exp_hsts = read_whole(name, "header-string-to-sign.txt", NULL);
	char *exp_hsig = read_whole(name, "header-signature.txt", NULL);
	char *exp_hreq = read_whole(name, "header-signed-request.txt", NULL);
	char *exp_qcr = read_whole(name, "query-canonical-request.txt", NULL);
	char *exp_qsts = read_whole(name, "query-string-to-sign.txt", NULL);
	char *exp_qsig = read_whole(name, "query-signature.txt", NULL);
	char *exp_qreq = read_whole(name, "query-signed-request.txt", NULL);
	char *exp_auth = NULL, *exp_query = NULL;
	struct request req;
	memset(&req, 0, sizeof(req));
	json_t *ctx = NULL;
	struct buf cr = BUF_INIT, sts = BUF_INIT, auth = BUF_INIT, q = BUF_INIT, tmp = BUF_INIT;
	struct sigv4_header *hdrs = NULL;

	n_cases++;
	if (!raw || !ctx_text || !exp_hcr || !exp_hsts || !exp_hsig || !exp_hreq || !exp_qcr ||
	    !exp_qsts || !exp_qsig || !exp_qreq) {
		ok(0, "%s: all case files present", name);
		goto cleanup;
	}
	json_error_t jerr;
	ctx = json_loads(ctx_text, 0, &jerr);
	ok(ctx != NULL, "%s: context.json parses", name);
	if (!ctx)
		goto cleanup;
	int prc = request_parse(raw, rlen, &req);
	ok(prc == 0, "%s: request.txt parses", name);
	if (prc != 0)
		goto cleanup;

	json_t *jc = json_object_get(ctx, "credentials");
	const char *token = json_string_value(json_object_get(jc, "token"));
	struct sigv4_creds creds = {
	    .access_key_id = json_string_value(json_object_get(jc, "access_key_id")),
	    .secret_access_key = json_string_value(json_object_get(jc, "secret_access_key")),
	    .session_token = token,
	};
	bool normalize = json_is_true(json_object_get(ctx, "normalize"));
	bool sign_body = json_is_true(json_object_get(ctx, "sign_body"));
	bool omit_token = json_is_true(json_object_get(ctx, "omit_session_token"));
	json_int_t expires = json_integer_value(json_object_get(ctx, "expiration_in_seconds"));
	time_t when = parse_iso8601(json_string_value(json_object_get(ctx, "timestamp")));
	ok(creds.access_key_id && creds.secret_access_key && when != (time_t)-1 && expires > 0,
	   "%s: context has credentials, timestamp and expiration", name);

	char body_hash[65], amz_date[17];
	if (sign_body)
		sha256_hex(req.body, req.body_len, body_hash);
	else
		str_copy_fit(body_hash, SIGV4_EMPTY_SHA256, sizeof(body_hash));
	sigv4_amz_date(when, amz_date);

	/* S3 (normalize=false) signs the path as sent on the wire: the raw path of
	 * request.txt encoded once. Other services get the raw path and encode it
	 * themselves after normalising. */
	struct buf path = BUF_INIT;
	if (normalize)
		buf_adds(&path, req.path);
	else
		uri_encode(&path, req.path, strlen(req.path), true);

	/* ---- header form ---- */
	hdrs = xcalloc(req.n_headers + 3, sizeof(*hdrs));
	size_t nh = 0;
	for (size_t i = 0; i < req.n_headers; i++)
		hdrs[nh++] = (struct sigv4_header){req.names[i], req.values[i]};
	hdrs[nh++] = (struct sigv4_header){"X-Amz-Date", amz_date};
	if (token && !omit_token)
		hdrs[nh++] = (struct sigv4_header){"X-Amz-Security-Token", token};
	if (sign_body)
		hdrs[nh++] = (struct sigv4_header){"x-amz-content-sha256", body_hash};

	struct sigv4_input in = {
	    .method = req.method,
	    .path = buf_str(&path),
	    .query = req.query,
	    .headers = hdrs,
	    .n_headers = nh,
	    .payload_hash = body_hash,
	    .region = json_string_value(json_object_get(ctx, "region")),
	    .service = json_string_value(json_object_get(ctx, "service")),
	    .when = when,
	    .normalize_path = normalize,
	};
	struct sigv4_creds hcreds = creds;
	if (omit_token)
		hcreds.session_token = NULL;
	char sig[65] = "";
	int rc = sigv4_canonical_request(&in, &cr);
	is_int(rc, 0, "%s: header canonical request succeeds", name);
	is_str(buf_str(&cr), exp_hcr, "%s: header canonical request", name);
	rc = sigv4_string_to_sign(&in, buf_str(&cr), &sts);
	is_int(rc, 0, "%s: header string to sign succeeds", name);
	is_str(buf_str(&sts), exp_hsts, "%s: header string to sign", name);
	rc = sigv4_signature(&in, &hcreds, buf_str(&sts), sig);
	is_int(rc, 0, "%s: header signature succeeds", name);
	is_str(sig, exp_hsig, "%s: header signature", name);
	rc = sigv4_authorization(&in, &hcreds, &auth);
	exp_auth = signed_authorization(exp_hreq);
	is_int(rc, 0, "%s: authorization succeeds", name);
	is_str(buf_str(&auth), exp_auth, "%s: authorization header", name);

	/* ---- query (presigned) form: only the request's own headers are signed ---- */
	in.n_headers = req.n_headers;
	bool qtoken = token && !omit_token;
	struct buf sh = BUF_INIT, enc = BUF_INIT;
	/* X-Amz-SignedHeaders: the request's header names, lowercased, sorted, unique */
	char **lnames = xcalloc(req.n_headers + 1, sizeof(char *));
	for (size_t i = 0; i < req.n_headers; i++) {
		lnames[i] = xstrdup(req.names[i]);
		for (char *c = lnames[i]; *c; c++)
			if (*c >= 'A' && *c <= 'Z')
				*c = (char)(*c - 'A' + 'a');
	}
	qsort(lnames, req.n_headers, sizeof(char *), cmp_str);
	for (size_t i = 0; i < req.n_headers; i++) {
		if (!i || strcmp(lnames[i], lnames[i - 1])) {
			if (sh.len)
				buf_addch(&sh, ';');
			buf_adds(&sh, lnames[i]);
		}
	}
	for (size_t i = 0; i < req.n_headers; i++)
		free(lnames[i]);
	free(lnames);
	uri_encode(&enc, sh.data, sh.len, false);

	buf_reset(&tmp);
	if (req.query && *req.query)
		buf_addf(&tmp, "%s&", req.query);
	buf_addf(&tmp,
		 "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=%s%%2F%.8s%%2F%s%%2F%s%%2Faws4_"
		 "request&X-Amz-Date=%s&X-Amz-Expires=%lld&X-Amz-SignedHeaders=%s",
		 creds.access_key_id, amz_date, in.region, in.service, amz_date, (long long)expires,
		 buf_str(&enc));
	if (qtoken) {
		buf_adds(&tmp, "&X-Amz-Security-Token=");
		uri_encode(&tmp, token, strlen(token), false);
	}
	in.query = buf_str(&tmp);
	buf_reset(&cr);
	buf_reset(&sts);
	rc = sigv4_canonical_request(&in, &cr);
	is_int(rc, 0, "%s: query canonical request succeeds", name);
	is_str(buf_str(&cr), exp_qcr, "%s: query canonical request", name);
	rc = sigv4_string_to_sign(&in, buf_str(&cr), &sts);
	is_int(rc, 0, "%s: query string to sign succeeds", name);
	is_str(buf_str(&sts), exp_qsts, "%s: query string to sign", name);
	rc = sigv4_signature(&in, &hcreds, buf_str(&sts), sig);
	is_int(rc, 0, "%s: query signature succeeds", name);
	is_str(sig, exp_qsig, "%s: query signature", name);

	/* The whole presigned query string, built by sigv4_presign alone. */
	in.query = req.query;
	rc = sigv4_presign(&in, &hcreds, (unsigned)expires, &q);
	is_int(rc, 0, "%s: presign succeeds", name);
	exp_query = signed_query(exp_qreq);
	if (omit_token && token) {
		/* the suite adds the unsigned token right before the signature */
		struct buf fixed = BUF_INIT;
		const char *s = strstr(buf_str(&q), "&X-Amz-Signature=");
		if (s) {
			buf_add(&fixed, q.data, (size_t)(s - q.data));
			buf_adds(&fixed, "&X-Amz-Security-Token=");
			uri_encode(&fixed, token, strlen(token), false);
			buf_adds(&fixed, s);
		}
		buf_release(&q);
		q = fixed;
	}
	is_str(buf_str(&q), exp_query, "%s: presigned query string", name);

	buf_release(&sh);
	buf_release(&enc);
	buf_release(&path);
cleanup:
	json_decref(ctx);
	request_free(&req);
	free(hdrs);
	buf_release(&cr);
	buf_release(&sts);
	buf_release(&auth);
	buf_release(&q);
	buf_release(&tmp);
	free(raw);
	free(ctx_text);
	free(exp_hcr);
	free(exp_hsts);
	free(exp_hsig);
	free(exp_hreq);
	free(exp_qcr);
	free(exp_qsts);
	free(exp_qsig);
	free(exp_qreq);
	free(exp_auth);
	free(exp_query);
}

static void test_suite(void)
{
	DIR *d = opendir(DATA_DIR);
	ok(d != NULL, "open %s", DATA_DIR);
	if (!d)
		return;
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char p[1024];
		snprintf(p, sizeof(p), "%s/%s/request.txt", DATA_DIR, de->d_name);
		FILE *f = fopen(p, "rb");
		if (!f)
			continue; /* LICENSE, NOTICE, README.md */
		fclose(f);
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			names = xrealloc(names, cap * sizeof(*names));
		}
		names[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof(*names), cmp_str);
	for (size_t i = 0; i < n; i++) {
		run_case(names[i]);
		free(names[i]);
	}
	free(names);
	ok(n_cases >= 38, "ran every case folder (%d)", n_cases);
}

/* ---- S3-specific checks ---- */

static const struct sigv4_creds s3_creds = {"AKIAIOSFODNN7EXAMPLE",
					    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", NULL};

/* 2013-05-24T00:00:00Z, the date of the examples in the S3 SigV4 documentation. */
#define S3_DOC_TIME ((time_t)1369353600)

static void test_s3_doc_get(void)
{
	/* The GET Object example of the S3 SigV4 header-auth documentation. */
	const struct sigv4_header h[] = {
	    {"Host", "examplebucket.s3.amazonaws.com"},
	    {"Range", "bytes=0-9"},
	    {"x-amz-content-sha256", SIGV4_EMPTY_SHA256},
	    {"x-amz-date", "20130524T000000Z"},
	};
	struct sigv4_input in = {.method = "GET",
				 .path = "/test.txt",
				 .headers = h,
				 .n_headers = ARRAY_SIZE(h),
				 .payload_hash = SIGV4_EMPTY_SHA256,
				 .region = "us-east-1",
				 .service = "s3",
				 .when = S3_DOC_TIME};
	struct buf b = BUF_INIT;
	is_int(sigv4_authorization(&in, &s3_creds, &b), 0, "s3 doc get: authorization succeeds");
	is_str(buf_str(&b),
	       "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/"
	       "aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
	       "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
	       "s3 doc get: authorization header");
	buf_release(&b);
}

static void test_s3_doc_presign(void)
{
	/* The presigned GET example of the S3 SigV4 query-auth documentation. */
	const struct sigv4_header h[] = {{"host", "examplebucket.s3.amazonaws.com"}};
	struct sigv4_input in = {.method = "GET",
				 .path = "/test.txt",
				 .headers = h,
				 .n_headers = 1,
				 .payload_hash = SIGV4_UNSIGNED_PAYLOAD,
				 .region = "us-east-1",
				 .service = "s3",
				 .when = S3_DOC_TIME};
	struct buf b = BUF_INIT;
	is_int(sigv4_presign(&in, &s3_creds, 86400, &b), 0, "s3 doc presign: succeeds");
	is_str(buf_str(&b),
	       "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%"
	       "2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-SignedHeaders="
	       "host&X-Amz-Expires=86400&X-Amz-Signature="
	       "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
	       "s3 doc presign: query string");
	buf_release(&b);

	/* With a session token: the token is sent and signed. */
	struct sigv4_creds tc = s3_creds;
	tc.session_token = "tok/en+=";
	is_int(sigv4_presign(&in, &tc, 60, &b), 0, "s3 presign with token: succeeds");
	ok(strstr(buf_str(&b), "&X-Amz-Security-Token=tok%2Fen%2B%3D&X-Amz-Signature=") != NULL,
	   "s3 presign with token: encoded token before the signature");
	ok(strstr(buf_str(&b),
		  "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404") == NULL,
	   "s3 presign with token: signature differs");
	buf_release(&b);

	/* The request's own query parameters are kept first, verbatim. */
	in.query = "versionId=abc%2Bd&x-id=GetObject";
	is_int(sigv4_presign(&in, &s3_creds, 60, &b), 0, "s3 presign with query: succeeds");
	ok(str_startswith(buf_str(&b), "versionId=abc%2Bd&x-id=GetObject&X-Amz-Algorithm="),
	   "s3 presign with query: own parameters first");
	buf_release(&b);
}

static void test_s3_paths(void)
{
	const struct sigv4_header h[] = {
	    {"host", "s3.example.com"},
	    {"x-amz-content-sha256", SIGV4_UNSIGNED_PAYLOAD},
	    {"x-amz-date", "20130524T000000Z"},
	};
	struct sigv4_input in = {.method = "PUT",
				 .path = "/bucket/a%20b/c%2Bd",
				 .headers = h,
				 .n_headers = ARRAY_SIZE(h),
				 .payload_hash = SIGV4_UNSIGNED_PAYLOAD,
				 .region = "us-east-1",
				 .service = "s3",
				 .when = S3_DOC_TIME};
	struct buf b = BUF_INIT;
	is_int(sigv4_canonical_request(&in, &b), 0, "s3 path: canonical request succeeds");
	is_str(buf_str(&b),
	       "PUT\n/bucket/a%20b/c%2Bd\n\nhost:s3.example.com\n"
	       "x-amz-content-sha256:UNSIGNED-PAYLOAD\nx-amz-date:20130524T000000Z\n\n"
	       "host;x-amz-content-sha256;x-amz-date\nUNSIGNED-PAYLOAD",
	       "s3 path: encoded key kept verbatim, UNSIGNED-PAYLOAD last");
	ok(str_endswith(buf_str(&b), "\nUNSIGNED-PAYLOAD"), "s3 path: payload line");

	/* Dot segments and double slashes are part of an S3 key: not normalised. */
	buf_reset(&b);
	in.path = "/bucket/./x//y/../z";
	is_int(sigv4_canonical_request(&in, &b), 0, "s3 dot path: succeeds");
	ok(str_startswith(buf_str(&b), "PUT\n/bucket/./x//y/../z\n\n"), "s3 dot path: verbatim");

	/* Other services encode the wire path again (double encoding). */
	buf_reset(&b);
	in.path = "/bucket/a%20b/c%2Bd";
	in.normalize_path = true;
	in.service = "service";
	is_int(sigv4_canonical_request(&in, &b), 0, "normalised path: succeeds");
	ok(str_startswith(buf_str(&b), "PUT\n/bucket/a%2520b/c%252Bd\n\n"),
	   "normalised path: encoded again");

	/* S3 list query: decoded, re-encoded and sorted; empty value kept. */
	buf_reset(&b);
	in.path = "/bucket";
	in.normalize_path = false;
	in.service = "s3";
	in.method = "GET";
	in.query = "prefix=a%2Fb%20c&list-type=2&delimiter=%2F&continuation-token=x+y&acl";
	is_int(sigv4_canonical_request(&in, &b), 0, "s3 list query: succeeds");
	ok(str_startswith(buf_str(&b), "GET\n/bucket\nacl=&continuation-token=x%2By&delimiter=%2F&"
				       "list-type=2&prefix=a%2Fb%20c\n"),
	   "s3 list query: canonical query");

	/* Malformed escapes and missing host are rejected. */
	buf_reset(&b);
	in.query = "prefix=%G1";
	is_int(sigv4_canonical_request(&in, &b), -EINVAL, "malformed query escape: -EINVAL");
	in.query = NULL;
	in.headers = h + 1;
	in.n_headers = 2;
	is_int(sigv4_canonical_request(&in, &b), -EINVAL, "no host header: -EINVAL");
	in.headers = h;
	in.n_headers = ARRAY_SIZE(h);
	in.path = "bucket";
	is_int(sigv4_canonical_request(&in, &b), -EINVAL, "relative path: -EINVAL");
	buf_release(&b);
}

static void test_amz_date(void)
{
	char d[17];
	sigv4_amz_date(S3_DOC_TIME, d);
	is_str(d, "20130524T000000Z", "amz date of 2013-05-24");
	sigv4_amz_date((time_t)1440938160, d);
	is_str(d, "20150830T123600Z", "amz date of 2015-08-30T12:36:00Z");
	sigv4_amz_date((time_t)0, d);
	is_str(d, "19700101T000000Z", "amz date of the epoch");
}

int main(void)
{
	test_amz_date();
	test_suite();
	test_s3_doc_get();
	test_s3_doc_presign();
	test_s3_paths();
	return tap_done();
}
