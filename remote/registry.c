#include "common/compat.h"

#include "remote/registry.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/log.h"
#include "common/secret.h"
#include "common/uri.h"
#include "remote/exec.h"

#define REDIRECT_MAX	 5
#define LIST_BODY_MAX	 (8u << 20)
#define TOKEN_BODY_MAX	 (1u << 20)
#define TOKEN_CACHE_MAX	 256
#define TOKEN_TTL_DEF	 60
#define LIST_PAGES_MAX	 100000
#define WHAT_MAX	 400
#define SECRET_MAX	 8192
#define CATALOG_PAGE	 1000
#define GENERIC_CT_COUNT 4
/* Answers cut short under a Content-Length that matches them (or bodies that
 * do not parse) are asked for again, up to this many times in all. */
#define GARBLED_TRIES 3

static const char accept_manifests[] = REGISTRY_MT_OCI_MANIFEST
    ", " REGISTRY_MT_OCI_INDEX ", " REGISTRY_MT_DOCKER_MANIFEST ", " REGISTRY_MT_DOCKER_LIST;

struct token_entry {
	char *scope; /* cache key: the scopes joined with ' ' */
	char *token; /* secret */
	uint64_t expires_ms;
};

enum auth_mode { AUTH_UNKNOWN = 0, AUTH_BASIC, AUTH_BEARER };
enum auth_sent { SENT_NONE = 0, SENT_BASIC, SENT_CACHED, SENT_FRESH };

struct registry_client {
	char *name;
	char *url;  /* scheme://host[:port] */
	char *host; /* host[:port] */
	bool insecure;
	bool hub;
	struct http_engine *http;
	struct retry_policy retry;
	_Atomic uint64_t counts[REGISTRY_REQ__COUNT];
	/* Docker Hub's pull limit, from the last response that carried it:
	 * "ratelimit-limit: 100;w=21600", "ratelimit-remaining: 76;w=21600".
	 * -1 while unknown. */
	_Atomic int64_t rl_limit, rl_remaining, rl_window;
	atomic_bool rl_warned;

	pthread_mutex_t lock; /* everything below */
	pthread_mutex_t fetch_lock;
	char *username;
	char *password;
	enum auth_mode mode;
	char *realm;
	char *service;
	struct token_entry *tokens;
	size_t n_tokens;
};

struct registry_upload {
	char *repo;	/* normalised */
	char *location; /* absolute */
	uint64_t offset;
};

static void note_ratelimit(struct registry_client *c, const struct http_resp *resp);

static const char *const kind_names[REGISTRY_REQ__COUNT] = {"head", "get",   "put",
							    "post", "patch", "other"};

const char *registry_req_kind_name(enum registry_req_kind k)
{
	return (unsigned)k < REGISTRY_REQ__COUNT ? kind_names[k] : "?";
}

void registry_client_counts(const struct registry_client *c, uint64_t out[REGISTRY_REQ__COUNT])
{
	for (int i = 0; i < REGISTRY_REQ__COUNT; i++)
		out[i] = atomic_load(&((struct registry_client *)c)->counts[i]);
}

static enum registry_req_kind kind_of(const char *method)
{
	if (!strcmp(method, "HEAD"))
		return REGISTRY_REQ_HEAD;
	if (!strcmp(method, "GET"))
		return REGISTRY_REQ_GET;
	if (!strcmp(method, "PUT"))
		return REGISTRY_REQ_PUT;
	if (!strcmp(method, "POST"))
		return REGISTRY_REQ_POST;
	if (!strcmp(method, "PATCH"))
		return REGISTRY_REQ_PATCH;
	return REGISTRY_REQ_OTHER;
}

/* ---- small helpers ---- */

void registry_digest_of(const void *data, size_t len, char *out)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
	memcpy(out, "sha256:", 7);
	hex_encode(md, mdlen, out + 7);
}

static bool is_tchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* ---- validation ---- */

bool registry_digest_valid(const char *d)
{
	if (!d || strncmp(d, "sha256:", 7) != 0)
		return false;
	const char *h = d + 7;
	size_t n = 0;
	for (; h[n]; n++)
		if (!((h[n] >= '0' && h[n] <= '9') || (h[n] >= 'a' && h[n] <= 'f')))
			return false;
	return n == 64;
}

static bool lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool registry_repo_valid(const char *repo)
{
	if (!repo)
		return false;
	size_t n = strlen(repo);
	if (n == 0 || n > REGISTRY_REPO_MAX)
		return false;
	size_t i = 0;
	for (;;) {
		/* one path component */
		if (!lower_alnum(repo[i]))
			return false;
		while (lower_alnum(repo[i]))
			i++;
		while (repo[i] == '.' || repo[i] == '_' || repo[i] == '-') {
			if (repo[i] == '.') {
				i++;
			} else if (repo[i] == '_') {
				i++;
				if (repo[i] == '_')
					i++;
			} else {
				while (repo[i] == '-')
					i++;
			}
			if (!lower_alnum(repo[i]))
				return false;
			while (lower_alnum(repo[i]))
				i++;
		}
		if (repo[i] == '\0')
			return true;
		if (repo[i] != '/')
			return false;
		i++;
	}
}

bool registry_tag_valid(const char *tag)
{
	if (!tag || !*tag)
		return false;
	size_t n = strlen(tag);
	if (n > REGISTRY_TAG_MAX)
		return false;
	char c0 = tag[0];
	if (!((c0 >= 'a' && c0 <= 'z') || (c0 >= 'A' && c0 <= 'Z') || (c0 >= '0' && c0 <= '9') ||
	      c0 == '_'))
		return false;
	for (size_t i = 1; i < n; i++) {
		char c = tag[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '-'))
			return false;
	}
	return true;
}

/* A short printable rendering of untrusted input for messages. */
static void shown(const char *s, char *out, size_t outsz)
{
	size_t j = 0;
	for (size_t i = 0; s && s[i] && j + 4 < outsz; i++) {
		unsigned char c = (unsigned char)s[i];
		out[j++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
		if (i >= 200) {
			out[j++] = '.';
			out[j++] = '.';
			out[j++] = '.';
			break;
		}
	}
	out[j] = '\0';
}

int registry_parse_reference(const char *s, char **repo, char **tag, char **digest,
			     struct dth_err *err)
{
	*repo = *tag = *digest = NULL;
	char sh[220];
	shown(s, sh, sizeof(sh));
	if (!s || !*s)
		return err_set(err, -EINVAL, "empty image reference (expected REPO[:TAG|@DIGEST])");
	const char *at = strchr(s, '@');
	size_t name_end = at ? (size_t)(at - s) : strlen(s);
	if (at && !registry_digest_valid(at + 1))
		return err_set(err, -EINVAL,
			       "bad image reference '%s': the digest after '@' must be sha256: and "
			       "64 lowercase hex digits",
			       sh);
	const char *slash = NULL;
	for (size_t i = 0; i < name_end; i++)
		if (s[i] == '/')
			slash = s + i;
	const char *colon = NULL;
	for (const char *p = slash ? slash : s; p < s + name_end; p++)
		if (*p == ':')
			colon = p;
	size_t repo_len = colon ? (size_t)(colon - s) : name_end;
	char *r = xstrndup(s, repo_len);
	if (!registry_repo_valid(r)) {
		free(r);
		return err_set(err, -EINVAL,
			       "bad image reference '%s': repository names are lowercase letters "
			       "and digits, separated by '.', '_', '__', '-' or '/'",
			       sh);
	}
	char *t = NULL;
	if (colon) {
		t = xstrndup(colon + 1, (size_t)(s + name_end - colon - 1));
		if (!registry_tag_valid(t)) {
			free(r);
			free(t);
			return err_set(err, -EINVAL,
				       "bad image reference '%s': a tag is 1-128 letters, digits, "
				       "'_', '.' or '-' (not starting with '.' or '-')",
				       sh);
		}
	}
	*repo = r;
	*tag = t;
	*digest = at ? xstrdup(at + 1) : NULL;
	return 0;
}

static bool host_is_hub(const char *host)
{
	return str_ieq(host, "registry-1.docker.io") || str_ieq(host, "docker.io") ||
	       str_ieq(host, "index.docker.io") || str_ieq(host, "registry-1.docker.io:443");
}

void registry_normalize_repo(const char *host, const char *repo, struct buf *out)
{
	if (host && host_is_hub(host) && !strchr(repo, '/'))
		buf_adds(out, "library/");
	buf_adds(out, repo);
}

/* ---- WWW-Authenticate ---- */

void registry_challenge_release(struct registry_challenge *ch)
{
	if (!ch)
		return;
	free(ch->realm);
	free(ch->service);
	free(ch->scope);
	free(ch->error);
	memset(ch, 0, sizeof(*ch));
}

/* Parse a token at *p into out (reset); false when none. */
static bool parse_token(const char **p, struct buf *out)
{
	buf_reset(out);
	const char *s = *p;
	while (is_tchar(*s))
		s++;
	if (s == *p)
		return false;
	buf_add(out, *p, (size_t)(s - *p));
	*p = s;
	return true;
}

/* A quoted-string at *p (starting with '"') into out; false when unterminated. */
static bool parse_quoted(const char **p, struct buf *out)
{
	buf_reset(out);
	const char *s = *p + 1;
	for (;;) {
		if (*s == '\0')
			return false;
		if (*s == '"')
			break;
		if (*s == '\\') {
			s++;
			if (*s == '\0')
				return false;
		}
		buf_addch(out, *s++);
	}
	*p = s + 1;
	return true;
}

int registry_parse_www_authenticate(const char *value, struct registry_challenge *out)
{
	memset(out, 0, sizeof(*out));
	if (!value)
		return -EINVAL;
	const char *p = value;
	struct buf tok = BUF_INIT, name = BUF_INIT, val = BUF_INIT;
	struct registry_challenge cur;
	int rc = 0;
	bool have = false;
	memset(&cur, 0, sizeof(cur));

	for (;;) {
		while (is_ows(*p) || *p == ',')
			p++;
		if (*p == '\0')
			break;
		/* a scheme */
		if (!parse_token(&p, &tok) || tok.len >= sizeof(cur.scheme)) {
			rc = -EINVAL;
			goto cleanup;
		}
		registry_challenge_release(&cur);
		for (size_t i = 0; i < tok.len; i++)
			cur.scheme[i] = (char)((tok.data[i] >= 'A' && tok.data[i] <= 'Z')
						   ? tok.data[i] - 'A' + 'a'
						   : tok.data[i]);
		cur.scheme[tok.len] = '\0';
		bool first_param = true;
		/* its parameters */
		for (;;) {
			const char *save = p;
			while (is_ows(*p))
				p++;
			if (*p == '\0')
				break;
			if (*p == ',') {
				p++;
				continue;
			}
			const char *pstart = p;
			if (!parse_token(&p, &name)) {
				rc = -EINVAL;
				goto cleanup;
			}
			while (is_ows(*p))
				p++;
			if (*p != '=') {
				/* the next challenge starts here */
				p = save;
				(void)pstart;
				break;
			}
			p++;
			if (first_param && (*p == '=' || *p == ',' || *p == '\0')) {
				/* token68 ("Basic dGVzdA==") */
				while (*p == '=')
					p++;
				first_param = false;
				continue;
			}
			first_param = false;
			while (is_ows(*p))
				p++;
			if (*p == '"') {
				if (!parse_quoted(&p, &val)) {
					rc = -EINVAL;
					goto cleanup;
				}
			} else if (!parse_token(&p, &val)) {
				rc = -EINVAL;
				goto cleanup;
			}
			while (is_ows(*p))
				p++;
			if (*p != ',' && *p != '\0') {
				rc = -EINVAL;
				goto cleanup;
			}
			char **slot = NULL;
			if (str_ieq(buf_str(&name), "realm"))
				slot = &cur.realm;
			else if (str_ieq(buf_str(&name), "service"))
				slot = &cur.service;
			else if (str_ieq(buf_str(&name), "scope"))
				slot = &cur.scope;
			else if (str_ieq(buf_str(&name), "error"))
				slot = &cur.error;
			if (slot && !*slot)
				*slot = xstrndup(buf_str(&val), val.len);
		}
		bool take = !have || (strcmp(out->scheme, "bearer") != 0 &&
				      strcmp(cur.scheme, "bearer") == 0);
		if (take) {
			registry_challenge_release(out);
			*out = cur;
			memset(&cur, 0, sizeof(cur));
			have = true;
		}
	}
	if (!have)
		rc = -EINVAL;
cleanup:
	registry_challenge_release(&cur);
	if (rc)
		registry_challenge_release(out);
	buf_release(&tok);
	buf_release(&name);
	buf_release(&val);
	return rc;
}

/* ---- Link ---- */

int registry_parse_link_next(const char *value, struct buf *out)
{
	buf_reset(out);
	if (!value)
		return -EINVAL;
	const char *p = value;
	struct buf name = BUF_INIT, val = BUF_INIT, target = BUF_INIT;
	int rc = -ENOENT;
	for (;;) {
		while (is_ows(*p) || *p == ',')
			p++;
		if (*p == '\0')
			break;
		if (*p != '<') {
			rc = -EINVAL;
			break;
		}
		const char *end = strchr(p + 1, '>');
		if (!end) {
			rc = -EINVAL;
			break;
		}
		buf_reset(&target);
		buf_add(&target, p + 1, (size_t)(end - p - 1));
		p = end + 1;
		bool next = false;
		for (;;) {
			while (is_ows(*p))
				p++;
			if (*p != ';')
				break;
			p++;
			while (is_ows(*p))
				p++;
			if (!parse_token(&p, &name)) {
				rc = -EINVAL;
				goto done;
			}
			while (is_ows(*p))
				p++;
			buf_reset(&val);
			if (*p == '=') {
				p++;
				while (is_ows(*p))
					p++;
				if (*p == '"') {
					if (!parse_quoted(&p, &val)) {
						rc = -EINVAL;
						goto done;
					}
				} else if (!parse_token(&p, &val)) {
					rc = -EINVAL;
					goto done;
				}
			}
			if (str_ieq(buf_str(&name), "rel")) {
				/* rel may list several space-separated types */
				const char *v = buf_str(&val);
				while (*v) {
					while (*v == ' ')
						v++;
					size_t n = strcspn(v, " ");
					if (n == 4 && strncasecmp(v, "next", 4) == 0)
						next = true;
					v += n;
				}
			}
		}
		if (*p != ',' && *p != '\0') {
			rc = -EINVAL;
			break;
		}
		if (next && rc == -ENOENT) {
			buf_add(out, target.data ? buf_str(&target) : "", target.len);
			rc = 0;
		}
	}
done:
	if (rc)
		buf_reset(out);
	buf_release(&name);
	buf_release(&val);
	buf_release(&target);
	return rc;
}

/* ---- URLs ---- */

/* Length of "http://" or "https://" at the start of url, else 0. */
static size_t scheme_len(const char *url)
{
	if (strncasecmp(url, "http://", 7) == 0)
		return 7;
	if (strncasecmp(url, "https://", 8) == 0)
		return 8;
	return 0;
}

/* Length of "scheme://host[:port]" at the start of url, 0 when not http(s)
 * or without a host. */
static size_t origin_len(const char *url)
{
	size_t skip = scheme_len(url);
	size_t host = skip ? strcspn(url + skip, "/?#") : 0;
	return host ? skip + host : 0;
}

int registry_resolve_url(const char *base, const char *target, struct buf *out)
{
	buf_reset(out);
	if (!base || !target || !*target)
		return -EINVAL;
	for (const char *p = target; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f)
			return -EINVAL;
	if (scheme_len(target) > 0) {
		if (origin_len(target) == 0)
			return -EINVAL; /* no host */
		buf_adds(out, target);
		return 0;
	}
	size_t bl = origin_len(base);
	if (bl == 0)
		return -EINVAL;
	if (target[0] == '/' && target[1] == '/') {
		if (strcspn(target + 2, "/?#") == 0)
			return -EINVAL; /* no host */
		const char *colon = strchr(base, ':');
		buf_add(out, base, (size_t)(colon - base) + 1);
		buf_adds(out, target);
		return 0;
	}
	if (strstr(target, "://") && strcspn(target, "/?#") > strcspn(target, ":"))
		return -EINVAL; /* another scheme */
	buf_add(out, base, bl);
	if (target[0] == '/') {
		buf_adds(out, target);
		return 0;
	}
	if (target[0] == '?') {
		size_t pl = strcspn(base + bl, "?#");
		buf_add(out, base + bl, pl);
		buf_adds(out, target);
		return 0;
	}
	/* a relative path: against base's directory */
	const char *path = base + bl;
	size_t pl = strcspn(path, "?#");
	size_t dir = 0;
	for (size_t i = 0; i < pl; i++)
		if (path[i] == '/')
			dir = i + 1;
	if (dir == 0)
		buf_addch(out, '/');
	else
		buf_add(out, path, dir);
	buf_adds(out, target);
	return 0;
}

static bool same_origin(const char *a, const char *b)
{
	size_t la = origin_len(a), lb = origin_len(b);
	return la && la == lb && strncasecmp(a, b, la) == 0;
}

/* ---- media types ---- */

enum registry_manifest_kind registry_media_type_kind(const char *mt)
{
	if (!mt)
		return REGISTRY_KIND_UNKNOWN;
	size_t n = strcspn(mt, ";");
	while (n && is_ows(mt[n - 1]))
		n--;
	while (n && is_ows(*mt)) {
		mt++;
		n--;
	}
	static const struct {
		const char *mt;
		enum registry_manifest_kind k;
	} map[] = {
	    {REGISTRY_MT_OCI_MANIFEST, REGISTRY_KIND_IMAGE},
	    {REGISTRY_MT_DOCKER_MANIFEST, REGISTRY_KIND_IMAGE},
	    {REGISTRY_MT_OCI_INDEX, REGISTRY_KIND_INDEX},
	    {REGISTRY_MT_DOCKER_LIST, REGISTRY_KIND_INDEX},
	    {REGISTRY_MT_DOCKER_V1, REGISTRY_KIND_SCHEMA1},
	    {REGISTRY_MT_DOCKER_V1_SIGNED, REGISTRY_KIND_SCHEMA1},
	};
	for (size_t i = 0; i < ARRAY_SIZE(map); i++)
		if (strlen(map[i].mt) == n && strncasecmp(map[i].mt, mt, n) == 0)
			return map[i].k;
	return REGISTRY_KIND_UNKNOWN;
}

void registry_manifest_init(struct registry_manifest *m)
{
	memset(m, 0, sizeof(*m));
	buf_init(&m->body);
}

void registry_manifest_release(struct registry_manifest *m)
{
	buf_release(&m->body);
	memset(m, 0, sizeof(*m));
	buf_init(&m->body);
}

/* ---- the client ---- */

struct registry_client *registry_client_new(const struct registry_config *cfg, struct dth_err *err)
{
	if (!cfg || !cfg->url || !*cfg->url) {
		err_set(err, -EINVAL, "registry: no url");
		return NULL;
	}
	const char *name = cfg->name ? cfg->name : "registry";
	if (!cfg->http) {
		err_set(err, -EINVAL, "registry %s: no http engine", name);
		return NULL;
	}
	struct buf u = BUF_INIT;
	const char *v = cfg->url;
	if (!strstr(v, "://"))
		buf_adds(&u, "https://");
	buf_adds(&u, v);
	while (u.len > 0 && u.data[u.len - 1] == '/')
		buf_setlen(&u, u.len - 1);
	const char *s = buf_str(&u);
	size_t ol = origin_len(s);
	bool http = strncasecmp(s, "http://", 7) == 0;
	size_t skip = http ? 7 : 8;
	char sh[220];
	shown(cfg->url, sh, sizeof(sh));
	if (ol == 0 || ol != u.len || ol == skip || strchr(s + skip, '@')) {
		err_set(err, -EINVAL,
			"registry %s: bad url '%s' (expected https://host[:port] or, with "
			"insecure, http://host[:port])",
			name, strchr(cfg->url, '@') ? "..." : sh);
		buf_release(&u);
		return NULL;
	}
	if (http && !cfg->insecure) {
		err_set(err, -EINVAL,
			"registry %s: url %s is plain http: set insecure = true to allow it", name,
			sh);
		buf_release(&u);
		return NULL;
	}
	bool has_user = cfg->username && *cfg->username;
	if (has_user && !cfg->password) {
		err_set(err, -EINVAL, "registry %s: username given without a password", name);
		buf_release(&u);
		return NULL;
	}
	struct registry_client *c = xcalloc(1, sizeof(*c));
	atomic_init(&c->rl_limit, -1);
	atomic_init(&c->rl_remaining, -1);
	atomic_init(&c->rl_window, -1);
	c->name = xstrdup(name);
	char *host = xstrdup(s + skip);
	for (char *p = host; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	if (host_is_hub(host)) {
		free(host);
		host = xstrdup("registry-1.docker.io");
		c->hub = true;
		c->url =
		    xstrdup(http ? "http://registry-1.docker.io" : "https://registry-1.docker.io");
	} else {
		struct buf b = BUF_INIT;
		buf_adds(&b, http ? "http://" : "https://");
		buf_adds(&b, host);
		c->url = buf_detach(&b, NULL);
	}
	c->host = host;
	buf_release(&u);
	c->insecure = cfg->insecure;
	c->http = cfg->http;
	c->retry = cfg->retry;
	if (c->retry.max_attempts == 0) {
		struct retry_policy def = RETRY_POLICY_DEFAULT;
		c->retry = def;
	}
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->fetch_lock, NULL);
	if (has_user) {
		c->username = secret_strdup(cfg->username);
		c->password = secret_strdup(cfg->password);
	}
	return c;
}

static void tokens_clear(struct registry_client *c)
{
	for (size_t i = 0; i < c->n_tokens; i++) {
		free(c->tokens[i].scope);
		secret_free(c->tokens[i].token);
	}
	free(c->tokens);
	c->tokens = NULL;
	c->n_tokens = 0;
}

void registry_client_free(struct registry_client *c)
{
	if (!c)
		return;
	tokens_clear(c);
	free(c->name);
	free(c->url);
	free(c->host);
	secret_free(c->username);
	secret_free(c->password);
	free(c->realm);
	free(c->service);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->fetch_lock);
	free(c);
}

const char *registry_client_name(const struct registry_client *c)
{
	return c->name;
}

const char *registry_client_url(const struct registry_client *c)
{
	return c->url;
}

bool registry_client_is_docker_hub(const struct registry_client *c)
{
	return c->hub;
}

void registry_client_set_credentials(struct registry_client *c, const char *username,
				     const char *password)
{
	pthread_mutex_lock(&c->lock);
	secret_free(c->username);
	secret_free(c->password);
	c->username = NULL;
	c->password = NULL;
	if (username && *username) {
		c->username = secret_strdup(username);
		c->password = secret_strdup(password ? password : "");
	}
	tokens_clear(c);
	pthread_mutex_unlock(&c->lock);
}

/* ---- errors ---- */

static const char *status_text(long st)
{
	switch (st) {
	case 400:
		return "bad request";
	case 401:
		return "unauthorized";
	case 403:
		return "forbidden";
	case 404:
		return "not found";
	case 405:
		return "method not allowed";
	case 409:
		return "conflict";
	case 413:
		return "too large";
	case 416:
		return "range not satisfiable";
	case 429:
		return "too many requests";
	case 500:
		return "internal server error";
	case 502:
		return "bad gateway";
	case 503:
		return "service unavailable";
	case 504:
		return "gateway timeout";
	default:
		return "";
	}
}

/* The first error of a distribution error body {"errors":[{code,message}]}. */
static void parse_error_body(const struct buf *body, char *code, size_t codesz, char *msg,
			     size_t msgsz)
{
	code[0] = msg[0] = '\0';
	if (body->len == 0)
		return;
	json_t *root = json_loadb(body->data, body->len, 0, NULL);
	if (!root)
		return;
	json_t *errs = json_object_get(root, "errors");
	json_t *e0 = json_is_array(errs) ? json_array_get(errs, 0) : NULL;
	if (json_is_object(e0)) {
		const char *c = json_string_value(json_object_get(e0, "code"));
		const char *m = json_string_value(json_object_get(e0, "message"));
		if (c)
			shown(c, code, codesz);
		if (m)
			shown(m, msg, msgsz);
	} else {
		/* token servers: {"details": "..."} or {"error": "..."} */
		const char *m = json_string_value(json_object_get(root, "details"));
		if (!m)
			m = json_string_value(json_object_get(root, "error"));
		if (m)
			shown(m, msg, msgsz);
	}
	json_decref(root);
}

/* ---- tokens ---- */

static void scope_key(const char *const *scopes, size_t n, struct buf *out)
{
	for (size_t i = 0; i < n; i++) {
		if (i)
			buf_addch(out, ' ');
		buf_adds(out, scopes[i]);
	}
}

/* Cached token for key (copied into out) under c->lock. */
static bool token_lookup(struct registry_client *c, const char *key, struct buf *out)
{
	uint64_t now = now_mono_ms();
	for (size_t i = 0; i < c->n_tokens; i++) {
		struct token_entry *t = &c->tokens[i];
		if (strcmp(t->scope, key) == 0 && t->expires_ms > now) {
			size_t n = strlen(t->token);
			buf_grow(out, n); /* no reallocation with the token half copied */
			buf_add(out, t->token, n);
			return true;
		}
	}
	return false;
}

static void token_drop(struct registry_client *c, const char *key)
{
	for (size_t i = 0; i < c->n_tokens; i++) {
		if (strcmp(c->tokens[i].scope, key) == 0) {
			free(c->tokens[i].scope);
			secret_free(c->tokens[i].token);
			c->tokens[i] = c->tokens[--c->n_tokens];
			return;
		}
	}
}

static void token_store(struct registry_client *c, const char *key, const char *token,
			uint64_t ttl_s)
{
	token_drop(c, key);
	uint64_t now = now_mono_ms();
	/* renew a little before the registry would refuse it */
	uint64_t margin = ttl_s >= 60 ? 10 : ttl_s / 5;
	if (c->n_tokens >= TOKEN_CACHE_MAX) {
		size_t w = 0;
		for (size_t i = 0; i < c->n_tokens; i++)
			if (c->tokens[i].expires_ms < c->tokens[w].expires_ms)
				w = i;
		free(c->tokens[w].scope);
		secret_free(c->tokens[w].token);
		c->tokens[w] = c->tokens[--c->n_tokens];
	}
	c->tokens = xrealloc(c->tokens, (c->n_tokens + 1) * sizeof(*c->tokens));
	c->tokens[c->n_tokens].scope = xstrdup(key);
	c->tokens[c->n_tokens].token = secret_strdup(token);
	c->tokens[c->n_tokens].expires_ms = now + (ttl_s - margin) * 1000;
	c->n_tokens++;
}

/* "Basic base64(user:pass)" appended to out, which must not hold a secret
 * yet; every temporary is wiped and none is ever reallocated. */
static void basic_value(const char *user, const char *pass, struct buf *out)
{
	size_t ul = strlen(user), pl = strlen(pass);
	struct buf up = BUF_INIT;
	buf_grow(&up, ul + 1 + pl);
	buf_add(&up, user, ul);
	buf_addch(&up, ':');
	buf_add(&up, pass, pl);
	size_t bl = 4 * ((up.len + 2) / 3);
	char *b64 = xmalloc(bl + 1);
	base64_encode((const unsigned char *)up.data, up.len, b64);
	buf_grow(out, 6 + bl);
	buf_add(out, "Basic ", 6);
	buf_add(out, b64, bl);
	secret_wipe(b64, bl + 1);
	free(b64);
	secret_buf_release(&up);
}

/* The error answer of the registry or its token server: the first error of a
 * distribution error body (or a token server's "details"), else the status
 * in words. */
static void reg_parse_error(void *ctx, const struct http_resp *resp, char code[EXEC_CODE_MAX],
			    char **message)
{
	(void)ctx;
	char msg[300];
	long st = resp->status;
	parse_error_body(&resp->body, code, EXEC_CODE_MAX, msg, sizeof(msg));
	if (!code[0] && !msg[0])
		shown(status_text(st), msg, sizeof(msg));
	if (st >= 300 && st <= 399)
		shown("redirect without a usable Location", msg, sizeof(msg));
	*message = msg[0] ? xstrdup(msg) : NULL;
}

/* A token request through the executor. */
struct tok_run {
	struct registry_client *c;
	const struct http_req *req;
	bool with_user; /* basic credentials were sent */
};

static int tok_send(void *ctx, struct http_resp *resp, bool *fatal, struct dth_err *err)
{
	(void)fatal;
	struct tok_run *t = ctx;
	atomic_fetch_add(&t->c->counts[REGISTRY_REQ_OTHER], 1);
	return http_perform(t->c->http, t->req, resp, err);
}

static const char *tok_hint(void *ctx, long st)
{
	struct tok_run *t = ctx;
	if (st != 401 && st != 403)
		return NULL;
	return t->with_user ? " (check the username and password)"
			    : " (anonymous access refused; configure a username and password)";
}

static const struct exec_hooks tok_hooks = {
    .send = tok_send,
    .parse_error = reg_parse_error,
    .hint = tok_hint,
};

/* Read the token out of a token server's answer; wipes the answer's copies. */
static int token_take(struct registry_client *c, const char *key, struct http_resp *resp,
		      struct buf *tok, struct dth_err *e)
{
	json_t *root = json_loadb(resp->body.data, resp->body.len, 0, NULL);
	const char *t = NULL;
	json_int_t ttl = 0;
	int rc = 0;
	if (root) {
		t = json_string_value(json_object_get(root, "token"));
		if (!t || !*t)
			t = json_string_value(json_object_get(root, "access_token"));
		json_t *ex = json_object_get(root, "expires_in");
		if (json_is_integer(ex))
			ttl = json_integer_value(ex);
		else if (json_is_real(ex))
			ttl = (json_int_t)json_real_value(ex);
	}
	if (!t || !*t || strlen(t) > SECRET_MAX) {
		rc = err_set(e, -EPROTO, "registry %s: token request: no token in the answer",
			     c->name);
		goto out;
	}
	if (ttl <= 0)
		ttl = TOKEN_TTL_DEF;
	if (ttl > 7 * 24 * 3600)
		ttl = 7 * 24 * 3600;
	size_t tl = strlen(t);
	buf_grow(tok, tl);
	buf_add(tok, t, tl);
	pthread_mutex_lock(&c->lock);
	token_store(c, key, t, (uint64_t)ttl);
	pthread_mutex_unlock(&c->lock);
	log_debug("registry %s: got a token for %s (%lld s)", c->name, key, (long long)ttl);
out:
	/* wipe the answer's copies */
	if (root) {
		const char *names[] = {"token", "access_token"};
		for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
			json_t *jt = json_object_get(root, names[i]);
			if (json_is_string(jt))
				secret_wipe((char *)json_string_value(jt), json_string_length(jt));
		}
	}
	json_decref(root);
	return rc;
}

/* Fetch a token for scopes from the realm; store it. tok gets it. */
static int token_fetch(struct registry_client *c, const char *const *scopes, size_t n_scopes,
		       const char *key, struct buf *tok, struct dth_err *e)
{
	struct buf url = BUF_INIT, auth = BUF_INIT;
	char *realm = NULL, *service = NULL, *user = NULL, *pass = NULL;
	struct http_resp resp;
	http_resp_init(&resp);
	int rc = 0;

	pthread_mutex_lock(&c->lock);
	realm = c->realm ? xstrdup(c->realm) : NULL;
	service = c->service ? xstrdup(c->service) : NULL;
	if (c->username) {
		user = secret_strdup(c->username);
		pass = secret_strdup(c->password);
	}
	pthread_mutex_unlock(&c->lock);

	if (!realm) {
		rc = err_set(e, -EPROTO, "registry %s: bearer challenge without a realm", c->name);
		goto cleanup;
	}
	char sh[220];
	shown(realm, sh, sizeof(sh));
	if (strncasecmp(realm, "https://", 8) != 0) {
		if (strncasecmp(realm, "http://", 7) != 0 || origin_len(realm) == 0) {
			rc = err_set(e, -EPROTO, "registry %s: unusable token realm '%s'", c->name,
				     sh);
			goto cleanup;
		}
		if (!c->insecure) {
			rc = err_set(e, -EACCES,
				     "registry %s: token realm %s is plain http; refusing to send "
				     "credentials there (set insecure = true to allow it)",
				     c->name, sh);
			goto cleanup;
		}
	}
	buf_adds(&url, realm);
	char sep = strchr(realm, '?') ? '&' : '?';
	if (service) {
		buf_addch(&url, sep);
		buf_adds(&url, "service=");
		uri_encode(&url, service, strlen(service), false);
		sep = '&';
	}
	for (size_t i = 0; i < n_scopes; i++) {
		buf_addch(&url, sep);
		buf_adds(&url, "scope=");
		uri_encode(&url, scopes[i], strlen(scopes[i]), false);
		sep = '&';
	}
	struct http_header hdrs[2];
	size_t nh = 0;
	hdrs[nh++] = (struct http_header){"Accept", "application/json"};
	if (user) {
		basic_value(user, pass, &auth);
		hdrs[nh++] = (struct http_header){"Authorization", buf_str(&auth)};
	}
	struct http_req req = {
	    .method = "GET",
	    .url = buf_str(&url),
	    .headers = hdrs,
	    .n_headers = nh,
	    .max_body = TOKEN_BODY_MAX,
	    .secret = true,
	};
	char what[300];
	msg_snprintf(what, sizeof(what), "%s: token request", c->name);
	struct tok_run t = {c, &req, user != NULL};
	struct exec_call x = {
	    .client = "registry",
	    .name = c->name,
	    .op = "registry",
	    .what = what,
	    .retry = &c->retry,
	    .hooks = &tok_hooks,
	    .ctx = &t,
	};
	rc = exec_run(&x, &resp, e);
	if (rc == 0)
		rc = token_take(c, key, &resp, tok, e);
cleanup:
	http_resp_wipe(&resp);
	http_resp_release(&resp);
	secret_buf_release(&auth);
	buf_release(&url);
	free(realm);
	free(service);
	secret_free(user);
	secret_free(pass);
	return rc;
}

/* The Authorization value to send for scopes (empty: none). */
static int auth_value(struct registry_client *c, const char *const *scopes, size_t n_scopes,
		      struct buf *out, enum auth_sent *sent, struct dth_err *e)
{
	*sent = SENT_NONE;
	struct buf key = BUF_INIT, tok = BUF_INIT;
	int rc = 0;
	scope_key(scopes, n_scopes, &key);
	pthread_mutex_lock(&c->lock);
	enum auth_mode mode = c->mode;
	if (mode == AUTH_BASIC && c->username) {
		basic_value(c->username, c->password, out);
		*sent = SENT_BASIC;
	} else if (mode == AUTH_BEARER && token_lookup(c, buf_str(&key), &tok)) {
		*sent = SENT_CACHED;
	}
	pthread_mutex_unlock(&c->lock);
	if (mode == AUTH_BEARER && *sent == SENT_NONE) {
		/* one fetch at a time: others wait and find it cached */
		pthread_mutex_lock(&c->fetch_lock);
		pthread_mutex_lock(&c->lock);
		bool found = token_lookup(c, buf_str(&key), &tok);
		pthread_mutex_unlock(&c->lock);
		if (found) {
			*sent = SENT_CACHED;
		} else {
			rc = token_fetch(c, scopes, n_scopes, buf_str(&key), &tok, e);
			if (rc == 0)
				*sent = SENT_FRESH;
		}
		pthread_mutex_unlock(&c->fetch_lock);
	}
	if (rc == 0 && (*sent == SENT_CACHED || *sent == SENT_FRESH)) {
		buf_grow(out, 7 + tok.len);
		buf_add(out, "Bearer ", 7);
		buf_add(out, tok.data ? tok.data : "", tok.len);
	}
	secret_buf_release(&tok);
	buf_release(&key);
	return rc;
}

/* ---- requests ---- */

struct reg_call {
	const char *op;	     /* "manifest get", for messages */
	char what[WHAT_MAX]; /* "repo:ref" */
	const char *method;
	const char *url; /* absolute */
	const char *scopes[2];
	size_t n_scopes;
	struct http_header hdrs[6];
	size_t n_hdrs;
	const void *body;
	size_t body_len;
	http_sink_fn sink;
	void *sink_ctx;
	void (*reset)(void *ctx);    /* before each attempt */
	const uint64_t *resume_from; /* > 0: send Range: bytes=N- */
	const uint64_t *resume_end;  /* resume_from reaching it: the body is whole */
	const bool *sink_failed;     /* a sink's own error: never retried */
	size_t max_body;
	size_t expect_len;
	bool no_transport_retry; /* the caller handles transport failures */
	bool no_redirect;
	bool transport_failed; /* set: the last attempt got no complete answer */
	char final_url[2048];  /* where the answer came from (after redirects) */
};

static void call_init(struct reg_call *k, const char *op, const char *method, const char *url)
{
	memset(k, 0, sizeof(*k));
	k->op = op;
	k->method = method;
	k->url = url;
}

static void call_header(struct reg_call *k, const char *name, const char *value)
{
	if (k->n_hdrs < ARRAY_SIZE(k->hdrs))
		k->hdrs[k->n_hdrs++] = (struct http_header){name, value};
}

/* One call through the executor (exec.h): the registry hooks. */
struct reg_run {
	struct registry_client *c;
	struct reg_call *k;
	struct buf cur, next, auth, loc;
	char range[64];
	enum auth_sent sent; /* what the last attempt sent */
	bool at_registry;    /* the last answer came from the registry itself */
};

/* One attempt, following redirects; the registry's Authorization only goes
 * to the registry's own origin. */
static int reg_send(void *ctx, struct http_resp *resp, bool *fatal, struct dth_err *e)
{
	struct reg_run *r = ctx;
	struct registry_client *c = r->c;
	struct reg_call *k = r->k;
	unsigned redirects = 0;
	int rc = 0;
	buf_reset(&r->cur);
	buf_adds(&r->cur, k->url);
	for (;;) {
		struct http_header hdrs[ARRAY_SIZE(k->hdrs) + 3];
		size_t nh = 0;
		for (size_t i = 0; i < k->n_hdrs; i++)
			hdrs[nh++] = k->hdrs[i];
		if (k->resume_from && *k->resume_from > 0) {
			xsnprintf(r->range, sizeof(r->range), "bytes=%llu-",
				  (unsigned long long)*k->resume_from);
			hdrs[nh++] = (struct http_header){"Range", r->range};
		}
		r->at_registry = same_origin(c->url, buf_str(&r->cur));
		secret_buf_release(&r->auth);
		r->sent = SENT_NONE;
		if (r->at_registry) {
			rc = auth_value(c, k->scopes, k->n_scopes, &r->auth, &r->sent, e);
			if (rc) {
				*fatal = true; /* the token request had its own retries */
				break;
			}
			if (r->auth.len)
				hdrs[nh++] =
				    (struct http_header){"Authorization", buf_str(&r->auth)};
		}
		struct http_req req = {
		    .method = k->method,
		    .url = buf_str(&r->cur),
		    .headers = hdrs,
		    .n_headers = nh,
		    .body = k->body,
		    .body_len = k->body_len,
		    .sink = k->sink,
		    .sink_ctx = k->sink_ctx,
		    .max_body = k->sink ? 0 : k->max_body,
		    .expect_len = k->expect_len,
		};
		atomic_fetch_add(&c->counts[kind_of(k->method)], 1);
		rc = http_perform(c->http, &req, resp, e);
		secret_buf_release(&r->auth);
		k->transport_failed = rc != 0;
		if (rc != 0)
			break;
		long st = resp->status;
		if (k->no_redirect ||
		    !(st == 301 || st == 302 || st == 303 || st == 307 || st == 308))
			break;
		buf_reset(&r->loc);
		if (http_resp_header(resp, "Location", &r->loc) != 0 ||
		    registry_resolve_url(buf_str(&r->cur), buf_str(&r->loc), &r->next) != 0)
			break; /* judged as an error answer */
		if (redirects++ >= REDIRECT_MAX) {
			*fatal = true;
			rc = err_set(e, -ELOOP, "too many redirects");
			break;
		}
		buf_reset(&r->cur);
		buf_add(&r->cur, r->next.data, r->next.len);
		log_debug("registry %s: %s %s: redirected (%ld)", c->name, k->op, k->what, st);
	}
	/* Only list pages use it (to resolve their Link): one too long to keep
	 * stays "", and resolving a Link against it fails with an error there. */
	if (str_copy(k->final_url, buf_str(&r->cur), sizeof(k->final_url)))
		log_debug("registry %s: %s %s: the final url is too long to keep", c->name, k->op,
			  k->what);
	return rc;
}

static void reg_reset(void *ctx)
{
	struct reg_call *k = ((struct reg_run *)ctx)->k;
	if (k->reset)
		k->reset(k->sink_ctx);
}

static void reg_observe(void *ctx, const struct http_resp *resp)
{
	struct reg_run *r = ctx;
	if (r->at_registry)
		note_ratelimit(r->c, resp);
}

/* Docker Hub's pull limit, spent for hours: waiting a few seconds and
 * retrying only spends more requests. */
static int reg_fast_fail(void *ctx, const struct http_resp *resp, const char *code,
			 struct dth_err *e)
{
	(void)code;
	struct reg_run *r = ctx;
	struct registry_client *c = r->c;
	if (resp->status != 429 || atomic_load(&c->rl_remaining) != 0)
		return 0;
	int64_t lim = atomic_load(&c->rl_limit), win = atomic_load(&c->rl_window);
	char lims[64] = "", wins[64] = "";
	if (lim > 0)
		xsnprintf(lims, sizeof(lims), " of %lld", (long long)lim);
	if (win > 0)
		xsnprintf(wins, sizeof(wins), " per %lld s", (long long)win);
	pthread_mutex_lock(&c->lock);
	bool user = c->username != NULL;
	pthread_mutex_unlock(&c->lock);
	int rc = err_set(e, -EBUSY,
			 "%s %s: pull rate limit of %s reached (0%s left%s); try again later%s",
			 r->k->op, r->k->what, c->name, lims, wins,
			 user ? "" : ", or configure a username and password");
	e->http_status = 429;
	str_copy_fit(e->remote_code, "TOOMANYREQUESTS", sizeof(e->remote_code));
	return rc;
}

/* A 401 from the registry: learn the scheme from its challenge (a fresh
 * token, or the basic credentials) and send again. */
static bool reg_refresh_auth(void *ctx, const struct http_resp *resp, const struct exec_verdict *v,
			     unsigned round)
{
	(void)v;
	struct reg_run *r = ctx;
	struct registry_client *c = r->c;
	if (resp->status != 401 || !r->at_registry || round >= 2)
		return false;
	struct buf wa = BUF_INIT;
	struct registry_challenge ch;
	bool again = false;
	memset(&ch, 0, sizeof(ch));
	if (http_resp_header(resp, "WWW-Authenticate", &wa) == 0 &&
	    registry_parse_www_authenticate(buf_str(&wa), &ch) == 0) {
		struct buf key = BUF_INIT;
		scope_key(r->k->scopes, r->k->n_scopes, &key);
		pthread_mutex_lock(&c->lock);
		if (!strcmp(ch.scheme, "bearer") && ch.realm && r->sent != SENT_FRESH) {
			if (c->mode != AUTH_BEARER || !c->realm ||
			    strcmp(c->realm, ch.realm) != 0) {
				free(c->realm);
				free(c->service);
				c->realm = xstrdup(ch.realm);
				c->service = ch.service ? xstrdup(ch.service) : NULL;
				c->mode = AUTH_BEARER;
			}
			token_drop(c, buf_str(&key));
			again = true;
		} else if (!strcmp(ch.scheme, "basic") && c->username && r->sent != SENT_BASIC) {
			c->mode = AUTH_BASIC;
			again = true;
		}
		pthread_mutex_unlock(&c->lock);
		buf_release(&key);
	}
	registry_challenge_release(&ch);
	buf_release(&wa);
	return again;
}

static bool reg_transport_retryable(void *ctx, int err)
{
	(void)err;
	struct reg_call *k = ((struct reg_run *)ctx)->k;
	/* Every byte arrived before the connection broke (a Content-Length
	 * longer than the body): nothing is left to resume. */
	if (k->resume_from && k->resume_end && *k->resume_from >= *k->resume_end)
		return false;
	return !(k->sink_failed && *k->sink_failed) && !k->no_transport_retry;
}

static const char *reg_hint(void *ctx, long st)
{
	struct registry_client *c = ((struct reg_run *)ctx)->c;
	if (st != 401)
		return NULL;
	pthread_mutex_lock(&c->lock);
	bool user = c->username != NULL;
	pthread_mutex_unlock(&c->lock);
	return user ? " (check the username and password)"
		    : " (anonymous access refused; configure a username and password)";
}

static const struct exec_hooks reg_hooks = {
    .send = reg_send,
    .reset = reg_reset,
    .parse_error = reg_parse_error,
    .observe = reg_observe,
    .fast_fail = reg_fast_fail,
    .refresh_auth = reg_refresh_auth,
    .transport_retryable = reg_transport_retryable,
    .hint = reg_hint,
};

/* Run the call with auth, redirects and retries (exec.h). 0 on a 2xx answer
 * (resp holds it); else a negative errno with e filled. */
static int reg_do(struct registry_client *c, struct reg_call *k, struct http_resp *resp,
		  struct dth_err *err)
{
	struct reg_run r = {.c = c, .k = k};
	buf_init(&r.cur);
	buf_init(&r.next);
	buf_init(&r.auth);
	buf_init(&r.loc);
	struct exec_call x = {
	    .client = "registry",
	    .name = c->name,
	    .op = k->op,
	    .what = k->what,
	    .retry = &c->retry,
	    .hooks = &reg_hooks,
	    .ctx = &r,
	};
	int rc = exec_run(&x, resp, err);
	secret_buf_release(&r.auth);
	buf_release(&r.cur);
	buf_release(&r.next);
	buf_release(&r.loc);
	return rc;
}

/* "76;w=21600" -> 76 and 21600 (window -1 when absent); -1 when unparsable. */
int registry_parse_ratelimit(const char *v, int64_t *count, int64_t *window)
{
	*count = *window = -1;
	if (!v)
		return -1;
	while (*v == ' ')
		v++;
	char *end;
	errno = 0;
	long long n = strtoll(v, &end, 10);
	if (end == v || errno || n < 0)
		return -1;
	*count = n;
	const char *w = strstr(end, "w=");
	if (w) {
		long long wn = strtoll(w + 2, &end, 10);
		if (end != w + 2 && wn > 0)
			*window = wn;
	}
	return 0;
}

/* Remember Docker Hub's pull-limit headers; warn once when few pulls are left. */
static void note_ratelimit(struct registry_client *c, const struct http_resp *resp)
{
	struct buf v = BUF_INIT;
	int64_t n, w;
	if (http_resp_header(resp, "ratelimit-limit", &v) == 0 &&
	    registry_parse_ratelimit(buf_str(&v), &n, &w) == 0)
		atomic_store(&c->rl_limit, n);
	buf_reset(&v);
	if (http_resp_header(resp, "ratelimit-remaining", &v) == 0 &&
	    registry_parse_ratelimit(buf_str(&v), &n, &w) == 0) {
		atomic_store(&c->rl_remaining, n);
		if (w > 0)
			atomic_store(&c->rl_window, w);
		int64_t lim = atomic_load(&c->rl_limit);
		if (lim > 0 && n * 10 < lim && !atomic_exchange(&c->rl_warned, true))
			log_warn("registry %s: %lld of %lld pulls left in the rate-limit window%s",
				 c->name, (long long)n, (long long)lim,
				 c->username ? "" : " (a login raises the limit)");
	}
	buf_release(&v);
}

void registry_client_ratelimit(const struct registry_client *c, int64_t *limit, int64_t *remaining,
			       int64_t *window)
{
	struct registry_client *m = (struct registry_client *)c;
	*limit = atomic_load(&m->rl_limit);
	*remaining = atomic_load(&m->rl_remaining);
	*window = atomic_load(&m->rl_window);
}

/* Normalise and check repo; url gets base + "/v2/" + repo. */
static int repo_url(struct registry_client *c, const char *repo, struct buf *norm, struct buf *url,
		    struct dth_err *err)
{
	char sh[220];
	shown(repo, sh, sizeof(sh));
	if (!repo || !registry_repo_valid(repo))
		return err_set(err, -EINVAL,
			       "registry %s: bad repository name '%s' (lowercase letters and "
			       "digits, separated by '.', '_', '__', '-' or '/')",
			       c->name, sh);
	registry_normalize_repo(c->host, repo, norm);
	if (norm->len > REGISTRY_REPO_MAX)
		return err_set(err, -EINVAL, "registry %s: repository name '%s' too long", c->name,
			       sh);
	buf_addf(url, "%s/v2/%s", c->url, buf_str(norm));
	return 0;
}

static void repo_scope(const char *repo, bool push, struct buf *out)
{
	buf_addf(out, "repository:%s:%s", repo, push ? "pull,push" : "pull");
}

static bool ref_valid(const char *ref)
{
	return registry_digest_valid(ref) || registry_tag_valid(ref);
}

/* ---- manifests ---- */

static bool generic_ct(const char *ct)
{
	static const char *const g[GENERIC_CT_COUNT] = {"application/json", "text/plain",
							"application/octet-stream", ""};
	size_t n = strcspn(ct, ";");
	for (size_t i = 0; i < GENERIC_CT_COUNT; i++)
		if (strlen(g[i]) == n && strncasecmp(g[i], ct, n) == 0)
			return true;
	return false;
}

static void set_media_type(struct registry_manifest *m, const char *ct)
{
	size_t n = strcspn(ct, ";");
	while (n && is_ows(ct[n - 1]))
		n--;
	if (n >= sizeof(m->media_type))
		n = sizeof(m->media_type) - 1;
	memcpy(m->media_type, ct, n);
	m->media_type[n] = '\0';
}

static int manifest_call(struct registry_client *c, const char *repo, const char *ref, bool get,
			 struct registry_manifest *m, struct dth_err *err)
{
	struct buf norm = BUF_INIT, url = BUF_INIT, scope = BUF_INIT, hv = BUF_INIT;
	struct http_resp resp;
	http_resp_init(&resp);
	struct reg_call k;
	const char *op = get ? "manifest get" : "manifest head";
	int rc = repo_url(c, repo, &norm, &url, err);
	if (rc)
		goto cleanup;
	char sh[220];
	shown(ref, sh, sizeof(sh));
	if (!ref || !ref_valid(ref)) {
		rc = err_set(err, -EINVAL, "%s %s: bad reference '%s' (a tag or sha256:<64 hex>)",
			     op, buf_str(&norm), sh);
		goto cleanup;
	}
	bool by_digest = registry_digest_valid(ref);
	buf_addf(&url, "/manifests/%s", ref);
	repo_scope(buf_str(&norm), false, &scope);
	call_init(&k, op, get ? "GET" : "HEAD", buf_str(&url));
	msg_snprintf(k.what, sizeof(k.what), "%s%s%s", buf_str(&norm), by_digest ? "@" : ":", ref);
	k.scopes[0] = buf_str(&scope);
	k.n_scopes = 1;
	k.max_body = REGISTRY_MANIFEST_MAX;
	call_header(&k, "Accept", accept_manifests);
	rc = reg_do(c, &k, &resp, err);
	if (rc == -EFBIG && err && err->http_status >= 200 && err->http_status <= 299)
		rc = err_set(err, -EFBIG, "%s %s: manifest larger than %u bytes", op, k.what,
			     REGISTRY_MANIFEST_MAX);
	if (rc)
		goto cleanup;

	m->media_type[0] = m->digest[0] = '\0';
	m->size = 0;
	buf_reset(&m->body);
	if (http_resp_header(&resp, "Content-Type", &hv) == 0 && !generic_ct(buf_str(&hv)))
		set_media_type(m, buf_str(&hv));
	char hdr_digest[REGISTRY_DIGEST_MAX] = "";
	buf_reset(&hv);
	if (http_resp_header(&resp, "Docker-Content-Digest", &hv) == 0) {
		if (registry_digest_valid(buf_str(&hv)))
			str_copy_fit(hdr_digest, buf_str(&hv), sizeof(hdr_digest));
		else if (!str_startswith(buf_str(&hv), "sha256:"))
			log_debug("registry %s: %s %s: digest header of another algorithm", c->name,
				  op, k.what);
	}
	if (!get) {
		buf_reset(&hv);
		uint64_t len = 0;
		if (http_resp_header(&resp, "Content-Length", &hv) == 0 &&
		    parse_u64(buf_str(&hv), &len) == 0)
			m->size = len;
		if (hdr_digest[0])
			str_copy_fit(m->digest, hdr_digest, sizeof(m->digest));
		else if (by_digest)
			str_copy_fit(m->digest, ref, sizeof(m->digest));
		if (hdr_digest[0] && by_digest && strcmp(hdr_digest, ref) != 0) {
			rc = err_set(err, -EBADMSG, "%s %s: the registry answered digest %s", op,
				     k.what, hdr_digest);
			goto cleanup;
		}
		if (registry_media_type_kind(m->media_type) == REGISTRY_KIND_SCHEMA1) {
			rc = err_set(err, -ENOTSUP,
				     "%s %s: docker schema 1 manifests are not supported (push the "
				     "image again with a current client)",
				     op, k.what);
			goto cleanup;
		}
		goto cleanup;
	}

	/* what the body says of itself */
	json_t *root = json_loadb(resp.body.data, resp.body.len, 0, NULL);
	if (!root || !json_is_object(root)) {
		json_decref(root);
		rc = err_set(err, -EBADMSG, "%s %s: the manifest is not a JSON object", op, k.what);
		goto cleanup;
	}
	json_t *sv = json_object_get(root, "schemaVersion");
	const char *bmt = json_string_value(json_object_get(root, "mediaType"));
	bool schema1 = json_is_integer(sv) && json_integer_value(sv) == 1;
	if (!m->media_type[0]) {
		if (bmt)
			set_media_type(m, bmt);
		else if (json_object_get(root, "manifests"))
			set_media_type(m, REGISTRY_MT_OCI_INDEX);
		else if (json_object_get(root, "config") && json_object_get(root, "layers"))
			set_media_type(m, REGISTRY_MT_OCI_MANIFEST);
	}
	json_decref(root);
	if (schema1 || registry_media_type_kind(m->media_type) == REGISTRY_KIND_SCHEMA1) {
		rc = err_set(err, -ENOTSUP,
			     "%s %s: docker schema 1 manifests are not supported (push the image "
			     "again with a current client)",
			     op, k.what);
		goto cleanup;
	}
	registry_digest_of(resp.body.data ? resp.body.data : "", resp.body.len, m->digest);
	m->size = resp.body.len;
	if (by_digest && strcmp(m->digest, ref) != 0) {
		rc = err_set(err, -EBADMSG, "%s %s: the bytes served have digest %s", op, k.what,
			     m->digest);
		goto cleanup;
	}
	if (hdr_digest[0] && strcmp(hdr_digest, m->digest) != 0) {
		rc = err_set(err, -EBADMSG,
			     "%s %s: the bytes served have digest %s, the registry says %s", op,
			     k.what, m->digest, hdr_digest);
		goto cleanup;
	}
	buf_add(&m->body, resp.body.data ? resp.body.data : "", resp.body.len);
cleanup:
	http_resp_release(&resp);
	buf_release(&norm);
	buf_release(&url);
	buf_release(&scope);
	buf_release(&hv);
	return rc;
}

int registry_manifest_head(struct registry_client *c, const char *repo, const char *ref,
			   struct registry_manifest *m, struct dth_err *err)
{
	return manifest_call(c, repo, ref, false, m, err);
}

/* A manifest whose bytes do not parse or do not have their digest (cut short
 * under a matching Content-Length, say) is fetched again a few times. */

int registry_manifest_get(struct registry_client *c, const char *repo, const char *ref,
			  struct registry_manifest *m, struct dth_err *err)
{
	int rc = 0;
	for (unsigned i = 0; i < GARBLED_TRIES; i++) {
		rc = manifest_call(c, repo, ref, true, m, err);
		if (rc != -EBADMSG)
			break;
		log_debug("registry %s: %s; fetching it again", c->name, err ? err->message : "");
	}
	return rc;
}

int registry_manifest_put(struct registry_client *c, const char *repo, const char *ref,
			  const char *media_type, const void *body, size_t len, char *digest_out,
			  struct dth_err *err)
{
	struct buf norm = BUF_INIT, url = BUF_INIT, scope = BUF_INIT, hv = BUF_INIT;
	struct http_resp resp;
	http_resp_init(&resp);
	struct reg_call k;
	char digest[REGISTRY_DIGEST_MAX];
	int rc = repo_url(c, repo, &norm, &url, err);
	if (rc)
		goto cleanup;
	char sh[220];
	shown(ref, sh, sizeof(sh));
	if (!ref || !ref_valid(ref)) {
		rc = err_set(err, -EINVAL,
			     "manifest put %s: bad reference '%s' (a tag or sha256:<64 hex>)",
			     buf_str(&norm), sh);
		goto cleanup;
	}
	if (!media_type || !*media_type || strlen(media_type) >= REGISTRY_MEDIA_TYPE_MAX ||
	    strpbrk(media_type, "\r\n")) {
		rc = err_set(err, -EINVAL, "manifest put %s: bad media type", buf_str(&norm));
		goto cleanup;
	}
	registry_digest_of(body ? body : "", len, digest);
	bool by_digest = registry_digest_valid(ref);
	if (by_digest && strcmp(ref, digest) != 0) {
		rc = err_set(err, -EBADMSG, "manifest put %s@%s: the bytes have digest %s",
			     buf_str(&norm), ref, digest);
		goto cleanup;
	}
	buf_addf(&url, "/manifests/%s", ref);
	repo_scope(buf_str(&norm), true, &scope);
	call_init(&k, "manifest put", "PUT", buf_str(&url));
	msg_snprintf(k.what, sizeof(k.what), "%s%s%s", buf_str(&norm), by_digest ? "@" : ":", ref);
	k.scopes[0] = buf_str(&scope);
	k.n_scopes = 1;
	k.body = body ? body : "";
	k.body_len = len;
	k.max_body = 1 << 20;
	k.no_redirect = true;
	call_header(&k, "Content-Type", media_type);
	rc = reg_do(c, &k, &resp, err);
	if (rc)
		goto cleanup;
	if (http_resp_header(&resp, "Docker-Content-Digest", &hv) == 0 &&
	    registry_digest_valid(buf_str(&hv)) && strcmp(buf_str(&hv), digest) != 0) {
		rc =
		    err_set(err, -EBADMSG, "manifest put %s: the registry stored digest %s, not %s",
			    k.what, buf_str(&hv), digest);
		goto cleanup;
	}
	if (digest_out)
		str_copy_fit(digest_out, digest, REGISTRY_DIGEST_MAX);
cleanup:
	http_resp_release(&resp);
	buf_release(&norm);
	buf_release(&url);
	buf_release(&scope);
	buf_release(&hv);
	return rc;
}

bool registry_err_blob_unknown(const struct dth_err *err)
{
	return err && err->code &&
	       (!strcmp(err->remote_code, "MANIFEST_BLOB_UNKNOWN") ||
		!strcmp(err->remote_code, "BLOB_UNKNOWN"));
}

/* ---- blobs ---- */

int registry_blob_head(struct registry_client *c, const char *repo, const char *digest,
		       uint64_t *size, struct dth_err *err)
{
	struct buf norm = BUF_INIT, url = BUF_INIT, scope = BUF_INIT, hv = BUF_INIT;
	struct http_resp resp;
	http_resp_init(&resp);
	struct reg_call k;
	int rc = repo_url(c, repo, &norm, &url, err);
	if (rc)
		goto cleanup;
	if (!registry_digest_valid(digest)) {
		rc = err_set(err, -EINVAL, "blob head %s: bad digest (sha256:<64 hex>)",
			     buf_str(&norm));
		goto cleanup;
	}
	buf_addf(&url, "/blobs/%s", digest);
	repo_scope(buf_str(&norm), false, &scope);
	call_init(&k, "blob head", "HEAD", buf_str(&url));
	msg_snprintf(k.what, sizeof(k.what), "%s@%s", buf_str(&norm), digest);
	k.scopes[0] = buf_str(&scope);
	k.n_scopes = 1;
	rc = reg_do(c, &k, &resp, err);
	if (rc)
		goto cleanup;
	if (size) {
		uint64_t n = 0;
		if (http_resp_header(&resp, "Content-Length", &hv) == 0 &&
		    parse_u64(buf_str(&hv), &n) == 0)
			*size = n;
		else
			*size = 0;
	}
cleanup:
	http_resp_release(&resp);
	buf_release(&norm);
	buf_release(&url);
	buf_release(&scope);
	buf_release(&hv);
	return rc;
}

struct blob_get {
	EVP_MD_CTX *md;
	http_sink_fn sink;
	void *ctx;
	const struct http_resp *resp;
	uint64_t delivered; /* bytes the caller has */
	uint64_t pos;	    /* position of the current answer in the blob */
	uint64_t expect;    /* the blob's exact size */
	uint64_t announced; /* the size an answer announced, when not expect */
	bool started;
	bool sink_failed; /* the caller's sink, or our checks, stopped it */
	bool too_long;	  /* stopped: the answer announced or sent more than expect */
};

static void blob_reset(void *p)
{
	struct blob_get *b = p;
	b->started = false;
}

/* Status and start offset of the answer being received. */
static int blob_start(struct blob_get *b)
{
	const char *h = buf_str(&b->resp->hdrs);
	long st = 0;
	const char *sp = strchr(h, ' ');
	if (sp)
		st = strtol(sp + 1, NULL, 10);
	b->pos = 0;
	if (st == 206) {
		struct buf cr = BUF_INIT;
		unsigned long long a = 0;
		unsigned long long total = 0;
		int ok = http_resp_header(b->resp, "Content-Range", &cr) == 0 &&
			 sscanf(buf_str(&cr), "bytes %llu-", &a) == 1;
		const char *sl = ok ? strchr(buf_str(&cr), '/') : NULL;
		bool has_total = sl && sscanf(sl + 1, "%llu", &total) == 1;
		buf_release(&cr);
		if (!ok)
			return -EPROTO;
		b->pos = a;
		if (has_total && total != b->expect) {
			b->announced = total;
			b->too_long = total > b->expect;
			return -EBADMSG;
		}
	} else {
		/* a whole answer announcing another size is refused before a byte
		 * of it is read */
		struct buf cl = BUF_INIT;
		uint64_t n = 0;
		bool has_len = http_resp_header(b->resp, "Content-Length", &cl) == 0 &&
			       parse_u64(buf_str(&cl), &n) == 0;
		buf_release(&cl);
		if (has_len && n != b->expect) {
			b->announced = n;
			b->too_long = n > b->expect;
			return -EBADMSG;
		}
	}
	if (b->pos > b->delivered)
		return -EPROTO;
	return 0;
}

static int blob_sink(void *p, const void *data, size_t len)
{
	struct blob_get *b = p;
	const char *d = data;
	if (!b->started) {
		b->started = true;
		int rc = blob_start(b);
		if (rc) {
			b->sink_failed = true;
			return rc;
		}
	}
	if (b->pos < b->delivered) {
		uint64_t skip = b->delivered - b->pos;
		if (skip > len)
			skip = len;
		d += skip;
		len -= (size_t)skip;
		b->pos += skip;
	}
	if (len == 0)
		return 0;
	if (len > b->expect - b->delivered) {
		b->sink_failed = true;
		b->too_long = true;
		return -EBADMSG;
	}
	EVP_DigestUpdate(b->md, d, len);
	int rc = b->sink ? b->sink(b->ctx, d, len) : 0;
	if (rc < 0) {
		b->sink_failed = true;
		return rc;
	}
	b->delivered += len;
	b->pos += len;
	return 0;
}

int registry_blob_get(struct registry_client *c, const char *repo, const char *digest,
		      uint64_t expect_size, http_sink_fn sink, void *sink_ctx, uint64_t *size_out,
		      struct dth_err *err)
{
	struct buf norm = BUF_INIT, url = BUF_INIT, scope = BUF_INIT;
	struct http_resp resp;
	http_resp_init(&resp);
	struct reg_call k;
	struct blob_get b = {.sink = sink, .ctx = sink_ctx, .resp = &resp, .expect = expect_size};
	int rc = repo_url(c, repo, &norm, &url, err);
	if (rc)
		goto cleanup;
	if (!registry_digest_valid(digest)) {
		rc = err_set(err, -EINVAL, "blob get %s: bad digest (sha256:<64 hex>)",
			     buf_str(&norm));
		goto cleanup;
	}
	b.md = EVP_MD_CTX_new();
	if (!b.md || EVP_DigestInit_ex(b.md, EVP_sha256(), NULL) != 1) {
		rc = err_set(err, -ENOMEM, "blob get: cannot start sha-256");
		goto cleanup;
	}
	buf_addf(&url, "/blobs/%s", digest);
	repo_scope(buf_str(&norm), false, &scope);
	call_init(&k, "blob get", "GET", buf_str(&url));
	msg_snprintf(k.what, sizeof(k.what), "%s@%s", buf_str(&norm), digest);
	k.scopes[0] = buf_str(&scope);
	k.n_scopes = 1;
	k.sink = blob_sink;
	k.sink_ctx = &b;
	k.reset = blob_reset;
	k.resume_from = &b.delivered;
	k.resume_end = &b.expect;
	k.sink_failed = &b.sink_failed;
	k.expect_len = expect_size;
	for (unsigned tries = 1;; tries++) {
		b.sink_failed = false;
		b.announced = 0;
		rc = reg_do(c, &k, &resp, err);
		if (rc && !b.sink_failed && b.delivered == expect_size)
			rc = 0; /* every byte arrived; the connection broke after them */
		/* An answer cut short under a matching Content-Length, or one that
		 * announced fewer bytes: asked for again (resumed where it stopped). */
		/* (Sizes that do not match the descriptor are refused before
		 * the caller sees a byte, so another try costs one request.) */
		bool cut = (rc == 0 && b.delivered < expect_size) ||
			   (rc == -EBADMSG && b.sink_failed && (b.announced || b.too_long));
		if (!cut || tries >= GARBLED_TRIES)
			break;
		log_debug("registry %s: blob get %s: an answer cut short at %llu of %llu bytes; "
			  "again",
			  c->name, k.what, (unsigned long long)b.delivered,
			  (unsigned long long)expect_size);
	}
	if (rc == -EBADMSG && b.sink_failed && b.announced) {
		rc = err_set(err, -EBADMSG,
			     "blob get %s: the registry announces %llu bytes, not %llu", k.what,
			     (unsigned long long)b.announced, (unsigned long long)expect_size);
		goto cleanup;
	}
	if (rc == -EBADMSG && b.sink_failed && b.too_long) {
		rc = err_set(err, -EBADMSG, "blob get %s: more bytes than the expected %llu",
			     k.what, (unsigned long long)expect_size);
		goto cleanup;
	}
	if (rc)
		goto cleanup;
	if (size_out)
		*size_out = b.delivered;
	if (b.delivered != expect_size) {
		rc = err_set(err, -EBADMSG, "blob get %s: %llu bytes, expected %llu", k.what,
			     (unsigned long long)b.delivered, (unsigned long long)expect_size);
		goto cleanup;
	}
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	char got[REGISTRY_DIGEST_MAX];
	EVP_DigestFinal_ex(b.md, md, &mdlen);
	memcpy(got, "sha256:", 7);
	hex_encode(md, mdlen, got + 7);
	if (strcmp(got, digest) != 0) {
		rc = err_set(err, -EBADMSG, "blob get %s: the bytes served have digest %s", k.what,
			     got);
		goto cleanup;
	}
cleanup:
	EVP_MD_CTX_free(b.md);
	http_resp_release(&resp);
	buf_release(&norm);
	buf_release(&url);
	buf_release(&scope);
	return rc;
}

/* ---- uploads ---- */

uint64_t registry_upload_offset(const struct registry_upload *up)
{
	return up ? up->offset : 0;
}

void registry_upload_free(struct registry_upload *up)
{
	if (!up)
		return;
	free(up->repo);
	free(up->location);
	free(up);
}

/* Update up->location from the answer's Location header. */
static int upload_location(struct registry_client *c, struct registry_upload *up,
			   const struct http_resp *resp, const char *from, bool required,
			   struct dth_err *err)
{
	struct buf loc = BUF_INIT, abs = BUF_INIT;
	int rc = 0;
	if (http_resp_header(resp, "Location", &loc) != 0) {
		if (required)
			rc = err_set(err, -EPROTO, "blob upload %s: no Location in the answer",
				     up->repo);
		goto cleanup;
	}
	if (registry_resolve_url(from ? from : c->url, buf_str(&loc), &abs) != 0) {
		rc = err_set(err, -EPROTO, "blob upload %s: unusable Location in the answer",
			     up->repo);
		goto cleanup;
	}
	free(up->location);
	up->location = buf_detach(&abs, NULL);
cleanup:
	buf_release(&loc);
	buf_release(&abs);
	return rc;
}

/* POST to start an upload (query: NULL or "mount=...&from=..."). */
static int upload_post(struct registry_client *c, const char *repo, const char *digest,
		       const char *from, bool *mounted, struct registry_upload **up,
		       struct dth_err *err)
{
	struct buf norm = BUF_INIT, url = BUF_INIT, scope = BUF_INIT, scope2 = BUF_INIT,
		   fnorm = BUF_INIT;
	struct http_resp resp;
	http_resp_init(&resp);
	struct reg_call k;
	*up = NULL;
	if (mounted)
		*mounted = false;
	int rc = repo_url(c, repo, &norm, &url, err);
	if (rc)
		goto cleanup;
	buf_adds(&url, "/blobs/uploads/");
	repo_scope(buf_str(&norm), true, &scope);
	call_init(&k, from ? "blob mount" : "blob upload start", "POST", buf_str(&url));
	k.scopes[0] = buf_str(&scope);
	k.n_scopes = 1;
	if (from) {
		char sh[220];
		shown(from, sh, sizeof(sh));
		if (!registry_repo_valid(from)) {
			rc = err_set(err, -EINVAL, "blob mount %s: bad source repository '%s'",
				     buf_str(&norm), sh);
			goto cleanup;
		}
		if (!registry_digest_valid(digest)) {
			rc = err_set(err, -EINVAL, "blob mount %s: bad digest (sha256:<64 hex>)",
				     buf_str(&norm));
			goto cleanup;
		}
		registry_normalize_repo(c->host, from, &fnorm);
		buf_addf(&url, "?mount=%s&from=", digest);
		uri_encode(&url, buf_str(&fnorm), fnorm.len, true);
		k.url = buf_str(&url);
		repo_scope(buf_str(&fnorm), false, &scope2);
		k.scopes[1] = buf_str(&scope2);
		k.n_scopes = 2;
		msg_snprintf(k.what, sizeof(k.what), "%s@%s from %s", buf_str(&norm), digest,
			     buf_str(&fnorm));
	} else {
		msg_snprintf(k.what, sizeof(k.what), "%s", buf_str(&norm));
	}
	k.no_redirect = true;
	k.max_body = 1 << 20;
	rc = reg_do(c, &k, &resp, err);
	if (rc)
		goto cleanup;
	if (from && resp.status == 201) {
		*mounted = true;
		goto cleanup;
	}
	struct registry_upload *u = xcalloc(1, sizeof(*u));
	u->repo = xstrdup(buf_str(&norm));
	rc = upload_location(c, u, &resp, NULL, true, err);
	if (rc) {
		registry_upload_free(u);
		goto cleanup;
	}
	*up = u;
cleanup:
	http_resp_release(&resp);
	buf_release(&norm);
	buf_release(&url);
	buf_release(&scope);
	buf_release(&scope2);
	buf_release(&fnorm);
	return rc;
}

int registry_upload_start(struct registry_client *c, const char *repo, struct registry_upload **up,
			  struct dth_err *err)
{
	return upload_post(c, repo, NULL, NULL, NULL, up, err);
}

int registry_blob_mount(struct registry_client *c, const char *repo, const char *digest,
			const char *from, bool *mounted, struct registry_upload **up,
			struct dth_err *err)
{
	if (!from)
		return err_set(err, -EINVAL, "blob mount: no source repository");
	return upload_post(c, repo, digest, from, mounted, up, err);
}

/* End of the Range header "0-N" of an upload status, or -1. */
static long long range_end(const struct http_resp *resp)
{
	struct buf r = BUF_INIT;
	long long end = -1;
	if (http_resp_header(resp, "Range", &r) == 0) {
		const char *s = buf_str(&r);
		if (str_startswith(s, "bytes="))
			s += 6;
		unsigned long long a, b;
		if (sscanf(s, "%llu-%llu", &a, &b) == 2)
			end = (long long)b;
	}
	buf_release(&r);
	return end;
}

int registry_upload_chunk(struct registry_client *c, struct registry_upload *up, const void *data,
			  size_t len, struct dth_err *err)
{
	if (!up || !data || len == 0)
		return err_set(err, -EINVAL, "blob upload: empty chunk");
	struct buf scope = BUF_INIT;
	struct http_resp resp;
	http_resp_init(&resp);
	char crange[64], clen[32];
	int rc = 0;
	repo_scope(up->repo, true, &scope);
	for (unsigned attempt = 1;; attempt++) {
		struct reg_call k;
		char *at = xstrdup(up->location);
		call_init(&k, "blob upload chunk", "PATCH", at);
		msg_snprintf(k.what, sizeof(k.what), "%s at %llu", up->repo,
			     (unsigned long long)up->offset);
		k.scopes[0] = buf_str(&scope);
		k.n_scopes = 1;
		k.body = data;
		k.body_len = len;
		k.no_redirect = true;
		k.no_transport_retry = true;
		k.max_body = 1 << 20;
		xsnprintf(crange, sizeof(crange), "%llu-%llu", (unsigned long long)up->offset,
			  (unsigned long long)(up->offset + len - 1));
		xsnprintf(clen, sizeof(clen), "%zu", len);
		call_header(&k, "Content-Type", "application/octet-stream");
		call_header(&k, "Content-Range", crange);
		call_header(&k, "Content-Length", clen);
		rc = reg_do(c, &k, &resp, err);
		if (rc == 0) {
			long long end = range_end(&resp);
			if (end >= 0 && (uint64_t)end != up->offset + len - 1) {
				rc = err_set(err, -EPROTO,
					     "blob upload chunk %s: the registry has bytes 0-%lld",
					     k.what, end);
				free(at);
				break;
			}
			rc = upload_location(c, up, &resp, at, false, err);
			free(at);
			if (rc == 0)
				up->offset += len;
			break;
		}
		if (!k.transport_failed || attempt >= c->retry.max_attempts ||
		    !retry_transport_retryable(rc)) {
			free(at);
			break;
		}
		/* The connection broke: ask the registry how far it got. */
		struct reg_call s;
		call_init(&s, "blob upload status", "GET", at);
		msg_snprintf(s.what, sizeof(s.what), "%s", up->repo);
		s.scopes[0] = buf_str(&scope);
		s.n_scopes = 1;
		s.no_redirect = true;
		s.max_body = 1 << 20;
		retry_pause(&c->retry, retry_wait_ms(&c->retry, attempt, NULL));
		struct dth_err se;
		err_clear(&se);
		int src = reg_do(c, &s, &resp, &se);
		free(at);
		if (src != 0)
			break; /* report the PATCH's failure */
		long long end = range_end(&resp);
		(void)upload_location(c, up, &resp, up->location, false, &se);
		if (end >= 0 && (uint64_t)end == up->offset + len - 1) {
			up->offset += len;
			rc = 0;
			err_clear(err);
			break;
		}
		if (!(end + 1 == (long long)up->offset)) {
			rc = err_set(err, -EIO,
				     "blob upload chunk %s: the registry kept bytes 0-%lld after a "
				     "broken connection",
				     up->repo, end);
			break;
		}
		/* nothing of the chunk arrived: send it again */
	}
	http_resp_release(&resp);
	buf_release(&scope);
	return rc;
}

int registry_upload_finish(struct registry_client *c, struct registry_upload *up,
			   const char *digest, const void *data, size_t len, struct dth_err *err)
{
	if (!up)
		return err_set(err, -EINVAL, "blob upload: no upload");
	if (!registry_digest_valid(digest))
		return err_set(err, -EINVAL, "blob upload %s: bad digest (sha256:<64 hex>)",
			       up->repo);
	struct buf url = BUF_INIT, scope = BUF_INIT, hv = BUF_INIT;
	struct http_resp resp;
	http_resp_init(&resp);
	struct reg_call k;
	int rc;
	buf_adds(&url, up->location);
	buf_addf(&url, "%cdigest=", strchr(up->location, '?') ? '&' : '?');
	uri_encode(&url, digest, strlen(digest), false);
	repo_scope(up->repo, true, &scope);
	call_init(&k, "blob upload finish", "PUT", buf_str(&url));
	msg_snprintf(k.what, sizeof(k.what), "%s@%s", up->repo, digest);
	k.scopes[0] = buf_str(&scope);
	k.n_scopes = 1;
	k.body = data ? data : "";
	k.body_len = len;
	k.no_redirect = true;
	k.max_body = 1 << 20;
	k.expect_len = 0;
	call_header(&k, "Content-Type", "application/octet-stream");
	rc = reg_do(c, &k, &resp, err);
	if (rc)
		goto cleanup;
	up->offset += len;
	if (http_resp_header(&resp, "Docker-Content-Digest", &hv) == 0 &&
	    registry_digest_valid(buf_str(&hv)) && strcmp(buf_str(&hv), digest) != 0)
		rc = err_set(err, -EBADMSG, "blob upload %s: the registry stored digest %s", k.what,
			     buf_str(&hv));
cleanup:
	http_resp_release(&resp);
	buf_release(&url);
	buf_release(&scope);
	buf_release(&hv);
	return rc;
}

void registry_upload_cancel(struct registry_client *c, struct registry_upload *up)
{
	if (!up || !up->location)
		return;
	struct buf scope = BUF_INIT;
	struct http_resp resp;
	http_resp_init(&resp);
	struct reg_call k;
	struct dth_err e;
	err_clear(&e);
	repo_scope(up->repo, true, &scope);
	call_init(&k, "blob upload cancel", "DELETE", up->location);
	msg_snprintf(k.what, sizeof(k.what), "%s", up->repo);
	k.scopes[0] = buf_str(&scope);
	k.n_scopes = 1;
	k.no_redirect = true;
	k.max_body = 1 << 20;
	if (reg_do(c, &k, &resp, &e) != 0)
		log_debug("registry %s: %s", c->name, e.message);
	http_resp_release(&resp);
	buf_release(&scope);
}

int registry_blob_put(struct registry_client *c, const char *repo, const char *digest,
		      const void *data, size_t len, struct dth_err *err)
{
	if (!registry_digest_valid(digest))
		return err_set(err, -EINVAL, "blob upload %s: bad digest (sha256:<64 hex>)",
			       repo ? repo : "");
	char got[REGISTRY_DIGEST_MAX];
	registry_digest_of(data ? data : "", len, got);
	if (strcmp(got, digest) != 0)
		return err_set(err, -EBADMSG, "blob upload: the bytes have digest %s, not %s", got,
			       digest);
	struct registry_upload *up = NULL;
	int rc = registry_upload_start(c, repo, &up, err);
	if (rc)
		return rc;
	rc = registry_upload_finish(c, up, digest, data, len, err);
	if (rc)
		registry_upload_cancel(c, up);
	registry_upload_free(up);
	return rc;
}

/* ---- listings ---- */

static int list_pages(struct registry_client *c, const char *op, const char *what,
		      const char *first_url, const char *scope, const char *field,
		      registry_name_fn fn, void *ctx, struct dth_err *err)
{
	struct buf url = BUF_INIT, link = BUF_INIT, next = BUF_INIT;
	struct http_resp resp;
	http_resp_init(&resp);
	int rc = 0;
	buf_adds(&url, first_url);
	for (unsigned page = 0;; page++) {
		if (page >= LIST_PAGES_MAX) {
			rc = err_set(err, -ELOOP, "%s %s: more than %u pages", op, what,
				     LIST_PAGES_MAX);
			break;
		}
		struct reg_call k;
		call_init(&k, op, "GET", buf_str(&url));
		msg_snprintf(k.what, sizeof(k.what), "%s", what);
		k.scopes[0] = scope;
		k.n_scopes = 1;
		k.max_body = LIST_BODY_MAX;
		call_header(&k, "Accept", "application/json");
		rc = reg_do(c, &k, &resp, err);
		if (rc)
			break;
		json_error_t je;
		json_t *root = json_loadb(resp.body.data, resp.body.len, 0, &je);
		json_t *arr = root ? json_object_get(root, field) : NULL;
		if (!root || !json_is_object(root) ||
		    (arr && !json_is_array(arr) && !json_is_null(arr))) {
			json_decref(root);
			rc = err_set(err, -EPROTO, "%s %s: the answer is not the expected JSON", op,
				     what);
			break;
		}
		size_t i;
		json_t *v;
		json_array_foreach(arr, i, v)
		{
			const char *s = json_string_value(v);
			if (!s)
				continue;
			rc = fn(ctx, s);
			if (rc)
				break;
		}
		json_decref(root);
		if (rc)
			break;
		buf_reset(&link);
		if (http_resp_header(&resp, "Link", &link) != 0)
			break;
		int lr = registry_parse_link_next(buf_str(&link), &next);
		if (lr == -ENOENT)
			break;
		struct buf abs = BUF_INIT;
		if (lr != 0 || registry_resolve_url(k.final_url, buf_str(&next), &abs) != 0) {
			buf_release(&abs);
			rc = err_set(err, -EPROTO, "%s %s: unusable Link header", op, what);
			break;
		}
		if (!same_origin(c->url, buf_str(&abs)) ||
		    strcmp(buf_str(&abs), buf_str(&url)) == 0) {
			buf_release(&abs);
			rc = err_set(err, -EPROTO, "%s %s: the next page link goes %s", op, what,
				     strcmp(buf_str(&abs), buf_str(&url)) == 0
					 ? "nowhere (the same page)"
					 : "to another host");
			break;
		}
		buf_reset(&url);
		buf_add(&url, abs.data, abs.len);
		buf_release(&abs);
	}
	http_resp_release(&resp);
	buf_release(&url);
	buf_release(&link);
	buf_release(&next);
	return rc;
}

int registry_tags_list(struct registry_client *c, const char *repo, registry_name_fn fn, void *ctx,
		       struct dth_err *err)
{
	struct buf norm = BUF_INIT, url = BUF_INIT, scope = BUF_INIT;
	int rc = repo_url(c, repo, &norm, &url, err);
	if (rc == 0) {
		buf_adds(&url, "/tags/list");
		repo_scope(buf_str(&norm), false, &scope);
		rc = list_pages(c, "tags list", buf_str(&norm), buf_str(&url), buf_str(&scope),
				"tags", fn, ctx, err);
	}
	buf_release(&norm);
	buf_release(&url);
	buf_release(&scope);
	return rc;
}

int registry_ping(struct registry_client *c, struct dth_err *err)
{
	struct buf url = BUF_INIT;
	buf_addf(&url, "%s/v2/", c->url);
	struct reg_call k;
	call_init(&k, "ping", "GET", buf_str(&url));
	msg_snprintf(k.what, sizeof(k.what), "%s", c->name);
	k.max_body = LIST_BODY_MAX;
	struct http_resp resp;
	http_resp_init(&resp);
	int rc = reg_do(c, &k, &resp, err);
	http_resp_release(&resp);
	buf_release(&url);
	return rc;
}

int registry_catalog(struct registry_client *c, registry_name_fn fn, void *ctx, struct dth_err *err)
{
	struct buf url = BUF_INIT;
	buf_addf(&url, "%s/v2/_catalog?n=%d", c->url, CATALOG_PAGE);
	int rc = list_pages(c, "catalog", c->name, buf_str(&url), "registry:catalog:*",
			    "repositories", fn, ctx, err);
	buf_release(&url);
	return rc;
}
