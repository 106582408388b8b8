/* Task definitions from the config file and tasks.d (see taskset.h). */
#include "common/compat.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/taskset.h"
#include "common/buf.h"
#include "common/ini.h"
#include "common/util.h"
#include "remote/remotes.h"

#define DROPIN_FILE_MAX (1u << 20)

void taskset_init(struct taskset *ts)
{
	memset(ts, 0, sizeof(*ts));
}

void taskset_release(struct taskset *ts)
{
	for (size_t i = 0; i < ts->n; i++) {
		taskdef_release(&ts->v[i].def);
		free(ts->v[i].error);
	}
	free(ts->v);
	memset(ts, 0, sizeof(*ts));
}

const struct taskset_entry *taskset_find(const struct taskset *ts, const char *name)
{
	for (size_t i = 0; i < ts->n; i++)
		if (ts->v[i].def.name && !strcmp(ts->v[i].def.name, name))
			return &ts->v[i];
	return NULL;
}

static struct taskset_entry *add_entry(struct taskset *ts)
{
	ts->v = xrealloc(ts->v, (ts->n + 1) * sizeof(*ts->v));
	struct taskset_entry *e = &ts->v[ts->n++];
	memset(e, 0, sizeof(*e));
	return e;
}

/* One definition from its keys (a section, or a bare drop-in file). */
struct section {
	const char *name;
	const char *origin;
	unsigned line;
	const struct config_pair *pairs;
	size_t n;
};

static int kind_of(const struct section *s, struct dth_err *err, unsigned *line)
{
	int kind = TASKDEF_S3;
	for (size_t i = 0; i < s->n; i++) {
		if (strcmp(s->pairs[i].key, "type"))
			continue;
		*line = s->pairs[i].line;
		if (!strcmp(s->pairs[i].value, "s3"))
			kind = TASKDEF_S3;
		else if (!strcmp(s->pairs[i].value, "image"))
			kind = TASKDEF_IMAGE;
		else
			return err_set(err, -EINVAL, "type: expected s3 or image");
	}
	return kind;
}

static void add_section(struct taskset *ts, const struct section *s, int origin_kind)
{
	struct taskset_entry *e = add_entry(ts);
	struct dth_err err;
	err_clear(&err);
	unsigned line = s->line;
	int kind = kind_of(s, &err, &line);
	taskdef_init(&e->def, kind < 0 ? TASKDEF_S3 : kind);
	e->def.name = xstrdup(s->name);
	e->def.origin = origin_kind;
	struct buf where = BUF_INIT;
	buf_addf(&where, "%s:%u", s->origin, s->line);
	e->def.origin_where = buf_detach(&where, NULL);
	int rc = kind < 0 ? kind : 0;
	if (kind < 0)
		e->field = "type";
	for (size_t i = 0; !rc && i < s->n; i++) {
		if (!strcmp(s->pairs[i].key, "type"))
			continue;
		line = s->pairs[i].line;
		rc = taskdef_set(&e->def, s->pairs[i].key, s->pairs[i].value, &err);
		if (rc) {
			const struct taskdef_setting *st = taskdef_setting_find(s->pairs[i].key);
			e->field = st ? st->name : NULL;
		}
	}
	if (!rc) {
		line = s->line;
		rc = taskdef_check(&e->def, false, &err, &e->field);
	}
	if (rc) {
		struct buf m = BUF_INIT;
		buf_addf(&m, "%s:%u: task %s: %s", s->origin, line, s->name, err.message);
		e->error = buf_detach(&m, NULL);
	}
	if (!rc && taskset_find(ts, s->name) != e) {
		const struct taskset_entry *first = taskset_find(ts, s->name);
		struct buf m = BUF_INIT;
		buf_addf(&m, "%s:%u: task %s is defined twice (first at %s)", s->origin, s->line,
			 s->name, first->def.origin_where);
		e->error = buf_detach(&m, NULL);
	}
}

void taskset_add_config(struct taskset *ts, const struct config *cfg)
{
	size_t n;
	const struct config_section *const *secs = config_sections(cfg, "task", &n);
	for (size_t i = 0; i < n; i++) {
		struct section s = {secs[i]->name, secs[i]->origin, secs[i]->line, secs[i]->pairs,
				    secs[i]->n};
		add_section(ts, &s, TASKDEF_FROM_CONFIG);
	}
}

/* ---- drop-in files ---- */

struct dropin {
	struct section *secs;
	struct config_pair **pairs; /* per section, owned */
	size_t n;
	const char *origin;
	char *bad; /* a section header other than [task NAME] */
};

static int dropin_section(void *ctx, const char *section, unsigned line)
{
	struct dropin *d = ctx;
	const char *name = NULL;
	if (str_startswith(section, "task") && (section[4] == ' ' || section[4] == '\t')) {
		name = section + 5;
		while (*name == ' ' || *name == '\t')
			name++;
	}
	if (name && *name && d->n && !d->secs[0].line) {
		struct buf m = BUF_INIT;
		buf_addf(&m,
			 "%s:%u: bare keys and [task NAME] sections cannot be mixed in one file",
			 d->origin, line);
		d->bad = buf_detach(&m, NULL);
		return -EINVAL;
	}
	if (!name || !*name) {
		struct buf m = BUF_INIT;
		buf_addf(&m, "%s:%u: a drop-in file holds [task NAME] sections (or bare keys)",
			 d->origin, line);
		d->bad = buf_detach(&m, NULL);
		return -EINVAL;
	}
	d->secs = xrealloc(d->secs, (d->n + 1) * sizeof(*d->secs));
	d->pairs = xrealloc(d->pairs, (d->n + 1) * sizeof(*d->pairs));
	d->secs[d->n] = (struct section){xstrdup(name), d->origin, line, NULL, 0};
	d->pairs[d->n] = NULL;
	d->n++;
	return 0;
}

static int dropin_key(void *ctx, const char *section, const char *key, const char *value,
		      unsigned line)
{
	struct dropin *d = ctx;
	if (!*section && d->n == 0) { /* bare keys: one task named after the file */
		d->secs = xcalloc(1, sizeof(*d->secs));
		d->pairs = xcalloc(1, sizeof(*d->pairs));
		d->secs[0] = (struct section){NULL, d->origin, 0, NULL, 0};
		d->n = 1;
	}
	struct section *s = &d->secs[d->n - 1];
	d->pairs[d->n - 1] = xrealloc(d->pairs[d->n - 1], (s->n + 1) * sizeof(struct config_pair));
	struct config_pair *p = &d->pairs[d->n - 1][s->n++];
	p->key = xstrdup(key);
	p->value = xstrdup(value);
	p->line = line;
	s->pairs = d->pairs[d->n - 1];
	return 0;
}

/* "NAME" of ".../NAME.conf". */
static char *name_of_file(const char *path)
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	size_t n = strlen(base);
	if (n > 5 && !strcmp(base + n - 5, ".conf"))
		n -= 5;
	return xstrndup(base, n);
}

static void dropin_release(struct dropin *d)
{
	for (size_t i = 0; i < d->n; i++) {
		for (size_t j = 0; j < d->secs[i].n; j++) {
			free(d->pairs[i][j].key);
			free(d->pairs[i][j].value);
		}
		free(d->pairs[i]);
		free((char *)d->secs[i].name);
	}
	free(d->secs);
	free(d->pairs);
	free(d->bad);
}

static void add_error(struct taskset *ts, const char *name, const char *origin, int origin_kind,
		      const char *msg)
{
	struct taskset_entry *e = add_entry(ts);
	taskdef_init(&e->def, TASKDEF_S3);
	e->def.name = xstrdup(name);
	e->def.origin = origin_kind;
	e->def.origin_where = xstrdup(origin);
	e->error = xstrdup(msg);
}

void taskset_add_text(struct taskset *ts, const char *text, size_t len, const char *origin,
		      int origin_kind)
{
	struct dropin d = {.origin = origin};
	struct dth_err err;
	err_clear(&err);
	int rc = ini_parse_sections(text, len, origin, dropin_key, dropin_section, &d, &err);
	if (rc) {
		char *name = name_of_file(origin);
		add_error(ts, name, origin, origin_kind, d.bad ? d.bad : err.message);
		free(name);
	} else {
		for (size_t i = 0; i < d.n; i++) {
			if (!d.secs[i].name)
				d.secs[i].name = name_of_file(origin);
			if (!d.secs[i].line)
				d.secs[i].line = 1;
			add_section(ts, &d.secs[i], origin_kind);
		}
	}
	dropin_release(&d);
}

static int conf_filter(const struct dirent *e)
{
	size_t n = strlen(e->d_name);
	return e->d_name[0] != '.' && n > 5 && !strcmp(e->d_name + n - 5, ".conf");
}

/* Read a drop-in file (a regular file of at most DROPIN_FILE_MAX bytes). */
static int read_file(const char *path, struct buf *out, struct dth_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ELOOP)
		fd = open(path, O_RDONLY | O_CLOEXEC); /* a symlink to a file is fine */
	if (fd < 0)
		return err_set(err, -errno, "%s: %s", path, strerror(errno));
	struct stat st;
	int rc = 0;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode))
		rc = err_set(err, -EINVAL, "%s: not a regular file", path);
	else if (st.st_size > DROPIN_FILE_MAX)
		rc = err_set(err, -EFBIG, "%s: larger than 1 MiB", path);
	char chunk[8192];
	ssize_t got;
	while (!rc && (got = read(fd, chunk, sizeof(chunk))) != 0) {
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			rc = err_set(err, -errno, "%s: %s", path, strerror(errno));
		else if (out->len + (size_t)got > DROPIN_FILE_MAX)
			rc = err_set(err, -EFBIG, "%s: larger than 1 MiB", path);
		else
			buf_add(out, chunk, (size_t)got);
	}
	close(fd);
	return rc;
}

int taskset_add_dropin(struct taskset *ts, const char *dir, struct dth_err *err)
{
	struct dirent **names = NULL;
	int n = scandir(dir, &names, conf_filter, alphasort);
	if (n < 0)
		return errno == ENOENT ? 0 : err_set(err, -errno, "%s: %s", dir, strerror(errno));
	for (int i = 0; i < n; i++) {
		struct buf path = BUF_INIT, text = BUF_INIT;
		buf_addf(&path, "%s/%s", dir, names[i]->d_name);
		struct dth_err ferr;
		err_clear(&ferr);
		if (read_file(path.data, &text, &ferr)) {
			char *name = name_of_file(path.data);
			add_error(ts, name, path.data, TASKDEF_FROM_DROPIN, ferr.message);
			free(name);
		} else {
			taskset_add_text(ts, buf_str(&text), text.len, path.data,
					 TASKDEF_FROM_DROPIN);
		}
		buf_release(&path);
		buf_release(&text);
		free(names[i]);
	}
	free(names);
	return 0;
}

char *taskset_dropin_dir(const char *config_path)
{
	if (!config_path)
		return NULL;
	const char *slash = strrchr(config_path, '/');
	struct buf b = BUF_INIT;
	if (slash)
		buf_add(&b, config_path, (size_t)(slash - config_path));
	else
		buf_adds(&b, ".");
	buf_adds(&b, "/tasks.d");
	return buf_detach(&b, NULL);
}
