/* The config, the state directory and the ends of an S3 task for the
 * commands that open them themselves (dth manifest, dth mount). */
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

int cli_ends_open(struct cli_ends *e, const char *config_path, const char *src, const char *dst)
{
	memset(e, 0, sizeof(*e));
	int rc = cli_config_load(config_path, &e->cfg);
	if (rc)
		return rc;
	struct dth_err err;
	err_clear(&err);
	rc = ends_s3_open(&e->s, e->cfg, src, dst, retries_override, false, &err);
	if (rc) {
		cli_error("%s", err.message);
		return rc == -ENOMEM ? EXIT_SOME_FAILED : EXIT_USAGE;
	}
	return EXIT_DONE;
}

void cli_ends_close(struct cli_ends *e)
{
	ends_s3_close(&e->s);
	config_free(e->cfg);
	memset(e, 0, sizeof(*e));
}

void cli_sync_opts_init(struct sync_opts *o, const struct cli_ends *e, struct manifest *m,
			uint32_t id, const struct task_record *rec)
{
	memset(o, 0, sizeof(*o));
	o->src = e->s.src;
	o->dst = e->s.dst;
	o->src_bucket = e->s.src_bucket;
	o->src_prefix = e->s.src_prefix;
	o->dst_bucket = e->s.dst_bucket;
	o->dst_prefix = e->s.dst_prefix;
	o->same_endpoint = e->s.same_endpoint;
	o->manifest = m;
	o->task_id = id;
	o->merge_destination = !rec->dest_listed;
	o->concurrency = 16;
	o->multipart_threshold = 16ULL << 20;
	o->part_size = 8ULL << 20;
	o->metadata = true;
}
