/* AWS JSON-protocol client (awsapi.h). The client is immutable after
 * awsapi_new but for clock_skew, which any thread may update: every
 * attempt reads it once and signs with that. */
#include "common/compat.h"

#include "remote/awsapi.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/secret.h"
#include "common/uri.h"
#include "remote/creds.h"
#include "remote/exec.h"
#include "remote/http.h"
#include "remote/sigv4.h"

#define JSON_BODY_MAX  (16u * 1024 * 1024) /* a 2xx JSON answer we collect */
#define REMOTE_MSG_MAX 300
#define FORM_TYPE                                                                                  \
	"application/x-www-form-urlencoded; charset=utf-8" /* bytes of the service's message kept  \
							      in err */

struct awsapi {
	char *name;
	char *client;
	char *service;
	char *target_prefix;
	char *content_type; /* "application/x-amz-json-<version>" */
	char *region;
	char *endpoint; /* without a trailing '/' */
	char *scheme;	/* "http" | "https" */
	char *hostport; /* "host[:port]" */
	char *path;	/* request path: endpoint's path prefix + "/" */
	struct creds_provider *creds;
	struct http_engine *http;
	struct retry_policy retry;
	_Atomic int64_t clock_skew; /* server time - local time, seconds */
};

/* ---- client -------------------------------------------------------------- */

/* Split "scheme://host[:port][/path]" into c's scheme (lower-cased),
 * hostport, path and endpoint. -EINVAL unless http(s) with a host. */
static int parse_endpoint(struct awsapi *c, const char *e)
{
	const char *sep = strstr(e, "://");
	if (!sep || sep == e)
		return -EINVAL;
	c->scheme = xstrndup(e, (size_t)(sep - e));
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
	struct buf p = BUF_INIT;
	buf_add(&p, path, pl);
	buf_addch(&p, '/');
	c->path = buf_detach(&p, NULL);
	c->endpoint = xstrndup(e, (size_t)(host - e) + hl + pl);
	if ((strcmp(c->scheme, "http") != 0 && strcmp(c->scheme, "https") != 0) || !*c->hostport)
		return -EINVAL;
	return 0;
}

static bool set(const char *s)
{
	return s && *s;
}

struct awsapi *awsapi_new(const struct awsapi_config *cfg)
{
	if (!cfg || !cfg->http || !set(cfg->client) || !set(cfg->service) || !set(cfg->region) ||
	    !set(cfg->endpoint))
		return NULL;
	struct awsapi *c = xcalloc(1, sizeof(*c));
	if (parse_endpoint(c, cfg->endpoint) != 0) {
		awsapi_free(c);
		return NULL;
	}
	c->name = xstrdup(cfg->name ? cfg->name : c->endpoint);
	c->client = xstrdup(cfg->client);
	c->service = xstrdup(cfg->service);
	c->target_prefix = xstrdup(cfg->target_prefix ? cfg->target_prefix : "");
	struct buf ct = BUF_INIT;
	buf_addf(&ct, "application/x-amz-json-%s",
		 set(cfg->json_version) ? cfg->json_version : "1.0");
	c->content_type = buf_detach(&ct, NULL);
	c->region = xstrdup(cfg->region);
	c->creds = cfg->creds;
	c->http = cfg->http;
	c->retry = cfg->retry;
	retry_policy_normalize(&c->retry);
	return c;
}

void awsapi_free(struct awsapi *c)
{
	if (!c)
		return;
	free(c->name);
	free(c->client);
	free(c->service);
	free(c->target_prefix);
	free(c->content_type);
	free(c->region);
	free(c->endpoint);
	free(c->scheme);
	free(c->hostport);
	free(c->path);
	free(c);
}

const char *awsapi_endpoint(const struct awsapi *c)
{
	return c->endpoint;
}

/* ---- errors -------------------------------------------------------------- */

static const char *status_code_name(long st)
{
	switch (st) {
	case 400:
		return "BadRequest";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "NotFound";
	case 429:
		return "TooManyRequests";
	case 500:
		return "InternalError";
	case 502:
		return "BadGateway";
	case 503:
		return "ServiceUnavailable";
	case 504:
		return "GatewayTimeout";
	default:
		return "";
	}
}

/* The error type: "aws.protocol#Name" -> "Name"; "Name:http://..." -> "Name". */
static void set_code(char *out, size_t outsz, const char *s, size_t len)
{
	const char *hash = memchr(s, '#', len);
	if (hash) {
		len -= (size_t)(hash + 1 - s);
		s = hash + 1;
	}
	const char *colon = memchr(s, ':', len);
	if (colon)
		len = (size_t)(colon - s);
	size_t n = 0;
	for (size_t i = 0; i < len && n + 1 < outsz; i++) {
		char ch = s[i];
		if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		    (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-')
			out[n++] = ch;
	}
	out[n] = '\0';
}

/* Text of <tag>...</tag> in an XML error body (moto answers some auth errors
 * in XML), or NULL. */
static char *xml_elem(const char *body, const char *tag)
{
	char open[32], close[32];
	xsnprintf(open, sizeof(open), "<%s>", tag);
	xsnprintf(close, sizeof(close), "</%s>", tag);
	const char *a = strstr(body, open);
	if (!a)
		return NULL;
	a += strlen(open);
	const char *b = strstr(a, close);
	return b ? xstrndup(a, (size_t)(b - a)) : NULL;
}

/* Type and message of a JSON error body, or of an XML one (<Code>,
 * <Message>) when the body is not JSON. */
static void parse_error_body(const struct http_resp *resp, char *code, size_t codesz,
			     char **message)
{
	json_t *j = json_loadb(resp->body.data, resp->body.len, 0, NULL);
	if (json_is_object(j)) {
		const char *t = json_string_value(json_object_get(j, "__type"));
		if (!t)
			t = json_string_value(json_object_get(j, "code"));
		if (t)
			set_code(code, codesz, t, strlen(t));
		const char *m = json_string_value(json_object_get(j, "message"));
		if (!m)
			m = json_string_value(json_object_get(j, "Message"));
		if (m)
			*message = xstrdup(m);
	} else if (!j) {
		char *body = xstrndup(resp->body.data, resp->body.len);
		char *t = xml_elem(body, "Code");
		if (t) {
			set_code(code, codesz, t, strlen(t));
			free(t);
		}
		*message = xml_elem(body, "Message");
		free(body);
	}
	json_decref(j);
}

/* Error type and message of a failed answer: the body's (above), else the
 * x-amzn-ErrorType header. message is owned (may be NULL). */
static void parse_error(const struct http_resp *resp, char *code, size_t codesz, char **message)
{
	*message = NULL;
	code[0] = '\0';
	if (resp->body.len > 0)
		parse_error_body(resp, code, codesz, message);
	if (!code[0]) {
		struct buf h = BUF_INIT;
		if (http_resp_header(resp, "x-amzn-ErrorType", &h) == 0)
			set_code(code, codesz, buf_str(&h), h.len);
		buf_release(&h);
	}
	if (*message) {
		/* keep it short and printable */
		size_t n = strlen(*message);
		if (n > REMOTE_MSG_MAX)
			(*message)[REMOTE_MSG_MAX] = '\0';
		for (unsigned char *p = (unsigned char *)*message; *p; p++)
			if (*p < 0x20 || *p == 0x7f)
				*p = ' ';
	}
}

/* Learn the server's clock from its Date header; true when it moved by more
 * than a minute (worth another attempt). */
static bool learn_skew(struct awsapi *c, const struct http_resp *r)
{
	struct buf d = BUF_INIT;
	bool moved = false;
	if (http_resp_header(r, "Date", &d) == 0) {
		time_t server = curl_getdate(buf_str(&d), NULL);
		if (server > 0) {
			int64_t skew = (int64_t)server - (int64_t)time(NULL);
			int64_t old = atomic_exchange(&c->clock_skew, skew);
			moved = llabs(skew - old) > 60;
			if (moved)
				log_warn("%s: %s: local clock is off by %lld s from the server's, "
					 "adjusting",
					 c->client, c->name, (long long)skew);
		}
	}
	buf_release(&d);
	return moved;
}

/* ---- one attempt --------------------------------------------------------- */

/* The call of one awsapi_json, for the exec hooks. */
struct awsapi_run {
	struct awsapi *c;
	const struct awsapi_call *k;
	const char *body;
	size_t body_len;
	const char *payload; /* sha256 of body, hex */
	const char *what;    /* k->what, or the remote's name */
	json_t *answer;	     /* the 2xx answer's object (JSON protocol) */
	struct buf *raw;     /* query protocol: the 2xx answer's bytes go here */
};

/* Sign the headers hdrs[0..*nh) with cv, adding X-Amz-Date (into date),
 * the session token and Authorization (into auth). */
static int sign_request(struct awsapi *c, const struct awsapi_run *r, const struct creds_value *cv,
			time_t now, struct http_header *hdrs, size_t *nh, char date[17],
			struct buf *auth, struct dth_err *err)
{
	struct sigv4_header sh[8];
	size_t ns = 0;
	sigv4_amz_date(now, date);
	hdrs[(*nh)++] = (struct http_header){"X-Amz-Date", date};
	if (cv->session_token[0])
		hdrs[(*nh)++] = (struct http_header){"X-Amz-Security-Token", cv->session_token};
	for (size_t i = 0; i < *nh; i++)
		sh[ns++] = (struct sigv4_header){hdrs[i].name, hdrs[i].value};
	struct sigv4_input in = {
	    .method = "POST",
	    .path = c->path,
	    .query = NULL,
	    .headers = sh,
	    .n_headers = ns,
	    .payload_hash = r->payload,
	    .region = c->region,
	    .service = c->service,
	    .when = now,
	    .normalize_path = true,
	};
	struct sigv4_creds sc = {cv->access_key_id, cv->secret_access_key, cv->session_token};
	buf_grow(auth, 1024); /* the value is never moved once written */
	int rc = sigv4_authorization(&in, &sc, auth);
	if (rc != 0)
		return err_set(err, rc, "cannot sign the request");
	hdrs[(*nh)++] = (struct http_header){"Authorization", buf_str(auth)};
	return 0;
}

/* Build, sign and send one attempt. */
static int attempt_once(struct awsapi_run *r, struct http_resp *resp, bool *fatal,
			struct dth_err *err)
{
	struct awsapi *c = r->c;
	struct buf url = BUF_INIT, auth = BUF_INIT, target = BUF_INIT;
	struct http_header hdrs[8];
	size_t nh = 0;
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
	buf_addf(&url, "%s://%s%s", c->scheme, c->hostport, c->path);
	buf_addf(&target, "%s%s", c->target_prefix, r->k->op);

	hdrs[nh++] = (struct http_header){"Host", c->hostport};
	if (r->raw) {
		hdrs[nh++] = (struct http_header){"Content-Type", FORM_TYPE};
	} else {
		hdrs[nh++] = (struct http_header){"Content-Type", c->content_type};
		hdrs[nh++] = (struct http_header){"X-Amz-Target", buf_str(&target)};
	}
	time_t now = time(NULL) + (time_t)atomic_load(&c->clock_skew);
	if (sign) {
		rc = sign_request(c, r, &cv, now, hdrs, &nh, date, &auth, err);
		if (rc != 0) {
			*fatal = true;
			goto cleanup;
		}
	}

	struct http_req req = {
	    .method = "POST",
	    .url = buf_str(&url),
	    .headers = hdrs,
	    .n_headers = nh,
	    .body = r->body,
	    .body_len = r->body_len,
	    .max_body = JSON_BODY_MAX,
	    .secret = r->k->secret,
	};
	if (r->k->count)
		atomic_fetch_add(r->k->count, 1);
	rc = http_perform(c->http, &req, resp, err);
cleanup:
	/* wipe the secret copies */
	explicit_bzero(&cv, sizeof(cv));
	secret_buf_release(&auth);
	buf_release(&url);
	buf_release(&target);
	return rc;
}

/* ---- the executor's hooks (exec.h) --------------------------------------- */

static int aj_send(void *ctx, struct http_resp *resp, bool *fatal, struct dth_err *err)
{
	return attempt_once(ctx, resp, fatal, err);
}

/* The 2xx answer: a JSON object, an empty body reading as {}. */
static int aj_check_ok(void *ctx, const struct http_resp *resp, char code[EXEC_CODE_MAX],
		       char **message, struct dth_err *err)
{
	(void)code;
	(void)message;
	struct awsapi_run *r = ctx;
	if (r->raw) {
		buf_reset(r->raw);
		buf_add(r->raw, resp->body.data, resp->body.len);
		return 0;
	}
	json_error_t je;
	json_t *j = resp->body.len == 0 ? json_object()
					: json_loadb(resp->body.data, resp->body.len, 0, &je);
	if (!json_is_object(j)) {
		json_decref(j);
		return err_set(err, -EPROTO, "%s %s: bad answer: %s", r->k->op, r->what,
			       j ? "not a json object" : je.text);
	}
	json_decref(r->answer);
	r->answer = j;
	return 0;
}

static void aj_parse_error(void *ctx, const struct http_resp *resp, char code[EXEC_CODE_MAX],
			   char **message)
{
	(void)ctx;
	parse_error(resp, code, EXEC_CODE_MAX, message);
	if (!code[0])
		str_copy_fit(code, status_code_name(resp->status), EXEC_CODE_MAX);
}

static bool aj_learn_skew(void *ctx, const struct http_resp *resp)
{
	return learn_skew(((struct awsapi_run *)ctx)->c, resp);
}

/* An expired session token: the provider fetches fresh credentials. */
static bool aj_refresh_auth(void *ctx, const struct http_resp *resp, const struct exec_verdict *v,
			    unsigned round)
{
	(void)resp;
	struct awsapi *c = ((struct awsapi_run *)ctx)->c;
	return v->expired && round == 0 && c->creds && creds_provider_refresh(c->creds);
}

static const struct exec_hooks aj_hooks = {
    .send = aj_send,
    .check_ok = aj_check_ok,
    .parse_error = aj_parse_error,
    .refresh_auth = aj_refresh_auth,
    .learn_skew = aj_learn_skew,
};

/* ---- the call ------------------------------------------------------------ */

static void sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
	hex_encode(md, 32, out);
}

/* Send body (either protocol) with retries; run->answer or raw is filled. */
static int run_call(struct awsapi *c, const struct awsapi_call *k, const char *body,
		    struct awsapi_run *run, struct dth_err *err)
{
	char payload[65];
	size_t body_len = strlen(body);
	sha256_hex(body, body_len, payload);
	struct http_resp resp;
	http_resp_init(&resp);
	run->c = c;
	run->k = k;
	run->body = body;
	run->body_len = body_len;
	run->payload = payload;
	run->what = k->what ? k->what : c->name;
	struct exec_call x = {
	    .client = c->client,
	    .name = c->name,
	    .op = k->op,
	    .what = run->what,
	    .retry = &c->retry,
	    .hooks = &aj_hooks,
	    .ctx = run,
	};
	int rc = exec_run(&x, &resp, err);
	if (k->secret)
		http_resp_wipe(&resp);
	http_resp_release(&resp);
	return rc;
}

int awsapi_query(struct awsapi *c, const struct awsapi_call *k, const char *version,
		 const char *const *params, size_t n, struct buf *answer, struct dth_err *err)
{
	err_clear(err);
	buf_reset(answer);
	struct buf body = BUF_INIT;
	buf_adds(&body, "Action=");
	uri_encode(&body, k->op, strlen(k->op), false);
	buf_adds(&body, "&Version=");
	uri_encode(&body, version, strlen(version), false);
	for (size_t i = 0; i < 2 * n; i += 2) {
		buf_addch(&body, '&');
		uri_encode(&body, params[i], strlen(params[i]), false);
		buf_addch(&body, '=');
		uri_encode(&body, params[i + 1], strlen(params[i + 1]), false);
	}
	struct awsapi_run run;
	memset(&run, 0, sizeof(run));
	run.raw = answer;
	int rc = run_call(c, k, buf_str(&body), &run, err);
	buf_release(&body);
	return rc;
}

int awsapi_json(struct awsapi *c, const struct awsapi_call *k, json_t **out, struct dth_err *err)
{
	*out = NULL;
	err_clear(err);
	const char *what = k->what ? k->what : c->name;
	char *body = k->req ? json_dumps(k->req, JSON_COMPACT) : xstrdup("{}");
	if (!body)
		return err_set(err, -ENOMEM, "%s %s: cannot encode the request", k->op, what);
	struct awsapi_run run;
	memset(&run, 0, sizeof(run));
	int rc = run_call(c, k, body, &run, err);
	if (rc == 0)
		*out = run.answer;
	else
		json_decref(run.answer);
	free(body);
	return rc;
}
