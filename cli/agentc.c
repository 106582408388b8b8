/* The agent client's pieces that need no agent (see agentc.h). */
#include "common/compat.h"

#include "cli/agentc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/ini.h"

#define CONFIG_MAX (4 * 1024 * 1024)

/* ---- the address ---- */

void agentc_addr_release(struct agentc_addr *a)
{
	free(a->base);
	free(a->unix_socket);
	free(a->shown);
	memset(a, 0, sizeof(*a));
}

/* Check "HOST:PORT" / "[V6]:PORT" (what follows a scheme, up to an optional
 * trailing '/'), and write it to out with an any-address host made loopback. */
static int hostport(const char *s, size_t n, struct buf *out)
{
	const char *end = s + n, *colon;
	const char *hs = s, *he;
	if (n && *s == '[') {
		he = memchr(s, ']', n);
		if (!he || he + 1 >= end || he[1] != ':')
			return -EINVAL;
		hs = s + 1;
		colon = he + 1;
	} else {
		colon = NULL;
		for (const char *p = s; p < end; p++)
			if (*p == ':') {
				if (colon)
					return -EINVAL;
				colon = p;
			}
		if (!colon)
			return -EINVAL;
		he = colon;
	}
	if (he == hs || colon + 1 >= end)
		return -EINVAL;
	uint64_t port = 0;
	for (const char *p = colon + 1; p < end; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		port = port * 10 + (uint64_t)(*p - '0');
		if (port > 65535)
			return -EINVAL;
	}
	if (port == 0)
		return -EINVAL;
	for (const char *p = hs; p < he; p++)
		if (*p == '/' || *p == '@' || *p == '?' || *p == '#' || *p == ' ')
			return -EINVAL;
	size_t hl = (size_t)(he - hs);
	bool v6 = *s == '[';
	if (hl == 7 && !memcmp(hs, "0.0.0.0", 7))
		buf_adds(out, "127.0.0.1");
	else if (v6 && hl == 2 && !memcmp(hs, "::", 2))
		buf_adds(out, "[::1]");
	else if (v6)
		buf_addf(out, "[%.*s]", (int)hl, hs);
	else
		buf_add(out, hs, hl);
	buf_addf(out, ":%llu", (unsigned long long)port);
	return 0;
}

int agentc_addr_parse(const char *s, struct agentc_addr *out, struct dth_err *err)
{
	memset(out, 0, sizeof(*out));
	if (!s || !*s)
		return err_set(err, -EINVAL, "empty agent address");
	if (str_startswith(s, "unix:")) {
		if (s[5] != '/')
			return err_set(err, -EINVAL,
				       "agent address %s: unix: needs an absolute path", s);
		out->unix_socket = xstrdup(s + 5);
		out->base = xstrdup("http://localhost");
		out->shown = xstrdup(s);
		return 0;
	}
	const char *scheme = "http";
	const char *rest = s;
	if (str_startswith(s, "http://")) {
		rest = s + 7;
	} else if (str_startswith(s, "https://")) {
		scheme = "https";
		rest = s + 8;
	} else if (strstr(s, "://")) {
		return err_set(err, -EINVAL, "agent address %s: only http, https and unix", s);
	}
	size_t n = strlen(rest);
	if (n && rest[n - 1] == '/')
		n--;
	struct buf b = BUF_INIT;
	buf_addf(&b, "%s://", scheme);
	if (hostport(rest, n, &b) != 0) {
		buf_release(&b);
		return err_set(err, -EINVAL,
			       "bad agent address '%s' (HOST:PORT, [IPV6]:PORT, https://HOST:PORT "
			       "or unix:/PATH)",
			       s);
	}
	out->base = buf_detach(&b, NULL);
	out->shown = xstrdup(s);
	return 0;
}

/* ---- the config file's [agent] section ---- */

void agentc_config_release(struct agentc_config *c)
{
	free(c->listen);
	free(c->tls_cert);
	free(c->state_dir);
	memset(c, 0, sizeof(*c));
}

static int on_config_key(void *ctx, const char *section, const char *key, const char *value,
			 unsigned line)
{
	(void)line;
	struct agentc_config *c = ctx;
	if (strcmp(section, "agent") != 0)
		return 0;
	char **slot = !strcmp(key, "listen")	  ? &c->listen
		      : !strcmp(key, "tls_cert")  ? &c->tls_cert
		      : !strcmp(key, "state_dir") ? &c->state_dir
						  : NULL;
	if (slot) {
		free(*slot);
		*slot = xstrdup(value);
	}
	return 0;
}

/* Read path whole. A config file may hold secrets: the text is wiped by the
 * caller. */
static int read_text(const char *path, struct buf *text, struct dth_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_set(err, -errno, "config file %s: %s", path, strerror(errno));
	int rc = 0;
	char chunk[8192];
	for (;;) {
		ssize_t r = read(fd, chunk, sizeof(chunk));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = err_set(err, -errno, "config file %s: %s", path, strerror(errno));
			break;
		}
		if (r == 0)
			break;
		if (text->len + (size_t)r > CONFIG_MAX) {
			rc = err_set(err, -EFBIG, "config file %s: too large", path);
			break;
		}
		buf_add(text, chunk, (size_t)r);
	}
	explicit_bzero(chunk, sizeof(chunk));
	close(fd);
	return rc;
}

int agentc_config_read(const char *path, struct agentc_config *out, struct dth_err *err)
{
	memset(out, 0, sizeof(*out));
	const char *file = path;
	bool must = true;
	struct buf home = BUF_INIT;
	if (!file) {
		const char *env = getenv("DTH_CONFIG");
		if (env && *env) {
			file = env;
		} else {
			must = false;
			const char *h = getenv("HOME");
			if (h && *h) {
				buf_addf(&home, "%s/.config/dth/dth.conf", h);
				if (access(home.data, F_OK) == 0)
					file = home.data;
			}
			if (!file && access("/etc/dth/dth.conf", F_OK) == 0)
				file = "/etc/dth/dth.conf";
		}
	}
	int rc = 0;
	struct buf text = BUF_INIT;
	if (file) {
		rc = read_text(file, &text, err);
		if (rc && !must) {
			rc = 0; /* a default file we may not read: the defaults then */
			err_clear(err);
		} else if (!rc) {
			rc = ini_parse(buf_str(&text), text.len, file, on_config_key, out, err);
		}
	}
	if (text.data)
		explicit_bzero(text.data, text.len);
	buf_release(&text);
	buf_release(&home);
	if (rc)
		agentc_config_release(out);
	return rc;
}

/* ---- errors ---- */

int agentc_error(long status, const char *body, size_t len, struct buf *msg)
{
	json_t *doc = body && len ? json_loadb(body, len, 0, NULL) : NULL;
	json_t *e = json_object_get(doc, "error");
	const char *code = json_string_value(json_object_get(e, "code"));
	const char *field = json_string_value(json_object_get(e, "field"));
	const char *m = json_string_value(json_object_get(e, "message"));
	if (m) {
		if (field && *field) {
			buf_add_printable(msg, field, strlen(field));
			buf_adds(msg, ": ");
		}
		buf_add_printable(msg, m, strlen(m));
	} else {
		buf_addf(msg, "the agent answered HTTP %ld", status);
	}
	int rc;
	if (status == 401)
		rc = EXIT_UNREACHABLE;
	else if (status == 409)
		rc = code && !strcmp(code, "read_only") ? EXIT_USAGE : EXIT_SOME_FAILED;
	else if (status == 400 || status == 404 || status == 405 || status == 413 ||
		 status == 415 || status == 422)
		rc = EXIT_USAGE;
	else
		rc = EXIT_SOME_FAILED;
	json_decref(doc);
	return rc;
}

/* ---- settings ---- */

static int put_string(json_t *obj, const char *key, const char *value, const char *where,
		      struct dth_err *err)
{
	json_t *v = json_string(value);
	if (!v || !utf8_valid(key, strlen(key))) {
		json_decref(v);
		return err_set(err, -EINVAL, "%s: the key or value is not UTF-8", where);
	}
	json_object_set_new(obj, key, v);
	return 0;
}

int agentc_kv(const char *arg, json_t *obj, struct dth_err *err)
{
	const char *eq = strchr(arg, '=');
	if (!eq || eq == arg)
		return err_set(err, -EINVAL, "'%s': settings are KEY=VALUE", arg);
	char *key = xstrndup(arg, (size_t)(eq - arg));
	int rc = put_string(obj, key, eq + 1, key, err);
	free(key);
	return rc;
}

struct task_file {
	const char *origin;
	const char *want; /* NULL: the only one */
	char *found;	  /* name of the section taken */
	unsigned sections;
	bool in_wanted;
	json_t *obj;
	struct dth_err *err;
};

static int on_task_section(void *ctx, const char *section, unsigned line)
{
	struct task_file *t = ctx;
	t->in_wanted = false;
	if (!str_startswith(section, "task") || (section[4] != ' ' && section[4] != '\t'))
		return err_set(t->err, -EINVAL, "%s:%u: expected [task NAME] sections only",
			       t->origin, line);
	const char *name = section + 5;
	while (*name == ' ' || *name == '\t')
		name++;
	if (!*name)
		return err_set(t->err, -EINVAL, "%s:%u: [task] without a name", t->origin, line);
	t->sections++;
	if (t->want ? !strcmp(name, t->want) : t->sections == 1) {
		if (t->found)
			return err_set(t->err, -EINVAL, "%s:%u: task %s is defined twice",
				       t->origin, line, name);
		t->found = xstrdup(name);
		t->in_wanted = true;
	}
	return 0;
}

static int on_task_key(void *ctx, const char *section, const char *key, const char *value,
		       unsigned line)
{
	struct task_file *t = ctx;
	if (!*section)
		return err_set(t->err, -EINVAL, "%s:%u: a key outside a [task NAME] section",
			       t->origin, line);
	if (!t->in_wanted)
		return 0;
	char where[300];
	msg_snprintf(where, sizeof(where), "%s:%u", t->origin, line);
	return put_string(t->obj, key, value, where, t->err);
}

int agentc_task_file(const char *text, size_t len, const char *origin, const char *name,
		     json_t *obj, char **name_out, struct dth_err *err)
{
	*name_out = NULL;
	struct task_file t = {.origin = origin, .want = name, .obj = obj, .err = err};
	int rc = ini_parse_sections(text, len, origin, on_task_key, on_task_section, &t, err);
	if (!rc && !t.found)
		rc = name ? err_set(err, -EINVAL, "%s: no [task %s] section", origin, name)
			  : err_set(err, -EINVAL, "%s: no [task NAME] section", origin);
	if (!rc && !name && t.sections > 1)
		rc = err_set(err, -EINVAL, "%s holds %u tasks: name the one to use", origin,
			     t.sections);
	if (rc) {
		free(t.found);
		return rc;
	}
	*name_out = t.found;
	return 0;
}

/* ---- formats ---- */

void agentc_fmt_duration(int64_t s, char out[32])
{
	if (s < 0)
		s = 0;
	if (s < 60)
		xsnprintf(out, 32, "%llds", (long long)s);
	else if (s < 3600)
		xsnprintf(out, 32, "%lldm%02llds", (long long)(s / 60), (long long)(s % 60));
	else if (s < 86400)
		xsnprintf(out, 32, "%lldh%02lldm", (long long)(s / 3600),
			  (long long)(s % 3600 / 60));
	else
		xsnprintf(out, 32, "%lldd%02lldh", (long long)(s / 86400),
			  (long long)(s % 86400 / 3600));
}

void agentc_fmt_time(int64_t t, char out[32])
{
	if (t <= 0) {
		xsnprintf(out, 32, "-");
		return;
	}
	time_t tt = (time_t)t;
	struct tm tm;
	if (!gmtime_r(&tt, &tm) || !strftime(out, 32, "%Y-%m-%d %H:%M:%S", &tm))
		xsnprintf(out, 32, "%lld", (long long)t);
}

void agentc_fmt_bytes(uint64_t n, char out[32])
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	double v = (double)n;
	size_t u = 0;
	while (v >= 1024 && u + 1 < ARRAY_SIZE(units)) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		xsnprintf(out, 32, "%llu B", (unsigned long long)n);
	else
		xsnprintf(out, 32, "%.1f %s", v, units[u]);
}

/* ---- tables ---- */

struct table {
	size_t ncols;
	char **cells; /* row-major */
	size_t n;
};

static void table_add(struct table *t, const char *s)
{
	t->cells = xrealloc(t->cells, (t->n + 1) * sizeof(*t->cells));
	struct buf b = BUF_INIT;
	buf_add_printable(&b, s ? s : "-", strlen(s ? s : "-"));
	t->cells[t->n++] = buf_detach(&b, NULL);
}

/* Columns on screen: a UTF-8 sequence counts one. */
static size_t width(const char *s)
{
	size_t w = 0;
	for (; *s; s++)
		if (((unsigned char)*s & 0xC0) != 0x80)
			w++;
	return w;
}

static void table_print(FILE *f, struct table *t, bool header)
{
	size_t *w = xcalloc(t->ncols, sizeof(*w));
	for (size_t i = header ? 0 : t->ncols; i < t->n; i++) {
		size_t cw = width(t->cells[i]);
		if (cw > w[i % t->ncols])
			w[i % t->ncols] = cw;
	}
	size_t pad = 0; /* spaces owed before the next non-empty cell of the row */
	for (size_t i = header ? 0 : t->ncols; i < t->n; i++) {
		size_t c = i % t->ncols;
		if (t->cells[i][0]) {
			for (; pad; pad--)
				fputc(' ', f);
			fputs(t->cells[i], f);
		}
		if (c + 1 == t->ncols) {
			fputc('\n', f);
			pad = 0;
		} else {
			pad += w[c] + 2 - width(t->cells[i]);
		}
	}
	for (size_t i = 0; i < t->n; i++)
		free(t->cells[i]);
	free(t->cells);
	free(w);
}

static const char *jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static bool jint(const json_t *o, const char *key, int64_t *v)
{
	json_t *x = json_object_get(o, key);
	if (!json_is_integer(x))
		return false;
	*v = (int64_t)json_integer_value(x);
	return true;
}

static void add_int(struct table *t, const json_t *o, const char *key)
{
	int64_t v;
	char s[32] = "-";
	if (jint(o, key, &v))
		xsnprintf(s, sizeof(s), "%lld", (long long)v);
	table_add(t, s);
}

static void add_bytes(struct table *t, const json_t *o, const char *key)
{
	int64_t v;
	char s[32] = "-";
	if (jint(o, key, &v) && v >= 0)
		agentc_fmt_bytes((uint64_t)v, s);
	table_add(t, s);
}

/* "5m ago" / "in 30s" / "now". */
static void fmt_rel(int64_t t, int64_t now, char out[48])
{
	char d[32];
	if (t == now) {
		xsnprintf(out, 48, "now");
	} else if (t < now) {
		agentc_fmt_duration(now - t, d);
		xsnprintf(out, 48, "%s ago", d);
	} else {
		agentc_fmt_duration(t - now, d);
		xsnprintf(out, 48, "in %s", d);
	}
}

static void task_progress(const json_t *task, char out[96])
{
	const char *state = jstr(task, "state");
	const json_t *p = json_object_get(task, "progress");
	int64_t tr = 0, pl = 0, by = 0;
	if (!state || (strcmp(state, "running") && strcmp(state, "stopping")) ||
	    !jint(p, "transferred", &tr)) {
		xsnprintf(out, 96, "-");
		return;
	}
	char b[32];
	agentc_fmt_bytes(jint(p, "bytes", &by) && by > 0 ? (uint64_t)by : 0, b);
	if (jint(p, "planned", &pl) && pl > 0)
		xsnprintf(out, 96, "%lld/%lld %s", (long long)tr, (long long)pl, b);
	else
		xsnprintf(out, 96, "%lld %s", (long long)tr, b);
}

static void task_last_run(const json_t *task, int64_t now, char out[96])
{
	const json_t *r = json_object_get(task, "last_run");
	int64_t t;
	if (!json_is_object(r) || (!jint(r, "ended", &t) && !jint(r, "started", &t))) {
		xsnprintf(out, 96, "-");
		return;
	}
	char rel[48];
	fmt_rel(t, now, rel);
	const char *res = jstr(r, "result");
	msg_snprintf(out, 96, "%s %s", res ? res : "?", rel);
}

void agentc_print_tasks(FILE *f, const json_t *tasks, int64_t now)
{
	static const char *const head[] = {
	    "NAME", "TYPE", "STATE", "SOURCE → DESTINATION", "PROGRESS", "LAST-RUN", "NEXT-RUN"};
	struct table t = {.ncols = ARRAY_SIZE(head)};
	for (size_t i = 0; i < ARRAY_SIZE(head); i++)
		table_add(&t, head[i]);
	size_t i;
	json_t *task;
	json_array_foreach(tasks, i, task)
	{
		const json_t *def = json_object_get(task, "definition");
		table_add(&t, jstr(task, "name"));
		table_add(&t, jstr(task, "type"));
		table_add(&t, jstr(task, "state"));
		const char *src = jstr(def, "source"), *dst = jstr(def, "destination");
		struct buf sd = BUF_INIT;
		buf_addf(&sd, "%s → %s", src ? src : "-", dst ? dst : "-");
		table_add(&t, sd.data);
		buf_release(&sd);
		char s[96];
		task_progress(task, s);
		table_add(&t, s);
		task_last_run(task, now, s);
		table_add(&t, s);
		int64_t next;
		char rel[48] = "-";
		if (jint(task, "next_run", &next))
			fmt_rel(next, now, rel);
		table_add(&t, rel);
	}
	table_print(f, &t, true);
}

void agentc_print_runs(FILE *f, const json_t *runs, int64_t now)
{
	static const char *const head[] = {"SEQ",    "START", "DURATION", "RESULT",
					   "COPIED", "BYTES", "FAILED"};
	struct table t = {.ncols = ARRAY_SIZE(head)};
	for (size_t i = 0; i < ARRAY_SIZE(head); i++)
		table_add(&t, head[i]);
	size_t i;
	json_t *r;
	json_array_foreach(runs, i, r)
	{
		add_int(&t, r, "seq");
		int64_t st = 0, en = 0;
		char s[32] = "-";
		jint(r, "started", &st);
		agentc_fmt_time(st, s);
		table_add(&t, s);
		xsnprintf(s, sizeof(s), "-");
		if (st > 0 && jint(r, "ended", &en) && en >= st)
			agentc_fmt_duration(en - st, s);
		else if (st > 0 && now >= st)
			agentc_fmt_duration(now - st, s); /* still running */
		table_add(&t, s);
		table_add(&t, jstr(r, "result"));
		add_int(&t, r, "transferred");
		add_bytes(&t, r, "bytes");
		add_int(&t, r, "failed");
	}
	table_print(f, &t, true);
}

/* A key as shown: the API sends keys that are not UTF-8 percent-encoded
 * (key_encoding "url"); shown as they came. */
void agentc_print_objects(FILE *f, const json_t *objects, bool header)
{
	static const char *const head[] = {"STATUS", "SIZE", "ATTEMPTS", "KEY", "ERROR"};
	struct table t = {.ncols = ARRAY_SIZE(head)};
	for (size_t i = 0; i < ARRAY_SIZE(head); i++)
		table_add(&t, head[i]);
	size_t i;
	json_t *o;
	json_array_foreach(objects, i, o)
	{
		table_add(&t, jstr(o, "status"));
		add_bytes(&t, o, "size");
		add_int(&t, o, "attempts");
		table_add(&t, jstr(o, "key"));
		const char *e = jstr(o, "error");
		table_add(&t, e && *e ? e : "");
	}
	table_print(f, &t, header);
}

void agentc_print_images(FILE *f, const json_t *images, bool header)
{
	static const char *const head[] = {"STATUS", "REF", "SRC-DIGEST", "ERROR"};
	struct table t = {.ncols = ARRAY_SIZE(head)};
	for (size_t i = 0; i < ARRAY_SIZE(head); i++)
		table_add(&t, head[i]);
	size_t i;
	json_t *o;
	json_array_foreach(images, i, o)
	{
		table_add(&t, jstr(o, "status"));
		table_add(&t, jstr(o, "ref"));
		const char *d = jstr(o, "src_digest");
		char shortd[24] = "-";
		if (d && *d)
			msg_snprintf(shortd, sizeof(shortd), "%.19s", d);
		table_add(&t, shortd);
		const char *e = jstr(o, "error");
		table_add(&t, e && *e ? e : "");
	}
	table_print(f, &t, header);
}

static void line(FILE *f, const char *label, const char *value)
{
	struct buf b = BUF_INIT;
	buf_add_printable(&b, value ? value : "-", strlen(value ? value : "-"));
	fprintf(f, "%-13s %s\n", label, b.data);
	buf_release(&b);
}

/* "k v, k v, ..." of an object's integer members. */
static void counts(const json_t *o, struct buf *out)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)o, k, v)
	{
		if (!json_is_integer(v))
			continue;
		buf_addf(out, "%s%s %lld", out->len ? ", " : "", k,
			 (long long)json_integer_value(v));
	}
	if (!out->len)
		buf_adds(out, "-");
}

static void print_definition(FILE *f, const json_t *def)
{
	if (!json_is_object(def))
		return;
	fputs("settings:\n", f);
	const char **keys = xcalloc(json_object_size(def) + 1, sizeof(*keys));
	size_t n = 0;
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)def, k, v) keys[n++] = k;
	for (size_t i = 1; i < n; i++) /* sorted, for people */
		for (size_t j = i; j > 0 && strcmp(keys[j - 1], keys[j]) > 0; j--) {
			const char *x = keys[j];
			keys[j] = keys[j - 1];
			keys[j - 1] = x;
		}
	for (size_t i = 0; i < n; i++) {
		json_t *x = json_object_get(def, keys[i]);
		struct buf b = BUF_INIT;
		if (json_is_string(x)) {
			buf_add_printable(&b, json_string_value(x), strlen(json_string_value(x)));
		} else if (!json_is_null(x)) {
			char *s = json_dumps(x, JSON_COMPACT | JSON_ENCODE_ANY);
			if (s)
				buf_add_printable(&b, s, strlen(s));
			free(s);
		}
		if (b.len)
			fprintf(f, "  %s = %s\n", keys[i], b.data);
		buf_release(&b);
	}
	free(keys);
}

/* "webhook: 3 waiting; since the agent started 120 accepted, 2 ignored, 0
 * refused", or nothing for a task without events. */
static void task_events(const json_t *task, const json_t *def, struct buf *out)
{
	const char *src = jstr(def, "events");
	const json_t *ev = json_object_get(task, "events");
	if (!src || !strcmp(src, "none") || !json_is_object(ev))
		return;
	int64_t backlog = 0, rec = 0, ign = 0, ref = 0;
	jint(ev, "backlog", &backlog);
	jint(ev, "received", &rec);
	jint(ev, "ignored", &ign);
	jint(ev, "refused", &ref);
	buf_addf(out,
		 "%.*s: %lld waiting; since the agent started %lld accepted, %lld ignored, "
		 "%lld refused",
		 (int)strcspn(src, ":"), src, (long long)backlog, (long long)rec, (long long)ign,
		 (long long)ref);
}

void agentc_print_task(FILE *f, const json_t *task, int64_t now)
{
	const json_t *def = json_object_get(task, "definition");
	struct buf b = BUF_INIT;
	line(f, "name:", jstr(task, "name"));
	const char *origin = jstr(task, "origin");
	buf_addf(&b, "%s (from %s%s)", jstr(task, "type") ? jstr(task, "type") : "-",
		 origin ? origin : "-",
		 json_is_true(json_object_get(task, "read_only")) ? ", read-only here" : "");
	line(f, "type:", b.data);
	buf_reset(&b);
	line(f, "state:", jstr(task, "state"));
	const json_t *err = json_object_get(task, "error");
	if (json_is_object(err)) {
		buf_addf(&b, "%s: %s", jstr(err, "code") ? jstr(err, "code") : "-",
			 jstr(err, "message") ? jstr(err, "message") : "-");
		line(f, "error:", b.data);
		buf_reset(&b);
	}
	line(f, "source:", jstr(def, "source"));
	line(f, "destination:", jstr(def, "destination"));
	line(f, "schedule:", jstr(def, "schedule"));
	char s[96];
	task_progress(task, s);
	line(f, "progress:", s);
	const json_t *stats = json_object_get(task, "stats");
	counts(json_object_get(stats, "objects"), &b);
	line(f, "objects:", b.data);
	buf_reset(&b);
	const json_t *r = json_object_get(task, "last_run");
	if (json_is_object(r)) {
		int64_t seq = 0, st = 0, en = 0, tr = 0, fa = 0;
		jint(r, "seq", &seq);
		jint(r, "started", &st);
		char when[32], dur[32] = "-";
		agentc_fmt_time(st, when);
		if (jint(r, "ended", &en) && en >= st)
			agentc_fmt_duration(en - st, dur);
		jint(r, "transferred", &tr);
		jint(r, "failed", &fa);
		buf_addf(&b, "#%lld %s, started %s UTC, took %s, copied %lld, failed %lld",
			 (long long)seq, jstr(r, "result") ? jstr(r, "result") : "-", when, dur,
			 (long long)tr, (long long)fa);
		line(f, "last run:", b.data);
		buf_reset(&b);
	} else {
		line(f, "last run:", "-");
	}
	int64_t next;
	char rel[48] = "-";
	if (jint(task, "next_run", &next))
		fmt_rel(next, now, rel);
	line(f, "next run:", rel);
	int64_t ov;
	if (jint(task, "overlaps_skipped", &ov) && ov > 0) {
		buf_addf(&b, "%lld", (long long)ov);
		line(f, "overlaps:", b.data);
		buf_reset(&b);
	}
	task_events(task, def, &b);
	if (b.len)
		line(f, "events:", b.data);
	buf_release(&b);
	print_definition(f, def);
}
