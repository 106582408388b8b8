/* The two ends of a task, opened from the config: S3 clients for an S3 task
 * (specs "REMOTE:BUCKET[/PREFIX]"; the source may also be a local directory,
 * remote_spec_is_local, read through the object client's local backend, with
 * remote "local", its absolute path as the bucket and no prefix), registry clients for an image
 * task
 * ("REMOTE:" and "REMOTE:[PREFIX]"; an ecr remote also gets its ECR API
 * client, whose tokens feed the registry client's credentials).
 *
 * Errors: -EINVAL for what the user must fix (a bad spec, an unknown remote,
 * a remote of the wrong type, bad credentials settings) and -ENOMEM when an
 * HTTP engine cannot be made, with err saying which. The config is borrowed
 * and must outlive the ends. */
#ifndef DTH_ENDS_H
#define DTH_ENDS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "common/util.h"

struct config;
struct http_engine;
struct creds_provider;
struct s3_client;
struct registry_client;
struct image_sync_opts;
struct ecr_end;

/* Prefixes are normalised to end with '/' (or are ""). Owned by the ends. */
struct s3_ends {
	struct http_engine *http_src, *http_dst;
	struct creds_provider *creds_src, *creds_dst;
	struct s3_client *src, *dst;
	char *src_remote, *src_bucket, *src_prefix;
	char *dst_remote, *dst_bucket, *dst_prefix;
	bool same_endpoint; /* one endpoint, credentials that can read the source */
};

/* Open src (and dst unless NULL). retries >= 0 overrides every remote's
 * retries; src_requester_pays reads the source as requester pays even when
 * its remote does not say so (and then copies through dth, not server-side,
 * unless the destination's remote is requester pays too). On error the ends
 * are left for ends_s3_close. */
int ends_s3_open(struct s3_ends *e, const struct config *cfg, const char *src, const char *dst,
		 int retries, bool src_requester_pays, struct dth_err *err) WUR;
void ends_s3_close(struct s3_ends *e);
/* Whether src and dst overlap: one endpoint, one bucket, one prefix inside
 * the other. */
bool ends_s3_overlap(const struct s3_ends *e);

struct image_ends {
	struct http_engine *http_src, *http_dst;
	struct registry_client *src, *dst;
	struct ecr_end *ecr_src, *ecr_dst; /* NULL unless the end is an ecr remote */
	char *src_remote, *dst_remote;
	char *dst_prefix; /* "" for none */
};

int ends_image_open(struct image_ends *e, const struct config *cfg, const char *src,
		    const char *dst, int retries, struct dth_err *err) WUR;
/* Set o's src, dst, dst_prefix and, for ecr ends, the prepare and list_repos
 * hooks (which live as long as e). */
void ends_image_apply(struct image_ends *e, struct image_sync_opts *o);
/* Request counts of both ends (source, destination, and the ECR API's) as
 * a new JSON object. */
json_t *ends_image_requests_json(const struct image_ends *e);
void ends_image_close(struct image_ends *e);

#endif
