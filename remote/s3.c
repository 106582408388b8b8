#include "common/compat.h"

#include "remote/s3.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/secret.h"
#include "common/uri.h"
#include "remote/creds.h"
#include "remote/exec.h"
#include "remote/http.h"
#include "remote/s3_xml.h"
#include "remote/s3_local.h"
#include "remote/sigv4.h"

#define XML_BODY_MAX   (8u * 1024 * 1024) /* a 2xx XML answer we collect */
#define MSG_KEY_MAX    160		  /* key bytes shown in a message */
#define S3_NS	       "http://s3.amazonaws.com/doc/2006-03-01/"
#define LIST_PAGE_SIZE 1000

struct s3_client {
	char *name;
	char *endpoint;
	char *scheme;	/* "http" | "https" */
	char *hostport; /* "host[:port]" */
	char *base;	/* path prefix of the endpoint ("" or "/x"), no trailing slash */
	char *region;
	bool path_style;
	bool requester_pays;
	bool unsigned_payload;	/* honoured only over https */
	uint64_t get_range_max; /* s3_config's; 0: no limit */
	struct creds_provider *creds;
	struct http_engine *http;
	struct retry_policy retry;
	_Atomic uint64_t counts[S3_REQ__COUNT];
	_Atomic int64_t clock_skew; /* server time - local time, seconds */
	struct s3_local *local;	    /* a local directory (s3_local.h): no requests */
};

static const char *const kind_names[S3_REQ__COUNT] = {
    "list", "head", "get", "put", "copy", "multipart", "delete", "other",
};

const char *s3_req_kind_name(enum s3_req_kind k)
{
	return (unsigned)k < S3_REQ__COUNT ? kind_names[k] : "unknown";
}

struct s3_client *s3_client_new(const struct s3_config *cfg)
{
	if (!cfg || !cfg->endpoint || !cfg->http)
		return NULL;
	const char *ep = cfg->endpoint;
	const char *sep = strstr(ep, "://");
	if (!sep || sep == ep)
		return NULL;
	struct s3_client *c = xcalloc(1, sizeof(*c));
	c->scheme = xstrndup(ep, (size_t)(sep - ep));
	for (char *p = c->scheme; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	const char *host = sep + 3;
	size_t hl = strcspn(host, "/?#");
	c->hostport = xstrndup(host, hl);
	const char *path = host + hl;
	size_t pl = strcspn(path, "?#");
	while (pl > 0 && path[pl - 1] == '/')
		pl--;
	c->base = xstrndup(path, pl);
	c->endpoint = xstrndup(ep, (size_t)(host - ep) + hl + pl);
	c->name = xstrdup(cfg->name ? cfg->name : c->endpoint);
	c->region = xstrdup(cfg->region && *cfg->region ? cfg->region : "us-east-1");
	c->path_style = cfg->path_style;
	c->requester_pays = cfg->requester_pays;
	c->unsigned_payload = cfg->unsigned_payload && strcmp(c->scheme, "https") == 0;
	c->get_range_max = cfg->get_range_max;
	c->creds = cfg->creds;
	c->http = cfg->http;
	c->retry = cfg->retry;
	retry_policy_normalize(&c->retry);
	if ((strcmp(c->scheme, "http") != 0 && strcmp(c->scheme, "https") != 0) || !*c->hostport) {
		s3_client_free(c);
		return NULL;
	}
	return c;
}

int s3_client_new_local(const char *name, const char *root, struct s3_client **out,
			struct dth_err *err)
{
	*out = NULL;
	struct s3_local *l;
	int rc = s3_local_open(root, &l, err);
	if (rc)
		return rc;
	struct s3_client *c = xcalloc(1, sizeof(*c));
	c->local = l;
	struct buf ep = BUF_INIT;
	buf_adds(&ep, "file://");
	buf_adds(&ep, root);
	c->endpoint = buf_detach(&ep, NULL);
	c->name = xstrdup(name ? name : root);
	*out = c;
	return 0;
}

bool s3_client_is_local(const struct s3_client *c)
{
	return c->local != NULL;
}

void s3_client_free(struct s3_client *c)
{
	if (!c)
		return;
	s3_local_free(c->local);
	free(c->name);
	free(c->endpoint);
	free(c->scheme);
	free(c->hostport);
	free(c->base);
	free(c->region);
	free(c);
}

const char *s3_client_endpoint(const struct s3_client *c)
{
	return c->endpoint;
}

const char *s3_client_name(const struct s3_client *c)
{
	return c->name;
}

void s3_client_counts(const struct s3_client *c, uint64_t out[S3_REQ__COUNT])
{
	for (int i = 0; i < S3_REQ__COUNT; i++)
		out[i] = atomic_load(&((struct s3_client *)c)->counts[i]);
}

/* ---- metadata, tags, heads ----------------------------------------------- */

void s3_meta_release(struct s3_meta *m)
{
	if (!m)
		return;
	free(m->content_type);
	free(m->content_encoding);
	free(m->content_language);
	free(m->content_disposition);
	free(m->cache_control);
	free(m->expires);
	for (size_t i = 0; i < m->n_user; i++) {
		free(m->user[i].name);
		free(m->user[i].value);
	}
	free(m->user);
	memset(m, 0, sizeof(*m));
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

void s3_meta_copy(struct s3_meta *dst, const struct s3_meta *src)
{
	memset(dst, 0, sizeof(*dst));
	if (!src)
		return;
	dst->content_type = dup_or_null(src->content_type);
	dst->content_encoding = dup_or_null(src->content_encoding);
	dst->content_language = dup_or_null(src->content_language);
	dst->content_disposition = dup_or_null(src->content_disposition);
	dst->cache_control = dup_or_null(src->cache_control);
	dst->expires = dup_or_null(src->expires);
	if (src->n_user) {
		dst->user = xcalloc(src->n_user, sizeof(*dst->user));
		for (size_t i = 0; i < src->n_user; i++) {
			dst->user[i].name = dup_or_null(src->user[i].name);
			dst->user[i].value = dup_or_null(src->user[i].value);
		}
		dst->n_user = src->n_user;
	}
}

void s3_tags_release(struct s3_tags *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++) {
		free(t->tags[i].name);
		free(t->tags[i].value);
	}
	free(t->tags);
	t->tags = NULL;
	t->n = 0;
}

void s3_tags_to_query(const struct s3_tags *t, struct buf *out)
{
	for (size_t i = 0; i < t->n; i++) {
		if (i)
			buf_addch(out, '&');
		const char *k = t->tags[i].name ? t->tags[i].name : "";
		const char *v = t->tags[i].value ? t->tags[i].value : "";
		uri_encode(out, k, strlen(k), false);
		buf_addch(out, '=');
		uri_encode(out, v, strlen(v), false);
	}
}

void s3_object_head_release(struct s3_object_head *h)
{
	if (!h)
		return;
	s3_meta_release(&h->meta);
	memset(h, 0, sizeof(*h));
}

bool s3_etag_parse(const char *etag, unsigned *parts)
{
	if (!etag)
		return false;
	for (int i = 0; i < 32; i++) {
		char ch = etag[i];
		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') ||
		      (ch >= 'A' && ch <= 'F')))
			return false;
	}
	if (etag[32] == '\0') {
		if (parts)
			*parts = 0;
		return true;
	}
	if (etag[32] != '-' || etag[33] < '1' || etag[33] > '9')
		return false;
	uint64_t n = 0;
	const char *p = etag + 33;
	while (*p >= '0' && *p <= '9') {
		n = n * 10 + (uint64_t)(*p - '0');
		if (n > 100000)
			return false;
		p++;
	}
	if (*p != '\0')
		return false;
	if (parts)
		*parts = (unsigned)n;
	return true;
}

/* RFC 1123 date ("Sun, 06 Nov 1994 08:49:37 GMT"), also without the weekday. */
static int parse_http_date(const char *s, int64_t *out)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	const char *comma = strchr(s, ',');
	if (comma)
		s = comma + 1;
	while (*s == ' ')
		s++;
	int d = 0, y = 0, h = 0, mi = 0, se = 0, mon = -1;
	char mname[4] = "";
	int used = 0;
	if (sscanf(s, "%2d %3s %4d %2d:%2d:%2d%n", &d, mname, &y, &h, &mi, &se, &used) != 6)
		return -EINVAL;
	for (int i = 0; i < 12; i++)
		if (strncasecmp(mname, months + 3 * i, 3) == 0)
			mon = i;
	if (mon < 0 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
		return -EINVAL;
	struct tm tm = {0};
	tm.tm_year = y - 1900;
	tm.tm_mon = mon;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = se;
	*out = (int64_t)timegm(&tm);
	return 0;
}

struct head_fill {
	struct s3_object_head *h;
	bool have_total;
};

static void add_user_meta(struct s3_meta *m, const char *name, size_t nlen, const char *value,
			  size_t vlen)
{
	m->user = xrealloc(m->user, (m->n_user + 1) * sizeof(*m->user));
	char *n = xstrndup(name, nlen);
	for (char *p = n; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	m->user[m->n_user].name = n;
	m->user[m->n_user].value = xstrndup(value, vlen);
	m->n_user++;
}

static bool hname_is(const char *name, size_t nlen, const char *want)
{
	return strlen(want) == nlen && strncasecmp(name, want, nlen) == 0;
}

static void set_meta_str(char **dst, const char *value, size_t vlen)
{
	free(*dst);
	*dst = xstrndup(value, vlen);
}

static void head_cb(void *ctx, const char *name, size_t nlen, const char *value, size_t vlen)
{
	struct head_fill *f = ctx;
	struct s3_object_head *h = f->h;
	char tmp[128];
	size_t tl = vlen < sizeof(tmp) - 1 ? vlen : sizeof(tmp) - 1;
	memcpy(tmp, value, tl);
	tmp[tl] = '\0';
	uint64_t v;

	if (hname_is(name, nlen, "content-length")) {
		if (parse_u64(tmp, &v) == 0)
			h->size = v;
	} else if (hname_is(name, nlen, "content-range")) {
		/* "bytes 0-99/1234" */
		const char *slash = strrchr(tmp, '/');
		if (slash && parse_u64(slash + 1, &v) == 0) {
			h->total_size = v;
			f->have_total = true;
		}
	} else if (hname_is(name, nlen, "etag")) {
		if (s3_xml_etag(value, vlen, h->etag) != 0)
			h->etag[0] = '\0';
	} else if (hname_is(name, nlen, "last-modified")) {
		int64_t t;
		if (parse_http_date(tmp, &t) == 0)
			h->last_modified = t;
	} else if (hname_is(name, nlen, "x-amz-mp-parts-count")) {
		if (parse_u64(tmp, &v) == 0 && v <= 100000)
			h->parts_count = (unsigned)v;
	} else if (hname_is(name, nlen, "x-amz-tagging-count")) {
		if (parse_u64(tmp, &v) == 0 && v <= 100000)
			h->tag_count = (unsigned)v;
	} else if (hname_is(name, nlen, "x-amz-storage-class")) {
		if (str_copy(h->storage_class, tmp, sizeof(h->storage_class)))
			log_debug("s3: a storage class header too long to keep");
	} else if (hname_is(name, nlen, "content-type")) {
		set_meta_str(&h->meta.content_type, value, vlen);
	} else if (hname_is(name, nlen, "content-encoding")) {
		set_meta_str(&h->meta.content_encoding, value, vlen);
	} else if (hname_is(name, nlen, "content-language")) {
		set_meta_str(&h->meta.content_language, value, vlen);
	} else if (hname_is(name, nlen, "content-disposition")) {
		set_meta_str(&h->meta.content_disposition, value, vlen);
	} else if (hname_is(name, nlen, "cache-control")) {
		set_meta_str(&h->meta.cache_control, value, vlen);
	} else if (hname_is(name, nlen, "expires")) {
		set_meta_str(&h->meta.expires, value, vlen);
	} else if (nlen > 11 && strncasecmp(name, "x-amz-meta-", 11) == 0) {
		add_user_meta(&h->meta, name + 11, nlen - 11, value, vlen);
	}
}

static void fill_head(const struct http_resp *r, struct s3_object_head *h)
{
	struct head_fill f = {h, false};
	http_resp_each_header(r, head_cb, &f);
	if (!f.have_total)
		h->total_size = h->size;
	if (!h->storage_class[0])
		str_copy_fit(h->storage_class, "STANDARD", sizeof(h->storage_class));
}

/* ---- request machinery --------------------------------------------------- */

struct s3_call {
	enum s3_req_kind kind;
	const char *op; /* "HeadObject", ... for messages */
	const char *method;
	const char *bucket;	  /* NULL: the service */
	const char *key;	  /* NULL: the bucket */
	const char *query;	  /* encoded, without '?'; NULL for none */
	struct http_header *hdrs; /* extra headers */
	size_t n_hdrs, cap_hdrs;
	const void *body;
	size_t body_len;
	/* A body sent from a stream (body_len bytes): it cannot be sent twice, so
	 * such a call makes one attempt (the caller retries the whole copy). */
	http_source_fn source;
	void *source_ctx;
	/* A 2xx answer is whole and sound (called with sink_ctx): 0, or a
	 * negative errno with err set, and the answer is taken as garbled (a
	 * body cut short under a matching Content-Length): it is sent again. */
	int (*check)(void *ctx, const struct http_resp *resp, struct dth_err *err);
	/* Streaming 2xx body: sink, and reset called before every attempt. */
	http_sink_fn sink;
	void *sink_ctx;
	void (*reset)(void *ctx);
	size_t max_body;
	size_t expect_len; /* expected 2xx body size, a hint for buffer sizes */
	bool want_partial; /* a ranged GET into a sink: only a 206 is accepted */
	bool empty_ok;	   /* an empty 2xx body is an empty document (doc left empty) */
	/* Parse a 2xx body as XML into doc; an <Error> there is an error. */
	struct s3_xml_doc *doc;
	/* Owned strings to free with the call. */
	char **owned;
	size_t n_owned, cap_owned;
	int header_error; /* a header value was refused */
	/* The caller proves the body another way (the ETag of the completed
	 * upload): its SHA-256 is not signed (UNSIGNED-PAYLOAD). */
	bool body_proven;
};

static void call_free(struct s3_call *k)
{
	for (size_t i = 0; i < k->n_owned; i++)
		free(k->owned[i]);
	free(k->owned);
	free(k->hdrs);
	k->owned = NULL;
	k->hdrs = NULL;
	k->n_owned = k->cap_owned = k->n_hdrs = k->cap_hdrs = 0;
}

static bool value_ok(const char *v)
{
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if (*p == '\r' || *p == '\n' || *p == '\0')
			return false;
	return true;
}

/* Add a header (both strings borrowed until the call ends). */
static void call_hdr(struct s3_call *k, const char *name, const char *value)
{
	if (!value)
		return;
	if (!value_ok(value)) {
		k->header_error = -EINVAL;
		return;
	}
	if (k->n_hdrs == k->cap_hdrs) {
		k->cap_hdrs = k->cap_hdrs ? k->cap_hdrs * 2 : 8;
		k->hdrs = xrealloc(k->hdrs, k->cap_hdrs * sizeof(*k->hdrs));
	}
	k->hdrs[k->n_hdrs].name = name;
	k->hdrs[k->n_hdrs].value = value;
	k->n_hdrs++;
}

/* Keep s alive for the call and return it. */
static const char *call_own(struct s3_call *k, char *s)
{
	if (k->n_owned == k->cap_owned) {
		k->cap_owned = k->cap_owned ? k->cap_owned * 2 : 4;
		k->owned = xrealloc(k->owned, k->cap_owned * sizeof(*k->owned));
	}
	k->owned[k->n_owned++] = s;
	return s;
}

/* "s3://bucket/key" for messages, long keys shortened, control bytes shown as '?'. */
static void describe(const struct s3_call *k, char *out, size_t outsz)
{
	struct buf b = BUF_INIT;
	buf_adds(&b, "s3://");
	if (k->bucket)
		buf_adds(&b, k->bucket);
	if (k->key) {
		buf_addch(&b, '/');
		size_t kl = strlen(k->key);
		size_t show = kl > MSG_KEY_MAX ? MSG_KEY_MAX : kl;
		for (size_t i = 0; i < show; i++) {
			unsigned char ch = (unsigned char)k->key[i];
			buf_addch(&b, ch < 0x20 || ch == 0x7f ? '?' : (char)ch);
		}
		if (show < kl)
			buf_addf(&b, "...(%zu bytes)", kl);
	}
	str_copy_msg(out, buf_str(&b), outsz);
	buf_release(&b);
}

static void sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
	hex_encode(md, 32, out);
}

static void md5_base64(const void *data, size_t len, char out[25])
{
	unsigned char md[16];
	unsigned int mdlen = 0;
	EVP_Digest(data, len, md, &mdlen, EVP_md5(), NULL);
	base64_encode(md, 16, out);
}

/* Host and path (encoded) for bucket/key. */
static void build_target(const struct s3_client *c, const char *bucket, const char *key,
			 struct buf *host, struct buf *path)
{
	buf_adds(path, c->base);
	if (!bucket) {
		buf_adds(host, c->hostport);
		buf_addch(path, '/');
		return;
	}
	if (c->path_style) {
		buf_adds(host, c->hostport);
		buf_addch(path, '/');
		uri_encode(path, bucket, strlen(bucket), false);
		if (key) {
			buf_addch(path, '/');
			uri_encode(path, key, strlen(key), true);
		}
	} else {
		buf_adds(host, bucket);
		buf_addch(host, '.');
		buf_adds(host, c->hostport);
		buf_addch(path, '/');
		if (key)
			uri_encode(path, key, strlen(key), true);
	}
}

/* A code for an error answer without an S3 error document (HEAD answers
 * have no body). */
static const char *status_code_name(long st)
{
	switch (st) {
	case 304:
		return "NotModified";
	case 400:
		return "BadRequest";
	case 403:
		return "Forbidden";
	case 404:
		return "NotFound";
	case 405:
		return "MethodNotAllowed";
	case 409:
		return "Conflict";
	case 412:
		return "PreconditionFailed";
	case 416:
		return "InvalidRange";
	case 429:
		return "TooManyRequests";
	case 500:
		return "InternalError";
	case 501:
		return "NotImplemented";
	case 503:
		return "ServiceUnavailable";
	default:
		return "";
	}
}

/* Learn the server's clock from a RequestTimeTooSkewed answer; true when the
 * correction moved by more than a minute (worth another attempt). */
static bool learn_skew(struct s3_client *c, const struct http_resp *r)
{
	struct buf d = BUF_INIT;
	int64_t server;
	bool moved = false;
	if (http_resp_header(r, "Date", &d) == 0 && parse_http_date(buf_str(&d), &server) == 0) {
		int64_t skew = server - (int64_t)time(NULL);
		int64_t old = atomic_exchange(&c->clock_skew, skew);
		moved = llabs(skew - old) > 60;
		if (moved)
			log_warn(
			    "s3: %s: local clock is off by %lld s from the server's, adjusting",
			    c->name, (long long)skew);
	}
	buf_release(&d);
	return moved;
}

static bool is_signed_header(const char *name)
{
	return strncasecmp(name, "x-amz-", 6) == 0 || str_ieq(name, "content-md5") ||
	       str_ieq(name, "content-type") || str_ieq(name, "host");
}

/* Build, sign and send one attempt. *fatal when no attempt can succeed
 * (no credentials, no signature). */
static int attempt_once(struct s3_client *c, struct s3_call *k, const char *payload_hash,
			struct http_resp *resp, bool *fatal, struct dth_err *err)
{
	struct buf host = BUF_INIT, path = BUF_INIT, url = BUF_INIT, auth = BUF_INIT;
	struct http_header *hdrs = xcalloc(k->n_hdrs + 8, sizeof(*hdrs));
	struct sigv4_header *sh = xcalloc(k->n_hdrs + 8, sizeof(*sh));
	size_t nh = 0, ns = 0;
	struct creds_value cv;
	bool sign = false;
	char date[17];
	int rc = 0;

	memset(&cv, 0, sizeof(cv));
	if (c->creds) {
		rc = creds_provider_get(c->creds, &cv, err);
		if (rc != 0) {
			*fatal = true;
			goto cleanup;
		}
		sign = !cv.anonymous && cv.access_key_id[0];
	}

	build_target(c, k->bucket, k->key, &host, &path);
	buf_addf(&url, "%s://%s%s", c->scheme, buf_str(&host), buf_str(&path));
	if (k->query && *k->query)
		buf_addf(&url, "?%s", k->query);

	hdrs[nh++] = (struct http_header){"Host", buf_str(&host)};
	time_t now = time(NULL) + (time_t)atomic_load(&c->clock_skew);
	if (sign) {
		sigv4_amz_date(now, date);
		hdrs[nh++] = (struct http_header){"x-amz-date", date};
		hdrs[nh++] = (struct http_header){"x-amz-content-sha256", payload_hash};
		if (cv.session_token[0])
			hdrs[nh++] = (struct http_header){"x-amz-security-token", cv.session_token};
	}
	if (c->requester_pays)
		hdrs[nh++] = (struct http_header){"x-amz-request-payer", "requester"};
	for (size_t i = 0; i < k->n_hdrs; i++)
		hdrs[nh++] = k->hdrs[i];

	if (sign) {
		for (size_t i = 0; i < nh; i++)
			if (is_signed_header(hdrs[i].name))
				sh[ns++] = (struct sigv4_header){hdrs[i].name, hdrs[i].value};
		struct sigv4_input in = {
		    .method = k->method,
		    .path = buf_str(&path),
		    .query = k->query,
		    .headers = sh,
		    .n_headers = ns,
		    .payload_hash = payload_hash,
		    .region = c->region,
		    .service = "s3",
		    .when = now,
		    .normalize_path = false,
		};
		struct sigv4_creds sc = {cv.access_key_id, cv.secret_access_key, cv.session_token};
		buf_grow(&auth, 1024); /* the value is never moved once written */
		rc = sigv4_authorization(&in, &sc, &auth);
		if (rc != 0) {
			*fatal = true;
			rc = err_set(err, rc, "cannot sign the request");
			goto cleanup;
		}
		hdrs[nh++] = (struct http_header){"Authorization", buf_str(&auth)};
	}

	struct http_req req = {
	    .method = k->method,
	    .url = buf_str(&url),
	    .headers = hdrs,
	    .n_headers = nh,
	    .body = k->body,
	    .body_len = k->body_len,
	    .source = k->source,
	    .source_ctx = k->source_ctx,
	    .sink = k->sink,
	    .sink_ctx = k->sink_ctx,
	    .max_body = k->sink ? 0 : (k->max_body ? k->max_body : XML_BODY_MAX),
	    .expect_len = k->expect_len,
	    .want_partial = k->want_partial,
	};
	atomic_fetch_add(&c->counts[k->kind], 1);
	rc = http_perform(c->http, &req, resp, err);
cleanup:
	/* wipe the secret copies: keys, session token, signature */
	explicit_bzero(&cv, sizeof(cv));
	secret_buf_release(&auth);
	buf_release(&host);
	buf_release(&path);
	buf_release(&url);
	free(hdrs);
	free(sh);
	return rc;
}

/* One call through the executor (exec.h): the S3 hooks. */
struct s3_run {
	struct s3_client *c;
	struct s3_call *k;
	const char *payload;
};

static int s3_send(void *ctx, struct http_resp *resp, bool *fatal, struct dth_err *err)
{
	struct s3_run *r = ctx;
	return attempt_once(r->c, r->k, r->payload, resp, fatal, err);
}

static void s3_reset(void *ctx)
{
	struct s3_call *k = ((struct s3_run *)ctx)->k;
	if (k->reset)
		k->reset(k->sink_ctx);
	if (k->doc)
		s3_xml_doc_release(k->doc);
}

/* A 2xx answer whose XML the call asked for: parsed into k->doc; an <Error>
 * document there is an error after all (CompleteMultipartUpload, CopyObject). */
static int s3_check_ok(void *ctx, const struct http_resp *resp, char code[EXEC_CODE_MAX],
		       char **message, struct dth_err *err)
{
	struct s3_call *k = ((struct s3_run *)ctx)->k;
	if (k->check && k->check(k->sink_ctx, resp, err))
		return 2;
	if (!k->doc || (k->empty_ok && resp->body.len == 0))
		return 0;
	char pm[256] = "";
	if (s3_xml_parse(resp->body.data, resp->body.len, k->doc, pm, sizeof(pm)) != 0) {
		char what[MSG_KEY_MAX + 160];
		describe(k, what, sizeof(what));
		err_set(err, -EPROTO, "%s %s: bad answer: %s", k->op, what, pm);
		return 2; /* garbled (cut short?): again */
	}
	if (k->doc->root != S3_XML_ERROR)
		return 0;
	str_copy_msg(code, k->doc->code, EXEC_CODE_MAX);
	*message = xstrdup(k->doc->message ? k->doc->message : "");
	s3_xml_doc_release(k->doc);
	return 1;
}

static void s3_parse_error(void *ctx, const struct http_resp *resp, char code[EXEC_CODE_MAX],
			   char **message)
{
	struct s3_client *c = ((struct s3_run *)ctx)->c;
	long st = resp->status;
	if (resp->body.len > 0) {
		struct s3_xml_doc ed;
		if (s3_xml_parse(resp->body.data, resp->body.len, &ed, NULL, 0) == 0 &&
		    ed.root == S3_XML_ERROR) {
			str_copy_msg(code, ed.code, EXEC_CODE_MAX);
			*message = xstrdup(ed.message ? ed.message : "");
		}
		s3_xml_doc_release(&ed);
	}
	if (!code[0] && st >= 300)
		str_copy_fit(code, status_code_name(st), EXEC_CODE_MAX);
	if (st >= 300 && st < 400) {
		/* A redirect: usually the bucket lives in another region. */
		struct buf region = BUF_INIT;
		if (http_resp_header(resp, "x-amz-bucket-region", &region) == 0) {
			struct buf m = BUF_INIT;
			buf_addf(&m, "the bucket is in region %s, not %s", buf_str(&region),
				 c->region);
			free(*message);
			*message = buf_detach(&m, NULL);
		}
		buf_release(&region);
	}
}

static bool s3_learn_skew(void *ctx, const struct http_resp *resp)
{
	return learn_skew(((struct s3_run *)ctx)->c, resp);
}

/* An expired session token: the provider fetches fresh credentials. */
static bool s3_refresh_auth(void *ctx, const struct http_resp *resp, const struct exec_verdict *v,
			    unsigned round)
{
	(void)resp;
	struct s3_client *c = ((struct s3_run *)ctx)->c;
	return v->expired && round == 0 && c->creds && creds_provider_refresh(c->creds);
}

static const struct exec_hooks s3_hooks = {
    .send = s3_send,
    .reset = s3_reset,
    .check_ok = s3_check_ok,
    .parse_error = s3_parse_error,
    .refresh_auth = s3_refresh_auth,
    .learn_skew = s3_learn_skew,
};

/* Run the call with retries (exec.h). 0 on a 2xx answer (resp holds it); else
 * a negative errno with err filled. */
static int s3_do(struct s3_client *c, struct s3_call *k, struct http_resp *resp,
		 struct dth_err *err)
{
	char what[MSG_KEY_MAX + 160];
	char payload[65];

	err_clear(err);
	describe(k, what, sizeof(what));
	if (c->local)
		return err_set(err, -ENOTSUP, "%s %s: a local directory is only read, as a source",
			       k->op, what);
	if (k->header_error)
		return err_set(err, k->header_error, "%s %s: bad header value", k->op, what);

	/* A body whose Content-MD5 is signed is already protected end to end (the
	 * server checks it against the signed digest), so its SHA-256 need not be
	 * computed: that saves a hash of every byte copied over plain http. */
	bool md5_signed = false;
	for (size_t i = 0; i < k->n_hdrs; i++)
		if (str_ieq(k->hdrs[i].name, "Content-MD5") && k->hdrs[i].value &&
		    k->hdrs[i].value[0])
			md5_signed = true;
	if (k->body_len == 0)
		str_copy_fit(payload, SIGV4_EMPTY_SHA256, sizeof(payload));
	else if (c->unsigned_payload || md5_signed || k->source || k->body_proven)
		str_copy_fit(payload, SIGV4_UNSIGNED_PAYLOAD, sizeof(payload));
	else
		sha256_hex(k->body, k->body_len, payload);

	struct s3_run run = {c, k, payload};
	/* A body from a stream cannot be sent twice: one attempt, the caller
	 * starts the copy again. */
	struct retry_policy once = c->retry;
	once.max_attempts = 1;
	struct exec_call x = {
	    .client = "s3",
	    .name = c->name,
	    .op = k->op,
	    .what = what,
	    .retry = k->source ? &once : &c->retry,
	    .hooks = &s3_hooks,
	    .ctx = &run,
	};
	return exec_run(&x, resp, err);
}

static void etag_from_header(const struct http_resp *resp, char *etag_out);
static void written_from(const struct http_resp *resp, const char *etag, struct s3_written *out);

static int simple(struct s3_client *c, struct s3_call *k, struct dth_err *err)
{
	struct http_resp resp;
	http_resp_init(&resp);
	int rc = s3_do(c, k, &resp, err);
	http_resp_release(&resp);
	call_free(k);
	return rc;
}

/* As simple(), keeping what the answer says of the object written (out may be
 * NULL). */
static int simple_etag(struct s3_client *c, struct s3_call *k, struct s3_written *out,
		       struct dth_err *err)
{
	struct http_resp resp;
	http_resp_init(&resp);
	int rc = s3_do(c, k, &resp, err);
	if (rc == 0)
		written_from(&resp, NULL, out);
	http_resp_release(&resp);
	call_free(k);
	return rc;
}

/* -EPROTO unless a 2xx answer's document is of the kind expected. */
static int expect_doc(struct s3_call *k, const struct s3_xml_doc *doc, enum s3_xml_root root,
		      enum s3_xml_root alt_root, const char *element, struct dth_err *err)
{
	if (doc->root == root || (alt_root != S3_XML_UNKNOWN && doc->root == alt_root))
		return 0;
	char what[MSG_KEY_MAX + 64];
	describe(k, what, sizeof(what));
	return err_set(err, -EPROTO, "%s %s: no %s in the answer", k->op, what, element);
}

/* Run a copy call (CopyObject, UploadPartCopy) whose 2xx answer must be a
 * root document carrying the new ETag; releases doc and k. */
static int copy_result(struct s3_client *c, struct s3_call *k, struct s3_xml_doc *doc,
		       enum s3_xml_root root, enum s3_xml_root alt_root, const char *element,
		       struct s3_written *out, struct dth_err *err)
{
	struct http_resp resp;
	http_resp_init(&resp);
	int rc = s3_do(c, k, &resp, err);
	if (rc == 0)
		rc = expect_doc(k, doc, root, alt_root, element, err);
	if (rc == 0)
		written_from(&resp, doc->etag, out);
	s3_xml_doc_release(doc);
	http_resp_release(&resp);
	call_free(k);
	return rc;
}

static void add_param(struct buf *q, const char *name, const char *value)
{
	if (q->len)
		buf_addch(q, '&');
	buf_adds(q, name);
	if (value) {
		buf_addch(q, '=');
		uri_encode(q, value, strlen(value), false);
	}
}

static void add_put_headers(struct s3_call *k, const struct s3_put_opts *o, bool with_md5)
{
	if (!o)
		return;
	const struct s3_meta *m = o->meta;
	if (m) {
		call_hdr(k, "Content-Type", m->content_type);
		call_hdr(k, "Content-Encoding", m->content_encoding);
		call_hdr(k, "Content-Language", m->content_language);
		call_hdr(k, "Content-Disposition", m->content_disposition);
		call_hdr(k, "Cache-Control", m->cache_control);
		call_hdr(k, "Expires", m->expires);
		for (size_t i = 0; i < m->n_user; i++) {
			if (!m->user[i].name || !m->user[i].value)
				continue;
			struct buf n = BUF_INIT;
			buf_addf(&n, "x-amz-meta-%s", m->user[i].name);
			const char *name = call_own(k, buf_detach(&n, NULL));
			call_hdr(k, name, m->user[i].value);
		}
	}
	call_hdr(k, "x-amz-tagging", o->tagging);
	call_hdr(k, "x-amz-storage-class", o->storage_class);
	call_hdr(k, "x-amz-acl", o->acl);
	call_hdr(k, "x-amz-server-side-encryption", o->sse);
	call_hdr(k, "x-amz-server-side-encryption-aws-kms-key-id", o->sse_kms_key_id);
	if (with_md5)
		call_hdr(k, "Content-MD5", o->content_md5);
}

/* The object's ETag (etag, or the ETag header when etag is NULL or empty) and
 * whether it can be an MD5 of the bytes: not when the answer says the object
 * is stored with SSE-KMS or a customer key (a bucket's default encryption
 * does this without the request asking). */
static void written_from(const struct http_resp *r, const char *etag, struct s3_written *out)
{
	if (!out)
		return;
	memset(out, 0, sizeof(*out));
	if (etag && etag[0])
		str_copy_fit(out->etag, etag, sizeof(out->etag));
	else
		etag_from_header(r, out->etag);
	struct buf v = BUF_INIT;
	bool kms = http_resp_header(r, "x-amz-server-side-encryption", &v) == 0 &&
		   strncasecmp(buf_str(&v), "aws:kms", 7) == 0;
	buf_reset(&v);
	bool ssec = http_resp_header(r, "x-amz-server-side-encryption-customer-algorithm", &v) == 0;
	buf_release(&v);
	out->etag_is_digest = !kms && !ssec;
}

static void etag_from_header(const struct http_resp *r, char *etag_out)
{
	if (!etag_out)
		return;
	struct buf v = BUF_INIT;
	etag_out[0] = '\0';
	if (http_resp_header(r, "ETag", &v) == 0 && s3_xml_etag(v.data, v.len, etag_out) != 0)
		etag_out[0] = '\0';
	buf_release(&v);
}

static char *quoted(const char *etag)
{
	struct buf b = BUF_INIT;
	if (etag[0] == '"')
		buf_adds(&b, etag);
	else
		buf_addf(&b, "\"%s\"", etag);
	return buf_detach(&b, NULL);
}

/* "bucket/key" (encoded). No leading '/': AWS takes either form, but radosgw
 * 16 fails an UploadPartCopy whose source starts with one. */
static char *copy_source(const char *bucket, const char *key)
{
	struct buf b = BUF_INIT;
	uri_encode(&b, bucket, strlen(bucket), false);
	buf_addch(&b, '/');
	uri_encode(&b, key, strlen(key), true);
	return buf_detach(&b, NULL);
}

/* ---- buckets ------------------------------------------------------------- */

int s3_head_bucket(struct s3_client *c, const char *bucket, struct dth_err *err)
{
	if (c->local)
		return s3_local_check(c->local, err);
	struct s3_call k = {
	    .kind = S3_REQ_HEAD, .op = "HeadBucket", .method = "HEAD", .bucket = bucket};
	return simple(c, &k, err);
}

int s3_create_bucket(struct s3_client *c, const char *bucket, struct dth_err *err)
{
	struct s3_call k = {
	    .kind = S3_REQ_OTHER, .op = "CreateBucket", .method = "PUT", .bucket = bucket};
	struct buf body = BUF_INIT;
	if (strcmp(c->region, "us-east-1") != 0) {
		buf_adds(&body,
			 "<CreateBucketConfiguration xmlns=\"" S3_NS "\"><LocationConstraint>");
		s3_xml_escape(&body, c->region, strlen(c->region));
		buf_adds(&body, "</LocationConstraint></CreateBucketConfiguration>");
		k.body = body.data;
		k.body_len = body.len;
	}
	int rc = simple(c, &k, err);
	buf_release(&body);
	if (rc == -EEXIST && err && strcmp(err->remote_code, "BucketAlreadyExists") == 0)
		rc = err->code = -EACCES; /* somebody else's */
	return rc;
}

int s3_list_buckets(struct s3_client *c, int (*fn)(void *ctx, const char *name), void *ctx,
		    struct dth_err *err)
{
	if (c->local)
		return err_set(err, -ENOTSUP, "ListBuckets: a local directory has no buckets");
	struct s3_xml_doc doc;
	memset(&doc, 0, sizeof(doc));
	struct s3_call k = {.kind = S3_REQ_LIST, .op = "ListBuckets", .method = "GET", .doc = &doc};
	struct http_resp resp;
	http_resp_init(&resp);
	int rc = s3_do(c, &k, &resp, err);
	if (rc == 0)
		rc = expect_doc(&k, &doc, S3_XML_LIST_BUCKETS, S3_XML_UNKNOWN,
				"ListAllMyBucketsResult", err);
	for (size_t i = 0; rc == 0 && i < doc.n_items; i++)
		rc = fn(ctx, doc.items[i].key);
	s3_xml_doc_release(&doc);
	http_resp_release(&resp);
	call_free(&k);
	return rc;
}

/* ---- objects ------------------------------------------------------------- */

int s3_head_object(struct s3_client *c, const char *bucket, const char *key, unsigned part_number,
		   struct s3_object_head *out, struct dth_err *err)
{
	memset(out, 0, sizeof(*out));
	if (c->local && part_number == 0)
		return s3_local_head(c->local, key, out, err);
	char q[32] = "";
	if (part_number > 0)
		xsnprintf(q, sizeof(q), "partNumber=%u", part_number);
	struct s3_call k = {.kind = S3_REQ_HEAD,
			    .op = "HeadObject",
			    .method = "HEAD",
			    .bucket = bucket,
			    .key = key,
			    .query = q};
	struct http_resp resp;
	http_resp_init(&resp);
	int rc = s3_do(c, &k, &resp, err);
	if (rc == 0)
		fill_head(&resp, out);
	http_resp_release(&resp);
	call_free(&k);
	return rc;
}

struct get_sink {
	struct buf *out;
	size_t start;
	uint64_t got;
	uint64_t limit;		 /* 0: none */
	const struct s3_call *k; /* for messages */
};

/* The body is as long as the answer and the request say: a body cut short
 * under a matching Content-Length is garbled, and asked for again. */
static int get_check(void *ctx, const struct http_resp *resp, struct dth_err *err)
{
	struct get_sink *g = ctx;
	struct buf cl = BUF_INIT;
	uint64_t n = 0;
	bool have_len =
	    http_resp_header(resp, "Content-Length", &cl) == 0 && parse_u64(buf_str(&cl), &n) == 0;
	buf_release(&cl);
	if ((!have_len || g->got == n) && (!g->limit || g->got == g->limit))
		return 0;
	char what[MSG_KEY_MAX + 64];
	describe(g->k, what, sizeof(what));
	return err_set(err, -EIO, "GetObject %s: got %llu bytes, expected %llu", what,
		       (unsigned long long)g->got, (unsigned long long)(g->limit ? g->limit : n));
}

static int get_sink_fn(void *ctx, const void *data, size_t len)
{
	struct get_sink *g = ctx;
	if (g->limit && g->got + len > g->limit)
		return -EPROTO; /* more than asked for: the server ignored the range */
	buf_add(g->out, data, len);
	g->got += len;
	return 0;
}

static void get_sink_reset(void *ctx)
{
	struct get_sink *g = ctx;
	buf_setlen(g->out, g->start);
	g->got = 0;
}

/* One GetObject request (s3_get_object without the ranges). */
static int get_one(struct s3_client *c, const char *bucket, const char *key, uint64_t offset,
		   uint64_t length, const char *if_match, struct buf *out,
		   struct s3_object_head *head_out, struct dth_err *err)
{
	if (head_out)
		memset(head_out, 0, sizeof(*head_out));
	struct s3_call k = {
	    .kind = S3_REQ_GET, .op = "GetObject", .method = "GET", .bucket = bucket, .key = key};
	char range[64];
	if (length > 0) {
		if (offset + length < offset)
			return err_set(err, -EINVAL, "GetObject: range overflows");
		xsnprintf(range, sizeof(range), "bytes=%llu-%llu", (unsigned long long)offset,
			  (unsigned long long)(offset + length - 1));
		call_hdr(&k, "Range", range);
	} else if (offset > 0) {
		xsnprintf(range, sizeof(range), "bytes=%llu-", (unsigned long long)offset);
		call_hdr(&k, "Range", range);
	}
	if (if_match)
		call_hdr(&k, "If-Match", call_own(&k, quoted(if_match)));
	struct get_sink g = {out, out->len, 0, length, &k};
	k.sink = get_sink_fn;
	k.sink_ctx = &g;
	k.expect_len = (size_t)length;
	k.reset = get_sink_reset;
	k.check = get_check;

	struct http_resp resp;
	http_resp_init(&resp);
	int rc = s3_do(c, &k, &resp, err);
	if (rc == 0) {
		struct s3_object_head h;
		memset(&h, 0, sizeof(h));
		fill_head(&resp, &h);
		struct buf cl = BUF_INIT;
		bool have_len = http_resp_header(&resp, "Content-Length", &cl) == 0;
		buf_release(&cl);
		if (!have_len) {
			h.size = g.got;
			if (!h.total_size)
				h.total_size = g.got;
		}
		if (g.got != h.size || (length > 0 && g.got != length)) {
			char what[MSG_KEY_MAX + 64];
			describe(&k, what, sizeof(what));
			rc = err_set(err, -EIO, "GetObject %s: got %llu bytes, expected %llu", what,
				     (unsigned long long)g.got,
				     (unsigned long long)(length > 0 ? length : h.size));
			buf_setlen(out, g.start);
		} else if (offset > 0 && resp.status == 200) {
			char what[MSG_KEY_MAX + 64];
			describe(&k, what, sizeof(what));
			rc = err_set(err, -EIO, "GetObject %s: the server ignored the range", what);
			buf_setlen(out, g.start);
		}
		if (rc == 0 && head_out)
			*head_out = h;
		else
			s3_object_head_release(&h);
	} else {
		buf_setlen(out, g.start);
	}
	http_resp_release(&resp);
	call_free(&k);
	return rc;
}

/* Whether a read of length bytes is asked for in ranges, and how long each
 * is: the fewest equal ranges under get_range_max, in whole 4 KiB pages
 * where that still fits (the last range takes what is left). 0: one request. */
static uint64_t range_step(const struct s3_client *c, uint64_t length, const char *if_match)
{
	uint64_t max = c->get_range_max;
	if (!if_match || !max || length <= max)
		return 0;
	uint64_t n = length / max + (length % max != 0);
	uint64_t step = length / n + (length % n != 0);
	uint64_t paged = (step + 4095) & ~(uint64_t)4095;
	return paged <= max ? paged : step;
}

int s3_get_object(struct s3_client *c, const char *bucket, const char *key, uint64_t offset,
		  uint64_t length, const char *if_match, struct buf *out,
		  struct s3_object_head *head_out, struct dth_err *err)
{
	if (c->local)
		return s3_local_get(c->local, key, offset, length, if_match, out, head_out, err);
	uint64_t step = range_step(c, length, if_match);
	if (!step)
		return get_one(c, bucket, key, offset, length, if_match, out, head_out, err);
	if (offset + length < offset)
		return err_set(err, -EINVAL, "GetObject: range overflows");
	size_t start = out->len;
	int rc = 0;
	for (uint64_t done = 0; done < length && rc == 0; done += step) {
		uint64_t n = length - done < step ? length - done : step;
		rc = get_one(c, bucket, key, offset + done, n, if_match, out,
			     done ? NULL : head_out, err);
		if (rc && done && head_out) {
			s3_object_head_release(head_out);
			memset(head_out, 0, sizeof(*head_out));
		}
	}
	if (rc)
		buf_setlen(out, start);
	else if (head_out)
		head_out->size = length;
	return rc;
}

int s3_put_object(struct s3_client *c, const char *bucket, const char *key, const void *body,
		  size_t len, const struct s3_put_opts *opts, struct s3_written *out,
		  struct dth_err *err)
{
	if (out)
		memset(out, 0, sizeof(*out));
	struct s3_call k = {.kind = S3_REQ_PUT,
			    .op = "PutObject",
			    .method = "PUT",
			    .bucket = bucket,
			    .key = key,
			    .body = body ? body : "",
			    .body_len = len};
	add_put_headers(&k, opts, true);
	return simple_etag(c, &k, out, err);
}

/* A PUT whose body of len bytes comes from source: PutObject (query NULL,
 * opts) or UploadPart (query, content_md5). One attempt (see s3_do). */
static int put_from(struct s3_client *c, struct s3_call *k, uint64_t len, http_source_fn source,
		    void *source_ctx, struct s3_written *out, struct dth_err *err)
{
	if (out)
		memset(out, 0, sizeof(*out));
	if (len > SIZE_MAX) {
		call_free(k);
		return err_set(err, -EFBIG, "%s: %llu bytes", k->op, (unsigned long long)len);
	}
	k->body_len = (size_t)len;
	k->source = source;
	k->source_ctx = source_ctx;
	return simple_etag(c, k, out, err);
}

int s3_put_object_from(struct s3_client *c, const char *bucket, const char *key, uint64_t len,
		       http_source_fn source, void *source_ctx, const struct s3_put_opts *opts,
		       struct s3_written *out, struct dth_err *err)
{
	struct s3_call k = {
	    .kind = S3_REQ_PUT, .op = "PutObject", .method = "PUT", .bucket = bucket, .key = key};
	add_put_headers(&k, opts, true);
	return put_from(c, &k, len, source, source_ctx, out, err);
}

/* ---- streamed, resumed ranged GETs ---- */

struct resume {
	http_sink_fn sink;
	void *ctx;
	uint64_t offset, length;
	uint64_t got; /* bytes given to the sink, over every attempt */
	char range[64];
};

static int resume_sink(void *p, const void *data, size_t len)
{
	struct resume *r = p;
	if (len > r->length - r->got)
		return -EPROTO; /* more than asked for */
	int rc = r->sink(r->ctx, data, len);
	if (rc)
		return rc < 0 ? rc : -EIO;
	r->got += len;
	return 0;
}

/* An answer that ended before the range did (under a Content-Length that
 * matched it) is asked for again, from where it stopped. */
static int resume_check(void *p, const struct http_resp *resp, struct dth_err *err)
{
	(void)resp;
	struct resume *r = p;
	if (r->got == r->length)
		return 0;
	return err_set(err, -EIO, "GetObject: the answer stopped at byte %llu of %llu",
		       (unsigned long long)r->got, (unsigned long long)r->length);
}

/* Before each attempt: ask for what the sink has not had yet. */
static void resume_reset(void *p)
{
	struct resume *r = p;
	xsnprintf(r->range, sizeof(r->range), "bytes=%llu-%llu",
		  (unsigned long long)(r->offset + r->got),
		  (unsigned long long)(r->offset + r->length - 1));
}

/* One resumable GetObject request (s3_get_object_to without the ranges). */
static int get_to_one(struct s3_client *c, const char *bucket, const char *key, uint64_t offset,
		      uint64_t length, const char *if_match, http_sink_fn sink, void *sink_ctx,
		      struct dth_err *err)
{
	struct resume r = {sink, sink_ctx, offset, length, 0, ""};
	resume_reset(&r);
	struct s3_call k = {.kind = S3_REQ_GET,
			    .op = "GetObject",
			    .method = "GET",
			    .bucket = bucket,
			    .key = key,
			    .sink = resume_sink,
			    .sink_ctx = &r,
			    .reset = resume_reset,
			    .check = resume_check,
			    .expect_len = (size_t)(length < SIZE_MAX ? length : SIZE_MAX),
			    .want_partial = true};
	call_hdr(&k, "Range", r.range);
	if (if_match)
		call_hdr(&k, "If-Match", call_own(&k, quoted(if_match)));
	struct http_resp resp;
	http_resp_init(&resp);
	int rc = s3_do(c, &k, &resp, err);
	if (rc == 0 && r.got != length) {
		char what[MSG_KEY_MAX + 64];
		describe(&k, what, sizeof(what));
		rc = err_set(err, -EIO, "GetObject %s: got %llu bytes, expected %llu", what,
			     (unsigned long long)r.got, (unsigned long long)length);
	}
	http_resp_release(&resp);
	call_free(&k);
	return rc;
}

int s3_get_object_to(struct s3_client *c, const char *bucket, const char *key, uint64_t offset,
		     uint64_t length, const char *if_match, http_sink_fn sink, void *sink_ctx,
		     struct dth_err *err)
{
	if (length == 0 || offset + length < offset)
		return err_set(err, -EINVAL, "GetObject: empty or overflowing range");
	if (c->local)
		return s3_local_get_to(c->local, key, offset, length, if_match, sink, sink_ctx,
				       err);
	uint64_t step = range_step(c, length, if_match);
	if (!step)
		return get_to_one(c, bucket, key, offset, length, if_match, sink, sink_ctx, err);
	int rc = 0;
	for (uint64_t done = 0; done < length && rc == 0; done += step) {
		uint64_t n = length - done < step ? length - done : step;
		rc = get_to_one(c, bucket, key, offset + done, n, if_match, sink, sink_ctx, err);
	}
	return rc;
}

int s3_copy_object(struct s3_client *c, const char *dst_bucket, const char *dst_key,
		   const char *src_bucket, const char *src_key, const char *src_if_match,
		   const struct s3_put_opts *opts, struct s3_written *out, struct dth_err *err)
{
	if (out)
		memset(out, 0, sizeof(*out));
	struct s3_xml_doc doc;
	memset(&doc, 0, sizeof(doc));
	struct s3_call k = {.kind = S3_REQ_COPY,
			    .op = "CopyObject",
			    .method = "PUT",
			    .bucket = dst_bucket,
			    .key = dst_key,
			    .doc = &doc};
	call_hdr(&k, "x-amz-copy-source", call_own(&k, copy_source(src_bucket, src_key)));
	if (src_if_match) {
		const char *q = call_own(&k, quoted(src_if_match));
		call_hdr(&k, "x-amz-copy-source-if-match", q);
		/* Ceph radosgw (16 and older) reads the precondition of CopyObject from
		 * this older name only; other servers ignore it. */
		call_hdr(&k, "x-amz-copy-if-match", q);
	}
	bool replace = opts && opts->meta;
	call_hdr(&k, "x-amz-metadata-directive", replace ? "REPLACE" : "COPY");
	if (opts && opts->tagging)
		call_hdr(&k, "x-amz-tagging-directive", "REPLACE");
	if (opts) {
		struct s3_put_opts o = *opts;
		o.content_md5 = NULL;
		add_put_headers(&k, &o, false);
	}
	return copy_result(c, &k, &doc, S3_XML_COPY_OBJECT, S3_XML_UNKNOWN, "CopyObjectResult", out,
			   err);
}

int s3_delete_object(struct s3_client *c, const char *bucket, const char *key, struct dth_err *err)
{
	struct s3_call k = {.kind = S3_REQ_DELETE,
			    .op = "DeleteObject",
			    .method = "DELETE",
			    .bucket = bucket,
			    .key = key};
	int rc = simple(c, &k, err);
	if (rc == -ENOENT && err && strcmp(err->remote_code, "NoSuchBucket") != 0) {
		err_clear(err);
		rc = 0;
	}
	return rc;
}

/* ---- tagging ------------------------------------------------------------- */

int s3_get_tagging(struct s3_client *c, const char *bucket, const char *key, struct s3_tags *out,
		   struct dth_err *err)
{
	out->tags = NULL;
	out->n = 0;
	if (c->local)
		return 0; /* files carry no tags */
	struct s3_xml_doc doc;
	memset(&doc, 0, sizeof(doc));
	struct s3_call k = {.kind = S3_REQ_GET,
			    .op = "GetObjectTagging",
			    .method = "GET",
			    .bucket = bucket,
			    .key = key,
			    .query = "tagging",
			    .doc = &doc,
			    /* Ceph 16 answers an empty 200 for an object whose multipart
			     * upload carried x-amz-tagging: no tags it can tell */
			    .empty_ok = true};
	struct http_resp resp;
	http_resp_init(&resp);
	int rc = s3_do(c, &k, &resp, err);
	if (rc == 0 && resp.body.len == 0)
		log_debug("s3: GetObjectTagging %s: an empty answer, taken as no tags", key);
	else if (rc == 0)
		rc = expect_doc(&k, &doc, S3_XML_TAGGING, S3_XML_UNKNOWN, "Tagging", err);
	if (rc == 0 && doc.n_items) {
		out->tags = xcalloc(doc.n_items, sizeof(*out->tags));
		for (size_t i = 0; i < doc.n_items; i++) {
			out->tags[i].name = doc.items[i].key;
			out->tags[i].value = doc.items[i].value;
			doc.items[i].key = doc.items[i].value = NULL;
		}
		out->n = doc.n_items;
	}
	s3_xml_doc_release(&doc);
	http_resp_release(&resp);
	call_free(&k);
	return rc;
}

int s3_put_tagging(struct s3_client *c, const char *bucket, const char *key,
		   const struct s3_tags *tags, struct dth_err *err)
{
	struct buf body = BUF_INIT;
	buf_adds(&body, "<Tagging xmlns=\"" S3_NS "\"><TagSet>");
	for (size_t i = 0; tags && i < tags->n; i++) {
		const char *n = tags->tags[i].name ? tags->tags[i].name : "";
		const char *v = tags->tags[i].value ? tags->tags[i].value : "";
		buf_adds(&body, "<Tag><Key>");
		s3_xml_escape(&body, n, strlen(n));
		buf_adds(&body, "</Key><Value>");
		s3_xml_escape(&body, v, strlen(v));
		buf_adds(&body, "</Value></Tag>");
	}
	buf_adds(&body, "</TagSet></Tagging>");
	char md5[25];
	md5_base64(body.data, body.len, md5);
	struct s3_call k = {.kind = S3_REQ_PUT,
			    .op = "PutObjectTagging",
			    .method = "PUT",
			    .bucket = bucket,
			    .key = key,
			    .query = "tagging",
			    .body = body.data,
			    .body_len = body.len};
	call_hdr(&k, "Content-MD5", md5);
	call_hdr(&k, "Content-Type", "application/xml");
	int rc = simple(c, &k, err);
	buf_release(&body);
	return rc;
}

/* ---- multipart ----------------------------------------------------------- */

int s3_mpu_create(struct s3_client *c, const char *bucket, const char *key,
		  const struct s3_put_opts *opts, struct buf *upload_id, struct dth_err *err)
{
	struct s3_xml_doc doc;
	memset(&doc, 0, sizeof(doc));
	struct s3_call k = {.kind = S3_REQ_MULTIPART,
			    .op = "CreateMultipartUpload",
			    .method = "POST",
			    .bucket = bucket,
			    .key = key,
			    .query = "uploads",
			    .doc = &doc};
	add_put_headers(&k, opts, false);
	struct http_resp resp;
	http_resp_init(&resp);
	int rc = s3_do(c, &k, &resp, err);
	if (rc == 0) {
		if (!doc.upload_id || !doc.upload_id[0])
			doc.root = S3_XML_UNKNOWN; /* an answer without an id is no answer */
		rc = expect_doc(&k, &doc, S3_XML_INITIATE_MPU, S3_XML_UNKNOWN, "UploadId", err);
		if (!rc) {
			buf_adds(upload_id, doc.upload_id);
		}
	}
	s3_xml_doc_release(&doc);
	http_resp_release(&resp);
	call_free(&k);
	return rc;
}

static char *part_query(unsigned part_number, const char *upload_id)
{
	struct buf q = BUF_INIT;
	buf_addf(&q, "partNumber=%u", part_number);
	add_param(&q, "uploadId", upload_id);
	return buf_detach(&q, NULL);
}

int s3_mpu_upload_part(struct s3_client *c, const char *bucket, const char *key,
		       const char *upload_id, unsigned part_number, const void *body, size_t len,
		       const char *content_md5, bool body_proven, struct s3_written *out,
		       struct dth_err *err)
{
	if (out)
		memset(out, 0, sizeof(*out));
	struct s3_call k = {.kind = S3_REQ_MULTIPART,
			    .op = "UploadPart",
			    .method = "PUT",
			    .bucket = bucket,
			    .key = key,
			    .body = body ? body : "",
			    .body_len = len,
			    .body_proven = body_proven};
	k.query = call_own(&k, part_query(part_number, upload_id));
	call_hdr(&k, "Content-MD5", content_md5);
	return simple_etag(c, &k, out, err);
}

int s3_mpu_upload_part_from(struct s3_client *c, const char *bucket, const char *key,
			    const char *upload_id, unsigned part_number, uint64_t len,
			    http_source_fn source, void *source_ctx, const char *content_md5,
			    struct s3_written *out, struct dth_err *err)
{
	struct s3_call k = {.kind = S3_REQ_MULTIPART,
			    .op = "UploadPart",
			    .method = "PUT",
			    .bucket = bucket,
			    .key = key};
	k.query = call_own(&k, part_query(part_number, upload_id));
	call_hdr(&k, "Content-MD5", content_md5);
	return put_from(c, &k, len, source, source_ctx, out, err);
}

int s3_mpu_upload_part_copy(struct s3_client *c, const char *bucket, const char *key,
			    const char *upload_id, unsigned part_number, const char *src_bucket,
			    const char *src_key, uint64_t offset, uint64_t length,
			    const char *src_if_match, struct s3_written *out, struct dth_err *err)
{
	if (out)
		memset(out, 0, sizeof(*out));
	if (length == 0 || offset + length < offset)
		return err_set(err, -EINVAL, "UploadPartCopy: empty or overflowing range");
	struct s3_xml_doc doc;
	memset(&doc, 0, sizeof(doc));
	struct s3_call k = {.kind = S3_REQ_COPY,
			    .op = "UploadPartCopy",
			    .method = "PUT",
			    .bucket = bucket,
			    .key = key,
			    .doc = &doc};
	k.query = call_own(&k, part_query(part_number, upload_id));
	call_hdr(&k, "x-amz-copy-source", call_own(&k, copy_source(src_bucket, src_key)));
	char range[64];
	xsnprintf(range, sizeof(range), "bytes=%llu-%llu", (unsigned long long)offset,
		  (unsigned long long)(offset + length - 1));
	call_hdr(&k, "x-amz-copy-source-range", range);
	if (src_if_match)
		call_hdr(&k, "x-amz-copy-source-if-match", call_own(&k, quoted(src_if_match)));
	return copy_result(c, &k, &doc, S3_XML_COPY_PART, S3_XML_COPY_OBJECT, "CopyPartResult", out,
			   err);
}

/* The ETag S3 gives a multipart object: MD5 of the parts' binary MD5s, "-N".
 * Used when the server leaves the ETag out of its answer (radosgw 16 sends an
 * empty one); "" when a part's ETag is not a plain MD5. */
static void multipart_etag(const struct s3_part *parts, size_t n, char *out)
{
	out[0] = '\0';
	if (n == 0)
		return;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (!ctx || EVP_DigestInit_ex(ctx, EVP_md5(), NULL) != 1)
		goto cleanup;
	for (size_t i = 0; i < n; i++) {
		unsigned char md[16];
		unsigned parts_of_part = 0;
		if (!s3_etag_parse(parts[i].etag, &parts_of_part) || parts_of_part != 0 ||
		    hex_decode(parts[i].etag, 32, md, sizeof(md)) != 16)
			goto cleanup;
		EVP_DigestUpdate(ctx, md, sizeof(md));
	}
	unsigned char sum[16];
	unsigned int len = 0;
	if (EVP_DigestFinal_ex(ctx, sum, &len) != 1)
		goto cleanup;
	hex_encode(sum, 16, out);
	xsnprintf(out + 32, S3_ETAG_MAX - 32, "-%zu", n);
cleanup:
	EVP_MD_CTX_free(ctx);
}

int s3_mpu_complete(struct s3_client *c, const char *bucket, const char *key, const char *upload_id,
		    const struct s3_part *parts, size_t n, struct s3_written *out,
		    struct dth_err *err)
{
	if (out)
		memset(out, 0, sizeof(*out));
	struct buf body = BUF_INIT;
	buf_adds(&body, "<CompleteMultipartUpload xmlns=\"" S3_NS "\">");
	for (size_t i = 0; i < n; i++) {
		buf_addf(&body, "<Part><PartNumber>%u</PartNumber><ETag>&quot;", parts[i].number);
		s3_xml_escape(&body, parts[i].etag, strlen(parts[i].etag));
		buf_adds(&body, "&quot;</ETag></Part>");
	}
	buf_adds(&body, "</CompleteMultipartUpload>");
	struct s3_xml_doc doc;
	memset(&doc, 0, sizeof(doc));
	struct s3_call k = {.kind = S3_REQ_MULTIPART,
			    .op = "CompleteMultipartUpload",
			    .method = "POST",
			    .bucket = bucket,
			    .key = key,
			    .body = body.data,
			    .body_len = body.len,
			    .doc = &doc};
	struct buf q = BUF_INIT;
	add_param(&q, "uploadId", upload_id);
	k.query = call_own(&k, buf_detach(&q, NULL));
	call_hdr(&k, "Content-Type", "application/xml");
	struct http_resp resp;
	http_resp_init(&resp);
	int rc = s3_do(c, &k, &resp, err);
	if (rc == 0) {
		rc = expect_doc(&k, &doc, S3_XML_COMPLETE_MPU, S3_XML_UNKNOWN,
				"CompleteMultipartUploadResult", err);
		if (!rc && out) {
			written_from(&resp, doc.etag, out);
			/* Ceph 16 answers without one: the parts' own ETags (each the
			 * server's MD5 of the part it stored) give it. */
			if (!out->etag[0])
				multipart_etag(parts, n, out->etag);
		}
	}
	s3_xml_doc_release(&doc);
	http_resp_release(&resp);
	call_free(&k);
	buf_release(&body);
	return rc;
}

int s3_mpu_abort(struct s3_client *c, const char *bucket, const char *key, const char *upload_id,
		 struct dth_err *err)
{
	struct s3_call k = {.kind = S3_REQ_MULTIPART,
			    .op = "AbortMultipartUpload",
			    .method = "DELETE",
			    .bucket = bucket,
			    .key = key};
	struct buf q = BUF_INIT;
	add_param(&q, "uploadId", upload_id);
	k.query = call_own(&k, buf_detach(&q, NULL));
	return simple(c, &k, err);
}

int s3_mpu_list_parts(struct s3_client *c, const char *bucket, const char *key,
		      const char *upload_id, int (*fn)(void *ctx, const struct s3_part *p),
		      void *ctx, struct dth_err *err)
{
	char *marker = NULL;
	int rc = 0;
	for (;;) {
		struct s3_xml_doc doc;
		memset(&doc, 0, sizeof(doc));
		struct s3_call k = {.kind = S3_REQ_LIST,
				    .op = "ListParts",
				    .method = "GET",
				    .bucket = bucket,
				    .key = key,
				    .doc = &doc};
		struct buf q = BUF_INIT;
		add_param(&q, "max-parts", "1000");
		if (marker)
			add_param(&q, "part-number-marker", marker);
		add_param(&q, "uploadId", upload_id);
		k.query = call_own(&k, buf_detach(&q, NULL));
		struct http_resp resp;
		http_resp_init(&resp);
		rc = s3_do(c, &k, &resp, err);
		char what[MSG_KEY_MAX + 64];
		describe(&k, what, sizeof(what));
		http_resp_release(&resp);
		call_free(&k);
		if (rc == 0 && doc.root != S3_XML_LIST_PARTS)
			rc = err_set(err, -EPROTO, "ListParts %s: no ListPartsResult in the answer",
				     what);
		for (size_t i = 0; rc == 0 && i < doc.n_items; i++) {
			struct s3_part p;
			memset(&p, 0, sizeof(p));
			p.number = doc.items[i].part_number;
			p.size = doc.items[i].size;
			str_copy_fit(p.etag, doc.items[i].etag, sizeof(p.etag));
			rc = fn(ctx, &p);
		}
		if (rc == 0 && !doc.has_truncated)
			rc = err_set(err, -EPROTO, "ListParts %s: the answer has no IsTruncated",
				     what);
		bool more = rc == 0 && doc.is_truncated;
		if (more) {
			if (!doc.next_marker || !doc.next_marker[0] ||
			    (marker && strcmp(marker, doc.next_marker) == 0)) {
				rc = err_set(err, -EPROTO,
					     "ListParts %s: truncated answer without a new marker",
					     what);
				more = false;
			} else {
				free(marker);
				marker = xstrdup(doc.next_marker);
			}
		}
		s3_xml_doc_release(&doc);
		if (!more)
			break;
	}
	free(marker);
	return rc;
}

int s3_mpu_list_uploads(struct s3_client *c, const char *bucket, const char *prefix,
			int (*fn)(void *ctx, const struct s3_upload *u), void *ctx,
			struct dth_err *err)
{
	char *key_marker = NULL, *id_marker = NULL;
	int rc = 0;
	for (;;) {
		struct s3_xml_doc doc;
		memset(&doc, 0, sizeof(doc));
		struct s3_call k = {.kind = S3_REQ_LIST,
				    .op = "ListMultipartUploads",
				    .method = "GET",
				    .bucket = bucket,
				    .doc = &doc};
		struct buf q = BUF_INIT;
		/* No encoding-type=url here: radosgw 16 then encodes the keys but not
		 * NextKeyMarker and does not say so with an EncodingType element. */
		add_param(&q, "uploads", NULL);
		if (prefix && *prefix)
			add_param(&q, "prefix", prefix);
		if (key_marker)
			add_param(&q, "key-marker", key_marker);
		if (id_marker)
			add_param(&q, "upload-id-marker", id_marker);
		k.query = call_own(&k, buf_detach(&q, NULL));
		struct http_resp resp;
		http_resp_init(&resp);
		rc = s3_do(c, &k, &resp, err);
		char what[MSG_KEY_MAX + 64];
		describe(&k, what, sizeof(what));
		http_resp_release(&resp);
		call_free(&k);
		if (rc == 0 && doc.root != S3_XML_LIST_UPLOADS)
			rc = err_set(err, -EPROTO,
				     "ListMultipartUploads %s: no ListMultipartUploadsResult in "
				     "the answer",
				     what);
		for (size_t i = 0; rc == 0 && i < doc.n_items; i++) {
			struct s3_upload u = {doc.items[i].key, doc.items[i].value,
					      doc.items[i].time};
			rc = fn(ctx, &u);
		}
		if (rc == 0 && !doc.has_truncated)
			rc =
			    err_set(err, -EPROTO,
				    "ListMultipartUploads %s: the answer has no IsTruncated", what);
		bool more = rc == 0 && doc.is_truncated;
		if (more) {
			bool same = key_marker && doc.next_marker &&
				    strcmp(key_marker, doc.next_marker) == 0 && id_marker &&
				    doc.next_upload_id_marker &&
				    strcmp(id_marker, doc.next_upload_id_marker) == 0;
			if (!doc.next_marker || same) {
				rc = err_set(err, -EPROTO,
					     "ListMultipartUploads %s: truncated answer without a "
					     "new marker",
					     what);
				more = false;
			} else {
				free(key_marker);
				free(id_marker);
				key_marker = xstrdup(doc.next_marker);
				id_marker = doc.next_upload_id_marker
						? xstrdup(doc.next_upload_id_marker)
						: NULL;
			}
		}
		s3_xml_doc_release(&doc);
		if (!more)
			break;
	}
	free(key_marker);
	free(id_marker);
	return rc;
}

/* ---- listing ------------------------------------------------------------- */

/* Pages are checked whole before any of their entries is handed out: every
 * key in ascending byte order, after the last key of the previous pages (or
 * start-after), under the prefix; IsTruncated present; a continuation token
 * that is new. A caller (the planner, which may delete what a listing does not
 * show) therefore never acts on part of a listing that turns out to be wrong. */

#define LIST_EMPTY_PAGES_MAX 100 /* truncated pages in a row without an entry */

struct s3_lister {
	struct s3_client *c;
	char *bucket;
	char *prefix, *delimiter, *start_after, *end_before;
	unsigned max_keys;
	struct s3_xml *parser; /* the page being fetched */
	struct s3_xml_doc page;
	size_t ci, pi;	 /* next content, next prefix */
	char *token;	 /* continuation token for the next page */
	struct buf last; /* the greatest key seen so far (or start-after) */
	bool have_last;
	unsigned empty_run; /* truncated pages in a row without entries */
	bool fetched;	    /* at least one page fetched */
	bool done;
	int failed;		 /* a page failed: every later call returns this */
	struct dth_err fail_err; /* ... with this message */
	struct s3_list_entry cur;
	struct s3_local_lister *local; /* the listing of a local directory */
};

struct s3_lister *s3_lister_new(struct s3_client *c, const char *bucket,
				const struct s3_list_opts *opts)
{
	struct s3_lister *l = xcalloc(1, sizeof(*l));
	l->c = c;
	if (c->local)
		l->local = s3_local_lister_new(c->local, opts);
	l->bucket = xstrdup(bucket);
	buf_init(&l->last);
	if (opts) {
		l->prefix = dup_or_null(opts->prefix);
		l->delimiter = dup_or_null(opts->delimiter);
		l->start_after = dup_or_null(opts->start_after);
		l->end_before = dup_or_null(opts->end_before);
		l->max_keys = opts->max_keys;
	}
	if (l->max_keys == 0)
		l->max_keys = LIST_PAGE_SIZE;
	if (l->start_after && *l->start_after) {
		buf_adds(&l->last, l->start_after);
		l->have_last = true;
	}
	return l;
}

void s3_lister_free(struct s3_lister *l)
{
	if (!l)
		return;
	s3_local_lister_free(l->local);
	s3_xml_free(l->parser);
	s3_xml_doc_release(&l->page);
	free(l->bucket);
	free(l->prefix);
	free(l->delimiter);
	free(l->start_after);
	free(l->end_before);
	free(l->token);
	buf_release(&l->last);
	free(l);
}

static void lister_reset(void *ctx)
{
	struct s3_lister *l = ctx;
	s3_xml_free(l->parser);
	l->parser = s3_xml_new();
}

/* A parse error is kept by the parser and reported by lister_check once the
 * answer is in: a page that does not parse (cut short, say) is asked for
 * again. */
static int lister_sink(void *ctx, const void *data, size_t len)
{
	struct s3_lister *l = ctx;
	int rc = s3_xml_feed(l->parser, data, len);
	(void)rc;
	return 0;
}

static int lister_check(void *ctx, const struct http_resp *resp, struct dth_err *err)
{
	(void)resp;
	struct s3_lister *l = ctx;
	if (s3_xml_finish(l->parser) == 0)
		return 0;
	return err_set(err, -EPROTO, "ListObjectsV2 s3://%s: bad answer: %s", l->bucket,
		       s3_xml_message(l->parser));
}

/* A key for a message: at most 100 bytes, control bytes as '?', quoted. */
static void show_key(struct buf *out, const char *key, size_t len)
{
	size_t n = len > 100 ? 100 : len;
	buf_addch(out, '"');
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)key[i];
		buf_addch(out, ch < 0x20 || ch == 0x7f ? '?' : (char)ch);
	}
	buf_addch(out, '"');
	if (n < len)
		buf_addf(out, "...(%zu bytes)", len);
}

/* The next entry of the page in listing order (contents and common prefixes
 * merged), advancing *ci / *pi; NULL at the end of the page. */
static const struct s3_xml_item *page_next(const struct s3_xml_doc *p, size_t *ci, size_t *pi)
{
	bool hc = *ci < p->n_items, hp = *pi < p->n_prefixes;
	if (!hc && !hp)
		return NULL;
	const struct s3_xml_item *a = hc ? &p->items[*ci] : NULL;
	const struct s3_xml_item *b = hp ? &p->prefixes[*pi] : NULL;
	if (a && (!b || bytes_order(a->key, a->key_len, b->key, b->key_len) <= 0)) {
		(*ci)++;
		return a;
	}
	(*pi)++;
	return b;
}

/* Check a fetched page whole (see the note above); on success l->last is the
 * page's greatest key. */
static int check_page(struct s3_lister *l, const char *what, struct dth_err *err)
{
	const struct s3_xml_doc *p = &l->page;
	size_t ci = 0, pi = 0, plen = l->prefix ? strlen(l->prefix) : 0;
	const char *prev = l->have_last ? l->last.data : NULL;
	size_t prev_len = l->last.len;
	const struct s3_xml_item *it;
	struct buf m = BUF_INIT;
	int rc = 0;
	while ((it = page_next(p, &ci, &pi))) {
		if (plen && (it->key_len < plen || memcmp(it->key, l->prefix, plen) != 0)) {
			buf_adds(&m, "a key outside the prefix: ");
			show_key(&m, it->key, it->key_len);
			break;
		}
		if (prev && bytes_order(it->key, it->key_len, prev, prev_len) <= 0) {
			buf_adds(&m, "keys not in ascending byte order: ");
			show_key(&m, it->key, it->key_len);
			buf_adds(&m, " after ");
			show_key(&m, prev, prev_len);
			break;
		}
		prev = it->key;
		prev_len = it->key_len;
	}
	if (m.len)
		rc = err_set(err, -EPROTO, "ListObjectsV2 %s: %s: refusing the listing", what,
			     buf_str(&m));
	else if (prev && prev != l->last.data) {
		buf_reset(&l->last);
		buf_add(&l->last, prev, prev_len);
		l->have_last = true;
	}
	buf_release(&m);
	return rc;
}

/* Paging: IsTruncated required, a continuation token that is new, and no
 * endless run of empty pages. Sets l->token for the next page. */
static int check_paging(struct s3_lister *l, const char *what, struct dth_err *err)
{
	const struct s3_xml_doc *p = &l->page;
	if (!p->has_truncated)
		return err_set(err, -EPROTO,
			       "ListObjectsV2 %s: the answer has no IsTruncated, so it does not "
			       "say whether the listing is complete: refusing it",
			       what);
	if (!p->is_truncated) {
		free(l->token);
		l->token = NULL;
		return 0;
	}
	if (!p->next_marker || !p->next_marker[0])
		return err_set(err, -EPROTO,
			       "ListObjectsV2 %s: truncated answer without a continuation token",
			       what);
	if (l->token && strcmp(l->token, p->next_marker) == 0)
		return err_set(err, -EPROTO,
			       "ListObjectsV2 %s: the server sent the same continuation token "
			       "again (the listing would not end)",
			       what);
	l->empty_run = p->n_items + p->n_prefixes ? 0 : l->empty_run + 1;
	if (l->empty_run > LIST_EMPTY_PAGES_MAX)
		return err_set(err, -EPROTO,
			       "ListObjectsV2 %s: %u truncated pages in a row without a key (the "
			       "listing makes no progress)",
			       what, l->empty_run);
	free(l->token);
	l->token = xstrdup(p->next_marker);
	return 0;
}

/* The query of the next page. */
static char *list_query(const struct s3_lister *l)
{
	struct buf q = BUF_INIT;
	char mk[16];
	xsnprintf(mk, sizeof(mk), "%u", l->max_keys);
	add_param(&q, "list-type", "2");
	add_param(&q, "encoding-type", "url");
	add_param(&q, "max-keys", mk);
	if (l->prefix && *l->prefix)
		add_param(&q, "prefix", l->prefix);
	if (l->delimiter && *l->delimiter)
		add_param(&q, "delimiter", l->delimiter);
	if (l->token)
		add_param(&q, "continuation-token", l->token);
	else if (l->start_after && *l->start_after)
		add_param(&q, "start-after", l->start_after);
	return buf_detach(&q, NULL);
}

static int lister_fetch(struct s3_lister *l, struct dth_err *err)
{
	s3_xml_doc_release(&l->page);
	l->ci = l->pi = 0;
	struct s3_call k = {
	    .kind = S3_REQ_LIST, .op = "ListObjectsV2", .method = "GET", .bucket = l->bucket};
	k.query = call_own(&k, list_query(l));
	k.sink = lister_sink;
	k.sink_ctx = l;
	k.reset = lister_reset;
	k.check = lister_check;

	struct http_resp resp;
	http_resp_init(&resp);
	int rc = s3_do(l->c, &k, &resp, err);
	char what[MSG_KEY_MAX + 64];
	describe(&k, what, sizeof(what));
	http_resp_release(&resp);
	call_free(&k);
	if (rc == 0) { /* lister_check finished the parse */
		s3_xml_take(l->parser, &l->page);
		if (l->page.root != S3_XML_LIST_BUCKET)
			rc = err_set(err, -EPROTO,
				     "ListObjectsV2 %s: no ListBucketResult in the "
				     "answer",
				     what);
	}
	s3_xml_free(l->parser);
	l->parser = NULL;
	if (rc == 0)
		rc = check_paging(l, what, err);
	if (rc == 0)
		rc = check_page(l, what, err);
	if (rc != 0) {
		/* A failed listing stays failed: nothing after it is trusted. */
		s3_xml_doc_release(&l->page);
		l->failed = rc;
		if (err)
			l->fail_err = *err;
		return rc;
	}
	l->fetched = true;
	return 0;
}

int s3_lister_next(struct s3_lister *l, const struct s3_list_entry **e, struct dth_err *err)
{
	*e = NULL;
	if (l->local) {
		struct dth_err tmp;
		int rc = s3_local_lister_next(l->local, &l->cur, err ? err : &tmp);
		if (rc == 1)
			*e = &l->cur;
		return rc;
	}
	for (;;) {
		if (l->failed) {
			if (err)
				*err = l->fail_err;
			return l->failed;
		}
		if (l->done)
			return 0;
		const struct s3_xml_item *it = page_next(&l->page, &l->ci, &l->pi);
		if (!it) {
			if (l->fetched && !l->token) {
				l->done = true;
				return 0;
			}
			int rc = lister_fetch(l, err);
			if (rc != 0)
				return rc;
			continue;
		}
		if (l->end_before &&
		    bytes_order(it->key, it->key_len, l->end_before, strlen(l->end_before)) >= 0) {
			l->done = true;
			s3_xml_doc_release(&l->page);
			return 0;
		}
		memset(&l->cur, 0, sizeof(l->cur));
		l->cur.key = it->key;
		l->cur.key_len = it->key_len;
		l->cur.size = it->size;
		str_copy_fit(l->cur.etag, it->etag, sizeof(l->cur.etag));
		l->cur.last_modified = it->time;
		l->cur.is_prefix = it->is_prefix;
		str_copy_fit(l->cur.storage_class, it->storage_class, sizeof(l->cur.storage_class));
		l->cur.page_last =
		    l->token && l->ci >= l->page.n_items && l->pi >= l->page.n_prefixes;
		*e = &l->cur;
		return 1;
	}
}

/* ---- presign ------------------------------------------------------------- */

int s3_presign_get(struct s3_client *c, const char *bucket, const char *key, unsigned expires,
		   struct buf *out, struct dth_err *err)
{
	struct buf host = BUF_INIT, path = BUF_INIT, q = BUF_INIT, base_q = BUF_INIT;
	struct creds_value cv;
	int rc = 0;
	memset(&cv, 0, sizeof(cv));
	if (c->local)
		return err_set(err, -ENOTSUP, "presign: a local directory has no URLs");
	if (expires == 0 || expires > 604800)
		return err_set(err, -EINVAL, "presign: expiry must be 1..604800 seconds");
	if (c->creds) {
		rc = creds_provider_get(c->creds, &cv, err);
		if (rc != 0)
			goto cleanup;
	}
	build_target(c, bucket, key, &host, &path);
	if (c->requester_pays)
		add_param(&base_q, "x-amz-request-payer", "requester");
	buf_addf(out, "%s://%s%s", c->scheme, buf_str(&host), buf_str(&path));
	if (!c->creds || cv.anonymous || !cv.access_key_id[0]) {
		if (base_q.len)
			buf_addf(out, "?%s", buf_str(&base_q));
		goto cleanup;
	}
	struct sigv4_header sh[1] = {{"host", buf_str(&host)}};
	struct sigv4_input in = {
	    .method = "GET",
	    .path = buf_str(&path),
	    .query = base_q.len ? buf_str(&base_q) : NULL,
	    .headers = sh,
	    .n_headers = 1,
	    .payload_hash = SIGV4_UNSIGNED_PAYLOAD,
	    .region = c->region,
	    .service = "s3",
	    .when = time(NULL) + (time_t)atomic_load(&c->clock_skew),
	    .normalize_path = false,
	};
	struct sigv4_creds sc = {cv.access_key_id, cv.secret_access_key, cv.session_token};
	rc = sigv4_presign(&in, &sc, expires, &q);
	if (rc != 0) {
		rc = err_set(err, rc, "presign: cannot sign the request");
		goto cleanup;
	}
	buf_addf(out, "?%s", buf_str(&q));
cleanup:
	explicit_bzero(&cv, sizeof(cv)); /* a memset here could be dropped */
	buf_release(&host);
	buf_release(&path);
	buf_release(&q);
	buf_release(&base_q);
	return rc;
}
