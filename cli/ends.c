/* Opening the source and destination of a task from the config. */
#include "common/compat.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/sync.h"
#include "cli/cli.h"
#include "common/buf.h"
#include "common/util.h"
#include "manifest/manifest.h"
#include "remote/creds.h"
#include "remote/http.h"
#include "remote/remotes.h"
#include "remote/s3.h"

int cli_config_load(const char *config_path, struct config **out)
{
	struct dth_err err;
	err_clear(&err);
	*out = config_load(config_path, &err);
	if (!*out) {
		cli_error("%s", err.message[0] ? err.message : "cannot load the configuration");
		return EXIT_USAGE;
	}
	return EXIT_DONE;
}

int cli_task_record_new(struct task_record *t, const char *name, const char *src, const char *dst,
			const char *kind)
{
	memset(t, 0, sizeof(*t));
	if (str_copy(t->name, name, sizeof(t->name))) {
		cli_error("the task name is %zu bytes; a task name has at most %zu: choose a "
			  "shorter one with --task NAME",
			  strlen(name), sizeof(t->name) - 1);
		return EXIT_USAGE;
	}
	if (str_copy(t->src, src, sizeof(t->src)) || str_copy(t->dst, dst, sizeof(t->dst))) {
		cli_error("a source or destination of more than %zu bytes cannot be recorded in "
			  "the manifest",
			  sizeof(t->src) - 1);
		return EXIT_USAGE;
	}
	if (str_copy(t->kind, kind, sizeof(t->kind)) ||
	    str_copy(t->state, "starting", sizeof(t->state)))
		return EXIT_USAGE; /* constants that fit */
	t->created = (int64_t)time(NULL);
	return EXIT_DONE;
}

char *cli_state_dir(const char *opt)
{
	if (opt && *opt)
		return xstrdup(opt);
	struct buf b = BUF_INIT;
	manifest_default_dir(&b);
	return buf_detach(&b, NULL);
}

static int retries_override = -1;

void cli_set_retries(int retries)
{
	retries_override = retries;
}

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

static int open_one(struct cli_ends *e, const char *spec, char **remote, char **bucket,
		    char **prefix, struct http_engine **http, struct creds_provider **creds,
		    struct s3_client **client, const struct remote_def **def_out)
{
	struct dth_err err;
	err_clear(&err);
	if (remote_parse_path(spec, remote, bucket, prefix, &err)) {
		cli_error("%s", err.message);
		return EXIT_USAGE;
	}
	*prefix = dir_prefix(*prefix);
	const struct remote_def *def = config_remote(e->cfg, *remote);
	if (!def) {
		const char *path = config_path(e->cfg);
		cli_error("no remote called '%s' (define [remote %s] in %s, or set "
			  "DTH_REMOTE_%s_ENDPOINT and friends)",
			  *remote, *remote, path ? path : "the config file", *remote);
		return EXIT_USAGE;
	}
	if (def->type && strcmp(def->type, "s3") != 0) {
		cli_error("remote '%s' is of type %s; this command needs an s3 remote", *remote,
			  def->type);
		return EXIT_USAGE;
	}
	*http = remote_http_new(def);
	if (!*http) {
		cli_error("cannot start the http engine");
		return EXIT_SOME_FAILED;
	}
	struct remote_def d = *def; /* shallow: strings stay the config's */
	if (retries_override >= 0)
		d.retries = retries_override;
	if (remote_open_s3(&d, *http, creds, client, &err)) {
		cli_error("remote '%s': %s", *remote, err.message);
		return EXIT_USAGE;
	}
	*def_out = def;
	return EXIT_DONE;
}

int cli_ends_open(struct cli_ends *e, const char *config_path, const char *src, const char *dst)
{
	memset(e, 0, sizeof(*e));
	int rc = cli_config_load(config_path, &e->cfg);
	if (rc)
		return rc;
	const struct remote_def *ds = NULL, *dd = NULL;
	rc = open_one(e, src, &e->src_remote, &e->src_bucket, &e->src_prefix, &e->http_src,
		      &e->creds_src, &e->src, &ds);
	if (rc || !dst)
		return rc;
	rc = open_one(e, dst, &e->dst_remote, &e->dst_bucket, &e->dst_prefix, &e->http_dst,
		      &e->creds_dst, &e->dst, &dd);
	if (rc)
		return rc;
	/* Server-side copy needs one endpoint and credentials that can read the source. */
	if (!strcmp(e->src_remote, e->dst_remote)) {
		e->same_endpoint = true;
	} else if (ds->endpoint && dd->endpoint && !strcmp(ds->endpoint, dd->endpoint) &&
		   ds->access_key_id && dd->access_key_id &&
		   !strcmp(ds->access_key_id, dd->access_key_id) && ds->secret_access_key &&
		   dd->secret_access_key && !strcmp(ds->secret_access_key, dd->secret_access_key)) {
		e->same_endpoint = true;
	}
	return EXIT_DONE;
}

void cli_ends_close(struct cli_ends *e)
{
	s3_client_free(e->src);
	s3_client_free(e->dst);
	creds_provider_free(e->creds_src);
	creds_provider_free(e->creds_dst);
	http_engine_free(e->http_src);
	http_engine_free(e->http_dst);
	config_free(e->cfg);
	free(e->src_remote);
	free(e->src_bucket);
	free(e->src_prefix);
	free(e->dst_remote);
	free(e->dst_bucket);
	free(e->dst_prefix);
	memset(e, 0, sizeof(*e));
}

void cli_sync_opts_init(struct sync_opts *o, const struct cli_ends *e, struct manifest *m,
			uint32_t id, const struct task_record *rec)
{
	memset(o, 0, sizeof(*o));
	o->src = e->src;
	o->dst = e->dst;
	o->src_bucket = e->src_bucket;
	o->src_prefix = e->src_prefix;
	o->dst_bucket = e->dst_bucket;
	o->dst_prefix = e->dst_prefix;
	o->same_endpoint = e->same_endpoint;
	o->manifest = m;
	o->task_id = id;
	o->merge_destination = !rec->dest_listed;
	o->concurrency = 16;
	o->multipart_threshold = 16ULL << 20;
	o->part_size = 8ULL << 20;
	o->metadata = true;
}
