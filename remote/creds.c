#include "common/compat.h"

#include "remote/creds.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/ini.h"
#include "common/log.h"
#include "common/secret.h"
#include "remote/http.h"

#define CREDS_REFRESH_BEFORE_S 300 /* refresh this long before Expiration */
#define CREDS_FILE_MAX	       (1 << 20)
#define IMDS_DEFAULT_ENDPOINT  "http://169.254.169.254"
#define IMDS_TOKEN_TTL	       "21600"
#define IMDS_BODY_MAX	       (64 * 1024)
#define IMDS_CREDS_PATH	       "/latest/meta-data/iam/security-credentials/"

struct creds_provider {
	enum creds_mode mode;
	char *access_key_id; /* explicit keys (STATIC, or CHAIN when given) */
	char *secret_access_key;
	char *session_token;
	char *profile;		/* resolved profile name */
	char *credentials_file; /* resolved paths; NULL when there is no home */
	char *config_file;
	char *imds_endpoint; /* resolved, without a trailing '/' */
	char *desc_profile;  /* "profile NAME" */
	const char *desc;    /* read and written atomically */

	pthread_mutex_t lock;	       /* guards everything below */
	struct http_engine *imds_http; /* owned, created on first use */
	bool have;		       /* cached holds credentials */
	enum creds_mode source;	       /* where cached came from (CHAIN resolves it) */
	struct creds_value cached;
};

/* The provider itself (it holds the cached credentials) and the explicit keys
 * live in secret memory: out of core dumps, wiped when freed. */
static void creds_wipe_free(char *s)
{
	secret_free(s);
}

static const char *creds_getenv(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

/* $HOME/rel (home from the environment, else the password database). */
static char *creds_home_path(const char *rel)
{
	const char *home = creds_getenv("HOME");
	if (!home) {
		struct passwd *pw = getpwuid(getuid());
		home = pw ? pw->pw_dir : NULL;
	}
	if (!home)
		return NULL;
	struct buf b = BUF_INIT;
	buf_addf(&b, "%s/%s", home, rel);
	return buf_detach(&b, NULL);
}

/* path with a leading "~/" expanded. */
static char *creds_expand(const char *path)
{
	if (str_startswith(path, "~/"))
		return creds_home_path(path + 2);
	return xstrdup(path);
}

static const char *creds_mode_desc(const struct creds_provider *p, enum creds_mode m)
{
	switch (m) {
	case CREDS_STATIC:
		return "explicit keys";
	case CREDS_ENV:
		return "environment";
	case CREDS_PROFILE:
		return p->desc_profile;
	case CREDS_INSTANCE:
		return "instance metadata";
	case CREDS_ANONYMOUS:
		return "anonymous";
	case CREDS_CHAIN:
		break;
	}
	return "credential chain";
}

static void creds_set_desc(struct creds_provider *p, const char *d)
{
	__atomic_store_n(&p->desc, d, __ATOMIC_RELEASE);
}

const char *creds_provider_describe(const struct creds_provider *p)
{
	if (!p)
		return "no credentials";
	return __atomic_load_n(&p->desc, __ATOMIC_ACQUIRE);
}

int creds_parse_mode(const char *s, struct creds_spec *spec)
{
	if (!s || !spec)
		return -EINVAL;
	if (strcmp(s, "env") == 0) {
		spec->mode = CREDS_ENV;
	} else if (strcmp(s, "instance") == 0) {
		spec->mode = CREDS_INSTANCE;
	} else if (strcmp(s, "anonymous") == 0) {
		spec->mode = CREDS_ANONYMOUS;
	} else if (strcmp(s, "chain") == 0) {
		spec->mode = CREDS_CHAIN;
	} else if (strcmp(s, "profile") == 0) {
		spec->mode = CREDS_PROFILE;
		spec->profile = NULL;
	} else if (str_startswith(s, "profile:")) {
		const char *name = s + strlen("profile:");
		if (!*name)
			return -EINVAL;
		for (const char *c = name; *c; c++)
			if (*c == ' ' || *c == '\t' || *c == '[' || *c == ']')
				return -EINVAL;
		spec->mode = CREDS_PROFILE;
		spec->profile = name;
	} else {
		return -EINVAL;
	}
	return 0;
}

static int creds_check_lengths(const char *what, const char *id, const char *secret,
			       const char *token, struct dth_err *err)
{
	struct creds_value *v = NULL;
	if (id && strlen(id) >= sizeof(v->access_key_id))
		return err_set(err, -EINVAL, "%s: access key id too long", what);
	if (secret && strlen(secret) >= sizeof(v->secret_access_key))
		return err_set(err, -EINVAL, "%s: secret access key too long", what);
	if (token && strlen(token) >= sizeof(v->session_token))
		return err_set(err, -EINVAL, "%s: session token too long", what);
	return 0;
}

struct creds_provider *creds_provider_new(const struct creds_spec *spec, struct dth_err *err)
{
	if (!spec) {
		err_set(err, -EINVAL, "no credentials spec");
		return NULL;
	}
	switch (spec->mode) {
	case CREDS_CHAIN:
	case CREDS_STATIC:
	case CREDS_ENV:
	case CREDS_PROFILE:
	case CREDS_INSTANCE:
	case CREDS_ANONYMOUS:
		break;
	default:
		err_set(err, -EINVAL, "unknown credentials mode %d", (int)spec->mode);
		return NULL;
	}
	bool has_id = spec->access_key_id && *spec->access_key_id;
	bool has_secret = spec->secret_access_key && *spec->secret_access_key;
	bool has_token = spec->session_token && *spec->session_token;
	if (spec->mode == CREDS_STATIC || spec->mode == CREDS_CHAIN) {
		if (spec->mode == CREDS_STATIC && !has_id && !has_secret) {
			err_set(err, -EINVAL,
				"explicit keys: access_key_id and secret_access_key are missing");
			return NULL;
		}
		if (has_id != has_secret) {
			err_set(err, -EINVAL, "explicit keys: %s given without %s",
				has_id ? "access_key_id" : "secret_access_key",
				has_id ? "secret_access_key" : "access_key_id");
			return NULL;
		}
		if (has_token && !has_id) {
			err_set(err, -EINVAL,
				"explicit keys: session_token given without access_key_id and "
				"secret_access_key");
			return NULL;
		}
		if (creds_check_lengths("explicit keys", spec->access_key_id,
					spec->secret_access_key, spec->session_token, err))
			return NULL;
	}

	struct creds_provider *p = secret_alloc(sizeof(*p));
	p->mode = spec->mode;
	if (spec->mode == CREDS_STATIC || (spec->mode == CREDS_CHAIN && has_id)) {
		p->access_key_id = secret_strdup(spec->access_key_id);
		p->secret_access_key = secret_strdup(spec->secret_access_key);
		p->session_token = has_token ? secret_strdup(spec->session_token) : NULL;
		/* A chain that starts with explicit keys always ends there. */
		p->mode = CREDS_STATIC;
	}
	const char *profile = spec->profile && *spec->profile ? spec->profile : NULL;
	if (!profile)
		profile = creds_getenv("AWS_PROFILE");
	p->profile = xstrdup(profile ? profile : "default");
	struct buf d = BUF_INIT;
	buf_addf(&d, "profile %s", p->profile);
	p->desc_profile = buf_detach(&d, NULL);

	const char *cf = spec->credentials_file ? spec->credentials_file
						: creds_getenv("AWS_SHARED_CREDENTIALS_FILE");
	p->credentials_file = cf ? creds_expand(cf) : creds_home_path(".aws/credentials");
	const char *kf = spec->config_file ? spec->config_file : creds_getenv("AWS_CONFIG_FILE");
	p->config_file = kf ? creds_expand(kf) : creds_home_path(".aws/config");

	const char *ep = spec->imds_endpoint ? spec->imds_endpoint
					     : creds_getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
	p->imds_endpoint = xstrdup(ep ? ep : IMDS_DEFAULT_ENDPOINT);
	size_t n = strlen(p->imds_endpoint);
	while (n > 0 && p->imds_endpoint[n - 1] == '/')
		p->imds_endpoint[--n] = '\0';

	pthread_mutex_init(&p->lock, NULL);
	p->source = p->mode;
	creds_set_desc(p, creds_mode_desc(p, p->mode));
	return p;
}

void creds_provider_free(struct creds_provider *p)
{
	if (!p)
		return;
	creds_wipe_free(p->access_key_id);
	creds_wipe_free(p->secret_access_key);
	creds_wipe_free(p->session_token);
	free(p->profile);
	free(p->credentials_file);
	free(p->config_file);
	free(p->imds_endpoint);
	free(p->desc_profile);
	if (p->imds_http)
		http_engine_free(p->imds_http);
	pthread_mutex_destroy(&p->lock);
	secret_free(p); /* wipes the cached credentials */
}

bool creds_provider_refresh(struct creds_provider *p)
{
	if (!p)
		return false;
	pthread_mutex_lock(&p->lock);
	bool can = p->source != CREDS_STATIC && p->source != CREDS_ANONYMOUS;
	if (can && p->have) {
		p->have = false;
		explicit_bzero(&p->cached, sizeof(p->cached));
	}
	pthread_mutex_unlock(&p->lock);
	if (can)
		log_info("credentials from %s: refused as expired, fetching them again",
			 creds_provider_describe(p));
	return can;
}

/* ---- explicit keys and the environment ---- */

static int creds_fetch_static(const struct creds_provider *p, struct creds_value *out)
{
	str_copy_fit(out->access_key_id, p->access_key_id, sizeof(out->access_key_id));
	str_copy_fit(out->secret_access_key, p->secret_access_key, sizeof(out->secret_access_key));
	str_copy_fit(out->session_token, p->session_token ? p->session_token : "",
		     sizeof(out->session_token));
	return 0;
}

static int creds_fetch_env(struct creds_value *out, struct dth_err *err)
{
	const char *id = creds_getenv("AWS_ACCESS_KEY_ID");
	const char *secret = creds_getenv("AWS_SECRET_ACCESS_KEY");
	const char *token = creds_getenv("AWS_SESSION_TOKEN");
	if (!id && !secret)
		return err_set(
		    err, -ENOENT,
		    "environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set");
	if (!id || !secret)
		return err_set(err, -EACCES, "environment: %s is set but %s is not",
			       id ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
			       id ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
	int rc = creds_check_lengths("environment", id, secret, token, err);
	if (rc)
		return rc;
	str_copy_fit(out->access_key_id, id, sizeof(out->access_key_id));
	str_copy_fit(out->secret_access_key, secret, sizeof(out->secret_access_key));
	str_copy_fit(out->session_token, token ? token : "", sizeof(out->session_token));
	return 0;
}

/* ---- shared credentials and config files ---- */

/* Read a whole file; -ENOENT when it does not exist. */
static int creds_read_file(const char *path, struct buf *out, struct dth_err *err, const char *what)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		if (e == ENOENT || e == ENOTDIR)
			return -ENOENT;
		return err_set(err, -e, "%s: cannot open %s: %s", what, path, strerror(e));
	}
	int rc = 0;
	char chunk[8192];
	/* Room for the whole file at once: growing while reading would leave
	 * partial copies of the keys in freed memory. */
	struct stat st;
	if (fstat(fd, &st) == 0 && st.st_size > 0 && st.st_size <= CREDS_FILE_MAX)
		buf_grow(out, (size_t)st.st_size + 1);
	for (;;) {
		ssize_t r = read(fd, chunk, sizeof(chunk));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			rc = err_set(err, -errno, "%s: cannot read %s: %s", what, path,
				     strerror(errno));
			break;
		}
		if (r == 0)
			break;
		if (out->len + (size_t)r > CREDS_FILE_MAX) {
			rc = err_set(err, -EFBIG, "%s: %s is too large", what, path);
			break;
		}
		buf_add(out, chunk, (size_t)r);
	}
	explicit_bzero(chunk, sizeof(chunk));
	close(fd);
	return rc;
}

struct creds_profile_ctx {
	const char *profile;
	bool config_style; /* sections are "profile NAME" (and "default") */
	bool found;
	char *id, *secret, *token; /* owned, secret */
};

static bool creds_profile_section_matches(const struct creds_profile_ctx *c, const char *section)
{
	if (!c->config_style)
		return strcmp(section, c->profile) == 0;
	if (strcmp(section, "default") == 0)
		return strcmp(c->profile, "default") == 0;
	if (!str_startswith(section, "profile") || (section[7] != ' ' && section[7] != '\t'))
		return false;
	const char *name = section + 7;
	while (*name == ' ' || *name == '\t')
		name++;
	return strcmp(name, c->profile) == 0;
}

static int creds_profile_section(void *ctx, const char *section, unsigned line)
{
	struct creds_profile_ctx *c = ctx;
	(void)line;
	if (creds_profile_section_matches(c, section))
		c->found = true;
	return 0;
}

static void creds_replace(char **slot, const char *v)
{
	creds_wipe_free(*slot);
	*slot = *v ? secret_strdup(v) : NULL;
}

static int creds_profile_key(void *ctx, const char *section, const char *key, const char *value,
			     unsigned line)
{
	struct creds_profile_ctx *c = ctx;
	(void)line;
	if (!creds_profile_section_matches(c, section))
		return 0;
	if (str_ieq(key, "aws_access_key_id"))
		creds_replace(&c->id, value);
	else if (str_ieq(key, "aws_secret_access_key"))
		creds_replace(&c->secret, value);
	else if (str_ieq(key, "aws_session_token") || str_ieq(key, "aws_security_token"))
		creds_replace(&c->token, value);
	return 0;
}

/* Read one file into c (values found there replace earlier ones). */
static int creds_profile_read(struct creds_profile_ctx *c, const char *path, bool config_style,
			      bool *exists, struct dth_err *err, const char *what)
{
	struct buf text = BUF_INIT;
	*exists = false;
	if (!path)
		return 0;
	int rc = creds_read_file(path, &text, err, what);
	if (rc == -ENOENT) {
		rc = 0;
		goto cleanup;
	}
	if (rc)
		goto cleanup;
	*exists = true;
	c->config_style = config_style;
	rc = ini_parse_sections(buf_str(&text), text.len, path, creds_profile_key,
				creds_profile_section, c, err);
	if (rc)
		err_prefix(err, "%s", what);
cleanup:
	if (text.data)
		explicit_bzero(text.data, text.len);
	buf_release(&text);
	return rc;
}

static int creds_fetch_profile(const struct creds_provider *p, struct creds_value *out,
			       struct dth_err *err)
{
	struct creds_profile_ctx c = {.profile = p->profile};
	const char *what = p->desc_profile;
	const char *cfile = p->credentials_file ? p->credentials_file : "~/.aws/credentials";
	const char *kfile = p->config_file ? p->config_file : "~/.aws/config";
	bool cexists = false, kexists = false;
	/* The credentials file wins over the config file. */
	int rc = creds_profile_read(&c, p->config_file, true, &kexists, err, what);
	if (!rc)
		rc = creds_profile_read(&c, p->credentials_file, false, &cexists, err, what);
	if (rc)
		goto cleanup;
	if (!cexists && !kexists) {
		rc = err_set(err, -ENOENT, "%s: no %s or %s", what, cfile, kfile);
		goto cleanup;
	}
	if (!c.found) {
		rc = err_set(err, -ENOENT, "%s: not found in %s or %s", what, cfile, kfile);
		goto cleanup;
	}
	if (!c.id && !c.secret) {
		rc = err_set(err, -ENOENT,
			     "%s: no aws_access_key_id and aws_secret_access_key in %s or %s "
			     "(role, sso and process profiles are not supported)",
			     what, cfile, kfile);
		goto cleanup;
	}
	if (!c.id || !c.secret) {
		rc = err_set(err, -EACCES, "%s: %s without %s", what,
			     c.id ? "aws_access_key_id" : "aws_secret_access_key",
			     c.id ? "aws_secret_access_key" : "aws_access_key_id");
		goto cleanup;
	}
	rc = creds_check_lengths(what, c.id, c.secret, c.token, err);
	if (rc)
		goto cleanup;
	str_copy_fit(out->access_key_id, c.id, sizeof(out->access_key_id));
	str_copy_fit(out->secret_access_key, c.secret, sizeof(out->secret_access_key));
	str_copy_fit(out->session_token, c.token ? c.token : "", sizeof(out->session_token));
cleanup:
	creds_wipe_free(c.id);
	creds_wipe_free(c.secret);
	creds_wipe_free(c.token);
	return rc;
}

/* ---- EC2 instance metadata ---- */

/* "2026-11-29T09:21:55Z", with optional fractional seconds and a +HH:MM
 * offset instead of Z. */
static int creds_parse_iso8601(const char *s, time_t *out)
{
	int y, mo, d, h, mi, sec, n = 0;
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6)
		return -EINVAL;
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 ||
	    h < 0 || mi < 0 || sec < 0)
		return -EINVAL;
	const char *r = s + n;
	if (*r == '.') {
		r++;
		while (*r >= '0' && *r <= '9')
			r++;
	}
	long off = 0;
	if (*r == 'Z') {
		r++;
	} else if (*r == '+' || *r == '-') {
		int oh, om, m = 0;
		if (sscanf(r + 1, "%2d:%2d%n", &oh, &om, &m) != 2 || m != 5)
			return -EINVAL;
		off = (long)(oh * 3600 + om * 60) * (*r == '+' ? 1 : -1);
		r += 6;
	} else {
		return -EINVAL;
	}
	if (*r)
		return -EINVAL;
	struct tm tm = {0};
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	time_t t = timegm(&tm);
	if (t == (time_t)-1)
		return -EINVAL;
	*out = t - off;
	return 0;
}

static int creds_imds_request(struct creds_provider *p, const char *method, const char *path,
			      const char *token, struct http_resp *resp, struct dth_err *err)
{
	struct buf url = BUF_INIT;
	buf_addf(&url, "%s%s", p->imds_endpoint, path);
	struct http_header hdrs[1];
	size_t nh = 0;
	if (strcmp(method, "PUT") == 0)
		hdrs[nh++] =
		    (struct http_header){"X-aws-ec2-metadata-token-ttl-seconds", IMDS_TOKEN_TTL};
	else if (token)
		hdrs[nh++] = (struct http_header){"X-aws-ec2-metadata-token", token};
	struct http_req req = {
	    .method = method,
	    .url = buf_str(&url),
	    .headers = hdrs,
	    .n_headers = nh,
	    .max_body = IMDS_BODY_MAX,
	    .secret = true,
	};
	int rc = http_perform(p->imds_http, &req, resp, err);
	buf_release(&url);
	return rc;
}

/* The first line of body, trimmed. */
static void creds_first_line(const struct buf *body, struct buf *out)
{
	const char *s = buf_str(body);
	size_t n = strcspn(s, "\r\n");
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	while (n > 0 && (*s == ' ' || *s == '\t')) {
		s++;
		n--;
	}
	buf_add(out, s, n);
}

static bool creds_role_name_ok(const char *s)
{
	if (!*s || strlen(s) > 128)
		return false;
	for (; *s; s++) {
		char c = *s;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      strchr("+=,.@_-", c)))
			return false;
	}
	return true;
}

int creds_parse_imds_role(const struct buf *body, struct buf *role)
{
	buf_reset(role);
	creds_first_line(body, role);
	if (!creds_role_name_ok(buf_str(role))) {
		buf_reset(role);
		return -EACCES;
	}
	return 0;
}

int creds_parse_imds(const char *role, const struct buf *body, struct creds_value *out,
		     struct dth_err *err)
{
	json_error_t jerr;
	time_t expires = 0;
	json_t *doc = json_loadb(buf_str(body), body->len, 0, &jerr);
	int rc = 0;
	if (!doc || !json_is_object(doc)) {
		rc = err_set(err, -EACCES,
			     "instance metadata: credentials of role %s are not a json object",
			     role);
		goto cleanup;
	}
	const char *code = json_string_value(json_object_get(doc, "Code"));
	if (code && strcmp(code, "Success") != 0) {
		char shown[65]; /* the service's word, printable and short */
		size_t n = 0;
		for (; code[n] && n + 1 < sizeof(shown); n++)
			shown[n] = code[n] >= 0x20 && code[n] < 0x7f ? code[n] : '?';
		shown[n] = '\0';
		rc = err_set(err, -EACCES,
			     "instance metadata: credentials of role %s not available (code %s)",
			     role, shown);
		goto cleanup;
	}
	const char *id = json_string_value(json_object_get(doc, "AccessKeyId"));
	const char *secret = json_string_value(json_object_get(doc, "SecretAccessKey"));
	const char *token = json_string_value(json_object_get(doc, "Token"));
	const char *exp = json_string_value(json_object_get(doc, "Expiration"));
	if (!id || !*id || !secret || !*secret) {
		rc = err_set(err, -EACCES,
			     "instance metadata: credentials of role %s lack AccessKeyId or "
			     "SecretAccessKey",
			     role);
		goto cleanup;
	}
	if (creds_check_lengths("instance metadata", id, secret, token, NULL) != 0) {
		rc = err_set(err, -EACCES,
			     "instance metadata: credentials of role %s are longer than dth keeps",
			     role);
		goto cleanup;
	}
	if (exp && creds_parse_iso8601(exp, &expires) != 0) {
		rc = err_set(err, -EACCES,
			     "instance metadata: credentials of role %s have a bad Expiration",
			     role);
		goto cleanup;
	}
	str_copy_fit(out->access_key_id, id, sizeof(out->access_key_id));
	str_copy_fit(out->secret_access_key, secret, sizeof(out->secret_access_key));
	str_copy_fit(out->session_token, token ? token : "", sizeof(out->session_token));
	out->expires = expires;
cleanup:
	json_decref(doc);
	return rc;
}

static int creds_fetch_instance(struct creds_provider *p, struct creds_value *out,
				struct dth_err *err)
{
	const char *disabled = creds_getenv("AWS_EC2_METADATA_DISABLED");
	if (disabled && str_ieq(disabled, "true"))
		return err_set(err, -ENOENT,
			       "instance metadata: disabled by AWS_EC2_METADATA_DISABLED");
	if (!p->imds_http) {
		/* Its own engine: short timeouts, as the service is usually absent. */
		struct http_engine_opts o = {
		    .connect_timeout_ms = 1000,
		    .stall_timeout_s = 2,
		    .tls_verify = true,
		};
		p->imds_http = http_engine_new(&o);
		if (!p->imds_http)
			return err_set(err, -ENOMEM,
				       "instance metadata: cannot create http engine");
	}

	struct http_resp resp;
	struct buf token = BUF_INIT, role = BUF_INIT, path = BUF_INIT;
	struct dth_err herr;
	err_clear(&herr);
	http_resp_init(&resp);
	int rc = creds_imds_request(p, "PUT", "/latest/api/token", NULL, &resp, &herr);
	if (rc) {
		rc = err_set(err, -ENOENT, "instance metadata: %s unreachable: %s",
			     p->imds_endpoint, herr.message);
		goto cleanup;
	}
	if (resp.status == 200 && resp.body.len > 0) {
		creds_first_line(&resp.body, &token);
	} else {
		/* No IMDSv2 token (403/404/405 or other): go on with IMDSv1. */
		log_debug("instance metadata: no session token (http %ld), trying imdsv1",
			  resp.status);
	}
	const char *tok = token.len ? buf_str(&token) : NULL;

	rc = creds_imds_request(p, "GET", IMDS_CREDS_PATH, tok, &resp, &herr);
	if (rc) {
		rc = err_set(err, -ENOENT, "instance metadata: %s unreachable: %s",
			     p->imds_endpoint, herr.message);
		goto cleanup;
	}
	if (resp.status == 404) {
		rc = err_set(err, -ENOENT, "instance metadata: no iam role attached");
		goto cleanup;
	}
	if (resp.status != 200) {
		rc = err_set(err, -EACCES, "instance metadata: role lookup answered http %ld",
			     resp.status);
		goto cleanup;
	}
	if (creds_parse_imds_role(&resp.body, &role) != 0) {
		rc =
		    err_set(err, -EACCES, "instance metadata: role lookup gave no valid role name");
		goto cleanup;
	}

	buf_addf(&path, "%s%s", IMDS_CREDS_PATH, buf_str(&role));
	rc = creds_imds_request(p, "GET", buf_str(&path), tok, &resp, &herr);
	if (rc) {
		rc = err_set(err, -ENOENT, "instance metadata: %s unreachable: %s",
			     p->imds_endpoint, herr.message);
		goto cleanup;
	}
	if (resp.status != 200) {
		rc = err_set(err, resp.status == 404 ? -ENOENT : -EACCES,
			     "instance metadata: credentials of role %s answered http %ld",
			     buf_str(&role), resp.status);
		goto cleanup;
	}
	rc = creds_parse_imds(buf_str(&role), &resp.body, out, err);
cleanup:
	http_resp_wipe(&resp);
	http_resp_release(&resp);
	secret_buf_release(&token);
	buf_release(&role);
	buf_release(&path);
	return rc;
}

/* ---- the chain and the cache ---- */

static int creds_fetch_mode(struct creds_provider *p, enum creds_mode m, struct creds_value *out,
			    struct dth_err *err)
{
	switch (m) {
	case CREDS_STATIC:
		return creds_fetch_static(p, out);
	case CREDS_ENV:
		return creds_fetch_env(out, err);
	case CREDS_PROFILE:
		return creds_fetch_profile(p, out, err);
	case CREDS_INSTANCE:
		return creds_fetch_instance(p, out, err);
	case CREDS_ANONYMOUS:
		out->anonymous = true;
		return 0;
	case CREDS_CHAIN:
		break;
	}
	return err_set(err, -EINVAL, "bad credentials mode");
}

/* Environment, then profile, then instance metadata: the first that has
 * credentials wins; a source that is present but broken stops the chain. */
static int creds_fetch_chain(struct creds_provider *p, struct creds_value *out,
			     enum creds_mode *source, struct dth_err *err)
{
	static const enum creds_mode order[] = {CREDS_ENV, CREDS_PROFILE, CREDS_INSTANCE};
	struct buf why = BUF_INIT;
	int rc = -ENOENT;
	for (size_t i = 0; i < ARRAY_SIZE(order); i++) {
		struct dth_err e;
		err_clear(&e);
		rc = creds_fetch_mode(p, order[i], out, &e);
		if (rc == 0) {
			*source = order[i];
			goto cleanup;
		}
		if (rc != -ENOENT) {
			err_set(err, rc, "%s", e.message);
			goto cleanup;
		}
		buf_addf(&why, "%s%s", why.len ? "; " : "", e.message);
	}
	rc = err_set(err, -ENOENT, "no credentials found (%s)", buf_str(&why));
cleanup:
	buf_release(&why);
	return rc;
}

int creds_provider_get(struct creds_provider *p, struct creds_value *out, struct dth_err *err)
{
	if (!p || !out)
		return err_set(err, -EINVAL, "no credentials provider");
	struct creds_value v;
	struct dth_err e;
	int rc = 0;

	pthread_mutex_lock(&p->lock);
	time_t now = time(NULL);
	if (p->have &&
	    (p->cached.expires == 0 || now < p->cached.expires - CREDS_REFRESH_BEFORE_S)) {
		*out = p->cached;
		goto unlock;
	}
	memset(&v, 0, sizeof(v));
	err_clear(&e);
	enum creds_mode source = p->source;
	if (source == CREDS_CHAIN)
		rc = creds_fetch_chain(p, &v, &source, &e);
	else
		rc = creds_fetch_mode(p, source, &v, &e);
	if (rc == 0) {
		p->cached = v;
		p->have = true;
		if (p->source != source) {
			p->source = source;
			creds_set_desc(p, creds_mode_desc(p, source));
		}
		*out = v;
	} else if (p->have && p->cached.expires != 0 && now < p->cached.expires) {
		/* The refresh failed but what we have is still valid. */
		log_warn("credentials from %s: refresh failed, using the current ones until they "
			 "expire: %s",
			 creds_provider_describe(p), e.message);
		*out = p->cached;
		rc = 0;
	} else {
		if (err) {
			err_clear(err);
			err_set(err, rc, "%s", e.message);
		}
	}
	explicit_bzero(&v, sizeof(v));
unlock:
	pthread_mutex_unlock(&p->lock);
	return rc;
}
