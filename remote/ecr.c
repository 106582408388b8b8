#include "common/compat.h"

#include "remote/ecr.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/secret.h"
#include "remote/awsapi.h"

#define PAGE_SIZE_MAX 1000
#define MSG_REPO_MAX  256

struct ecr_client {
	char *name;
	const char *endpoint; /* awsapi_endpoint(api) */
	char *region;
	char *account; /* "" when none */
	struct awsapi *api;
	_Atomic uint64_t counts[ECR_REQ__COUNT];
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
	struct awsapi_config ac = {
	    .name = cfg->name,
	    .client = "ecr",
	    .service = "ecr",
	    .target_prefix = "AmazonEC2ContainerRegistry_V20150921.",
	    .json_version = "1.1",
	    .region = cfg->region,
	    .endpoint = buf_str(&ep),
	    .creds = cfg->creds,
	    .http = cfg->http,
	    .retry = cfg->retry,
	};
	struct awsapi *api = awsapi_new(&ac);
	buf_release(&ep);
	if (!api)
		return NULL;
	struct ecr_client *c = xcalloc(1, sizeof(*c));
	c->api = api;
	c->endpoint = awsapi_endpoint(api);
	c->name = xstrdup(cfg->name ? cfg->name : c->endpoint);
	c->region = xstrdup(cfg->region);
	c->account = xstrdup(cfg->account ? cfg->account : "");
	return c;
}

void ecr_client_free(struct ecr_client *c)
{
	if (!c)
		return;
	awsapi_free(c->api);
	free(c->name);
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

/* Run the call with retries (awsapi.h). 0 with *out set to the answer's
 * JSON object (json_decref it); else a negative errno with err filled. */
static int ecr_do(struct ecr_client *c, const struct ecr_call *k, json_t **out, struct dth_err *err)
{
	char what[MSG_REPO_MAX + 160];
	describe(c, k, what, sizeof(what));
	struct awsapi_call x = {
	    .op = k->op,
	    .what = what,
	    .req = k->req,
	    .secret = k->secret,
	    .count = &c->counts[k->kind],
	};
	return awsapi_json(c->api, &x, out, err);
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
