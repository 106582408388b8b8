#include "common/compat.h"

#include "remote/remotes.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/ini.h"
#include "common/secret.h"
#include "remote/creds.h"
#include "remote/provider.h"
#include "remote/registry.h"
#include "remote/s3.h"

#define CONFIG_FILE_MAX	  (4 << 20)
#define REMOTE_NAME_MAX	  64
#define ENV_REMOTE_PREFIX "DTH_REMOTE_"

struct config {
	char *path; /* the file read, NULL when none */
	struct remote_def **remotes;
	size_t n, cap;
	/* [agent], [task NAME], [mount NAME]: by kind (section_kinds order) */
	struct config_section **sections[3];
	size_t n_sections[3];
};

enum rkey {
	RK_TYPE,
	RK_PROVIDER,
	RK_ENDPOINT,
	RK_REGION,
	RK_PATH_STYLE,
	RK_REQUESTER_PAYS,
	RK_TLS_VERIFY,
	RK_UNSIGNED_PAYLOAD,
	RK_CA_FILE,
	RK_ACCESS_KEY_ID,
	RK_SECRET_ACCESS_KEY,
	RK_SESSION_TOKEN,
	RK_CREDENTIALS,
	RK_RETRIES,
	RK_GET_RANGE_MAX,
	RK_URL,
	RK_USERNAME,
	RK_PASSWORD,
	RK_INSECURE,
	RK_ACCOUNT,
	RK__COUNT
};

static const struct {
	const char *name; /* as in the file; the environment uses it uppercased */
	const char *env;
	bool secret; /* a file holding it must not be readable by others */
} rkeys[RK__COUNT] = {
    [RK_TYPE] = {"type", "TYPE", false},
    [RK_PROVIDER] = {"provider", "PROVIDER", false},
    [RK_ENDPOINT] = {"endpoint", "ENDPOINT", false},
    [RK_REGION] = {"region", "REGION", false},
    [RK_PATH_STYLE] = {"path_style", "PATH_STYLE", false},
    [RK_REQUESTER_PAYS] = {"requester_pays", "REQUESTER_PAYS", false},
    [RK_TLS_VERIFY] = {"tls_verify", "TLS_VERIFY", false},
    [RK_UNSIGNED_PAYLOAD] = {"unsigned_payload", "UNSIGNED_PAYLOAD", false},
    [RK_CA_FILE] = {"ca_file", "CA_FILE", false},
    [RK_ACCESS_KEY_ID] = {"access_key_id", "ACCESS_KEY_ID", false},
    [RK_SECRET_ACCESS_KEY] = {"secret_access_key", "SECRET_ACCESS_KEY", true},
    [RK_SESSION_TOKEN] = {"session_token", "SESSION_TOKEN", true},
    [RK_CREDENTIALS] = {"credentials", "CREDENTIALS", false},
    [RK_RETRIES] = {"retries", "RETRIES", false},
    [RK_GET_RANGE_MAX] = {"get_range_max", "GET_RANGE_MAX", false},
    [RK_URL] = {"url", "URL", false},
    [RK_USERNAME] = {"username", "USERNAME", false},
    [RK_PASSWORD] = {"password", "PASSWORD", true},
    [RK_INSECURE] = {"insecure", "INSECURE", false},
    [RK_ACCOUNT] = {"account", "ACCOUNT", false},
};

#define GET_RANGE_MIN (64 * 1024) /* smaller ranges would only multiply requests */

static const char key_list[] =
    "type, provider, endpoint, region, path_style, requester_pays, "
    "tls_verify, unsigned_payload, ca_file, access_key_id, "
    "secret_access_key, session_token, credentials, retries, get_range_max, url, "
    "username, password, insecure, account";

/* ---- remote definitions ---- */

/* Secret values (keys, tokens, passwords) live in secret memory (secret.h):
 * out of core dumps, wiped when freed. */
static void remote_wipe_free(char *s)
{
	secret_free(s);
}

static void remote_def_free(struct remote_def *r)
{
	if (!r)
		return;
	free(r->name);
	free(r->type);
	free(r->provider);
	free(r->endpoint);
	free(r->region);
	free(r->ca_file);
	free(r->access_key_id);
	remote_wipe_free(r->secret_access_key);
	remote_wipe_free(r->session_token);
	free(r->credentials);
	free(r->source);
	free(r->url);
	free(r->username);
	remote_wipe_free(r->password);
	free(r->account);
	free(r);
}

static struct remote_def *config_add_remote(struct config *cfg, const char *name,
					    const char *source)
{
	struct remote_def *r = xcalloc(1, sizeof(*r));
	r->name = xstrdup(name);
	r->source = xstrdup(source);
	r->tls_verify = true;
	r->retries = -1;
	if (cfg->n == cfg->cap) {
		cfg->cap = cfg->cap ? cfg->cap * 2 : 8;
		cfg->remotes = xrealloc(cfg->remotes, cfg->cap * sizeof(*cfg->remotes));
	}
	cfg->remotes[cfg->n++] = r;
	return r;
}

static struct remote_def *config_find(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n; i++)
		if (str_ieq(cfg->remotes[i]->name, name))
			return cfg->remotes[i];
	return NULL;
}

const struct remote_def *config_remote(const struct config *cfg, const char *name)
{
	if (!cfg || !name)
		return NULL;
	return config_find(cfg, name);
}

const char *config_path(const struct config *cfg)
{
	return cfg ? cfg->path : NULL;
}

struct config *config_new_empty(void)
{
	return xcalloc(1, sizeof(struct config));
}

void config_free(struct config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < cfg->n; i++)
		remote_def_free(cfg->remotes[i]);
	free(cfg->remotes);
	for (size_t k = 0; k < ARRAY_SIZE(cfg->sections); k++) {
		for (size_t i = 0; i < cfg->n_sections[k]; i++) {
			struct config_section *sec = cfg->sections[k][i];
			for (size_t j = 0; j < sec->n; j++) {
				free(sec->pairs[j].key);
				free(sec->pairs[j].value);
			}
			free(sec->pairs);
			free(sec->name);
			free(sec->origin);
			free(sec);
		}
		free(cfg->sections[k]);
	}
	free(cfg->path);
	free(cfg);
}

size_t config_remote_count(const struct config *cfg)
{
	return cfg->n;
}

const struct remote_def *config_remote_at(const struct config *cfg, size_t i)
{
	return i < cfg->n ? cfg->remotes[i] : NULL;
}

static bool remote_name_ok(const char *s, size_t n)
{
	if (n == 0 || n > REMOTE_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-' || c == '.'))
			return false;
	}
	return true;
}

/* A word made of [A-Za-z0-9_.:-] and short enough to quote in a message. */
static bool remote_quotable(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      strchr("_.:-", c)))
			return false;
	}
	return true;
}

/* Validate "http(s)://host[:port]" (one trailing '/' tolerated) and return it
 * normalised (lowercase scheme, no trailing '/'), or NULL. */
static char *remote_endpoint_norm(const char *v)
{
	size_t skip;
	const char *scheme;
	if (strncasecmp(v, "http://", 7) == 0) {
		scheme = "http://";
		skip = 7;
	} else if (strncasecmp(v, "https://", 8) == 0) {
		scheme = "https://";
		skip = 8;
	} else {
		return NULL;
	}
	const char *h = v + skip, *p = h;
	if (*p == '[') {
		p++;
		while (*p && (strchr("0123456789abcdefABCDEF:.", *p)))
			p++;
		if (*p != ']' || p == h + 1)
			return NULL;
		p++;
	} else {
		if (*p == '.' || *p == '-')
			return NULL;
		while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		       (*p >= '0' && *p <= '9') || *p == '.' || *p == '-')
			p++;
		if (p == h)
			return NULL;
	}
	if (*p == ':') {
		const char *d = ++p;
		unsigned long port = 0;
		while (*p >= '0' && *p <= '9' && p - d < 6)
			port = port * 10 + (unsigned long)(*p++ - '0');
		if (p == d || port == 0 || port > 65535)
			return NULL;
	}
	size_t hostlen = (size_t)(p - h);
	if (*p == '/')
		p++;
	if (*p)
		return NULL;
	struct buf b = BUF_INIT;
	buf_adds(&b, scheme);
	buf_add(&b, h, hostlen);
	return buf_detach(&b, NULL);
}

static bool remote_region_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			return false;
	}
	return true;
}

static void remote_replace(char **slot, const char *v, bool secret)
{
	if (secret) {
		remote_wipe_free(*slot);
		*slot = secret_strdup(v);
		return;
	}
	free(*slot);
	*slot = xstrdup(v);
}

/* Set key k of r to value; where names the place ("FILE:LINE" or the
 * environment variable) for messages. Values of secret keys are never
 * quoted. */
static int remote_set(struct remote_def *r, enum rkey k, const char *value, const char *where,
		      struct dth_err *err)
{
	const char *kn = rkeys[k].name;
	const char *shown = remote_quotable(value) ? value : "...";
	bool b;

	if (!*value)
		return err_set(err, -EINVAL, "%s: empty value for %s", where, kn);
	switch (k) {
	case RK_TYPE:
		if (strcmp(value, "s3") != 0 && strcmp(value, "registry") != 0 &&
		    strcmp(value, "ecr") != 0)
			return err_set(err, -EINVAL,
				       "%s: unknown type '%s' (expected s3, registry or ecr)",
				       where, shown);
		remote_replace(&r->type, value, false);
		break;
	case RK_PROVIDER:
		if (!provider_find(value))
			return err_set(err, -EINVAL,
				       "%s: unknown provider '%s' (expected aws, aws-cn, aliyun, "
				       "tencent, qiniu, gcs, minio, ceph or other)",
				       where, shown);
		remote_replace(&r->provider, value, false);
		break;
	case RK_ENDPOINT: {
		char *norm = remote_endpoint_norm(value);
		if (!norm)
			return err_set(err, -EINVAL,
				       "%s: bad endpoint '%s' (expected http://host[:port] or "
				       "https://host[:port], with no path or query)",
				       where, strchr(value, '@') ? "..." : value);
		free(r->endpoint);
		r->endpoint = norm;
		break;
	}
	case RK_REGION:
		if (!remote_region_ok(value))
			return err_set(err, -EINVAL,
				       "%s: bad region '%s' (letters, digits, '-', '_' and '.')",
				       where, shown);
		remote_replace(&r->region, value, false);
		break;
	case RK_PATH_STYLE:
	case RK_REQUESTER_PAYS:
	case RK_TLS_VERIFY:
	case RK_UNSIGNED_PAYLOAD:
		if (parse_bool(value, &b) != 0)
			return err_set(err, -EINVAL,
				       "%s: bad boolean '%s' for %s (expected true or false)",
				       where, shown, kn);
		if (k == RK_PATH_STYLE) {
			r->path_style = b;
			r->path_style_set = true;
		} else if (k == RK_REQUESTER_PAYS) {
			r->requester_pays = b;
		} else if (k == RK_TLS_VERIFY) {
			r->tls_verify = b;
		} else {
			r->unsigned_payload = b;
		}
		break;
	case RK_CA_FILE:
		remote_replace(&r->ca_file, value, false);
		break;
	case RK_RETRIES: {
		uint64_t n;
		if (parse_u64(value, &n) != 0 || n > 100)
			return err_set(err, -EINVAL, "%s: bad retries '%s' (0 to 100)", where,
				       shown);
		r->retries = (int)n;
		break;
	}
	case RK_GET_RANGE_MAX: {
		uint64_t n;
		if (parse_size(value, &n) != 0 || (n && n < GET_RANGE_MIN))
			return err_set(err, -EINVAL,
				       "%s: bad get_range_max '%s' (0 for no limit, or a size of "
				       "at least 64KiB, like 4MiB)",
				       where, shown);
		r->get_range_max = n;
		r->get_range_max_set = true;
		break;
	}
	case RK_ACCESS_KEY_ID:
		remote_replace(&r->access_key_id, value, false);
		break;
	case RK_SECRET_ACCESS_KEY:
		remote_replace(&r->secret_access_key, value, true);
		break;
	case RK_SESSION_TOKEN:
		remote_replace(&r->session_token, value, true);
		break;
	case RK_CREDENTIALS: {
		struct creds_spec spec = {0};
		if (creds_parse_mode(value, &spec) != 0)
			return err_set(err, -EINVAL,
				       "%s: unknown credentials '%s' (expected env, profile:NAME, "
				       "instance, anonymous or chain)",
				       where, shown);
		remote_replace(&r->credentials, value, false);
		break;
	}
	case RK_URL: {
		/* "host[:port]" alone means https */
		struct buf full = BUF_INIT;
		if (!strstr(value, "://"))
			buf_adds(&full, "https://");
		buf_adds(&full, value);
		char *norm = remote_endpoint_norm(buf_str(&full));
		buf_release(&full);
		if (!norm)
			return err_set(err, -EINVAL,
				       "%s: bad url '%s' (expected https://host[:port], or "
				       "http://host[:port] with insecure = true, with no path)",
				       where, strchr(value, '@') ? "..." : value);
		free(r->url);
		r->url = norm;
		break;
	}
	case RK_USERNAME:
		remote_replace(&r->username, value, false);
		break;
	case RK_PASSWORD:
		remote_replace(&r->password, value, true);
		break;
	case RK_INSECURE:
		if (parse_bool(value, &b) != 0)
			return err_set(err, -EINVAL,
				       "%s: bad boolean '%s' for %s (expected true or false)",
				       where, shown, kn);
		r->insecure = b;
		break;
	case RK_ACCOUNT: {
		size_t n = strlen(value);
		bool digits = n == 12;
		for (size_t i = 0; digits && i < n; i++)
			digits = value[i] >= '0' && value[i] <= '9';
		if (!digits)
			return err_set(err, -EINVAL, "%s: bad account '%s' (expected 12 digits)",
				       where, shown);
		remote_replace(&r->account, value, false);
		break;
	}
	case RK__COUNT:
		break;
	}
	r->given |= 1ul << k;
	return 0;
}

static int rkey_find(const char *name)
{
	for (int k = 0; k < RK__COUNT; k++)
		if (str_ieq(rkeys[k].name, name))
			return k;
	return -1;
}

/* ---- the config file ---- */

struct config_parse {
	struct config *cfg;
	const char *origin;
	struct remote_def *cur;	    /* NULL before the first section */
	struct config_section *sec; /* the current section when not a remote */
	unsigned seen;		    /* keys given in cur (bit per enum rkey) */
	bool has_secrets;
	unsigned secret_line;
	struct dth_err *err;
	/* config_check: each problem is given to problem and parsing goes on
	 * (the keys of a section that is refused are skipped) */
	config_problem_fn problem;
	void *pctx;
	bool skipping;
	unsigned problems;
};

/* In a check, report a problem and go on; else stop with it. */
static int problem(struct config_parse *c, int rc)
{
	if (!rc || !c->problem)
		return rc;
	c->problem(c->pctx, c->err->message);
	c->problems++;
	err_clear(c->err);
	return 0;
}

static const char *const section_kinds[] = {"agent", "task", "mount"};

const struct config_section *const *config_sections(const struct config *cfg, const char *kind,
						    size_t *n)
{
	for (size_t k = 0; k < ARRAY_SIZE(section_kinds); k++)
		if (!strcmp(kind, section_kinds[k])) {
			*n = cfg->n_sections[k];
			return (const struct config_section *const *)cfg->sections[k];
		}
	*n = 0;
	return NULL;
}

/* "agent" (no name), "task NAME", "mount NAME": kept for the layers that read
 * them; -ENOENT for another kind. */
static int section_other(struct config_parse *c, const char *section, unsigned line,
			 const char *shown)
{
	size_t k, kl = 0;
	for (k = 0; k < ARRAY_SIZE(section_kinds); k++) {
		kl = strlen(section_kinds[k]);
		if (!strncmp(section, section_kinds[k], kl) &&
		    (!section[kl] || section[kl] == ' ' || section[kl] == '\t'))
			break;
	}
	if (k == ARRAY_SIZE(section_kinds))
		return -ENOENT;
	const char *name = section + kl;
	while (*name == ' ' || *name == '\t')
		name++;
	if (k == 0 ? *name != '\0' : *name == '\0')
		return err_set(c->err, -EINVAL, "%s:%u: [%s] %s", c->origin, line, shown,
			       k == 0 ? "takes no name" : "needs a name");
	struct config *cfg = c->cfg;
	for (size_t i = 0; i < cfg->n_sections[k]; i++) {
		const struct config_section *o = cfg->sections[k][i];
		if (!strcmp(o->name, name))
			return err_set(c->err, -EINVAL,
				       "%s:%u: duplicate section [%s] (first at %s:%u)", c->origin,
				       line, shown, o->origin, o->line);
	}
	struct config_section *sec = xcalloc(1, sizeof(*sec));
	sec->kind = section_kinds[k];
	sec->name = xstrdup(name);
	sec->origin = xstrdup(c->origin);
	sec->line = line;
	cfg->sections[k] =
	    xrealloc(cfg->sections[k], (cfg->n_sections[k] + 1) * sizeof(*cfg->sections[k]));
	cfg->sections[k][cfg->n_sections[k]++] = sec;
	c->sec = sec;
	c->cur = NULL;
	return 0;
}

static int on_section(struct config_parse *c, const char *section, unsigned line);

static int config_on_section(void *ctx, const char *section, unsigned line)
{
	struct config_parse *c = ctx;
	int rc = on_section(c, section, line);
	c->skipping = rc != 0;
	if (rc) {
		c->cur = NULL;
		c->sec = NULL;
	}
	return problem(c, rc);
}

static int on_section(struct config_parse *c, const char *section, unsigned line)
{
	const char *shown = strlen(section) <= 64 ? section : "...";
	int rc = section_other(c, section, line, shown);
	if (rc != -ENOENT)
		return rc;
	if (!str_startswith(section, "remote") || (section[6] != ' ' && section[6] != '\t'))
		return err_set(c->err, -EINVAL,
			       "%s:%u: unknown section [%s] (expected [remote NAME], [task NAME], "
			       "[mount NAME] or [agent])",
			       c->origin, line, shown);
	c->sec = NULL;
	const char *name = section + 6;
	while (*name == ' ' || *name == '\t')
		name++;
	if (!remote_name_ok(name, strlen(name)))
		return err_set(c->err, -EINVAL,
			       "%s:%u: bad remote name in [%s] (1-64 letters, digits, '_', '-', "
			       "'.')",
			       c->origin, line, shown);
	const struct remote_def *dup = config_find(c->cfg, name);
	if (dup)
		return err_set(c->err, -EINVAL,
			       "%s:%u: duplicate remote '%s' (first defined at %s)", c->origin,
			       line, name, dup->source);
	struct buf src = BUF_INIT;
	buf_addf(&src, "%s:%u", c->origin, line);
	c->cur = config_add_remote(c->cfg, name, buf_str(&src));
	c->seen = 0;
	buf_release(&src);
	return 0;
}

static int on_key(struct config_parse *c, const char *key, const char *value, unsigned line);

static int config_on_key(void *ctx, const char *section, const char *key, const char *value,
			 unsigned line)
{
	struct config_parse *c = ctx;
	(void)section;
	if (c->skipping)
		return 0;
	return problem(c, on_key(c, key, value, line));
}

static int on_key(struct config_parse *c, const char *key, const char *value, unsigned line)
{
	if (c->sec) {
		struct config_section *sec = c->sec;
		sec->pairs = xrealloc(sec->pairs, (sec->n + 1) * sizeof(*sec->pairs));
		sec->pairs[sec->n].key = xstrdup(key);
		sec->pairs[sec->n].value = xstrdup(value);
		sec->pairs[sec->n].line = line;
		sec->n++;
		return 0;
	}
	if (!c->cur)
		return err_set(c->err, -EINVAL,
			       "%s:%u: key outside a section (start with [remote NAME])", c->origin,
			       line);
	int k = rkey_find(key);
	if (k < 0)
		return err_set(c->err, -EINVAL,
			       "%s:%u: unknown key '%s' in [remote %s] (known: %s)", c->origin,
			       line, remote_quotable(key) ? key : "...", c->cur->name, key_list);
	if (c->seen & (1u << k))
		return err_set(c->err, -EINVAL, "%s:%u: %s given twice in [remote %s]", c->origin,
			       line, rkeys[k].name, c->cur->name);
	c->seen |= 1u << k;
	if (rkeys[k].secret && !c->has_secrets) {
		c->has_secrets = true;
		c->secret_line = line;
	}
	struct buf where = BUF_INIT;
	buf_addf(&where, "%s:%u", c->origin, line);
	int rc = remote_set(c->cur, (enum rkey)k, value, buf_str(&where), c->err);
	buf_release(&where);
	return rc;
}

static int config_parse_i(struct config *cfg, const char *text, size_t len, const char *origin,
			  bool *has_secrets, struct dth_err *err)
{
	struct config_parse c = {.cfg = cfg, .origin = origin ? origin : "(config)", .err = err};
	int rc = ini_parse_sections(text, len, c.origin, config_on_key, config_on_section, &c, err);
	if (has_secrets)
		*has_secrets = c.has_secrets;
	return rc;
}

int config_parse_text(struct config *cfg, const char *text, const char *origin, struct dth_err *err)
{
	if (!cfg || !text)
		return err_set(err, -EINVAL, "no config text");
	return config_parse_i(cfg, text, strlen(text), origin, NULL, err);
}

/* ---- the environment ---- */

struct env_entry {
	char *name; /* lowercased remote name */
	enum rkey key;
	const char *value; /* borrowed from envp */
	char *var;	   /* the variable's name, for messages */
};

static void env_entries_free(struct env_entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(e[i].name);
		free(e[i].var);
	}
	free(e);
}

/* Split "NAME_KEY" (after DTH_REMOTE_) by the longest known key suffix. */
static int env_split(const char *s, size_t len, enum rkey *key, size_t *name_len)
{
	int best = -1;
	size_t best_len = 0;
	for (int k = 0; k < RK__COUNT; k++) {
		size_t kl = strlen(rkeys[k].env);
		if (len < kl + 2 || s[len - kl - 1] != '_')
			continue;
		if (memcmp(s + len - kl, rkeys[k].env, kl) != 0)
			continue;
		if (kl > best_len) {
			best = k;
			best_len = kl;
		}
	}
	if (best < 0)
		return -EINVAL;
	*key = (enum rkey)best;
	*name_len = len - best_len - 1;
	return 0;
}

static int config_env_collect(char *const *envp, struct env_entry **out, size_t *nout,
			      struct dth_err *err)
{
	struct env_entry *v = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;
	for (char *const *e = envp; e && *e; e++) {
		if (!str_startswith(*e, ENV_REMOTE_PREFIX))
			continue;
		const char *eq = strchr(*e, '=');
		if (!eq)
			continue;
		const char *rest = *e + strlen(ENV_REMOTE_PREFIX);
		size_t rlen = (size_t)(eq - rest);
		size_t varlen = (size_t)(eq - *e);
		enum rkey k;
		size_t nlen;
		if (env_split(rest, rlen, &k, &nlen) != 0) {
			rc =
			    err_set(err, -EINVAL,
				    "environment variable %.*s: expected DTH_REMOTE_<NAME>_<KEY> "
				    "with KEY one of TYPE, PROVIDER, ENDPOINT, REGION, PATH_STYLE, "
				    "REQUESTER_PAYS, TLS_VERIFY, UNSIGNED_PAYLOAD, CA_FILE, "
				    "ACCESS_KEY_ID, SECRET_ACCESS_KEY, SESSION_TOKEN, CREDENTIALS, "
				    "RETRIES, URL, USERNAME, PASSWORD, INSECURE, ACCOUNT",
				    (int)(varlen > 96 ? 96 : varlen), *e);
			goto fail;
		}
		if (!remote_name_ok(rest, nlen)) {
			rc = err_set(err, -EINVAL,
				     "environment variable %.*s: bad remote name (1-64 letters, "
				     "digits, '_', '-', '.')",
				     (int)(varlen > 96 ? 96 : varlen), *e);
			goto fail;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			v = xrealloc(v, cap * sizeof(*v));
		}
		char *name = xstrndup(rest, nlen);
		for (char *c = name; *c; c++)
			if (*c >= 'A' && *c <= 'Z')
				*c = (char)(*c - 'A' + 'a');
		v[n].name = name;
		v[n].key = k;
		v[n].value = eq + 1;
		v[n].var = xstrndup(*e, varlen);
		n++;
	}
	*out = v;
	*nout = n;
	return 0;
fail:
	env_entries_free(v, n);
	return rc;
}

static int config_overlay_env(struct config *cfg, char *const *envp, struct dth_err *err)
{
	struct env_entry *v = NULL;
	size_t n = 0;
	int rc = config_env_collect(envp, &v, &n, err);
	if (rc)
		return rc;
	bool *done = xcalloc(n ? n : 1, sizeof(bool));
	for (size_t i = 0; i < n && !rc; i++) {
		if (done[i])
			continue;
		/* All variables of this remote. */
		bool has_def = false, has_keys = false, has_mode = false;
		for (size_t j = i; j < n; j++) {
			if (strcmp(v[j].name, v[i].name) != 0)
				continue;
			enum rkey k = v[j].key;
			has_def |= k == RK_TYPE || k == RK_ENDPOINT || k == RK_PROVIDER ||
				   k == RK_URL || k == RK_ACCOUNT;
			has_keys |= k == RK_ACCESS_KEY_ID || k == RK_SECRET_ACCESS_KEY ||
				    k == RK_SESSION_TOKEN;
			has_mode |= k == RK_CREDENTIALS;
		}
		struct remote_def *r = config_find(cfg, v[i].name);
		if (!r) {
			if (!has_def) {
				rc = err_set(err, -EINVAL,
					     "environment: remote '%s' is not in the config file; "
					     "define it with DTH_REMOTE_%.*s_TYPE, _ENDPOINT, "
					     "_PROVIDER, _URL or _ACCOUNT",
					     v[i].name, (int)strlen(v[i].name), v[i].var + 11);
				break;
			}
			r = config_add_remote(cfg, v[i].name, "environment");
		} else {
			/* A credential source given in the environment replaces the
			 * file's. */
			if (has_keys && !has_mode) {
				free(r->credentials);
				r->credentials = NULL;
			}
			if (has_mode && !has_keys) {
				free(r->access_key_id);
				r->access_key_id = NULL;
				remote_wipe_free(r->secret_access_key);
				r->secret_access_key = NULL;
				remote_wipe_free(r->session_token);
				r->session_token = NULL;
			}
		}
		for (size_t j = i; j < n && !rc; j++) {
			if (done[j] || strcmp(v[j].name, v[i].name) != 0)
				continue;
			done[j] = true;
			struct buf where = BUF_INIT;
			buf_addf(&where, "environment variable %s", v[j].var);
			rc = remote_set(r, v[j].key, v[j].value, buf_str(&where), err);
			buf_release(&where);
		}
	}
	free(done);
	env_entries_free(v, n);
	return rc;
}

/* ---- presets and validation ---- */

/* Refuse keys given that do not apply to r's type (mask: keys allowed). */
static int remote_check_keys(const struct remote_def *r, unsigned long allowed, struct dth_err *err)
{
	for (int k = 0; k < RK__COUNT; k++)
		if ((r->given & (1ul << k)) && !(allowed & (1ul << k)))
			return err_set(err, -EINVAL,
				       "%s: remote %s: %s does not apply to a remote of type %s",
				       r->source, r->name, rkeys[k].name, r->type);
	return 0;
}

#define KBIT(k)	       (1ul << (k))
#define KEYS_ALL_TYPES (KBIT(RK_TYPE) | KBIT(RK_TLS_VERIFY) | KBIT(RK_CA_FILE) | KBIT(RK_RETRIES))
#define KEYS_CREDS                                                                                 \
	(KBIT(RK_ACCESS_KEY_ID) | KBIT(RK_SECRET_ACCESS_KEY) | KBIT(RK_SESSION_TOKEN) |            \
	 KBIT(RK_CREDENTIALS))

static int remote_check_creds(struct remote_def *r, struct dth_err *err);

static int remote_complete_registry(struct remote_def *r, struct dth_err *err)
{
	int rc = remote_check_keys(r,
				   KEYS_ALL_TYPES | KBIT(RK_URL) | KBIT(RK_USERNAME) |
				       KBIT(RK_PASSWORD) | KBIT(RK_INSECURE),
				   err);
	if (rc)
		return rc;
	if (!r->url)
		return err_set(err, -EINVAL,
			       "%s: remote %s: a registry remote needs url = https://host[:port]",
			       r->source, r->name);
	if (str_startswith(r->url, "http://") && !r->insecure)
		return err_set(err, -EINVAL,
			       "%s: remote %s: url %s is plain http: set insecure = true to allow "
			       "it",
			       r->source, r->name, r->url);
	if (!r->username != !r->password)
		return err_set(err, -EINVAL, "%s: remote %s: %s given without %s", r->source,
			       r->name, r->username ? "username" : "password",
			       r->username ? "password" : "username");
	return 0;
}

static int remote_complete_ecr(struct remote_def *r, struct dth_err *err)
{
	int rc =
	    remote_check_keys(r,
			      KEYS_ALL_TYPES | KEYS_CREDS | KBIT(RK_ACCOUNT) | KBIT(RK_REGION) |
				  KBIT(RK_ENDPOINT) | KBIT(RK_URL) | KBIT(RK_INSECURE),
			      err);
	if (rc)
		return rc;
	if (!r->account)
		return err_set(err, -EINVAL,
			       "%s: remote %s: an ecr remote needs account = <12 digits>",
			       r->source, r->name);
	if (!r->region)
		return err_set(err, -EINVAL,
			       "%s: remote %s: an ecr remote needs a region (e.g. us-east-1, "
			       "cn-north-1)",
			       r->source, r->name);
	if (r->url && str_startswith(r->url, "http://") && !r->insecure)
		return err_set(err, -EINVAL,
			       "%s: remote %s: url %s is plain http: set insecure = true to allow "
			       "it",
			       r->source, r->name, r->url);
	return remote_check_creds(r, err);
}

static int remote_complete(struct remote_def *r, struct dth_err *err)
{
	if (!r->type)
		r->type = xstrdup("s3");
	if (!strcmp(r->type, "registry"))
		return remote_complete_registry(r, err);
	if (!strcmp(r->type, "ecr"))
		return remote_complete_ecr(r, err);
	int krc = remote_check_keys(r,
				    ~(KBIT(RK_URL) | KBIT(RK_USERNAME) | KBIT(RK_PASSWORD) |
				      KBIT(RK_INSECURE) | KBIT(RK_ACCOUNT)),
				    err);
	if (krc)
		return krc;
	if (!r->provider)
		r->provider = xstrdup(r->endpoint ? "other" : "aws");
	const struct provider_preset *pp = provider_find(r->provider);
	if (!pp)
		return err_set(err, -EINVAL, "%s: remote %s: unknown provider '%s'", r->source,
			       r->name, r->provider);
	if (!r->region && pp->default_region)
		r->region = xstrdup(pp->default_region);
	if (!r->endpoint) {
		if (pp->needs_endpoint)
			return err_set(err, -EINVAL,
				       "%s: remote %s: provider %s needs an endpoint "
				       "(endpoint = http(s)://host[:port])",
				       r->source, r->name, pp->name);
		struct buf ep = BUF_INIT;
		struct dth_err e;
		err_clear(&e);
		int rc = provider_endpoint(r->provider, r->region, &ep, &e);
		if (rc) {
			buf_release(&ep);
			return err_set(err, rc, "%s: remote %s: %s", r->source, r->name, e.message);
		}
		r->endpoint = buf_detach(&ep, NULL);
	}
	if (!r->region)
		return err_set(err, -EINVAL, "%s: remote %s: provider %s needs a region", r->source,
			       r->name, pp->name);
	if (!r->path_style_set)
		r->path_style = pp->path_style;
	if (!r->get_range_max_set)
		r->get_range_max = pp->get_range_max;
	return remote_check_creds(r, err);
}

/* Access keys and credentials = are exclusive; keys come in pairs. */
static int remote_check_creds(struct remote_def *r, struct dth_err *err)
{
	bool has_id = r->access_key_id != NULL, has_secret = r->secret_access_key != NULL;
	if (has_id != has_secret)
		return err_set(err, -EINVAL, "%s: remote %s: %s given without %s", r->source,
			       r->name, has_id ? "access_key_id" : "secret_access_key",
			       has_id ? "secret_access_key" : "access_key_id");
	if (r->session_token && !has_id)
		return err_set(err, -EINVAL,
			       "%s: remote %s: session_token given without access_key_id and "
			       "secret_access_key",
			       r->source, r->name);
	if (r->credentials && has_id)
		return err_set(
		    err, -EINVAL,
		    "%s: remote %s: give either access keys or credentials = %s, not both",
		    r->source, r->name, r->credentials);
	return 0;
}

int config_finish(struct config *cfg, char *const *envp, struct dth_err *err)
{
	if (!cfg)
		return err_set(err, -EINVAL, "no config");
	int rc = config_overlay_env(cfg, envp, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < cfg->n; i++) {
		rc = remote_complete(cfg->remotes[i], err);
		if (rc)
			return rc;
	}
	return 0;
}

/* ---- loading ---- */

static char *config_home_path(const char *rel)
{
	const char *home = getenv("HOME");
	if (!home || !*home) {
		struct passwd *pw = getpwuid(getuid());
		home = pw ? pw->pw_dir : NULL;
	}
	if (!home)
		return NULL;
	struct buf b = BUF_INIT;
	buf_addf(&b, "%s/%s", home, rel);
	return buf_detach(&b, NULL);
}

/* Read path into text. -ENOENT (err set) when it does not exist. */
static int config_read(const char *path, struct buf *text, mode_t *mode, struct dth_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		if (e == ENOENT)
			return err_set(err, -ENOENT, "config file %s: no such file", path);
		return err_set(err, -e, "config file %s: %s", path, strerror(e));
	}
	int rc = 0;
	struct stat st;
	if (fstat(fd, &st) != 0) {
		rc = err_set(err, -errno, "config file %s: %s", path, strerror(errno));
		goto cleanup;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = err_set(err, -EINVAL, "config file %s: not a regular file", path);
		goto cleanup;
	}
	*mode = st.st_mode;
	char chunk[8192];
	for (;;) {
		ssize_t r = read(fd, chunk, sizeof(chunk));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			rc = err_set(err, -errno, "config file %s: %s", path, strerror(errno));
			break;
		}
		if (r == 0)
			break;
		if (text->len + (size_t)r > CONFIG_FILE_MAX) {
			rc = err_set(err, -EFBIG, "config file %s: too large", path);
			break;
		}
		buf_add(text, chunk, (size_t)r);
	}
	explicit_bzero(chunk, sizeof(chunk));
cleanup:
	close(fd);
	return rc;
}

static bool config_exists(const char *path)
{
	return path && access(path, F_OK) == 0;
}

/* The file to read: path, else $DTH_CONFIG, else the first of
 * ~/.config/dth/dth.conf and /etc/dth/dth.conf that exists; NULL for none.
 * *home (to free) may hold the string. */
static const char *config_choose(const char *path, char **home)
{
	*home = NULL;
	if (path)
		return path;
	if (getenv("DTH_CONFIG") && *getenv("DTH_CONFIG"))
		return getenv("DTH_CONFIG");
	*home = config_home_path(".config/dth/dth.conf");
	if (config_exists(*home))
		return *home;
	return config_exists("/etc/dth/dth.conf") ? "/etc/dth/dth.conf" : NULL;
}

static void secrets_open_msg(const char *file, unsigned line, mode_t mode, struct dth_err *err)
{
	err_set(err, -EACCES,
		"config file %s holds secrets (from line %u) and is readable by others (mode "
		"%04o): chmod 600 it",
		file, line, (unsigned)(mode & 07777));
}

int config_check(const char *path, config_problem_fn fn, void *ctx, struct config **out,
		 struct dth_err *err)
{
	*out = NULL;
	struct config *cfg = config_new_empty();
	char *home = NULL;
	struct buf text = BUF_INIT;
	const char *file = config_choose(path, &home);
	struct config_parse c = {
	    .cfg = cfg, .origin = file, .err = err, .problem = fn, .pctx = ctx};
	int rc = 0;
	if (file) {
		mode_t mode = 0;
		if ((rc = config_read(file, &text, &mode, err)))
			goto out;
		cfg->path = xstrdup(file);
		/* a syntax error stops the reading: it is the last problem found */
		problem(&c, ini_parse_sections(buf_str(&text), text.len, file, config_on_key,
					       config_on_section, &c, err));
		if (c.has_secrets && (mode & 077)) {
			secrets_open_msg(file, c.secret_line, mode, err);
			problem(&c, -EACCES);
		}
	}
	problem(&c, config_overlay_env(cfg, environ, err));
	for (size_t i = 0; i < cfg->n; i++)
		problem(&c, remote_complete(cfg->remotes[i], err));
out:
	if (text.data)
		explicit_bzero(text.data, text.len);
	buf_release(&text);
	free(home);
	if (rc) {
		config_free(cfg);
		return rc;
	}
	*out = cfg;
	return (int)c.problems;
}

struct config *config_load(const char *path, struct dth_err *err)
{
	struct config *cfg = config_new_empty();
	char *home_conf = NULL;
	struct buf text = BUF_INIT;
	int rc = 0;

	const char *file = config_choose(path, &home_conf);
	if (file) {
		mode_t mode = 0;
		bool secrets = false;
		rc = config_read(file, &text, &mode, err);
		if (rc)
			goto cleanup;
		cfg->path = xstrdup(file);
		rc = config_parse_i(cfg, buf_str(&text), text.len, file, &secrets, err);
		if (rc)
			goto cleanup;
		if (secrets && (mode & 077)) {
			rc = err_set(err, -EACCES,
				     "config file %s holds secrets and is readable by others (mode "
				     "%04o): chmod 600 it",
				     file, (unsigned)(mode & 07777));
			goto cleanup;
		}
	}
	rc = config_finish(cfg, environ, err);
cleanup:
	if (text.data)
		explicit_bzero(text.data, text.len);
	buf_release(&text);
	free(home_conf);
	if (rc) {
		config_free(cfg);
		return NULL;
	}
	return cfg;
}

/* ---- opening a remote ---- */

struct http_engine *remote_http_new(const struct remote_def *r)
{
	struct http_engine_opts ho;
	memset(&ho, 0, sizeof(ho));
	ho.tls_verify = r->tls_verify;
	ho.ca_file = r->ca_file;
	return http_engine_new(&ho);
}

int remote_open_creds(const struct remote_def *r, struct http_engine *http,
		      struct creds_provider **out, struct dth_err *err)
{
	*out = NULL;
	struct creds_spec spec = {0};
	if (r->credentials) {
		if (creds_parse_mode(r->credentials, &spec) != 0)
			return err_set(err, -EINVAL, "remote %s: bad credentials '%s'", r->name,
				       r->credentials);
	} else if (r->access_key_id) {
		spec.mode = CREDS_STATIC;
	} else {
		spec.mode = CREDS_CHAIN;
	}
	if (spec.mode == CREDS_STATIC || spec.mode == CREDS_CHAIN) {
		spec.access_key_id = r->access_key_id;
		spec.secret_access_key = r->secret_access_key;
		spec.session_token = r->session_token;
	}
	spec.http = http;
	struct dth_err e;
	err_clear(&e);
	*out = creds_provider_new(&spec, &e);
	if (!*out)
		return err_set(err, e.code ? e.code : -EINVAL, "remote %s: %s", r->name, e.message);
	return 0;
}

int remote_open_s3(const struct remote_def *r, struct http_engine *http,
		   struct creds_provider **creds, struct s3_client **client, struct dth_err *err)
{
	*creds = NULL;
	*client = NULL;
	if (!r)
		return err_set(err, -EINVAL, "no remote");
	if (!r->type || strcmp(r->type, "s3") != 0)
		return err_set(err, -EINVAL, "remote %s: type %s is not s3", r->name,
			       r->type ? r->type : "(none)");
	if (!r->endpoint || !r->region)
		return err_set(err, -EINVAL, "remote %s: no endpoint or region", r->name);

	struct creds_provider *cp;
	int rc = remote_open_creds(r, http, &cp, err);
	if (rc)
		return rc;

	struct s3_config sc = {
	    .name = r->name,
	    .endpoint = r->endpoint,
	    .region = r->region,
	    .path_style = r->path_style,
	    .requester_pays = r->requester_pays,
	    .unsigned_payload = r->unsigned_payload,
	    .get_range_max = r->get_range_max,
	    .creds = cp,
	    .http = http,
	    .retry = RETRY_POLICY_DEFAULT,
	};
	if (r->retries >= 0)
		sc.retry.max_attempts = (unsigned)r->retries + 1;
	struct s3_client *c = s3_client_new(&sc);
	if (!c) {
		creds_provider_free(cp);
		return err_set(err, -ENOMEM, "remote %s: cannot create the s3 client", r->name);
	}
	*creds = cp;
	*client = c;
	return 0;
}

int remote_open_registry(const struct remote_def *r, struct http_engine *http,
			 struct registry_client **client, struct dth_err *err)
{
	*client = NULL;
	if (!r)
		return err_set(err, -EINVAL, "no remote");
	if (!r->type || strcmp(r->type, "registry") != 0)
		return err_set(err, -EINVAL, "remote %s: type %s is not registry", r->name,
			       r->type ? r->type : "(none)");
	if (!r->url)
		return err_set(err, -EINVAL, "remote %s: no url", r->name);
	struct registry_config rc = {
	    .name = r->name,
	    .url = r->url,
	    .username = r->username,
	    .password = r->password,
	    .insecure = r->insecure,
	    .http = http,
	    .retry = RETRY_POLICY_DEFAULT,
	};
	if (r->retries >= 0)
		rc.retry.max_attempts = (unsigned)r->retries + 1;
	struct dth_err e;
	err_clear(&e);
	struct registry_client *c = registry_client_new(&rc, &e);
	if (!c)
		return err_set(err, e.code ? e.code : -EINVAL, "%s", e.message);
	*client = c;
	return 0;
}

/* ---- REMOTE:BUCKET[/PREFIX] ---- */

static bool bucket_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-';
}

bool remote_spec_is_local(const char *spec)
{
	return spec && (spec[0] == '/' || !strncmp(spec, "./", 2) || !strncmp(spec, "../", 3) ||
			!strcmp(spec, ".") || !strcmp(spec, ".."));
}

int remote_parse_path(const char *spec, char **remote, char **bucket, char **prefix,
		      struct dth_err *err)
{
	*remote = *bucket = *prefix = NULL;
	if (!spec)
		return err_set(err, -EINVAL, "no path given: expected REMOTE:BUCKET[/PREFIX]");
	const char *shown = strlen(spec) <= 200 ? spec : "...";
	const char *colon = strchr(spec, ':');
	if (!colon || colon == spec)
		return err_set(err, -EINVAL, "bad path '%s': expected REMOTE:BUCKET[/PREFIX]",
			       shown);
	if (!remote_name_ok(spec, (size_t)(colon - spec)))
		return err_set(
		    err, -EINVAL,
		    "bad path '%s': remote name before ':' must be 1-64 letters, digits, "
		    "'_', '-' or '.' (expected REMOTE:BUCKET[/PREFIX])",
		    shown);
	const char *b = colon + 1;
	const char *slash = strchr(b, '/');
	size_t blen = slash ? (size_t)(slash - b) : strlen(b);
	if (blen == 0)
		return err_set(
		    err, -EINVAL,
		    "bad path '%s': no bucket after ':' (expected REMOTE:BUCKET[/PREFIX])", shown);
	if (blen > 255)
		return err_set(err, -EINVAL, "bad path '%s': bucket name longer than 255", shown);
	for (size_t i = 0; i < blen; i++)
		if (!bucket_char_ok(b[i]))
			return err_set(err, -EINVAL,
				       "bad path '%s': bucket names are made of letters, digits, "
				       "'.', '_' and '-' (expected REMOTE:BUCKET[/PREFIX])",
				       shown);
	*remote = xstrndup(spec, (size_t)(colon - spec));
	*bucket = xstrndup(b, blen);
	*prefix = xstrdup(slash ? slash + 1 : "");
	return 0;
}
