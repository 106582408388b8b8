/* Fuzz target for the config reader: common/ini.h (ini_parse and
 * ini_parse_sections) and remote/remotes.h (config_parse_text then
 * config_finish with an empty environment; config_finish with the input's
 * lines as the environment; remote_parse_path).
 *
 * Checks: ini hands out trimmed, non-empty keys and increasing line numbers and
 * stops at a callback's non-zero return; every well-named [remote NAME] of a
 * config that loads can be looked up; no error message quotes a secret value
 * (secret_access_key, session_token) from the text; remote_parse_path's parts
 * put back together give the input. */
#include "common/compat.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/ini.h"
#include "common/util.h"
#include "remote/remotes.h"

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			fprintf(stderr, "fuzz_config: check failed at line %d: %s\n", __LINE__,    \
				#c);                                                               \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

#define MAX_NAMES   64
#define MAX_SECRETS 16
#define MAX_ENV	    32

struct ini_seen {
	unsigned last_line;
	unsigned n_lines;	 /* lines in the text */
	unsigned calls, stop_at; /* return 7 at call number stop_at (0: never) */
	bool stopped;
	char *names[MAX_NAMES]; /* well-formed [remote NAME] names */
	unsigned n_names;
	char *secrets[MAX_SECRETS];
	unsigned n_secrets;
	const char *text;
};

static bool blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static void check_trimmed(const char *s)
{
	size_t n = strlen(s);
	CHECK(strchr(s, '\n') == NULL);
	if (n)
		CHECK(!blank(s[0]) && !blank(s[n - 1]));
}

static bool name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-' || c == '.'))
			return false;
	}
	return true;
}

/* A value that cannot appear in an error message by accident: long, mixed,
 * and found only once in the whole text. */
static bool distinctive(const char *v, const char *text)
{
	size_t n = strlen(v);
	bool digit = false, upper = false;
	if (n < 10)
		return false;
	for (size_t i = 0; i < n; i++) {
		digit |= v[i] >= '0' && v[i] <= '9';
		upper |= v[i] >= 'A' && v[i] <= 'Z';
	}
	if (!digit || !upper)
		return false;
	const char *first = strstr(text, v);
	return first && !strstr(first + 1, v);
}

static int on_key(void *ctx, const char *section, const char *key, const char *value, unsigned line)
{
	struct ini_seen *s = ctx;
	CHECK(section && key && value);
	check_trimmed(section);
	check_trimmed(key);
	check_trimmed(value);
	CHECK(key[0] != '\0');
	CHECK(strchr(key, '=') == NULL);
	CHECK(line >= 1 && line <= s->n_lines);
	CHECK(line > s->last_line);
	s->last_line = line;
	if (s->text && (str_ieq(key, "secret_access_key") || str_ieq(key, "session_token")) &&
	    s->n_secrets < MAX_SECRETS && distinctive(value, s->text))
		s->secrets[s->n_secrets++] = xstrdup(value);
	if (++s->calls == s->stop_at) {
		s->stopped = true;
		return 7;
	}
	return 0;
}

static int on_section(void *ctx, const char *section, unsigned line)
{
	struct ini_seen *s = ctx;
	check_trimmed(section);
	CHECK(section[0] != '\0');
	CHECK(strchr(section, ']') == NULL);
	CHECK(line >= 1 && line <= s->n_lines);
	CHECK(line > s->last_line);
	s->last_line = line;
	if (str_startswith(section, "remote ") || str_startswith(section, "remote\t")) {
		const char *n = section + 6;
		while (*n == ' ' || *n == '\t')
			n++;
		if (name_ok(n) && s->n_names < MAX_NAMES)
			s->names[s->n_names++] = xstrdup(n);
	}
	return 0;
}

static void seen_release(struct ini_seen *s)
{
	for (unsigned i = 0; i < s->n_names; i++)
		free(s->names[i]);
	for (unsigned i = 0; i < s->n_secrets; i++)
		free(s->secrets[i]);
}

static unsigned count_lines(const char *t, size_t n)
{
	unsigned lines = 1;
	for (size_t i = 0; i < n; i++)
		lines += t[i] == '\n';
	return lines;
}

static void check_no_secret(const struct ini_seen *s, const struct dth_err *e)
{
	for (unsigned i = 0; i < s->n_secrets; i++)
		if (strstr(e->message, s->secrets[i])) {
			fprintf(stderr, "fuzz_config: error message quotes a secret: %s\n",
				e->message);
			abort();
		}
}

static void check_def(const struct remote_def *r)
{
	CHECK(r->name && r->source);
	const char *strs[] = {
	    r->name,	      r->type,	      r->provider,	r->endpoint,
	    r->region,	      r->ca_file,     r->access_key_id, r->secret_access_key,
	    r->session_token, r->credentials, r->source};
	size_t total = 0;
	for (size_t i = 0; i < ARRAY_SIZE(strs); i++)
		if (strs[i])
			total += strlen(strs[i]);
	CHECK(total < (size_t)1 << 40);
}

static void fuzz_ini(const char *exact, size_t size, uint64_t h)
{
	/* exact has no NUL terminator: ini must stay within size bytes */
	struct ini_seen s = {.n_lines = count_lines(exact, size)};
	struct dth_err e;
	err_clear(&e);
	int rc = ini_parse(exact, size, "fuzz", on_key, &s, &e);
	CHECK(rc == 0 || rc == -EINVAL);
	if (rc)
		CHECK(e.code == rc && strncmp(e.message, "fuzz:", 5) == 0);
	unsigned total = s.calls;
	seen_release(&s);

	/* again with sections, stopping at some key */
	struct ini_seen s2 = {.n_lines = s.n_lines};
	s2.stop_at = total ? 1 + (unsigned)(h % total) : 0;
	err_clear(&e);
	int rc2 = ini_parse_sections(exact, size, NULL, on_key, on_section, &s2, &e);
	if (s2.stopped)
		CHECK(rc2 == 7 && s2.calls == s2.stop_at);
	else
		CHECK(rc2 == rc && s2.calls == total);
	seen_release(&s2);
}

static void fuzz_remotes(const char *text, size_t len)
{
	struct ini_seen s = {.n_lines = count_lines(text, len), .text = text};
	struct dth_err e;
	err_clear(&e);
	(void)!ini_parse_sections(text, len, "fuzz", on_key, on_section, &s, &e);

	struct config *cfg = config_new_empty();
	char *const envp[] = {NULL};
	err_clear(&e);
	int rc = config_parse_text(cfg, text, "fuzz", &e);
	if (rc == 0) {
		err_clear(&e);
		rc = config_finish(cfg, envp, &e);
	}
	if (rc) {
		CHECK(rc < 0 && e.code == rc && e.message[0] != '\0');
		check_no_secret(&s, &e);
	} else {
		CHECK(config_path(cfg) == NULL);
		for (unsigned i = 0; i < s.n_names; i++) {
			const struct remote_def *r = config_remote(cfg, s.names[i]);
			if (!r) {
				fprintf(stderr, "fuzz_config: remote '%s' not found\n", s.names[i]);
				abort();
			}
			check_def(r);
		}
	}
	config_free(cfg);
	seen_release(&s);
}

/* The input's lines that hold '=' as the environment of an empty config. */
static void fuzz_env(char *text)
{
	char *envp[MAX_ENV + 1];
	unsigned n = 0;
	char *p = text;
	while (*p && n < MAX_ENV) {
		char *nl = strchr(p, '\n');
		if (nl)
			*nl = '\0';
		if (strchr(p, '='))
			envp[n++] = p;
		if (!nl)
			break;
		p = nl + 1;
	}
	envp[n] = NULL;
	struct config *cfg = config_new_empty();
	struct dth_err e;
	err_clear(&e);
	int rc = config_finish(cfg, envp, &e);
	if (rc)
		CHECK(rc < 0 && e.message[0] != '\0');
	config_free(cfg);
}

static void fuzz_path(const char *text)
{
	char *remote = NULL, *bucket = NULL, *prefix = NULL;
	struct dth_err e;
	err_clear(&e);
	int rc = remote_parse_path(text, &remote, &bucket, &prefix, &e);
	if (rc) {
		CHECK(rc == -EINVAL && !remote && !bucket && !prefix);
		return;
	}
	CHECK(remote && bucket && prefix && *remote && *bucket);
	struct buf b = BUF_INIT;
	buf_addf(&b, "%s:%s", remote, bucket);
	if (strchr(text + strlen(remote) + 1, '/'))
		buf_addf(&b, "/%s", prefix);
	else
		CHECK(*prefix == '\0');
	CHECK(strcmp(b.data, text) == 0);
	buf_release(&b);
	free(remote);
	free(bucket);
	free(prefix);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < size; i++)
		h = (h ^ data[i]) * 0x100000001b3ULL;

	char *exact = malloc(size ? size : 1);
	if (!exact)
		return 0;
	if (size)
		memcpy(exact, data, size);
	fuzz_ini(exact, size, h);
	free(exact);

	char *text = malloc(size + 1);
	if (!text)
		return 0;
	if (size)
		memcpy(text, data, size);
	text[size] = '\0';
	fuzz_remotes(text, strlen(text));
	fuzz_path(text);
	fuzz_env(text); /* modifies text */
	free(text);
	return 0;
}
