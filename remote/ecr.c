#include "common/compat.h"

#include "remote/ecr.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/secret.h"
#include "remote/creds.h"
#include "remote/exec.h"
#include "remote/http.h"
#include "remote/sigv4.h"

#define JSON_BODY_MAX  (16u * 1024 * 1024) /* a 2xx JSON answer we collect */
#define TARGET_PREFIX  "AmazonEC2ContainerRegistry_V20150921."
#define CONTENT_TYPE   "application/x-amz-json-1.1"
#define PAGE_SIZE_MAX  1000
#define MSG_REPO_MAX   256
#define REMOTE_MSG_MAX 300 /* bytes of the service's message kept in err */

struct ecr_client {
	char *name;
	char *endpoint;
	char *scheme;	/* "http" | "https" */
	char *hostport; /* "host[:port]" */
	char *path;	/* request path: endpoint's path prefix + "/" */
	char *region;
	char *account; /* "" when none */
	struct creds_provider *creds;
	struct http_engine *http;
	struct retry_policy retry;
	_Atomic uint64_t counts[ECR_REQ__COUNT];
	_Atomic int64_t clock_skew; /* server time - local time, seconds */
};

static const char *const kind_names[ECR_REQ__COUNT] = {"auth", "create", "repos", "images"};

const char *ecr_req_kind_name(enum ecr_req_kind k)
{
	return (unsigned)k < ECR_REQ__COUNT ? kind_names[k] : "unknown";
}

/* ---- names --------------------------------------------------------------- */

static bool region_ok(const char *region)
{
	if (!region || !*region || strlen(region) > 48)
		return false;
	for (const char *p = region; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
			return false;
	return region[0] != '-';
}

static bool account_ok(const char *account)
{
	if (!account || strlen(account) != 12)
		return false;
	for (const char *p = account; *p; p++)
		if (*p < '0' || *p > '9')
			return false;
	return true;
}

bool ecr_region_is_china(const char *region)
{
	return region && str_startswith(region, "cn-");
}

static const char *dns_suffix(const char *region)
{
	return ecr_region_is_china(region) ? "amazonaws.com.cn" : "amazonaws.com";
}

int ecr_api_endpoint(const char *region, struct buf *out)
{
	if (!region_ok(region))
		return -EINVAL;
	buf_addf(out, "https://api.ecr.%s.%s", region, dns_suffix(region));
	return 0;
}

int ecr_registry_host(const char *account, const char *region, struct buf *out)
{
	if (!account_ok(account) || !region_ok(region))
		return -EINVAL;
	buf_addf(out, "%s.dkr.ecr.%s.%s", account, region, dns_suffix(region));
	return 0;
}

/* ---- client -------------------------------------------------------------- */

struct ecr_client *ecr_client_new(const struct ecr_config *cfg)
{
	if (!cfg || !cfg->http || !region_ok(cfg->region))
		return NULL;
	if (cfg->account && *cfg->account && !account_ok(cfg->account))
		return NULL;
	struct buf ep = BUF_INIT;
	if (cfg->endpoint && *cfg->endpoint)
		buf_adds(&ep, cfg->endpoint);
	else if (ecr_api_endpoint(cfg->region, &ep) != 0)
		return NULL;
	const char *e = buf_str(&ep);
	const char *sep = strstr(e, "://");
	if (!sep || sep == e) {
		buf_release(&ep);
		return NULL;
	}
	struct ecr_client *c = xcalloc(1, sizeof(*c));
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
	buf_release(&ep);
	c->name = xstrdup(cfg->name ? cfg->name : c->endpoint);
	c->region = xstrdup(cfg->region);
	c->account = xstrdup(cfg->account ? cfg->account : "");
	c->creds = cfg->creds;
	c->http = cfg->http;
	c->retry = cfg->retry;
	retry_policy_normalize(&c->retry);
	if ((strcmp(c->scheme, "http") != 0 && strcmp(c->scheme, "https") != 0) || !*c->hostport) {
		ecr_client_free(c);
		return NULL;
	}
	return c;
}

void ecr_client_free(struct ecr_client *c)
{
	if (!c)
		return;
	free(c->name);
	free(c->endpoint);
	free(c->scheme);
	free(c->hostport);
	free(c->path);
	free(c->region);
	free(c->account);
	free(c);
}

const char *ecr_client_endpoint(const struct ecr_client *c)
{
	return c->endpoint;
}

const char *ecr_client_name(const struct ecr_client *c)
{
	return c->name;
}

const char *ecr_client_region(const struct ecr_client *c)
{
	return c->region;
}

const char *ecr_client_account(const struct ecr_client *c)
{
	return c->account;
}

void ecr_client_counts(const struct ecr_client *c, uint64_t out[ECR_REQ__COUNT])
{
	for (int i = 0; i < ECR_REQ__COUNT; i++)
		out[i] = atomic_load(&((struct ecr_client *)c)->counts[i]);
}

void ecr_auth_release(struct ecr_auth *a)
{
	if (!a)
		return;
	secret_free(a->password);
	memset(a, 0, sizeof(*a));
}

/* ---- request machinery --------------------------------------------------- */

struct ecr_call {
	enum ecr_req_kind kind;
	const char *op;	  /* "CreateRepository", ... (the X-Amz-Target suffix) */
	const char *repo; /* for messages; NULL for none */
	json_t *req;	  /* request document (borrowed) */
	bool secret;	  /* the answer holds a secret: wipe it */
};

/* "ecr://<remote>[/repo]" for messages, long names shortened, control bytes as '?'. */
static void describe(const struct ecr_client *c, const struct ecr_call *k, char *out, size_t outsz)
{
	struct buf b = BUF_INIT;
	buf_addf(&b, "ecr://%s", c->name);
	if (k->repo) {
		buf_addch(&b, '/');
		size_t rl = strlen(k->repo);
		size_t show = rl > MSG_REPO_MAX ? MSG_REPO_MAX : rl;
		for (size_t i = 0; i < show; i++) {
			unsigned char ch = (unsigned char)k->repo[i];
			buf_addch(&b, ch < 0x20 || ch == 0x7f ? '?' : (char)ch);
		}
		if (show < rl)
			buf_addf(&b, "...(%zu bytes)", rl);
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

/* Error type and message of a failed answer: the JSON body's "__type" and
 * "message" (or "Message"), else the x-amzn-ErrorType header, else an XML
 * <Code>/<Message>. message is owned (may be NULL). */
static void parse_error(const struct http_resp *resp, char *code, size_t codesz, char **message)
{
	*message = NULL;
	code[0] = '\0';
	if (resp->body.len > 0) {
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
static bool learn_skew(struct ecr_client *c, const struct http_resp *r)
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
				log_warn("ecr: %s: local clock is off by %lld s from the server's, "
					 "adjusting",
					 c->name, (long long)skew);
		}
	}
	buf_release(&d);
	return moved;
}

/* Build, sign and send one attempt. */
static int attempt_once(struct ecr_client *c, const struct ecr_call *k, const char *body,
			size_t body_len, const char *payload_hash, struct http_resp *resp,
			bool *fatal, struct dth_err *err)
{
	struct buf url = BUF_INIT, auth = BUF_INIT, target = BUF_INIT;
	struct http_header hdrs[8];
	struct sigv4_header sh[8];
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
	buf_addf(&url, "%s://%s%s", c->scheme, c->hostport, c->path);
	buf_addf(&target, TARGET_PREFIX "%s", k->op);

	hdrs[nh++] = (struct http_header){"Host", c->hostport};
	hdrs[nh++] = (struct http_header){"Content-Type", CONTENT_TYPE};
	hdrs[nh++] = (struct http_header){"X-Amz-Target", buf_str(&target)};
	time_t now = time(NULL) + (time_t)atomic_load(&c->clock_skew);
	if (sign) {
		sigv4_amz_date(now, date);
		hdrs[nh++] = (struct http_header){"X-Amz-Date", date};
		if (cv.session_token[0])
			hdrs[nh++] = (struct http_header){"X-Amz-Security-Token", cv.session_token};
		for (size_t i = 0; i < nh; i++)
			sh[ns++] = (struct sigv4_header){hdrs[i].name, hdrs[i].value};
		struct sigv4_input in = {
		    .method = "POST",
		    .path = c->path,
		    .query = NULL,
		    .headers = sh,
		    .n_headers = ns,
		    .payload_hash = payload_hash,
		    .region = c->region,
		    .service = "ecr",
		    .when = now,
		    .normalize_path = true,
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
	    .method = "POST",
	    .url = buf_str(&url),
	    .headers = hdrs,
	    .n_headers = nh,
	    .body = body,
	    .body_len = body_len,
	    .max_body = JSON_BODY_MAX,
	    .secret = k->secret,
	};
	atomic_fetch_add(&c->counts[k->kind], 1);
	rc = http_perform(c->http, &req, resp, err);
cleanup:
	/* wipe the secret copies */
	explicit_bzero(&cv, sizeof(cv));
	secret_buf_release(&auth);
	buf_release(&url);
	buf_release(&target);
	return rc;
}

/* One call through the executor (exec.h): the ECR hooks. */
struct ecr_run {
	struct ecr_client *c;
	const struct ecr_call *k;
	const char *body;
	size_t body_len;
	const char *payload;
	const char *what;
	json_t *answer; /* the 2xx answer's object */
};

static int ecr_send(void *ctx, struct http_resp *resp, bool *fatal, struct dth_err *err)
{
	struct ecr_run *r = ctx;
	return attempt_once(r->c, r->k, r->body, r->body_len, r->payload, resp, fatal, err);
}

static int ecr_check_ok(void *ctx, const struct http_resp *resp, char code[EXEC_CODE_MAX],
			char **message, struct dth_err *err)
{
	(void)code;
	(void)message;
	struct ecr_run *r = ctx;
	json_error_t je;
	json_t *j = json_loadb(resp->body.data, resp->body.len, 0, &je);
	if (!json_is_object(j)) {
		json_decref(j);
		return err_set(err, -EPROTO, "%s %s: bad answer: %s", r->k->op, r->what,
			       j ? "not a json object" : je.text);
	}
	json_decref(r->answer);
	r->answer = j;
	return 0;
}

static void ecr_parse_error(void *ctx, const struct http_resp *resp, char code[EXEC_CODE_MAX],
			    char **message)
{
	(void)ctx;
	parse_error(resp, code, EXEC_CODE_MAX, message);
	if (!code[0])
		str_copy_fit(code, status_code_name(resp->status), EXEC_CODE_MAX);
}

static bool ecr_learn_skew(void *ctx, const struct http_resp *resp)
{
	return learn_skew(((struct ecr_run *)ctx)->c, resp);
}

/* An expired session token: the provider fetches fresh credentials. */
static bool ecr_refresh_auth(void *ctx, const struct http_resp *resp, const struct exec_verdict *v,
			     unsigned round)
{
	(void)resp;
	struct ecr_client *c = ((struct ecr_run *)ctx)->c;
	return v->expired && round == 0 && c->creds && creds_provider_refresh(c->creds);
}

static const struct exec_hooks ecr_hooks = {
    .send = ecr_send,
    .check_ok = ecr_check_ok,
    .parse_error = ecr_parse_error,
    .refresh_auth = ecr_refresh_auth,
    .learn_skew = ecr_learn_skew,
};

/* Run the call with retries (exec.h). 0 with *out set to the answer's JSON
 * object (json_decref it); else a negative errno with err filled. */
static int ecr_do(struct ecr_client *c, const struct ecr_call *k, json_t **out, struct dth_err *err)
{
	char what[MSG_REPO_MAX + 160];
	char payload[65];

	*out = NULL;
	err_clear(err);
	describe(c, k, what, sizeof(what));
	char *body = k->req ? json_dumps(k->req, JSON_COMPACT) : xstrdup("{}");
	if (!body)
		return err_set(err, -ENOMEM, "%s %s: cannot encode the request", k->op, what);
	size_t body_len = strlen(body);
	sha256_hex(body, body_len, payload);

	struct http_resp resp;
	http_resp_init(&resp);
	struct ecr_run run = {c, k, body, body_len, payload, what, NULL};
	struct exec_call x = {
	    .client = "ecr",
	    .name = c->name,
	    .op = k->op,
	    .what = what,
	    .retry = &c->retry,
	    .hooks = &ecr_hooks,
	    .ctx = &run,
	};
	int rc = exec_run(&x, &resp, err);
	if (rc == 0)
		*out = run.answer;
	else
		json_decref(run.answer);
	if (k->secret)
		http_resp_wipe(&resp);
	http_resp_release(&resp);
	free(body);
	return rc;
}

/* Seconds since the epoch from a JSON 1.1 timestamp (a number, possibly
 * fractional); 0 when absent or not a number. */
static int64_t json_time(const json_t *v)
{
	if (!json_is_number(v))
		return 0;
	double d = json_number_value(v);
	if (!isfinite(d) || d < 0 || d > 253402300799.0) /* 9999-12-31 */
		return 0;
	return (int64_t)d;
}

static const char *json_str(const json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));
	return s ? s : "";
}

static void add_registry_id(const struct ecr_client *c, json_t *req)
{
	if (c->account[0])
		json_object_set_new(req, "registryId", json_string(c->account));
}

/* ---- operations ---------------------------------------------------------- */

/* Wipe a JSON string in place before it is freed (it holds a secret). */
static void wipe_json_string(json_t *s)
{
	if (json_is_string(s)) {
		char *p = (char *)json_string_value(s); /* jansson's own heap copy */
		explicit_bzero(p, json_string_length(s));
	}
}

int ecr_parse_authorization(const struct json_t *ans, const char *what, struct ecr_auth *out,
			    struct dth_err *err)
{
	memset(out, 0, sizeof(*out));
	unsigned char *dec = NULL;
	size_t dec_sz = 0;
	int rc = 0;
	json_t *data = json_object_get(ans, "authorizationData");
	json_t *first = json_is_array(data) ? json_array_get(data, 0) : NULL;
	json_t *tok = first ? json_object_get(first, "authorizationToken") : NULL;
	if (!json_is_string(tok) || json_string_length(tok) == 0) {
		rc = err_set(err, -EPROTO,
			     "GetAuthorizationToken %s: no authorization token in "
			     "the answer",
			     what);
		goto cleanup;
	}
	const char *t = json_string_value(tok);
	size_t tl = json_string_length(tok);
	dec_sz = tl / 4 * 3 + 4;
	dec = xmalloc(dec_sz);
	int n = base64_decode(t, tl, dec, dec_sz - 1);
	const unsigned char *colon = n > 0 ? memchr(dec, ':', (size_t)n) : NULL;
	if (!colon || colon == dec || (size_t)(colon - dec) >= sizeof(out->user) ||
	    memchr(dec, '\0', (size_t)n)) {
		rc = err_set(err, -EPROTO,
			     "GetAuthorizationToken %s: the token is not base64 of user:password",
			     what);
		goto cleanup;
	}
	const char *pe = json_str(first, "proxyEndpoint");
	if (strlen(pe) >= sizeof(out->proxy_endpoint)) {
		rc =
		    err_set(err, -EPROTO, "GetAuthorizationToken %s: proxyEndpoint too long", what);
		goto cleanup;
	}
	memcpy(out->user, dec, (size_t)(colon - dec));
	out->user[colon - dec] = '\0';
	out->password =
	    secret_strndup((const char *)colon + 1, (size_t)n - (size_t)(colon - dec) - 1);
	str_copy_fit(out->proxy_endpoint, pe, sizeof(out->proxy_endpoint));
	out->expires = json_time(json_object_get(first, "expiresAt"));
cleanup:
	if (dec) {
		explicit_bzero(dec, dec_sz);
		free(dec);
	}
	if (rc != 0)
		ecr_auth_release(out);
	return rc;
}

int ecr_get_authorization_token(struct ecr_client *c, struct ecr_auth *out, struct dth_err *err)
{
	memset(out, 0, sizeof(*out));
	json_t *req = json_object();
	if (c->account[0]) {
		json_t *ids = json_array();
		json_array_append_new(ids, json_string(c->account));
		json_object_set_new(req, "registryIds", ids);
	}
	struct ecr_call k = {
	    .kind = ECR_REQ_AUTH, .op = "GetAuthorizationToken", .req = req, .secret = true};
	json_t *ans = NULL;
	char what[MSG_REPO_MAX + 64];
	describe(c, &k, what, sizeof(what));
	int rc = ecr_do(c, &k, &ans, err);
	json_decref(req);
	if (rc == 0)
		rc = ecr_parse_authorization(ans, what, out, err);
	if (ans) {
		json_t *d = json_object_get(ans, "authorizationData");
		size_t i;
		json_t *v;
		json_array_foreach(d, i, v)
		    wipe_json_string(json_object_get(v, "authorizationToken"));
		json_decref(ans);
	}
	return rc;
}

int ecr_create_repository(struct ecr_client *c, const char *repo, struct buf *uri_out,
			  struct dth_err *err)
{
	if (!repo || !*repo)
		return err_set(err, -EINVAL, "CreateRepository: empty repository name");
	json_t *req = json_object();
	add_registry_id(c, req);
	json_object_set_new(req, "repositoryName", json_string(repo));
	struct ecr_call k = {
	    .kind = ECR_REQ_CREATE, .op = "CreateRepository", .repo = repo, .req = req};
	json_t *ans = NULL;
	int rc = ecr_do(c, &k, &ans, err);
	json_decref(req);
	if (rc != 0)
		return rc;
	json_t *r = json_object_get(ans, "repository");
	if (!json_is_object(r)) {
		char what[MSG_REPO_MAX + 64];
		describe(c, &k, what, sizeof(what));
		rc =
		    err_set(err, -EPROTO, "CreateRepository %s: no repository in the answer", what);
	} else if (uri_out) {
		buf_adds(uri_out, json_str(r, "repositoryUri"));
	}
	json_decref(ans);
	return rc;
}

/* One page answer: call per_item for every element of array `list`, then
 * move to nextToken. */
typedef int (*page_item_fn)(void *pctx, json_t *item);

static int paged(struct ecr_client *c, struct ecr_call *k, json_t *req, unsigned page_size,
		 const char *list, page_item_fn per_item, void *pctx, struct dth_err *err)
{
	char *token = NULL;
	int rc = 0;
	if (page_size == 0 || page_size > PAGE_SIZE_MAX)
		page_size = PAGE_SIZE_MAX;
	json_object_set_new(req, "maxResults", json_integer(page_size));
	for (;;) {
		if (token)
			json_object_set_new(req, "nextToken", json_string(token));
		k->req = req;
		json_t *ans = NULL;
		rc = ecr_do(c, k, &ans, err);
		if (rc != 0)
			break;
		json_t *items = json_object_get(ans, list);
		if (items && !json_is_array(items)) {
			char what[MSG_REPO_MAX + 64];
			describe(c, k, what, sizeof(what));
			rc = err_set(err, -EPROTO, "%s %s: %s is not a list", k->op, what, list);
		}
		size_t i;
		json_t *v;
		json_array_foreach(items, i, v)
		{
			if (rc != 0)
				break;
			if (json_is_object(v))
				rc = per_item(pctx, v);
		}
		const char *next = json_string_value(json_object_get(ans, "nextToken"));
		bool more = rc == 0 && next && *next;
		if (more && token && strcmp(token, next) == 0) {
			char what[MSG_REPO_MAX + 64];
			describe(c, k, what, sizeof(what));
			rc = err_set(err, -EPROTO, "%s %s: the same nextToken came back", k->op,
				     what);
			more = false;
		}
		if (more) {
			free(token);
			token = xstrdup(next);
		}
		json_decref(ans);
		if (!more)
			break;
	}
	free(token);
	return rc;
}

struct repos_ctx {
	int (*fn)(void *ctx, const struct ecr_repo *r);
	void *ctx;
};

static int repo_item(void *pctx, json_t *item)
{
	struct repos_ctx *rc = pctx;
	const char *name = json_string_value(json_object_get(item, "repositoryName"));
	if (!name)
		return 0;
	struct ecr_repo r = {
	    .name = name,
	    .uri = json_str(item, "repositoryUri"),
	    .created_at = json_time(json_object_get(item, "createdAt")),
	};
	return rc->fn(rc->ctx, &r);
}

int ecr_describe_repositories(struct ecr_client *c, unsigned page_size,
			      int (*fn)(void *ctx, const struct ecr_repo *r), void *ctx,
			      struct dth_err *err)
{
	json_t *req = json_object();
	add_registry_id(c, req);
	struct ecr_call k = {.kind = ECR_REQ_DESCRIBE_REPOS, .op = "DescribeRepositories"};
	struct repos_ctx rc = {fn, ctx};
	int r = paged(c, &k, req, page_size, "repositories", repo_item, &rc, err);
	json_decref(req);
	return r;
}

struct images_ctx {
	int (*fn)(void *ctx, const struct ecr_image *im);
	void *ctx;
};

static int image_item(void *pctx, json_t *item)
{
	struct images_ctx *ic = pctx;
	const char *digest = json_string_value(json_object_get(item, "imageDigest"));
	if (!digest)
		return 0;
	json_t *tags = json_object_get(item, "imageTags");
	size_t nt = json_is_array(tags) ? json_array_size(tags) : 0;
	const char **tv = nt ? xcalloc(nt, sizeof(*tv)) : NULL;
	size_t n = 0;
	for (size_t i = 0; i < nt; i++) {
		const char *s = json_string_value(json_array_get(tags, i));
		if (s)
			tv[n++] = s;
	}
	json_t *sz = json_object_get(item, "imageSizeInBytes");
	struct ecr_image im = {
	    .digest = digest,
	    .tags = tv,
	    .n_tags = n,
	    .size = json_is_integer(sz) && json_integer_value(sz) > 0
			? (uint64_t)json_integer_value(sz)
			: 0,
	    .pushed_at = json_time(json_object_get(item, "imagePushedAt")),
	    .media_type = json_str(item, "imageManifestMediaType"),
	};
	int r = ic->fn(ic->ctx, &im);
	free(tv);
	return r;
}

int ecr_describe_images(struct ecr_client *c, const char *repo, unsigned page_size,
			int (*fn)(void *ctx, const struct ecr_image *im), void *ctx,
			struct dth_err *err)
{
	if (!repo || !*repo)
		return err_set(err, -EINVAL, "DescribeImages: empty repository name");
	json_t *req = json_object();
	add_registry_id(c, req);
	json_object_set_new(req, "repositoryName", json_string(repo));
	struct ecr_call k = {.kind = ECR_REQ_DESCRIBE_IMAGES, .op = "DescribeImages", .repo = repo};
	struct images_ctx ic = {fn, ctx};
	int r = paged(c, &k, req, page_size, "imageDetails", image_item, &ic, err);
	json_decref(req);
	return r;
}
