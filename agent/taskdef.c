/* Task definitions and the one table of their settings (see taskdef.h).
 *
 * The table is the only list of task keys: the command line flags of dth sync
 * and dth image sync, the config keys and the API fields are all read from
 * it. A value lives at the setting's offset in struct taskdef with the C type
 * its kind implies: bool (TD_BOOL), uint64_t (TD_COUNT, TD_SIZE), char *
 * (TD_WORD, TD_TEXT), and the custom settings name their own fields. */
#include "common/compat.h"

#include <errno.h>
#include <getopt.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "agent/filter.h"
#include "agent/image.h"
#include "agent/shard.h"
#include "agent/taskdef.h"
#include "common/buf.h"
#include "common/util.h"
#include "remote/remotes.h"

#define S3     TASKDEF_S3
#define IMG    TASKDEF_IMAGE
#define BOTH   (TASKDEF_S3 | TASKDEF_IMAGE)
#define OFF(f) offsetof(struct taskdef, f)
#define MIB    (1ULL << 20)
#define GIB    (1ULL << 30)

/* Longest source or destination a task record keeps (manifest/codec.h). */
#define SPEC_MAX 1023

static const struct taskdef_setting table[] = {
    {"source", BOTH, TD_REQUIRED, TD_TEXT, "REMOTE:BUCKET[/PREFIX]", NULL,
     "where to copy from (image tasks: REMOTE:)", NULL, 0, SPEC_MAX, OFF(source)},
    {"destination", BOTH, TD_REQUIRED, TD_TEXT, "REMOTE:BUCKET[/PREFIX]", NULL,
     "where to copy to (image tasks: REMOTE:[PREFIX])", NULL, 0, SPEC_MAX, OFF(destination)},
    {"schedule", BOTH, TD_AGENT, TD_TEXT, "SCHEDULE", "every 1h",
     "when the agent runs the task: once, every DURATION, or cron \"MIN HOUR DOM MON DOW\"", NULL,
     0, 256, OFF(schedule)},
    {"timezone", BOTH, TD_AGENT, TD_TEXT, "ZONE", "UTC",
     "time zone of a cron schedule (an IANA name such as Europe/Paris)", NULL, 0, 64,
     OFF(timezone)},
    {"enabled", BOTH, TD_AGENT, TD_BOOL, NULL, "true",
     "whether the agent starts the task (false: defined, but stopped)", NULL, 0, 0, OFF(enabled)},
    {"events", BOTH, TD_AGENT, TD_TEXT, "none|webhook|sqs:URL|inotify", "none",
     "change events that start a run of the changed keys at once: none, webhook (POST "
     "/api/v1/tasks/NAME/events: S3 event notifications, or registry notifications for image "
     "tasks), sqs:QUEUE_URL (S3 event notifications through SQS, with the source remote's "
     "credentials), or inotify (a local directory source: files closed after writing, moved "
     "or deleted anywhere in the tree); the schedule's rescans go on",
     NULL, 0, 2048, OFF(events)},
    {"concurrency", BOTH, TD_CLI, TD_COUNT, "N", "16|8",
     "parallel transfers and parts (image tasks: blob copies)", NULL, 1, 1024, OFF(concurrency)},
    {"small_concurrency", S3, TD_CLI, TD_CUSTOM, "N", "16 x concurrency, at most 256",
     "objects under 1 MiB and deletes in flight at once: round trips, not bandwidth, bound "
     "them; halved while a server throttles (an agent's tasks share its workers instead)",
     NULL, 1, 256, OFF(small_concurrency)},
    {"retries", BOTH, TD_CLI, TD_CUSTOM, "N", "7, or the remote's retries",
     "retries of a failed request, with backoff", NULL, 0, 100, OFF(retries)},
    {"multipart_threshold", S3, TD_CLI, TD_SIZE, "SIZE", "16M",
     "objects this large or larger go multipart", NULL, 5 * MIB, 5 * GIB, OFF(multipart_threshold)},
    {"part_size", S3, TD_CLI, TD_SIZE, "SIZE", "8M",
     "part size when the source layout is not repeated", NULL, 5 * MIB, 5 * GIB, OFF(part_size)},
    {"parallel_parts", S3, TD_CLI, TD_BOOL, NULL, "false",
     "copy single-part objects of multipart_threshold or more in parts, in parallel (their "
     "destination etag then differs from the source's)",
     NULL, 0, 0, OFF(parallel_parts)},
    {"memory_limit", S3, TD_CLI, TD_SIZE, "SIZE", "512M",
     "object bytes held in memory at once, all workers together; larger bodies are streamed", NULL,
     16 * MIB, 1ULL << 40, OFF(memory_limit)},
    {"metadata", S3, TD_CLI, TD_BOOL, NULL, "true", "copy headers, user metadata and tags", NULL, 0,
     0, OFF(metadata)},
    {"storage_class", S3, TD_CLI, TD_TEXT, "CLASS", NULL, "storage class at the destination", NULL,
     0, 64, OFF(storage_class)},
    {"acl", S3, TD_CLI, TD_TEXT, "ACL", NULL, "canned ACL at the destination", NULL, 0, 64,
     OFF(acl)},
    {"sse", S3, TD_CLI, TD_WORD, "AES256|aws:kms", NULL,
     "server-side encryption at the destination", "AES256|aws:kms", 0, 0, OFF(sse)},
    {"sse_kms_key_id", S3, TD_CLI, TD_TEXT, "ID", NULL, "KMS key for sse aws:kms", NULL, 0, 2048,
     OFF(sse_kms_key_id)},
    {"include", S3, TD_CLI, TD_CUSTOM, "GLOB", NULL, "copy only keys matching GLOB (repeatable)",
     NULL, 0, 1024, OFF(patterns)},
    {"exclude", S3, TD_CLI, TD_CUSTOM, "GLOB", NULL, "skip keys matching GLOB (repeatable)", NULL,
     0, 1024, OFF(patterns)},
    {"delete", S3, TD_CLI, TD_BOOL, NULL, "false",
     "delete destination objects whose source is gone", NULL, 0, 0, OFF(delete_gone)},
    {"max_delete", S3, TD_CLI, TD_CUSTOM, "N|P%", NULL,
     "with delete: delete nothing when more than N objects (or P% of the destination's) "
     "would go; without it, nothing is deleted when the source lists no objects",
     NULL, 0, 0, OFF(max_delete)},
    {"shard", S3, TD_CLI, TD_TEXT, "I/N|auto|auto/N", NULL,
     "copy only shard I of N of the key space (0 <= I < N <= 4096): each of N processes runs "
     "one shard, with its own manifest records; auto takes I from the scheduler's environment "
     "(Slurm arrays, Kubernetes Indexed Jobs, AWS Batch arrays), auto/N also N",
     NULL, 0, 32, OFF(shard)},
    {"shard_plan", S3, TD_CLI, TD_TEXT, "FILE", NULL,
     "with shard: the cut keys of the shards, from --make-shard-plan (default: the even cut "
     "over printable key bytes, for keys spread evenly)",
     NULL, 0, 4096, OFF(shard_plan)},
    {"server_side_copy", S3, TD_CLI, TD_BOOL, NULL, "true",
     "copy server-side when both ends are one endpoint", NULL, 0, 0, OFF(server_side_copy)},
    {"requester_pays", S3, TD_CLI, TD_BOOL, NULL, "false",
     "read the source as a requester-pays bucket (x-amz-request-payer: requester, the requests "
     "billed to us), as the source remote's requester_pays does",
     NULL, 0, 0, OFF(requester_pays)},
    {"notify", BOTH, TD_AGENT, TD_LIST, "webhook:URL|sns:TOPIC_ARN", NULL,
     "where to send a notification when a run ends, fails or has failed objects, and when "
     "events pile up: webhook:URL (a JSON POST signed with X-Dth-Signature) or sns:TOPIC_ARN "
     "(repeatable)",
     NULL, 0, 2048, OFF(notify)},
    {"notify_remote", BOTH, TD_AGENT, TD_TEXT, "REMOTE", NULL,
     "the remote whose credentials (and endpoint, unless it is AWS's) publish to SNS topics; "
     "default: the destination's",
     NULL, 0, 256, OFF(notify_remote)},
    {"notify_backlog", BOTH, TD_AGENT, TD_COUNT, "N", "10000",
     "events waiting for a run that make a notification (once, until the backlog halves)", NULL, 1,
     1000000000, OFF(notify_backlog)},
    {"images", IMG, TD_CLI, TD_LIST, "LIST", NULL,
     "images to copy: repo[:tag],... (a repo without a tag: every tag; repeatable)", NULL, 0, 4096,
     OFF(images)},
    {"all", IMG, TD_CLI, TD_BOOL, NULL, "false",
     "every repository of the source (its catalog), each with every tag", NULL, 0, 0, OFF(all)},
    {"tags", IMG, TD_CLI, TD_TEXT, "REGEX", NULL,
     "of repos given without a tag (and of all), only tags the POSIX extended REGEX matches "
     "whole",
     NULL, 0, 1024, OFF(tags)},
    {"platform", IMG, TD_CLI, TD_TEXT, "OS/ARCH[/VARIANT][,...]", NULL,
     "copy only those platforms of an index", NULL, 0, 1024, OFF(platform)},
};

#define N_SETTINGS ARRAY_SIZE(table)

const struct taskdef_setting *taskdef_settings(size_t *n)
{
	*n = N_SETTINGS;
	return table;
}

static bool name_eq(const char *a, const char *b)
{
	for (; *a && *b; a++, b++) {
		char x = *a == '-' ? '_' : *a, y = *b == '-' ? '_' : *b;
		if (x != y)
			return false;
	}
	return !*a && !*b;
}

const struct taskdef_setting *taskdef_setting_find(const char *name)
{
	for (size_t i = 0; i < N_SETTINGS; i++)
		if (name_eq(table[i].name, name))
			return &table[i];
	return NULL;
}

const char *taskdef_kind_name(int kind)
{
	return kind == TASKDEF_S3 ? "s3" : kind == TASKDEF_IMAGE ? "image" : NULL;
}

const char *taskdef_origin_name(int origin)
{
	static const char *const names[] = {"cli", "config", "dropin", "api"};
	return origin >= 0 && origin < (int)ARRAY_SIZE(names) ? names[origin] : "?";
}

void taskdef_init(struct taskdef *t, int kind)
{
	memset(t, 0, sizeof(*t));
	t->kind = kind;
	t->enabled = true;
	t->concurrency = kind == TASKDEF_IMAGE ? 8 : 16;
	t->retries = -1;
	t->small_concurrency = -1;
	t->multipart_threshold = 16 * MIB;
	t->part_size = 8 * MIB;
	t->memory_limit = 512 * MIB;
	t->metadata = true;
	t->server_side_copy = true;
	t->max_delete = -1;
	t->max_delete_percent = -1;
	t->notify_backlog = 10000;
}

static void free_list(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

_Static_assert(offsetof(struct taskdef, n_images) ==
		   offsetof(struct taskdef, images) + sizeof(char **),
	       "a list's count follows it");
_Static_assert(offsetof(struct taskdef, n_notify) ==
		   offsetof(struct taskdef, notify) + sizeof(char **),
	       "a list's count follows it");

/* The items and count of a TD_LIST setting. */
static char ***list_items(const struct taskdef *t, const struct taskdef_setting *s)
{
	return (char ***)((char *)t + s->off);
}

static size_t *list_count(const struct taskdef *t, const struct taskdef_setting *s)
{
	return (size_t *)((char *)t + s->off + sizeof(char **));
}

void taskdef_release(struct taskdef *t)
{
	free(t->name);
	for (size_t i = 0; i < N_SETTINGS; i++) {
		const struct taskdef_setting *s = &table[i];
		if (s->type == TD_WORD || s->type == TD_TEXT)
			free(*(char **)((char *)t + s->off));
		if (s->type == TD_LIST)
			free_list(*list_items(t, s), *list_count(t, s));
	}
	for (size_t i = 0; i < t->n_patterns; i++)
		free(t->patterns[i].glob);
	free(t->patterns);
	free(t->origin_where);
	memset(t, 0, sizeof(*t));
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

void taskdef_copy(struct taskdef *dst, const struct taskdef *src)
{
	*dst = *src;
	dst->name = dup_or_null(src->name);
	for (size_t i = 0; i < N_SETTINGS; i++) {
		const struct taskdef_setting *s = &table[i];
		if (s->type == TD_WORD || s->type == TD_TEXT) {
			char **p = (char **)((char *)dst + s->off);
			*p = dup_or_null(*p);
		}
		if (s->type == TD_LIST) {
			size_t n = *list_count(src, s);
			char **from = *list_items(src, s),
			     **to = n ? xcalloc(n, sizeof(char *)) : NULL;
			for (size_t k = 0; k < n; k++)
				to[k] = xstrdup(from[k]);
			*list_items(dst, s) = to;
		}
	}
	dst->patterns = src->n_patterns ? xcalloc(src->n_patterns, sizeof(*dst->patterns)) : NULL;
	for (size_t i = 0; i < src->n_patterns; i++) {
		dst->patterns[i].include = src->patterns[i].include;
		dst->patterns[i].glob = xstrdup(src->patterns[i].glob);
	}
	dst->origin_where = dup_or_null(src->origin_where);
}

/* ---- setting values from text ---- */

/* Text fit for a setting: valid UTF-8 without control characters. */
static bool clean_text(const char *v)
{
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return false;
	return utf8_valid(v, strlen(v));
}

static int set_text(char **slot, const struct taskdef_setting *s, const char *v,
		    struct dth_err *err)
{
	size_t len = strlen(v);
	if (len > s->max)
		return err_set(err, -ERANGE, "%s: %zu bytes, at most %llu", s->name, len,
			       (unsigned long long)s->max);
	if (!clean_text(v))
		return err_set(err, -EINVAL, "%s: not UTF-8 text without control characters",
			       s->name);
	free(*slot);
	*slot = len ? xstrdup(v) : NULL;
	return 0;
}

static int set_word(char **slot, const struct taskdef_setting *s, const char *v,
		    struct dth_err *err)
{
	const char *w = s->words;
	size_t len = strlen(v);
	while (*w) {
		const char *bar = strchr(w, '|');
		size_t wl = bar ? (size_t)(bar - w) : strlen(w);
		if (wl == len && !memcmp(w, v, len)) {
			free(*slot);
			*slot = xstrdup(v);
			return 0;
		}
		w += wl + (bar ? 1 : 0);
	}
	return err_set(err, -EINVAL, "%s: expected one of %s", s->name, s->words);
}

static int set_number(uint64_t *slot, const struct taskdef_setting *s, const char *v,
		      struct dth_err *err)
{
	uint64_t n;
	int rc = s->type == TD_SIZE ? parse_size(v, &n) : parse_u64(v, &n);
	if (rc)
		return err_set(err, -EINVAL, "%s: expected %s", s->name,
			       s->type == TD_SIZE ? "a size such as 8M or 1G" : "a whole number");
	if (n < s->min || n > s->max)
		return err_set(err, -ERANGE, "%s: %llu is out of range (%llu to %llu)", s->name,
			       (unsigned long long)n, (unsigned long long)s->min,
			       (unsigned long long)s->max);
	*slot = n;
	return 0;
}

/* "N" (objects) or "P%" (of the destination's objects, 0..100). */
static int set_max_delete(struct taskdef *t, const char *v, struct dth_err *err)
{
	size_t len = strlen(v);
	uint64_t n;
	if (len > 1 && len < 8 && v[len - 1] == '%') {
		char num[8];
		memcpy(num, v, len - 1);
		num[len - 1] = '\0';
		if (parse_u64(num, &n) || n > 100)
			return err_set(err, -ERANGE, "max_delete: a percentage is 0%% to 100%%");
		t->max_delete_percent = (int)n;
		t->max_delete = -1;
		return 0;
	}
	if (parse_u64(v, &n) || n > INT64_MAX)
		return err_set(err, -EINVAL, "max_delete: expected N or P%%");
	t->max_delete = (int64_t)n;
	t->max_delete_percent = -1;
	return 0;
}

static int add_pattern(struct taskdef *t, bool include, const char *v, struct dth_err *err)
{
	const char *key = include ? "include" : "exclude";
	if (!*v || strlen(v) > 1024 || !clean_text(v))
		return err_set(err, -EINVAL, "%s: a pattern is 1 to 1024 bytes of text", key);
	struct filter *f = filter_new();
	int rc = filter_add(f, include, v, err);
	filter_free(f);
	if (rc) {
		err_prefix(err, "%s", key);
		return rc;
	}
	t->patterns = xrealloc(t->patterns, (t->n_patterns + 1) * sizeof(*t->patterns));
	t->patterns[t->n_patterns].include = include;
	t->patterns[t->n_patterns].glob = xstrdup(v);
	t->n_patterns++;
	return 0;
}

/* images: "repo[:tag],..." (commas and newlines separate; blanks and
 * entries starting with # ignored). */
/* Append the comma- or newline-separated items of v to list setting s
 * (blanks trimmed, empty items and '#' comments skipped). */
static int add_list(struct taskdef *t, const struct taskdef_setting *s, const char *v,
		    struct dth_err *err)
{
	char ***items = list_items(t, s);
	size_t *n_items = list_count(t, s);
	const char *p = v;
	while (*p) {
		size_t n = strcspn(p, ",\n");
		const char *q = p, *e = p + n;
		while (q < e && (*q == ' ' || *q == '\t' || *q == '\r'))
			q++;
		while (e > q && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
			e--;
		if (e > q && *q != '#') {
			char *item = xstrndup(q, (size_t)(e - q));
			if (strlen(item) > s->max || !clean_text(item)) {
				free(item);
				return err_set(err, -EINVAL,
					       "%s: an item is 1 to %llu bytes of text", s->name,
					       (unsigned long long)s->max);
			}
			*items = xrealloc(*items, (*n_items + 1) * sizeof(char *));
			(*items)[(*n_items)++] = item;
		}
		p += n + (p[n] ? 1 : 0);
	}
	return 0;
}

static int set_custom(struct taskdef *t, const struct taskdef_setting *s, const char *v,
		      struct dth_err *err)
{
	if (!strcmp(s->name, "retries") || !strcmp(s->name, "small_concurrency")) {
		uint64_t n;
		int rc = set_number(&n, s, v, err);
		if (!rc)
			*(int64_t *)((char *)t + s->off) = (int64_t)n;
		return rc;
	}
	if (!strcmp(s->name, "max_delete"))
		return set_max_delete(t, v, err);
	return add_pattern(t, !strcmp(s->name, "include"), v, err);
}

int taskdef_set(struct taskdef *t, const char *key, const char *value, struct dth_err *err)
{
	const struct taskdef_setting *s = taskdef_setting_find(key);
	if (!s)
		return err_set(err, -ENOENT, "unknown task key '%.64s'", key);
	if (!(s->kinds & (unsigned)t->kind))
		return err_set(err, -EPERM, "%s does not apply to %s tasks", s->name,
			       taskdef_kind_name(t->kind));
	void *slot = (char *)t + s->off;
	int rc;
	switch (s->type) {
	case TD_BOOL: {
		bool b;
		rc = parse_bool(value, &b);
		if (rc)
			return err_set(err, -EINVAL, "%s: expected true or false", s->name);
		*(bool *)slot = b;
		break;
	}
	case TD_COUNT:
	case TD_SIZE:
		rc = set_number(slot, s, value, err);
		break;
	case TD_WORD:
		rc = set_word(slot, s, value, err);
		break;
	case TD_TEXT:
		rc = set_text(slot, s, value, err);
		break;
	case TD_LIST:
		rc = add_list(t, s, value, err);
		break;
	default:
		rc = set_custom(t, s, value, err);
		break;
	}
	if (!rc)
		t->given |= 1ULL << (s - table);
	return rc;
}

/* ---- the whole definition ---- */

static int check_name(const char *name, bool flags, struct dth_err *err)
{
	if (!name || !*name)
		return err_set(err, -EINVAL, "a task needs a name");
	if (strlen(name) > TASKDEF_NAME_MAX)
		return err_set(err, -EINVAL,
			       "the task name is %zu bytes; a task name has at most %d%s",
			       strlen(name), TASKDEF_NAME_MAX,
			       flags ? ": choose a shorter one with --task NAME" : "");
	if (!clean_text(name))
		return err_set(err, -EINVAL,
			       "a task name is UTF-8 text without control characters");
	return 0;
}

/* REMOTE: (prefix_ok: REMOTE:[PREFIX]) for image tasks. */
static int check_registry_spec(const char *key, const char *v, bool prefix_ok, struct dth_err *err)
{
	const char *colon = strchr(v, ':');
	if (!colon || colon == v || (!prefix_ok && colon[1]))
		return err_set(err, -EINVAL, "%s: expected %s", key,
			       prefix_ok ? "REMOTE:[PREFIX]" : "REMOTE:");
	return 0;
}

static int check_s3_spec(const char *key, const char *v, struct dth_err *err)
{
	if (remote_spec_is_local(v)) {
		if (strcmp(key, "source") != 0)
			return err_set(err, -EINVAL,
				       "%s: a local directory can only be a source; expected "
				       "REMOTE:BUCKET[/PREFIX]",
				       key);
		if (v[0] != '/')
			return err_set(err, -EINVAL,
				       "%s: a local directory is given as an absolute path", key);
		return 0;
	}
	char *r = NULL, *b = NULL, *p = NULL;
	int rc = remote_parse_path(v, &r, &b, &p, err);
	free(r);
	free(b);
	free(p);
	if (rc)
		err_prefix(err, "%s", key);
	return rc;
}

/* A key as the user wrote it: "max_delete", or "--max-delete" on the
 * command line. */
static const char *kname(const char *key, bool flags, char out[64])
{
	if (!flags)
		return key;
	size_t n = 0;
	out[n++] = '-';
	out[n++] = '-';
	for (const char *p = key; *p && n < 63; p++)
		out[n++] = *p == '_' ? '-' : *p;
	out[n] = '\0';
	return out;
}

/* ---- the cost of compiling a tags regex ----
 * glibc's regcomp expands repetitions into copies of what they repeat, so a
 * short hostile pattern can take gigabytes: "v++++...+" (a repetition of a
 * repetition: doubles with each, and undefined in POSIX anyway) or nested
 * intervals "(((a{100}){100}){100})" (a million copies). Before compiling,
 * the copies are counted: each atom is 1, a group the sum of what it holds,
 * a repeated atom or group its size times the interval's upper bound. */
#define TAGS_RE_COST_MAX 20000
#define TAGS_RE_DEPTH	 32

struct re_cost {
	const char *p;
	uint64_t stack[TAGS_RE_DEPTH + 1]; /* the size of each open group so far */
	int depth;
	uint64_t last; /* the size of the atom or group just read (0: none) */
	bool quantified;
};

/* The upper bound of an interval at s ("{n}", "{n,}", "{n,m}"); *end after it. */
static uint64_t interval_max(const char *s, const char **end)
{
	char *e;
	unsigned long n = strtoul(s + 1, &e, 10), m = n;
	if (*e == ',')
		m = e[1] == '}' ? n + 1 : strtoul(e + 1, &e, 10);
	if (*e == ',')
		e++;
	*end = *e == '}' ? e + 1 : e;
	return m ? m : 1;
}

/* Skip a bracket expression at p ('['); the character after it. */
static const char *bracket_end(const char *p)
{
	p++;
	if (*p == '^')
		p++;
	if (*p == ']')
		p++;
	while (*p && *p != ']') {
		if (*p == '[' && (p[1] == ':' || p[1] == '.' || p[1] == '=')) {
			const char *q = strchr(p + 2, p[1]);
			p = q && q[1] == ']' ? q + 2 : p + 1;
		} else {
			p++;
		}
	}
	return *p ? p + 1 : p;
}

static void re_atom(struct re_cost *c, uint64_t size)
{
	c->stack[c->depth] += size;
	c->last = size;
	c->quantified = false;
}

/* One step of the scan; a reason to refuse, or NULL. */
static const char *re_step(struct re_cost *c)
{
	char ch = *c->p;
	if (ch == '*' || ch == '+' || ch == '?' || ch == '{') {
		if (c->quantified)
			return "a repetition of a repetition (such as '++')";
		uint64_t times = 2;
		if (ch == '{')
			times = interval_max(c->p, &c->p);
		else
			c->p++;
		if (times > TAGS_RE_COST_MAX)
			times = TAGS_RE_COST_MAX + 1;
		if (c->last) {
			uint64_t more = c->last * (times > 1 ? times - 1 : 0);
			c->stack[c->depth] += more;
			c->last += more;
		}
		c->quantified = true;
		return NULL;
	}
	if (ch == '(') {
		if (c->depth == TAGS_RE_DEPTH)
			return "groups nested too deep";
		c->stack[++c->depth] = 0;
		c->last = 0;
		c->quantified = false;
		c->p++;
		return NULL;
	}
	if (ch == ')' && c->depth > 0) {
		uint64_t size = c->stack[c->depth--] + 1;
		c->p++;
		re_atom(c, size);
		return NULL;
	}
	if (ch == '|' || ch == '^' || ch == '$') {
		c->p++;
		c->last = 0;
		c->quantified = false;
		return NULL;
	}
	if (ch == '[')
		c->p = bracket_end(c->p);
	else
		c->p += ch == '\\' && c->p[1] ? 2 : 1;
	re_atom(c, 1);
	return NULL;
}

/* NULL when re is cheap to compile, else why not. */
static const char *re_too_costly(const char *re)
{
	struct re_cost c;
	memset(&c, 0, sizeof(c));
	c.p = re;
	while (*c.p) {
		const char *why = re_step(&c);
		if (why)
			return why;
		for (int i = 0; i <= c.depth; i++)
			if (c.stack[i] > TAGS_RE_COST_MAX)
				return "repetitions that expand to too large a pattern";
	}
	return NULL;
}

static int check_tags(const char *re, bool flags, struct dth_err *err)
{
	char k[64];
	const char *why = re_too_costly(re);
	if (why)
		return err_set(err, -EINVAL, "%s: regex '%.64s' refused: %s",
			       kname("tags", flags, k), re, why);
	regex_t plain;
	int rc = regcomp(&plain, re, REG_EXTENDED | REG_NOSUB);
	if (rc) {
		char msg[128];
		regerror(rc, &plain, msg, sizeof(msg));
		return err_set(err, -EINVAL, "%s: bad regex '%.64s': %s", kname("tags", flags, k),
			       re, msg);
	}
	regfree(&plain);
	return 0;
}

static int check_image(const struct taskdef *t, bool flags, struct dth_err *err, const char **field)
{
	char a[64], b[64];
	if (t->all && t->n_images) {
		*field = "all";
		return err_set(err, -EINVAL, "give %s or %s, not both", kname("images", flags, a),
			       kname("all", flags, b));
	}
	if (!t->all && !t->n_images) {
		*field = "images";
		return err_set(err, -EINVAL, "an image task needs %s or %s",
			       kname("images", flags, a), kname("all", flags, b));
	}
	if (t->tags && check_tags(t->tags, flags, err)) {
		*field = "tags";
		return -EINVAL;
	}
	if (t->platform) {
		struct image_platform *pl = NULL;
		size_t n = 0;
		int rc = image_parse_platforms(t->platform, &pl, &n, err);
		free(pl);
		if (rc) {
			*field = "platform";
			err_prefix(err, "%s", kname("platform", flags, a));
			return -EINVAL;
		}
	}
	return 0;
}

static int check_s3(const struct taskdef *t, bool flags, struct dth_err *err, const char **field)
{
	char a[64], b[64];
	if (t->sse_kms_key_id && (!t->sse || strcmp(t->sse, "aws:kms"))) {
		*field = "sse_kms_key_id";
		return err_set(err, -EINVAL, "%s needs %s aws:kms",
			       kname("sse_kms_key_id", flags, a), kname("sse", flags, b));
	}
	if ((t->max_delete >= 0 || t->max_delete_percent >= 0) && !t->delete_gone) {
		*field = "max_delete";
		return err_set(err, -EINVAL, "%s needs %s", kname("max_delete", flags, a),
			       kname("delete", flags, b));
	}
	if (t->shard_plan && !t->shard) {
		*field = "shard_plan";
		return err_set(err, -EINVAL, "%s needs %s", kname("shard_plan", flags, a),
			       kname("shard", flags, b));
	}
	if (t->shard && shard_spec_check(t->shard, err)) {
		*field = "shard";
		err_prefix(err, "%s", kname("shard", flags, a));
		return -EINVAL;
	}
	return 0;
}

int taskdef_events(const struct taskdef *t, const char **queue_url)
{
	const char *e = t->events;
	if (queue_url)
		*queue_url = NULL;
	if (!e || !strcmp(e, "none"))
		return TASKDEF_EVENTS_NONE;
	if (!strcmp(e, "webhook"))
		return TASKDEF_EVENTS_WEBHOOK;
	if (!strncmp(e, "sqs:", 4)) {
		if (queue_url)
			*queue_url = e + 4;
		return TASKDEF_EVENTS_SQS;
	}
	if (!strcmp(e, "inotify"))
		return TASKDEF_EVENTS_INOTIFY;
	return -EINVAL;
}

static int check_events(const struct taskdef *t, struct dth_err *err)
{
	int k = taskdef_events(t, NULL);
	if (k < 0)
		return err_set(err, -EINVAL,
			       "events: expected none, webhook, sqs:QUEUE_URL or inotify");
	bool local = t->kind == TASKDEF_S3 && remote_spec_is_local(t->source);
	if (k == TASKDEF_EVENTS_INOTIFY && !local)
		return err_set(err, -EINVAL,
			       "events: inotify watches a local directory: the source must be one "
			       "(an absolute path)");
	if (local && k != TASKDEF_EVENTS_NONE && k != TASKDEF_EVENTS_INOTIFY)
		return err_set(err, -EINVAL,
			       "events: a local directory's changes come from inotify (events = "
			       "inotify), not from %s",
			       k == TASKDEF_EVENTS_SQS ? "an SQS queue" : "a webhook");
	if (k != TASKDEF_EVENTS_SQS)
		return 0;
	if (t->kind != TASKDEF_S3)
		return err_set(err, -EINVAL, "events: sqs: is for S3 tasks (image tasks: webhook)");
	const char *url = t->events + 4;
	if (strncmp(url, "https://", 8) && strncmp(url, "http://", 7))
		return err_set(
		    err, -EINVAL,
		    "events: sqs: wants the queue's URL (https://sqs.REGION.amazonaws.com/"
		    "ACCOUNT/QUEUE)");
	return 0;
}

static int check_notify(const struct taskdef *t, struct dth_err *err)
{
	for (size_t i = 0; i < t->n_notify; i++) {
		const char *v = t->notify[i];
		if (!strncmp(v, "webhook:", 8) &&
		    (!strncmp(v + 8, "https://", 8) || !strncmp(v + 8, "http://", 7)))
			continue;
		if (!strncmp(v, "sns:arn:", 8) && strstr(v, ":sns:"))
			continue;
		return err_set(err, -EINVAL,
			       "notify: item %zu is neither webhook:http(s)://... nor "
			       "sns:arn:PARTITION:sns:REGION:ACCOUNT:TOPIC",
			       i + 1);
	}
	return 0;
}

int taskdef_check(const struct taskdef *t, bool flags, struct dth_err *err, const char **field)
{
	const char *dummy;
	if (!field)
		field = &dummy;
	*field = NULL;
	if (check_name(t->name, flags, err)) {
		*field = "name";
		return -EINVAL;
	}
	if (!taskdef_kind_name(t->kind)) {
		*field = "type";
		return err_set(err, -EINVAL, "type: expected s3 or image");
	}
	if (!t->source || !t->destination) {
		*field = t->source ? "destination" : "source";
		return err_set(err, -EINVAL, "a task needs a %s", *field);
	}
	int rc;
	if (t->kind == TASKDEF_IMAGE) {
		*field = "source";
		rc = check_registry_spec("source", t->source, false, err);
		if (!rc) {
			*field = "destination";
			rc = check_registry_spec("destination", t->destination, true, err);
		}
		if (!rc) {
			*field = NULL;
			rc = check_image(t, flags, err, field);
		}
	} else {
		*field = "source";
		rc = check_s3_spec("source", t->source, err);
		if (!rc) {
			*field = "destination";
			rc = check_s3_spec("destination", t->destination, err);
		}
		if (!rc) {
			*field = NULL;
			rc = check_s3(t, flags, err, field);
		}
	}
	if (!rc && (rc = check_events(t, err)))
		*field = "events";
	if (!rc && (rc = check_notify(t, err)))
		*field = "notify";
	if (!rc)
		*field = NULL;
	return rc ? -EINVAL : 0;
}

/* ---- JSON ---- */

static json_t *text_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *patterns_json(const struct taskdef *t, bool include)
{
	json_t *a = json_array();
	for (size_t i = 0; i < t->n_patterns; i++)
		if (t->patterns[i].include == include)
			json_array_append_new(a, json_string(t->patterns[i].glob));
	return a;
}

static json_t *custom_json(const struct taskdef *t, const struct taskdef_setting *s)
{
	if (!strcmp(s->name, "retries") || !strcmp(s->name, "small_concurrency")) {
		int64_t n = *(const int64_t *)((const char *)t + s->off);
		return n < 0 ? json_null() : json_integer(n);
	}
	if (!strcmp(s->name, "max_delete")) {
		char v[32];
		if (t->max_delete_percent >= 0)
			msg_snprintf(v, sizeof(v), "%d%%", t->max_delete_percent);
		else if (t->max_delete >= 0)
			msg_snprintf(v, sizeof(v), "%lld", (long long)t->max_delete);
		else
			return json_null();
		return json_string(v);
	}
	return patterns_json(t, !strcmp(s->name, "include"));
}

static json_t *setting_json(const struct taskdef *t, const struct taskdef_setting *s)
{
	const void *slot = (const char *)t + s->off;
	switch (s->type) {
	case TD_BOOL:
		return json_boolean(*(const bool *)slot);
	case TD_COUNT:
	case TD_SIZE:
		return json_integer((json_int_t) * (const uint64_t *)slot);
	case TD_WORD:
	case TD_TEXT:
		return text_or_null(*(char *const *)slot);
	case TD_LIST: {
		json_t *a = json_array();
		for (size_t i = 0; i < *list_count(t, s); i++)
			json_array_append_new(a, json_string((*list_items(t, s))[i]));
		return a;
	}
	default:
		return custom_json(t, s);
	}
}

json_t *taskdef_to_json(const struct taskdef *t)
{
	json_t *o = json_object();
	json_object_set_new(o, "name", text_or_null(t->name));
	json_object_set_new(o, "type", text_or_null(taskdef_kind_name(t->kind)));
	for (size_t i = 0; i < N_SETTINGS; i++)
		if (table[i].kinds & (unsigned)t->kind)
			json_object_set_new(o, table[i].name, setting_json(t, &table[i]));
	return o;
}

/* One JSON value of a setting as text (appended to out): 0, or -EINVAL. */
static int json_text(const json_t *v, struct buf *out)
{
	char num[32];
	switch (json_typeof(v)) {
	case JSON_STRING:
		buf_add(out, json_string_value(v), json_string_length(v));
		return memchr(json_string_value(v), 0, json_string_length(v)) ? -EINVAL : 0;
	case JSON_INTEGER:
		if (json_integer_value(v) < 0)
			return -EINVAL;
		msg_snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
		buf_adds(out, num);
		return 0;
	case JSON_TRUE:
		buf_adds(out, "true");
		return 0;
	case JSON_FALSE:
		buf_adds(out, "false");
		return 0;
	default:
		return -EINVAL;
	}
}

/* A list setting given as an array replaces; each element is one value. */
static int set_json_value(struct taskdef *t, const char *key, const json_t *v, struct dth_err *err)
{
	struct buf text = BUF_INIT;
	int rc = 0;
	if (json_is_array(v)) {
		const struct taskdef_setting *s = taskdef_setting_find(key);
		if (s && s->type != TD_LIST && s->type != TD_CUSTOM)
			rc = err_set(err, -EINVAL, "%s: expected a single value", s->name);
		size_t i;
		const json_t *e;
		json_array_foreach(v, i, e)
		{
			if (rc)
				break;
			buf_reset(&text);
			if (json_text(e, &text))
				rc = err_set(err, -EINVAL, "%.64s: expected strings", key);
			else
				rc = taskdef_set(t, key, text.data, err);
		}
	} else if (json_is_null(v)) {
		rc = 0; /* the default */
	} else if (json_text(v, &text)) {
		rc = err_set(err, -EINVAL, "%.64s: expected a string, number or boolean", key);
	} else {
		rc = taskdef_set(t, key, buf_str(&text), err);
	}
	buf_release(&text);
	return rc;
}

static int json_kind(const json_t *obj, struct dth_err *err)
{
	const json_t *type = json_object_get(obj, "type");
	if (!type)
		return TASKDEF_S3;
	const char *s = json_string_value(type);
	if (s && !strcmp(s, "s3"))
		return TASKDEF_S3;
	if (s && !strcmp(s, "image"))
		return TASKDEF_IMAGE;
	err_set(err, -EINVAL, "type: expected \"s3\" or \"image\"");
	return -EINVAL;
}

int taskdef_from_json(const json_t *obj, struct taskdef *t, struct dth_err *err, const char **field)
{
	const char *dummy;
	if (!field)
		field = &dummy;
	*field = NULL;
	taskdef_init(t, TASKDEF_S3);
	if (!json_is_object(obj))
		return err_set(err, -EINVAL, "a task is a JSON object");
	int kind = json_kind(obj, err);
	if (kind < 0) {
		*field = "type";
		return kind;
	}
	taskdef_init(t, kind);
	const char *key;
	const json_t *v;
	json_object_foreach((json_t *)obj, key, v)
	{
		int rc;
		if (!strcmp(key, "type"))
			continue;
		if (!strcmp(key, "name")) {
			rc = json_is_string(v) ? check_name(json_string_value(v), false, err)
					       : err_set(err, -EINVAL, "name: expected a string");
			if (!rc) {
				free(t->name);
				t->name = xstrdup(json_string_value(v));
			}
		} else {
			rc = set_json_value(t, key, v, err);
		}
		if (rc) {
			const struct taskdef_setting *s = taskdef_setting_find(key);
			*field = s ? s->name : !strcmp(key, "name") ? "name" : key;
			return rc;
		}
	}
	return 0;
}

/* ---- command-line flags ---- */

static bool on_cli(const struct taskdef_setting *s, int kind)
{
	return (s->flags & TD_CLI) && (s->kinds & (unsigned)kind);
}

size_t taskdef_cli_count(int kind)
{
	size_t n = 0;
	for (size_t i = 0; i < N_SETTINGS; i++)
		if (on_cli(&table[i], kind))
			n += table[i].type == TD_BOOL ? 2 : 1;
	return n;
}

/* Flag names live as long as the program: "--part-size" from "part_size". */
static const char *flag_name(size_t i, bool no)
{
	static char names[N_SETTINGS][2][48];
	char *out = names[i][no];
	if (!out[0]) {
		struct buf b = BUF_INIT;
		if (no)
			buf_adds(&b, "no-");
		for (const char *p = table[i].name; *p; p++)
			buf_addch(&b, *p == '_' ? '-' : *p);
		str_copy_fit(out, b.data, sizeof(names[i][no]));
		buf_release(&b);
	}
	return out;
}

size_t taskdef_cli_options(int kind, int base, struct option *out)
{
	size_t n = 0;
	for (size_t i = 0; i < N_SETTINGS; i++) {
		if (!on_cli(&table[i], kind))
			continue;
		bool flag = table[i].type == TD_BOOL;
		for (int no = 0; no <= (flag ? 1 : 0); no++) {
			out[n].name = flag_name(i, no);
			out[n].has_arg = flag ? no_argument : required_argument;
			out[n].flag = NULL;
			out[n].val = base + 2 * (int)i + no;
			n++;
		}
	}
	return n;
}

int taskdef_cli_apply(struct taskdef *t, int base, int val, const char *arg, struct dth_err *err)
{
	if (val < base || val >= base + 2 * (int)N_SETTINGS)
		return 0;
	size_t i = (size_t)(val - base) / 2;
	bool no = (val - base) % 2;
	if (!on_cli(&table[i], t->kind))
		return 0;
	int rc;
	if (table[i].type == TD_BOOL)
		rc = taskdef_set(t, table[i].name, no ? "false" : "true", err);
	else
		rc = taskdef_set(t, table[i].name, arg, err);
	if (rc) {
		/* Name the flag rather than the config key. */
		char msg[sizeof(err->message)];
		str_copy_msg(msg, err->message, sizeof(msg));
		const char *rest = strncmp(msg, table[i].name, strlen(table[i].name))
				       ? msg
				       : msg + strlen(table[i].name);
		msg_snprintf(err->message, sizeof(err->message), "--%s%s%s", flag_name(i, false),
			     rest == msg ? ": " : "", rest);
		return rc;
	}
	return 1;
}

/* The default shown for kind: deflt is "TEXT", or "S3TEXT|IMAGETEXT" for
 * settings whose default differs by kind (TD_WORD's words also hold '|'). */
static const char *deflt_of(const struct taskdef_setting *s, int kind)
{
	static _Thread_local char one[32];
	const char *bar = strchr(s->deflt, '|');
	if (!bar)
		return s->deflt;
	if (kind == TASKDEF_IMAGE)
		return bar + 1;
	size_t n = (size_t)(bar - s->deflt);
	if (n >= sizeof(one))
		return s->deflt;
	memcpy(one, s->deflt, n);
	one[n] = '\0';
	return one;
}

void taskdef_cli_help(FILE *f, int kind)
{
	for (size_t i = 0; i < N_SETTINGS; i++) {
		const struct taskdef_setting *s = &table[i];
		if (!on_cli(s, kind))
			continue;
		bool flag = s->type == TD_BOOL;
		/* A flag on by default is shown in its --no- form. */
		bool no = flag && s->deflt && !strcmp(s->deflt, "true");
		char left[64];
		msg_snprintf(left, sizeof(left), "--%s%s%s", flag_name(i, no), s->arg ? " " : "",
			     s->arg ? s->arg : "");
		struct buf line = BUF_INIT;
		buf_addf(&line, "  %-32s %s%s", left, no ? "do not " : "", s->help);
		if (no)
			buf_adds(&line, " (done by default)");
		else if (s->deflt && !flag)
			buf_addf(&line, " (default %s)", deflt_of(s, kind));
		fprintf(f, "%s\n", line.data);
		buf_release(&line);
	}
}
