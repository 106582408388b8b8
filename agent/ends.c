/* Opening the two ends of a task from the config (see ends.h). */
#include "common/compat.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/ends.h"
#include "agent/image.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/util.h"
#include "remote/creds.h"
#include "remote/ecr.h"
#include "remote/http.h"
#include "remote/registry.h"
#include "remote/remotes.h"
#include "remote/retry.h"
#include "remote/s3.h"

/* ---- S3 ends ---- */

static char *dir_prefix(char *p)
{
	size_t n = strlen(p);
	if (n && p[n - 1] != '/') {
		char *q = xmalloc(n + 2);
		memcpy(q, p, n);
		q[n] = '/';
		q[n + 1] = '\0';
		free(p);
		return q;
	}
	return p;
}

struct s3_end_out {
	char **remote, **bucket, **prefix;
	struct http_engine **http;
	struct creds_provider **creds;
	struct s3_client **client;
	const struct remote_def *def;
};

/* A local directory as a source: remote "local", the absolute path as the
 * bucket, no prefix. */
static int local_open_one(const char *spec, struct s3_end_out *o, struct dth_err *err)
{
	char *abs = realpath(spec, NULL);
	if (!abs)
		return err_set(err, -EINVAL, "source %s: %s", spec, strerror(errno));
	*o->remote = xstrdup("local");
	*o->bucket = abs;
	*o->prefix = xstrdup("");
	int rc = s3_client_new_local("local", abs, o->client, err);
	if (rc)
		return err_set(err, -EINVAL, "source %s", err->message);
	return 0;
}

static int s3_open_one(const struct config *cfg, const char *spec, int retries, bool requester_pays,
		       struct s3_end_out *o, struct dth_err *err)
{
	if (remote_parse_path(spec, o->remote, o->bucket, o->prefix, err))
		return -EINVAL;
	*o->prefix = dir_prefix(*o->prefix);
	const char *name = *o->remote;
	const struct remote_def *def = config_remote(cfg, name);
	if (!def) {
		const char *path = config_path(cfg);
		return err_set(err, -EINVAL,
			       "no remote called '%s' (define [remote %s] in %s, or set "
			       "DTH_REMOTE_%s_ENDPOINT and friends)",
			       name, name, path ? path : "the config file", name);
	}
	if (def->type && strcmp(def->type, "s3") != 0)
		return err_set(err, -EINVAL,
			       "remote '%s' is of type %s; this command needs an s3 remote", name,
			       def->type);
	*o->http = remote_http_new(def);
	if (!*o->http)
		return err_set(err, -ENOMEM, "cannot start the http engine");
	struct remote_def d = *def; /* shallow: strings stay the config's */
	if (retries >= 0)
		d.retries = retries;
	d.requester_pays = d.requester_pays || requester_pays;
	if (remote_open_s3(&d, *o->http, o->creds, o->client, err)) {
		err_prefix(err, "remote '%s'", name);
		return -EINVAL;
	}
	o->def = def;
	return 0;
}

/* Server-side copy needs one endpoint and credentials that can read the source. */
static bool same_endpoint(const struct s3_ends *e, const struct remote_def *ds,
			  const struct remote_def *dd)
{
	if (!strcmp(e->src_remote, e->dst_remote))
		return true;
	return ds->endpoint && dd->endpoint && !strcmp(ds->endpoint, dd->endpoint) &&
	       ds->access_key_id && dd->access_key_id &&
	       !strcmp(ds->access_key_id, dd->access_key_id) && ds->secret_access_key &&
	       dd->secret_access_key && !strcmp(ds->secret_access_key, dd->secret_access_key);
}

int ends_s3_open(struct s3_ends *e, const struct config *cfg, const char *src, const char *dst,
		 int retries, bool src_requester_pays, struct dth_err *err)
{
	memset(e, 0, sizeof(*e));
	struct s3_end_out s = {&e->src_remote,
			       &e->src_bucket,
			       &e->src_prefix,
			       &e->http_src,
			       &e->creds_src,
			       &e->src,
			       NULL};
	int rc = remote_spec_is_local(src)
		     ? local_open_one(src, &s, err)
		     : s3_open_one(cfg, src, retries, src_requester_pays, &s, err);
	if (rc || !dst)
		return rc;
	if (remote_spec_is_local(dst))
		return err_set(err, -EINVAL,
			       "destination %s: a local directory can only be a source; the "
			       "destination is REMOTE:BUCKET[/PREFIX]",
			       dst);
	struct s3_end_out d = {&e->dst_remote,
			       &e->dst_bucket,
			       &e->dst_prefix,
			       &e->http_dst,
			       &e->creds_dst,
			       &e->dst,
			       NULL};
	rc = s3_open_one(cfg, dst, retries, false, &d, err);
	if (rc)
		return rc;
	/* A server-side copy is the destination client's call: it would not
	 * carry the request-payer header the task asked for on the source. */
	e->same_endpoint = s.def && same_endpoint(e, s.def, d.def) &&
			   !(src_requester_pays && !d.def->requester_pays);
	return 0;
}

bool ends_s3_overlap(const struct s3_ends *e)
{
	if (!e->src || !e->dst || strcmp(s3_client_endpoint(e->src), s3_client_endpoint(e->dst)) ||
	    strcmp(e->src_bucket, e->dst_bucket))
		return false;
	return str_startswith(e->src_prefix, e->dst_prefix) ||
	       str_startswith(e->dst_prefix, e->src_prefix);
}

void ends_s3_close(struct s3_ends *e)
{
	s3_client_free(e->src);
	s3_client_free(e->dst);
	creds_provider_free(e->creds_src);
	creds_provider_free(e->creds_dst);
	http_engine_free(e->http_src);
	http_engine_free(e->http_dst);
	free(e->src_remote);
	free(e->src_bucket);
	free(e->src_prefix);
	free(e->dst_remote);
	free(e->dst_bucket);
	free(e->dst_prefix);
	memset(e, 0, sizeof(*e));
}

/* ---- registry ends ---- */

/* ECR authorization tokens are renewed when less than this is left. */
#define ECR_TOKEN_MARGIN 300

/* One ECR end of an image sync: the ECR API client and the registry client
 * (borrowed) whose basic credentials come from GetAuthorizationToken. */
struct ecr_end {
	const char *name; /* the remote's name, borrowed */
	struct creds_provider *creds;
	struct ecr_client *ecr;
	struct registry_client *reg; /* borrowed */
	bool have_token;
	int64_t expires;  /* of the token; 0 unknown (renewed after a refusal only) */
	bool listed;	  /* repos holds every repository (DescribeRepositories ran) */
	struct buf repos; /* "\nNAME\n" entries known to exist */
};

static void ecr_end_free(struct ecr_end *e)
{
	if (!e)
		return;
	ecr_client_free(e->ecr);
	creds_provider_free(e->creds);
	buf_release(&e->repos);
	free(e);
}

/* The registry URL of an ecr remote: its url override, else
 * https://ACCOUNT.dkr.ecr.REGION.amazonaws.com(.cn). */
static int ecr_registry_url(const struct remote_def *def, struct buf *out)
{
	if (def->url && def->url[0]) {
		buf_adds(out, def->url);
		return 0;
	}
	buf_adds(out, "https://");
	return ecr_registry_host(def->account, def->region, out);
}

/* Fetch a token when there is none, it expires within ECR_TOKEN_MARGIN, or
 * force; hand it to the registry client. 1 when fetched, 0, or negative. */
static int ecr_end_auth(struct ecr_end *e, bool force, struct dth_err *err)
{
	int64_t now = (int64_t)time(NULL);
	if (e->have_token && !force && (e->expires == 0 || e->expires - now > ECR_TOKEN_MARGIN))
		return 0;
	struct ecr_auth a;
	int rc = ecr_get_authorization_token(e->ecr, &a, err);
	if (rc) {
		err_prefix(err, "remote %s: ecr authorization token", e->name);
		return rc;
	}
	registry_client_set_credentials(e->reg, a.user, a.password);
	e->have_token = true;
	e->expires = a.expires;
	/* A token served already (nearly) expired (clock skew, a test server)
	 * would be fetched again before every image: keep it until refused. */
	if (e->expires && e->expires - now <= ECR_TOKEN_MARGIN)
		e->expires = 0;
	log_info("remote %s: ecr authorization token renewed (expires at %lld)", e->name,
		 (long long)a.expires);
	ecr_auth_release(&a);
	return 1;
}

static bool ecr_end_has_repo(const struct ecr_end *e, const char *repo)
{
	if (!e->repos.len)
		return false;
	struct buf k = BUF_INIT;
	buf_addf(&k, "\n%s\n", repo);
	bool found = memmem(e->repos.data, e->repos.len, k.data, k.len) != NULL;
	buf_release(&k);
	return found;
}

static void ecr_end_add_repo(struct ecr_end *e, const char *repo)
{
	if (!e->repos.len)
		buf_addch(&e->repos, '\n');
	buf_addf(&e->repos, "%s\n", repo);
}

static int ecr_collect_repo(void *ctx, const struct ecr_repo *r)
{
	struct ecr_end *e = ctx;
	if (!ecr_end_has_repo(e, r->name))
		ecr_end_add_repo(e, r->name);
	return 0;
}

/* Make sure repository repo exists at the ECR destination: the names are
 * listed once per run, a missing one is created. */
static int ecr_end_ensure_repo(struct ecr_end *e, const char *repo, struct dth_err *err)
{
	int rc;
	if (!e->listed) {
		rc = ecr_describe_repositories(e->ecr, 0, ecr_collect_repo, e, err);
		if (rc) {
			err_prefix(err, "remote %s: listing the ecr repositories", e->name);
			return rc;
		}
		e->listed = true;
	}
	if (ecr_end_has_repo(e, repo))
		return 0;
	rc = ecr_create_repository(e->ecr, repo, NULL, err);
	if (rc && rc != -EEXIST) {
		err_prefix(err, "remote %s: creating the ecr repository %s", e->name, repo);
		return rc;
	}
	err_clear(err);
	log_info("remote %s: ecr repository %s %s", e->name, repo,
		 rc ? "already exists" : "created");
	ecr_end_add_repo(e, repo);
	return 0;
}

/* image_sync_opts.prepare: credentials of an ECR end, and the destination
 * repository. */
static int ecr_prepare(void *ctx, bool dst, const char *repo, bool refresh, struct dth_err *err)
{
	struct image_ends *h = ctx;
	struct ecr_end *e = dst ? h->ecr_dst : h->ecr_src;
	if (!e)
		return 0;
	int renewed = ecr_end_auth(e, refresh, err);
	if (renewed < 0)
		return renewed;
	if (dst) {
		int rc = ecr_end_ensure_repo(e, repo, err);
		if (rc)
			return rc;
	}
	return renewed;
}

struct ecr_list_ctx {
	int (*fn)(void *fn_ctx, const char *name);
	void *fn_ctx;
};

static int ecr_list_one(void *ctx, const struct ecr_repo *r)
{
	struct ecr_list_ctx *l = ctx;
	return l->fn(l->fn_ctx, r->name);
}

/* image_sync_opts.list_repos for an ECR source: DescribeRepositories. */
static int ecr_list_repos(void *ctx, int (*fn)(void *fn_ctx, const char *name), void *fn_ctx,
			  struct dth_err *err)
{
	struct image_ends *h = ctx;
	struct ecr_list_ctx l = {fn, fn_ctx};
	return ecr_describe_repositories(h->ecr_src->ecr, 0, ecr_list_one, &l, err);
}

/* The ECR API client and registry client of an ecr remote (type = ecr). */
static int open_ecr_remote(const struct remote_def *def, struct http_engine *http, int retries,
			   struct registry_client **client, struct ecr_end **end,
			   struct dth_err *err)
{
	struct buf url = BUF_INIT;
	struct ecr_end *e = xcalloc(1, sizeof(*e));
	e->name = def->name;
	buf_init(&e->repos);
	int rc = -EINVAL;
	if (ecr_registry_url(def, &url)) {
		err_set(err, -EINVAL, "remote '%s': bad account '%s' or region '%s'", def->name,
			def->account, def->region);
		goto fail;
	}
	if (remote_open_creds(def, http, &e->creds, err))
		goto fail;
	struct retry_policy retry = RETRY_POLICY_DEFAULT;
	int r = retries >= 0 ? retries : def->retries;
	if (r >= 0)
		retry.max_attempts = (unsigned)r + 1;
	struct ecr_config ec = {
	    .name = def->name,
	    .region = def->region,
	    .account = def->account,
	    .endpoint = def->endpoint,
	    .creds = e->creds,
	    .http = http,
	    .retry = retry,
	};
	e->ecr = ecr_client_new(&ec);
	if (!e->ecr) {
		err_set(err, -EINVAL, "remote '%s': bad ecr configuration (region %s, endpoint %s)",
			def->name, def->region, def->endpoint ? def->endpoint : "derived");
		goto fail;
	}
	struct registry_config rc_ = {
	    .name = def->name,
	    .url = url.data,
	    .insecure = def->insecure,
	    .http = http,
	    .retry = retry,
	};
	*client = registry_client_new(&rc_, err);
	if (!*client) {
		err_prefix(err, "remote '%s'", def->name);
		goto fail;
	}
	e->reg = *client;
	log_info("remote %s: ecr api %s, registry %s", def->name, ecr_client_endpoint(e->ecr),
		 registry_client_url(*client));
	*end = e;
	buf_release(&url);
	return 0;
fail:
	ecr_end_free(e);
	buf_release(&url);
	return rc;
}

/* Open the registry (or ecr) remote called name. */
static int open_registry_remote(const struct config *cfg, const char *name, int retries,
				struct http_engine **http, struct registry_client **client,
				struct ecr_end **ecr, struct dth_err *err)
{
	*ecr = NULL;
	const struct remote_def *def = config_remote(cfg, name);
	if (!def) {
		const char *path = config_path(cfg);
		return err_set(err, -EINVAL,
			       "no remote called '%s' (define [remote %s] with type = registry in "
			       "%s)",
			       name, name, path ? path : "the config file");
	}
	bool is_ecr = def->type && !strcmp(def->type, "ecr");
	if (!is_ecr && (!def->type || strcmp(def->type, "registry") != 0))
		return err_set(err, -EINVAL,
			       "remote '%s' is of type %s; dth image sync needs registry or ecr "
			       "remotes",
			       name, def->type ? def->type : "s3");
	*http = remote_http_new(def);
	if (!*http)
		return err_set(err, -ENOMEM, "cannot start the http engine");
	if (is_ecr)
		return open_ecr_remote(def, *http, retries, client, ecr, err);
	struct remote_def d = *def; /* shallow: strings stay the config's */
	if (retries >= 0)
		d.retries = retries;
	if (remote_open_registry(&d, *http, client, err)) {
		err_prefix(err, "remote '%s'", name);
		return -EINVAL;
	}
	return 0;
}

/* "REMOTE:REST" (REMOTE non-empty): *remote malloc'd, *rest into spec. */
static int split_remote(const char *spec, char **remote, const char **rest)
{
	const char *colon = strchr(spec, ':');
	if (!colon || colon == spec)
		return -EINVAL;
	*remote = xstrndup(spec, (size_t)(colon - spec));
	*rest = colon + 1;
	return 0;
}

int ends_image_open(struct image_ends *e, const struct config *cfg, const char *src,
		    const char *dst, int retries, struct dth_err *err)
{
	memset(e, 0, sizeof(*e));
	const char *src_rest, *prefix;
	if (split_remote(src, &e->src_remote, &src_rest) || *src_rest)
		return err_set(err, -EINVAL, "bad source '%s': expected REMOTE:", src);
	if (split_remote(dst, &e->dst_remote, &prefix))
		return err_set(err, -EINVAL, "bad destination '%s': expected REMOTE:[PREFIX]", dst);
	e->dst_prefix = xstrdup(prefix);
	int rc = open_registry_remote(cfg, e->src_remote, retries, &e->http_src, &e->src,
				      &e->ecr_src, err);
	if (!rc)
		rc = open_registry_remote(cfg, e->dst_remote, retries, &e->http_dst, &e->dst,
					  &e->ecr_dst, err);
	return rc;
}

void ends_image_apply(struct image_ends *e, struct image_sync_opts *o)
{
	o->src = e->src;
	o->dst = e->dst;
	o->dst_prefix = e->dst_prefix;
	if (e->ecr_src || e->ecr_dst) {
		o->prepare = ecr_prepare;
		o->prepare_ctx = e;
	}
	if (e->ecr_src) {
		o->list_repos = ecr_list_repos;
		o->list_repos_ctx = e;
	}
}

static json_t *reg_counts_json(const uint64_t *c)
{
	json_t *o = json_object();
	uint64_t total = 0;
	for (int k = 0; k < REGISTRY_REQ__COUNT; k++) {
		json_object_set_new(o, registry_req_kind_name(k), json_integer((json_int_t)c[k]));
		total += c[k];
	}
	json_object_set_new(o, "total", json_integer((json_int_t)total));
	return o;
}

json_t *ends_image_requests_json(const struct image_ends *e)
{
	uint64_t ns[REGISTRY_REQ__COUNT], nd[REGISTRY_REQ__COUNT];
	registry_client_counts(e->src, ns);
	registry_client_counts(e->dst, nd);
	json_t *reqs = json_object();
	json_object_set_new(reqs, "source", reg_counts_json(ns));
	json_object_set_new(reqs, "destination", reg_counts_json(nd));
	const struct ecr_end *ends[2] = {e->ecr_src, e->ecr_dst};
	const char *end_names[2] = {"ecr_source", "ecr_destination"};
	for (int i = 0; i < 2; i++) {
		if (!ends[i])
			continue;
		uint64_t ec[ECR_REQ__COUNT];
		ecr_client_counts(ends[i]->ecr, ec);
		json_t *eo = json_object();
		for (int k = 0; k < ECR_REQ__COUNT; k++)
			json_object_set_new(eo, ecr_req_kind_name(k),
					    json_integer((json_int_t)ec[k]));
		json_object_set_new(reqs, end_names[i], eo);
	}
	return reqs;
}

void ends_image_close(struct image_ends *e)
{
	registry_client_free(e->src);
	registry_client_free(e->dst);
	ecr_end_free(e->ecr_src);
	ecr_end_free(e->ecr_dst);
	http_engine_free(e->http_src);
	http_engine_free(e->http_dst);
	free(e->src_remote);
	free(e->dst_remote);
	free(e->dst_prefix);
	memset(e, 0, sizeof(*e));
}
