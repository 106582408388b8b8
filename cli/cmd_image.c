/* dth image: look at container registries (inspect, tags, repos). */
#include "common/compat.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <pthread.h>
#include <regex.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/image.h"
#include "cli/cli.h"
#include "common/buf.h"
#include "common/util.h"
#include "manifest/manifest.h"
#include "common/log.h"
#include "remote/creds.h"
#include "remote/ecr.h"
#include "remote/http.h"
#include "remote/registry.h"
#include "remote/remotes.h"

static void image_usage(FILE *f)
{
	fputs("usage: dth image inspect [--raw] [--config FILE] REMOTE:REPO[:TAG|@DIGEST]\n"
	      "       dth image tags [--config FILE] REMOTE:REPO\n"
	      "       dth image repos [--config FILE] REMOTE:\n"
	      "       dth image sync [--config FILE] [--state DIR] [--task NAME]\n"
	      "                      (--images LIST | --images-file FILE | --all)\n"
	      "                      [--tags REGEX] [--platform OS/ARCH[/VARIANT][,...]]\n"
	      "                      [--concurrency N] [--json] [--no-progress]\n"
	      "                      SRC: DST:[PREFIX]\n"
	      "\n"
	      "  inspect   the manifest of an image: without --raw, JSON with its digest,\n"
	      "            media type and size (and, for an index, each platform's manifest);\n"
	      "            with --raw, the manifest bytes exactly as the registry serves them\n"
	      "            (tag default: latest)\n"
	      "  tags      every tag of a repository, one per line\n"
	      "  repos     every repository of the registry (its catalog), one per line\n"
	      "  sync      copy images (LIST: repo[:tag],...; a repo without a tag: every tag)\n"
	      "            from SRC to DST (under PREFIX/), manifests byte for byte; a rerun\n"
	      "            skips tags whose source digest is unchanged\n"
	      "            --all: every repository of SRC (its catalog), each with every tag;\n"
	      "            a registry refusing the catalog is a run error (exit 3)\n"
	      "            --tags REGEX: of repos given without a tag (and of --all), only\n"
	      "            tags the POSIX extended REGEX matches whole (explicit tags are kept)\n"
	      "            --platform: copy only those platforms (a platform without a variant\n"
	      "            matches every variant). Without it an index is copied whole, its\n"
	      "            digest kept. With it, for an index: when every child matches, the\n"
	      "            index is copied whole (digest kept); when exactly one matches, the\n"
	      "            destination tag is that child manifest itself (the child's digest);\n"
	      "            when several match, the tag gets a new index of only those children\n"
	      "            (same media type, a new digest, recorded as the tag's dst_digest);\n"
	      "            when none matches, the tag is skipped with a note. An image manifest\n"
	      "            whose config is for another platform is skipped with a note.\n"
	      "            Reruns skip a tag only when its source and the --platform selection\n"
	      "            (any order) are those of its last copy\n"
	      "            On a terminal a live line (stderr) shows tags done/known, copied,\n"
	      "            unchanged, failed, blobs, bytes and rate; --no-progress: none\n"
	      "\n"
	      "REMOTE is a [remote NAME] of type registry in the config file (dth image sync\n"
	      "also takes type ecr: the ECR API gives the registry credentials, renewed before\n"
	      "they expire, destination repositories are created when missing, and --all lists\n"
	      "the repositories with DescribeRepositories).\n"
	      "\nexit status: 0 done, 1 failed, 2 bad usage or config, 3 the registry cannot be\n"
	      "reached, refuses the credentials or has no such image\n",
	      f);
}

struct image_ctx {
	struct config *cfg;
	struct http_engine *http;
	struct registry_client *client;
};

static void image_close(struct image_ctx *x)
{
	registry_client_free(x->client);
	http_engine_free(x->http);
	config_free(x->cfg);
}

/* Open REMOTE (the part of spec before ':'); *rest points after the ':'. */
static int image_open(struct image_ctx *x, const char *cfg_file, const char *spec,
		      const char **rest)
{
	memset(x, 0, sizeof(*x));
	const char *colon = strchr(spec, ':');
	if (!colon || colon == spec) {
		cli_error("bad image '%s': expected REMOTE:REPO[:TAG|@DIGEST]", spec);
		return EXIT_USAGE;
	}
	*rest = colon + 1;
	int rc = cli_config_load(cfg_file, &x->cfg);
	if (rc)
		return rc;
	char *name = xstrndup(spec, (size_t)(colon - spec));
	const struct remote_def *def = config_remote(x->cfg, name);
	if (!def) {
		const char *path = config_path(x->cfg);
		cli_error(
		    "no remote called '%s' (define [remote %s] with type = registry in %s, or "
		    "set DTH_REMOTE_%s_TYPE=registry and DTH_REMOTE_%s_URL)",
		    name, name, path ? path : "the config file", name, name);
		free(name);
		return EXIT_USAGE;
	}
	if (!def->type || strcmp(def->type, "registry") != 0) {
		cli_error("remote '%s' is of type %s; dth image needs a registry remote", name,
			  def->type ? def->type : "s3");
		free(name);
		return EXIT_USAGE;
	}
	x->http = remote_http_new(def);
	if (!x->http) {
		cli_error("cannot start the http engine");
		free(name);
		return EXIT_SOME_FAILED;
	}
	struct dth_err err;
	err_clear(&err);
	if (remote_open_registry(def, x->http, &x->client, &err)) {
		cli_error("remote '%s': %s", name, err.message);
		free(name);
		return EXIT_USAGE;
	}
	free(name);
	return EXIT_DONE;
}

static int image_fail(int rc, const struct dth_err *err)
{
	cli_error("%s", err->message[0] ? err->message : strerror(-rc));
	if (rc == -EINVAL && err->http_status == 0)
		return EXIT_USAGE;
	if (rc == -ENOTSUP || rc == -EBADMSG)
		return EXIT_SOME_FAILED;
	return cli_exit_for_remote(rc);
}

static void platform_str(json_t *p, struct buf *out)
{
	const char *os = json_string_value(json_object_get(p, "os"));
	const char *arch = json_string_value(json_object_get(p, "architecture"));
	const char *var = json_string_value(json_object_get(p, "variant"));
	buf_addf(out, "%s/%s", os ? os : "?", arch ? arch : "?");
	if (var)
		buf_addf(out, "/%s", var);
}

/* The JSON summary of a manifest. */
static json_t *inspect_json(const char *repo, const char *ref, const struct registry_manifest *m)
{
	json_t *o = json_object();
	json_object_set_new(o, "name", json_string(repo));
	json_object_set_new(o, "reference", json_string(ref));
	json_object_set_new(o, "digest", json_string(m->digest));
	json_object_set_new(o, "mediaType", json_string(m->media_type));
	json_object_set_new(o, "size", json_integer((json_int_t)m->size));
	json_t *doc = json_loadb(m->body.data, m->body.len, 0, NULL);
	enum registry_manifest_kind k = registry_media_type_kind(m->media_type);
	json_object_set_new(o, "kind", json_string(k == REGISTRY_KIND_INDEX ? "index" : "image"));
	if (doc && k == REGISTRY_KIND_INDEX) {
		json_t *arr = json_array();
		size_t i;
		json_t *c;
		json_array_foreach(json_object_get(doc, "manifests"), i, c)
		{
			json_t *e = json_object();
			json_object_set(e, "digest", json_object_get(c, "digest"));
			json_object_set(e, "mediaType", json_object_get(c, "mediaType"));
			json_object_set(e, "size", json_object_get(c, "size"));
			json_t *p = json_object_get(c, "platform");
			if (json_is_object(p)) {
				struct buf ps = BUF_INIT;
				platform_str(p, &ps);
				json_object_set_new(e, "platform", json_string(buf_str(&ps)));
				buf_release(&ps);
			}
			json_array_append_new(arr, e);
		}
		json_object_set_new(o, "manifests", arr);
	} else if (doc) {
		json_t *cfg = json_object_get(doc, "config");
		if (json_is_object(cfg))
			json_object_set(o, "config", json_object_get(cfg, "digest"));
		json_t *arr = json_array();
		size_t i;
		json_t *l;
		uint64_t total = 0;
		json_array_foreach(json_object_get(doc, "layers"), i, l)
		{
			json_t *e = json_object();
			json_object_set(e, "digest", json_object_get(l, "digest"));
			json_object_set(e, "mediaType", json_object_get(l, "mediaType"));
			json_object_set(e, "size", json_object_get(l, "size"));
			json_t *sz = json_object_get(l, "size");
			if (json_is_integer(sz))
				total += (uint64_t)json_integer_value(sz);
			json_array_append_new(arr, e);
		}
		json_object_set_new(o, "layers", arr);
		json_object_set_new(o, "layersSize", json_integer((json_int_t)total));
	}
	json_decref(doc);
	return o;
}

static int image_inspect(const char *config, bool raw, const char *spec)
{
	struct image_ctx x;
	const char *rest;
	int ec = image_open(&x, config, spec, &rest);
	if (ec) {
		image_close(&x);
		return ec;
	}
	char *repo = NULL, *tag = NULL, *digest = NULL;
	struct dth_err err;
	err_clear(&err);
	struct registry_manifest m;
	registry_manifest_init(&m);
	int rc = registry_parse_reference(rest, &repo, &tag, &digest, &err);
	if (rc) {
		cli_error("%s", err.message);
		ec = EXIT_USAGE;
		goto cleanup;
	}
	const char *ref = digest ? digest : tag ? tag : "latest";
	rc = registry_manifest_get(x.client, repo, ref, &m, &err);
	if (rc) {
		ec = image_fail(rc, &err);
		goto cleanup;
	}
	if (raw) {
		if (fwrite(m.body.data, 1, m.body.len, stdout) != m.body.len) {
			cli_error("cannot write the manifest: %s", strerror(errno));
			ec = EXIT_SOME_FAILED;
			goto cleanup;
		}
	} else {
		json_t *o = inspect_json(repo, ref, &m);
		char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		printf("%s\n", s ? s : "{}");
		free(s);
		json_decref(o);
	}
	if (fflush(stdout) != 0) {
		cli_error("cannot write the output: %s", strerror(errno));
		ec = EXIT_SOME_FAILED;
	}
cleanup:
	registry_manifest_release(&m);
	free(repo);
	free(tag);
	free(digest);
	image_close(&x);
	return ec;
}

static int print_name(void *ctx, const char *name)
{
	(void)ctx;
	if (printf("%s\n", name) < 0)
		return -EIO;
	return 0;
}

static int image_list(const char *config, bool catalog, const char *spec)
{
	struct image_ctx x;
	const char *rest;
	int ec = image_open(&x, config, spec, &rest);
	if (ec) {
		image_close(&x);
		return ec;
	}
	struct dth_err err;
	err_clear(&err);
	int rc;
	if (catalog) {
		if (*rest) {
			cli_error("dth image repos takes REMOTE: (nothing after the ':')");
			image_close(&x);
			return EXIT_USAGE;
		}
		rc = registry_catalog(x.client, print_name, NULL, &err);
	} else {
		if (!*rest || strchr(rest, '@') ||
		    strchr(strchr(rest, '/') ? strrchr(rest, '/') : rest, ':')) {
			cli_error("dth image tags takes REMOTE:REPO (no tag or digest)");
			image_close(&x);
			return EXIT_USAGE;
		}
		rc = registry_tags_list(x.client, rest, print_name, NULL, &err);
	}
	if (rc)
		ec = image_fail(rc, &err);
	else if (fflush(stdout) != 0)
		ec = EXIT_SOME_FAILED;
	image_close(&x);
	return ec;
}

/* ---- dth image sync ---- */

static volatile sig_atomic_t sync_stop;

static void on_sync_signal(int sig)
{
	(void)sig;
	sync_stop = 1;
}

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

struct ecr_hooks {
	struct ecr_end *src, *dst;
};

/* image_sync_opts.prepare: credentials of an ECR end, and the destination
 * repository. */
static int ecr_prepare(void *ctx, bool dst, const char *repo, bool refresh, struct dth_err *err)
{
	struct ecr_hooks *h = ctx;
	struct ecr_end *e = dst ? h->dst : h->src;
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
	struct ecr_hooks *h = ctx;
	struct ecr_list_ctx l = {fn, fn_ctx};
	return ecr_describe_repositories(h->src->ecr, 0, ecr_list_one, &l, err);
}

/* The ECR API client and registry client of an ecr remote (type = ecr). */
static int open_ecr_remote(const struct remote_def *def, struct http_engine *http,
			   struct registry_client **client, struct ecr_end **end)
{
	struct dth_err err;
	err_clear(&err);
	struct buf url = BUF_INIT;
	struct ecr_end *e = xcalloc(1, sizeof(*e));
	e->name = def->name;
	buf_init(&e->repos);
	int exitc = EXIT_USAGE;
	if (ecr_registry_url(def, &url)) {
		cli_error("remote '%s': bad account '%s' or region '%s'", def->name, def->account,
			  def->region);
		goto fail;
	}
	if (remote_open_creds(def, http, &e->creds, &err)) {
		cli_error("%s", err.message);
		goto fail;
	}
	struct retry_policy retry = RETRY_POLICY_DEFAULT;
	if (def->retries >= 0)
		retry.max_attempts = (unsigned)def->retries + 1;
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
		cli_error("remote '%s': bad ecr configuration (region %s, endpoint %s)", def->name,
			  def->region, def->endpoint ? def->endpoint : "derived");
		goto fail;
	}
	struct registry_config rc = {
	    .name = def->name,
	    .url = url.data,
	    .insecure = def->insecure,
	    .http = http,
	    .retry = retry,
	};
	*client = registry_client_new(&rc, &err);
	if (!*client) {
		cli_error("remote '%s': %s", def->name, err.message);
		goto fail;
	}
	e->reg = *client;
	log_info("remote %s: ecr api %s, registry %s", def->name, ecr_client_endpoint(e->ecr),
		 registry_client_url(*client));
	*end = e;
	buf_release(&url);
	return EXIT_DONE;
fail:
	ecr_end_free(e);
	buf_release(&url);
	return exitc;
}

/* Open the registry remote called name from cfg (EXIT_USAGE after printing
 * why); for an ecr remote also *ecr (else NULL). */
static int open_registry_remote(struct config *cfg, const char *name, struct http_engine **http,
				struct registry_client **client, struct ecr_end **ecr)
{
	*ecr = NULL;
	const struct remote_def *def = config_remote(cfg, name);
	if (!def) {
		const char *path = config_path(cfg);
		cli_error("no remote called '%s' (define [remote %s] with type = registry in %s)",
			  name, name, path ? path : "the config file");
		return EXIT_USAGE;
	}
	bool is_ecr = def->type && !strcmp(def->type, "ecr");
	if (!is_ecr && (!def->type || strcmp(def->type, "registry") != 0)) {
		cli_error("remote '%s' is of type %s; dth image sync needs registry or ecr remotes",
			  name, def->type ? def->type : "s3");
		return EXIT_USAGE;
	}
	*http = remote_http_new(def);
	if (!*http) {
		cli_error("cannot start the http engine");
		return EXIT_SOME_FAILED;
	}
	if (is_ecr)
		return open_ecr_remote(def, *http, client, ecr);
	struct dth_err err;
	err_clear(&err);
	if (remote_open_registry(def, *http, client, &err)) {
		cli_error("remote '%s': %s", name, err.message);
		return EXIT_USAGE;
	}
	return EXIT_DONE;
}

/* Split "REMOTE:REST" (REMOTE non-empty). */
static int split_remote(const char *spec, char **remote, const char **rest)
{
	const char *colon = strchr(spec, ':');
	if (!colon || colon == spec)
		return -EINVAL;
	*remote = xstrndup(spec, (size_t)(colon - spec));
	*rest = colon + 1;
	return 0;
}

/* Append the comma-separated entries of list (trimmed, non-empty) to v. */
static void add_images(const char *list, char sep, char ***v, size_t *n)
{
	const char *p = list;
	while (*p) {
		const char *e = strchr(p, sep);
		if (!e)
			e = p + strlen(p);
		const char *a = p, *b = e;
		while (a < b && (*a == ' ' || *a == '\t' || *a == '\r'))
			a++;
		while (b > a && (b[-1] == ' ' || b[-1] == '\t' || b[-1] == '\r'))
			b--;
		if (b > a && *a != '#') {
			*v = realloc(*v, (*n + 1) * sizeof(**v));
			if (!*v)
				abort();
			(*v)[(*n)++] = xstrndup(a, (size_t)(b - a));
		}
		p = *e ? e + 1 : e;
	}
}

struct sync_failures {
	json_t *list;
	json_t *notes;
	struct progress *pg; /* NULL, or the progress line to clear around messages */
};

/* The live progress line of image sync (progress thread). */
static void draw_image_progress(void *ctx, double elapsed)
{
	struct image_progress *p = ctx;
#define LD(f) ((unsigned long long)__atomic_load_n(&p->f, __ATOMIC_RELAXED))
	unsigned long long copied = LD(copied), skipped = LD(skipped), failed = LD(failed);
	unsigned long long done = copied + skipped + failed + LD(filtered);
	uint64_t bytes = __atomic_load_n(&p->bytes, __ATOMIC_RELAXED);
	bool all_known = __atomic_load_n(&p->listing_done, __ATOMIC_RELAXED);
	char b[32], r[32];
	progress_fmt_bytes(bytes, b);
	progress_fmt_bytes(elapsed > 0 ? (uint64_t)((double)bytes / elapsed) : 0, r);
	fprintf(stderr,
		"tags %llu/%llu%s, copied %llu, unchanged %llu, failed %llu; blobs %llu, %s at "
		"%s/s",
		done, LD(tags), all_known ? "" : "+", copied, skipped, failed, LD(blobs), b, r);
#undef LD
}

static void on_image_note(void *ctx, const char *ref, const char *message)
{
	struct sync_failures *f = ctx;
	json_array_append_new(f->notes, json_pack("{s:s, s:s}", "image", ref, "note", message));
	progress_suspend(f->pg);
	fprintf(stderr, "dth: note: %s: %s\n", ref, message);
	progress_resume(f->pg);
}

static void on_image_failure(void *ctx, const char *ref, int rc, const char *message)
{
	struct sync_failures *f = ctx;
	(void)rc;
	json_array_append_new(f->list, json_pack("{s:s, s:s}", "image", ref, "error", message));
	progress_suspend(f->pg);
	cli_error("%s: %s", ref, message);
	progress_resume(f->pg);
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

static int image_sync_cmd(int argc, char **argv)
{
	const char *config = NULL, *task_name = NULL, *state_opt = NULL, *images_file = NULL;
	bool json = false, no_progress = false;
	unsigned long conc = 8;
	char **images = NULL;
	size_t n_images = 0;
	int exitc = EXIT_USAGE;
	struct config *cfg = NULL;
	struct http_engine *hs = NULL, *hd = NULL;
	struct registry_client *cs = NULL, *cd = NULL;
	struct ecr_end *es = NULL, *ed = NULL;
	char *src_name = NULL, *dst_name = NULL, *state_dir = NULL;
	struct manifest *m = NULL;
	struct buf tname = BUF_INIT;
	struct sync_failures fails = {json_array(), json_array(), NULL};
	bool all = false, have_re = false;
	const char *tags_arg = NULL, *platform_arg = NULL;
	regex_t tags_re;
	struct image_platform *platforms = NULL;
	size_t n_platforms = 0;
	struct dth_err err;
	err_clear(&err);
	enum {
		O_CONFIG = 256,
		O_STATE,
		O_TASK,
		O_IMAGES,
		O_IMAGES_FILE,
		O_CONC,
		O_JSON,
		O_HELP,
		O_ALL,
		O_TAGS,
		O_PLATFORM,
		O_NO_PROGRESS
	};
	static const struct option opts[] = {
	    {"config", required_argument, NULL, O_CONFIG},
	    {"state", required_argument, NULL, O_STATE},
	    {"task", required_argument, NULL, O_TASK},
	    {"images", required_argument, NULL, O_IMAGES},
	    {"images-file", required_argument, NULL, O_IMAGES_FILE},
	    {"concurrency", required_argument, NULL, O_CONC},
	    {"json", no_argument, NULL, O_JSON},
	    {"all", no_argument, NULL, O_ALL},
	    {"tags", required_argument, NULL, O_TAGS},
	    {"platform", required_argument, NULL, O_PLATFORM},
	    {"no-progress", no_argument, NULL, O_NO_PROGRESS},
	    {"help", no_argument, NULL, O_HELP},
	    {NULL, 0, NULL, 0},
	};
	optind = 1;
	opterr = 0;
	int c;
	bool images_given = false;
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (c) {
		case O_CONFIG:
			config = optarg;
			break;
		case O_STATE:
			state_opt = optarg;
			break;
		case O_TASK:
			task_name = optarg;
			break;
		case O_IMAGES:
			images_given = true;
			add_images(optarg, ',', &images, &n_images);
			break;
		case O_IMAGES_FILE:
			images_file = optarg;
			break;
		case O_CONC: {
			char *end;
			errno = 0;
			conc = strtoul(optarg, &end, 10);
			if (errno || *end || end == optarg || conc < 1 || conc > 256) {
				cli_error("image sync: bad value '%s' for --concurrency (1-256)",
					  optarg);
				goto out;
			}
			break;
		}
		case O_JSON:
			json = true;
			break;
		case O_ALL:
			all = true;
			break;
		case O_TAGS:
			tags_arg = optarg;
			break;
		case O_PLATFORM:
			platform_arg = optarg;
			break;
		case O_NO_PROGRESS:
			no_progress = true;
			break;
		case 'h':
		case O_HELP:
			image_usage(stdout);
			exitc = EXIT_DONE;
			goto out;
		default:
			cli_error("image sync: unknown or incomplete option '%s'",
				  argv[optind - 1]);
			image_usage(stderr);
			goto out;
		}
	}
	if (argc - optind != 2) {
		cli_error(
		    "image sync needs a source and a destination (REMOTE: and REMOTE:[PREFIX])");
		goto out;
	}
	if (images_file) {
		images_given = true;
		FILE *f = fopen(images_file, "r");
		if (!f) {
			cli_error("--images-file %s: %s", images_file, strerror(errno));
			goto out;
		}
		struct buf text = BUF_INIT;
		char chunk[4096];
		size_t got;
		while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0)
			buf_add(&text, chunk, got);
		fclose(f);
		add_images(buf_str(&text), '\n', &images, &n_images);
		buf_release(&text);
	}
	if (all && images_given) {
		cli_error("image sync: give --all or --images/--images-file, not both");
		goto out;
	}
	if (!all && (!images_given || n_images == 0)) {
		cli_error("image sync needs --images LIST, --images-file FILE or --all");
		goto out;
	}
	if (tags_arg) {
		struct buf wrapped = BUF_INIT;
		buf_addf(&wrapped, "^(%s)$", tags_arg);
		regex_t plain;
		int rrc = regcomp(&plain, tags_arg, REG_EXTENDED | REG_NOSUB);
		if (rrc == 0) {
			regfree(&plain);
			rrc = regcomp(&tags_re, wrapped.data, REG_EXTENDED);
		} else {
			memcpy(&tags_re, &plain, sizeof(plain));
		}
		buf_release(&wrapped);
		if (rrc) {
			char msg[256];
			regerror(rrc, &tags_re, msg, sizeof(msg));
			cli_error("image sync: bad --tags regex '%s': %s", tags_arg, msg);
			goto out;
		}
		have_re = true;
	}
	if (platform_arg) {
		struct dth_err perr;
		err_clear(&perr);
		if (image_parse_platforms(platform_arg, &platforms, &n_platforms, &perr)) {
			cli_error("image sync: %s", perr.message);
			goto out;
		}
	}
	const char *src = argv[optind], *dst = argv[optind + 1];
	const char *src_rest, *prefix;
	if (split_remote(src, &src_name, &src_rest) || *src_rest) {
		cli_error("bad source '%s': expected REMOTE:", src);
		goto out;
	}
	if (split_remote(dst, &dst_name, &prefix)) {
		cli_error("bad destination '%s': expected REMOTE:[PREFIX]", dst);
		goto out;
	}
	exitc = cli_config_load(config, &cfg);
	if (exitc)
		goto out;
	exitc = open_registry_remote(cfg, src_name, &hs, &cs, &es);
	if (!exitc)
		exitc = open_registry_remote(cfg, dst_name, &hd, &cd, &ed);
	if (exitc)
		goto out;
	exitc = EXIT_USAGE;

	if (task_name)
		buf_adds(&tname, task_name);
	else
		buf_addf(&tname, "image:%s--%s", src, dst);
	struct task_record trec;
	if (cli_task_record_new(&trec, tname.data, src, dst, "image"))
		goto out;
	state_dir = cli_state_dir(state_opt);
	m = manifest_open(state_dir, MANIFEST_RDWR, &err);
	if (!m) {
		cli_error("state directory %s: %s", state_dir, err.message);
		goto out;
	}
	uint32_t task_id;
	bool created;
	int rc = manifest_task_ensure(m, &trec, &task_id, &created);
	if (!rc)
		rc = manifest_task_find(m, tname.data, &task_id, &trec);
	if (rc) {
		cli_error("task %s: %s", tname.data, strerror(-rc));
		exitc = EXIT_SOME_FAILED;
		goto out;
	}
	if (strcmp(trec.kind, "image") || strcmp(trec.src, src) || strcmp(trec.dst, dst)) {
		cli_error("task '%s' is a %s task copying %s to %s, not images from %s to %s: "
			  "choose another --task name",
			  tname.data, trec.kind, trec.src, trec.dst, src, dst);
		goto out;
	}

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sync_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* Still "running": the last run never ended (killed, or the host went down). */
	bool after_crash = !strcmp(trec.state, "running");
	if (after_crash)
		log_info("task %s: the last run did not end; blobs it may have uploaded are "
			 "checked at the destination",
			 tname.data);
	str_copy_fit(trec.state, "running", sizeof(trec.state));
	trec.last_run_start = (int64_t)time(NULL);
	if (manifest_task_put(m, task_id, &trec))
		cli_error("could not update task %s", tname.data);

	struct image_sync_opts o;
	memset(&o, 0, sizeof(o));
	o.src = cs;
	o.dst = cd;
	o.dst_prefix = prefix;
	o.manifest = m;
	o.task_id = task_id;
	o.images = (const char *const *)images;
	o.n_images = n_images;
	o.all = all;
	o.tags_re = have_re ? &tags_re : NULL;
	o.platforms = platforms;
	o.n_platforms = n_platforms;
	o.on_note = on_image_note;
	o.on_note_ctx = &fails;
	o.concurrency = (unsigned)conc;
	o.after_crash = after_crash;
	o.on_failure = on_image_failure;
	o.on_failure_ctx = &fails;
	o.stop = &sync_stop;
	struct ecr_hooks hooks = {es, ed};
	if (es || ed) {
		o.prepare = ecr_prepare;
		o.prepare_ctx = &hooks;
	}
	if (es) {
		o.list_repos = ecr_list_repos;
		o.list_repos_ctx = &hooks;
	}
	struct image_progress live;
	memset(&live, 0, sizeof(live));
	o.progress = &live;
	struct image_sync_result res;
	err_clear(&err);
	fails.pg = progress_start_with(!json && !no_progress, draw_image_progress, &live);
	rc = image_sync_run(&o, &res, &err);
	progress_stop(fails.pg);
	fails.pg = NULL;

	trec.last_run_end = (int64_t)time(NULL);
	if (rc == 0) {
		trec.runs++;
		str_copy_fit(trec.state, res.failed ? "error" : "idle", sizeof(trec.state));
	} else {
		str_copy_fit(trec.state, rc == -EINTR ? "stopped" : "error", sizeof(trec.state));
	}
	if (manifest_task_put(m, task_id, &trec))
		cli_error("could not update task %s", tname.data);

	uint64_t ns[REGISTRY_REQ__COUNT], nd[REGISTRY_REQ__COUNT];
	registry_client_counts(cs, ns);
	registry_client_counts(cd, nd);
	if (rc) {
		cli_error("%s", err.message[0] ? err.message : strerror(-rc));
		exitc = res.unreachable ? EXIT_UNREACHABLE : EXIT_SOME_FAILED;
	} else if (res.unreachable) {
		exitc = EXIT_UNREACHABLE;
	} else {
		exitc = res.failed ? EXIT_SOME_FAILED : EXIT_DONE;
	}
	if (json) {
		json_t *reqs = json_object();
		json_object_set_new(reqs, "source", reg_counts_json(ns));
		json_object_set_new(reqs, "destination", reg_counts_json(nd));
		struct ecr_end *ends[2] = {es, ed};
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
		json_t *out = json_pack(
		    "{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:o}", "task", tname.data,
		    "images", (json_int_t)res.images, "copied", (json_int_t)res.copied, "skipped",
		    (json_int_t)res.skipped, "failed", (json_int_t)res.failed, "blobs",
		    (json_int_t)res.blobs, "blobs_mounted", (json_int_t)res.blobs_mounted,
		    "blobs_present", (json_int_t)res.blobs_present, "bytes", (json_int_t)res.bytes,
		    "seconds", res.seconds, "requests", reqs);
		json_object_set(out, "failures", fails.list);
		json_object_set_new(out, "filtered", json_integer((json_int_t)res.filtered));
		json_object_set(out, "notes", fails.notes);
		if (rc)
			json_object_set_new(out, "error", json_string(err.message));
		char *s = json_dumps(out, JSON_COMPACT);
		if (s) {
			puts(s);
			free(s);
		}
		json_decref(out);
	} else {
		char b[32];
		progress_fmt_bytes(res.bytes, b);
		uint64_t total = 0;
		for (int k = 0; k < REGISTRY_REQ__COUNT; k++)
			total += ns[k] + nd[k];
		fprintf(stderr,
			"%s: %llu images copied, %llu unchanged, %llu failed; %llu blobs (%s) in "
			"%.1f s (%llu requests)\n",
			tname.data, (unsigned long long)res.copied, (unsigned long long)res.skipped,
			(unsigned long long)res.failed, (unsigned long long)res.blobs, b,
			res.seconds, (unsigned long long)total);
	}
out:
	json_decref(fails.list);
	json_decref(fails.notes);
	if (have_re)
		regfree(&tags_re);
	free(platforms);
	if (m)
		manifest_free(m);
	registry_client_free(cs);
	registry_client_free(cd);
	ecr_end_free(es);
	ecr_end_free(ed);
	http_engine_free(hs);
	http_engine_free(hd);
	config_free(cfg);
	for (size_t i = 0; i < n_images; i++)
		free(images[i]);
	free(images);
	free(src_name);
	free(dst_name);
	free(state_dir);
	buf_release(&tname);
	return exitc;
}

int cmd_image(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		image_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : EXIT_DONE;
	}
	const char *sub = argv[1];
	if (!strcmp(sub, "sync"))
		return image_sync_cmd(argc - 1, argv + 1);
	bool raw = false;
	const char *config = NULL;
	static const struct option opts[] = {
	    {"raw", no_argument, NULL, 'r'},
	    {"config", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	optind = 1;
	int c;
	while ((c = getopt_long(argc - 1, argv + 1, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			raw = true;
			break;
		case 'c':
			config = optarg;
			break;
		case 'h':
			image_usage(stdout);
			return EXIT_DONE;
		default:
			image_usage(stderr);
			return EXIT_USAGE;
		}
	}
	int nargs = argc - 1 - optind;
	char **args = argv + 1 + optind;
	if (nargs != 1) {
		cli_error("dth image %s takes one argument", sub);
		image_usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(sub, "inspect"))
		return image_inspect(config, raw, args[0]);
	if (raw) {
		cli_error("--raw applies to dth image inspect only");
		return EXIT_USAGE;
	}
	if (!strcmp(sub, "tags"))
		return image_list(config, false, args[0]);
	if (!strcmp(sub, "repos"))
		return image_list(config, true, args[0]);
	cli_error("unknown image command '%s' (inspect, tags, repos)", sub);
	image_usage(stderr);
	return EXIT_USAGE;
}
