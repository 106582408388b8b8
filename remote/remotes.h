/* Named remotes: read from the INI config file (`[remote NAME]` sections) and
 * from the environment (DTH_REMOTE_<NAME>_<KEY>=value, which overrides the
 * file), completed by provider presets (provider.h), and turned into S3
 * clients. */
#ifndef DTH_REMOTES_H
#define DTH_REMOTES_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "common/util.h"

struct http_engine;
struct s3_client;
struct creds_provider;
struct registry_client;

struct remote_def {
	char *name;	/* as written in the section header (env names are lowercased) */
	char *type;	/* "s3" */
	char *provider; /* aws | aws-cn | aliyun | tencent | qiniu | gcs | minio | ceph | other */
	char *endpoint; /* "scheme://host[:port]"; from the preset when absent */
	char *region;
	bool path_style;
	bool path_style_set; /* given explicitly (else the preset decides) */
	bool requester_pays;
	bool tls_verify; /* default true */
	bool unsigned_payload;
	char *ca_file;
	char *access_key_id;
	char *secret_access_key;
	char *session_token;
	char *credentials; /* env | profile:NAME | instance | anonymous; NULL: chain */
	char *source;	   /* where it was defined: "FILE:LINE" or "environment" */
	int retries;	   /* retries after a failed attempt; -1: the default (7) */
	/* type = s3: the largest range one GET asks for, 0 for no limit
	 * (provider.h); the provider's value unless given. */
	uint64_t get_range_max;
	bool get_range_max_set;
	/* type = registry: url (required; "https://host[:port]", or http:// with
	 * insecure = true), username and password (optional: anonymous). type =
	 * ecr: account (12 digits) and region (required), the credential keys as
	 * for s3, optional endpoint (ECR API override) and url (registry
	 * override). tls_verify, ca_file and retries apply to every type. */
	char *url;
	char *username;
	char *password; /* secret */
	bool insecure;
	char *account;
	unsigned long given; /* internal: keys set (one bit per key) */
};

struct config;

/* Load the config: path if given (must exist), else $DTH_CONFIG (must exist),
 * else ~/.config/dth/dth.conf, else /etc/dth/dth.conf (either may be absent).
 * Then overlay DTH_REMOTE_* variables and apply provider presets. Errors
 * (-EINVAL syntax or unknown key/value, -EACCES a file holding secrets that
 * group or others can read, -ENOENT an explicit file missing) name the file and
 * line. Free with config_free. */
struct config *config_load(const char *path, struct dth_err *err);
/* As config_load (the same file), but going on after a problem: fn is
 * called with each (unknown section or key, bad value, a key given twice, a
 * secret file others can read, a remote the presets cannot complete; a
 * syntax error ends the reading), each message naming the file and line.
 * Returns the number of problems (>= 0) with *out the config as far as it
 * could be read (free it; with problems, not for use but to look at its
 * sections), or a negative errno when the file cannot be read (err). */
typedef void (*config_problem_fn)(void *ctx, const char *msg);
int config_check(const char *path, config_problem_fn fn, void *ctx, struct config **out,
		 struct dth_err *err) WUR;
void config_free(struct config *cfg);
/* The file that was read, or NULL when none. Borrowed. */
const char *config_path(const struct config *cfg);
/* The remote called name, or NULL. Borrowed while cfg lives. */
const struct remote_def *config_remote(const struct config *cfg, const char *name);

/* A section of the config file for another layer: [agent] (name ""),
 * [task NAME] or [mount NAME], with its keys in the order written (a key may
 * repeat). The remote layer keeps them uninterpreted; the agent reads them. */
struct config_pair {
	char *key;
	char *value;
	unsigned line;
};
struct config_section {
	const char *kind; /* "agent", "task", "mount" */
	char *name;
	char *origin; /* the file */
	unsigned line;
	struct config_pair *pairs;
	size_t n;
};
/* The sections of kind, in file order: *n set, the array borrowed while cfg
 * lives. */
const struct config_section *const *config_sections(const struct config *cfg, const char *kind,
						    size_t *n);

/* The remotes in definition order: count, and the i-th (borrowed). */
size_t config_remote_count(const struct config *cfg);
const struct remote_def *config_remote_at(const struct config *cfg, size_t i);

/* Parse the text of a config file (for tests and config_load). origin names it
 * in messages. Returns 0 or -EINVAL with err set. The remotes are added to cfg. */
int config_parse_text(struct config *cfg, const char *text, const char *origin,
		      struct dth_err *err) WUR;
/* Empty config (no file), for tests. */
struct config *config_new_empty(void);
/* Overlay variables from envp (NULL-terminated "K=V" strings) then apply
 * presets and validate every remote. */
int config_finish(struct config *cfg, char *const *envp, struct dth_err *err) WUR;

/* An HTTP engine with the remote's TLS settings (tls_verify, ca_file); NULL
 * only when libcurl cannot allocate. Free with http_engine_free. */
struct http_engine *remote_http_new(const struct remote_def *r);

/* The credential provider of a remote (s3 or ecr): its `credentials` mode,
 * else static keys when given, else the chain. On success *out is owned by
 * the caller (creds_provider_free); http is borrowed and must outlive it. */
int remote_open_creds(const struct remote_def *r, struct http_engine *http,
		      struct creds_provider **out, struct dth_err *err) WUR;

/* Build the credential provider and S3 client for an s3 remote. On success
 * *creds and *client are owned by the caller (free the client first). */
int remote_open_s3(const struct remote_def *r, struct http_engine *http,
		   struct creds_provider **creds, struct s3_client **client,
		   struct dth_err *err) WUR;

/* Build the registry client of a registry remote (type = registry). On
 * success *client is owned by the caller (registry_client_free); http is
 * borrowed and must outlive it. -EINVAL for another type. */
int remote_open_registry(const struct remote_def *r, struct http_engine *http,
			 struct registry_client **client, struct dth_err *err) WUR;

/* Whether spec names a local directory (an absolute path, or one starting
 * with "./" or "../") rather than REMOTE:BUCKET[/PREFIX]. */
bool remote_spec_is_local(const char *spec);

/* "REMOTE:BUCKET[/PREFIX]" -> parts (malloc'd; prefix "" when none). -EINVAL
 * with a message for anything else. */
int remote_parse_path(const char *spec, char **remote, char **bucket, char **prefix,
		      struct dth_err *err) WUR;

#endif
