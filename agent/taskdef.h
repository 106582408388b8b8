/* A task's definition: what it copies, how, and when. One table of settings
 * (taskdef_settings) describes every key once: its name, the kinds of task it
 * applies to, its type and bounds, its default and its help. The same table
 * parses `dth sync` and `dth image sync` flags (--part-size), the keys of
 * `[task NAME]` sections and tasks.d files (part_size = 8M) and the fields of
 * the agent's API (`"part_size": "8M"`), so the three can never drift apart.
 *
 * Names: a setting's name uses underscores (the config key and the JSON
 * field); its command-line flag is the same name with dashes. Config keys
 * may be written either way. A boolean flag has a --no-NAME form.
 *
 * Every value is text first (a flag's argument, a config value, a JSON string;
 * JSON numbers and booleans are turned into text), parsed by the setting's
 * type: a size (8M, 1G), a count, a boolean (true/false/yes/no/on/off/1/0), a
 * word from a list, free text, or a list (include/exclude/images repeat). */
#ifndef DTH_TASKDEF_H
#define DTH_TASKDEF_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/err.h"
#include "common/util.h"

enum taskdef_kind { TASKDEF_S3 = 1, TASKDEF_IMAGE = 2 };
/* A task name: 1 to this many bytes of UTF-8 text without control characters. */
#define TASKDEF_NAME_MAX 255
/* "s3", "image"; NULL for another value. */
const char *taskdef_kind_name(int kind);

/* Where a definition came from. */
enum taskdef_origin {
	TASKDEF_FROM_CLI = 0,
	TASKDEF_FROM_CONFIG,
	TASKDEF_FROM_DROPIN,
	TASKDEF_FROM_API
};
/* "cli", "config", "dropin", "api". */
const char *taskdef_origin_name(int origin);

/* One include or exclude pattern, in the order given. */
struct taskdef_pattern {
	bool include;
	char *glob;
};

/* A definition. Strings and arrays are owned (malloc'd), NULL when not set. */
struct taskdef {
	char *name;
	int kind; /* enum taskdef_kind */
	char *source;
	char *destination;
	char *schedule; /* "once", "every 2m", "cron \"0 3 * * *\"" (schedule.h checks it) */
	char *timezone; /* IANA name; NULL: UTC */
	bool enabled;	/* false: defined but not started by the agent (stopped) */
	char *events;	/* "none" (NULL), "webhook", "sqs:QUEUE_URL" (taskdef_events) */
	/* both kinds */
	uint64_t concurrency; /* s3: 16, image: 8 */
	int64_t retries;      /* -1: each remote's own (7 by default) */
	/* s3 */
	int64_t small_concurrency; /* -1: 4 x concurrency, at most 256 */
	uint64_t multipart_threshold;
	uint64_t part_size;
	uint64_t memory_limit;
	bool parallel_parts;
	bool metadata;
	bool delete_gone; /* "delete" */
	bool server_side_copy;
	bool requester_pays;	/* the source is read as requester pays, whatever its remote says */
	int64_t max_delete;	/* -1: not given */
	int max_delete_percent; /* -1: not given */
	char *storage_class;
	char *acl;
	char *sse;
	char *sse_kms_key_id;
	char *shard;	  /* "I/N", "auto", "auto/N" (shard.h); NULL: the whole key space */
	char *shard_plan; /* a plan file of the shards' cut keys; NULL: the even cut */
	struct taskdef_pattern *patterns;
	size_t n_patterns;
	/* notifications (both kinds) */
	char **notify; /* "webhook:URL" or "sns:TOPIC_ARN" (a TD_LIST: the count follows) */
	size_t n_notify;
	char *notify_remote;	 /* whose credentials sign SNS calls; NULL: the destination's */
	uint64_t notify_backlog; /* events waiting that make a notification */
	/* image */
	char **images; /* a TD_LIST: the count follows */
	size_t n_images;
	bool all;
	char *tags;	/* POSIX extended regex */
	char *platform; /* "os/arch[/variant][,...]" */
	/* bookkeeping */
	int origin;	    /* enum taskdef_origin */
	char *origin_where; /* "FILE:LINE", "FILE", or NULL */
	uint64_t given;	    /* bit i set: setting i of the table was given */
};

enum taskdef_type {
	TD_BOOL = 0,
	TD_COUNT, /* unsigned integer within [min, max] */
	TD_SIZE,  /* size with a unit suffix within [min, max] */
	TD_WORD,  /* one of words (a "|"-separated list) */
	TD_TEXT,  /* any text without control characters, at most max bytes */
	TD_LIST,  /* repeatable text (images, notify): char ** then its size_t count */
	TD_CUSTOM /* parsed by its own function */
};

/* Flags of a setting. */
enum {
	TD_CLI = 1u << 0,      /* a flag of the one-shot commands (dth sync, dth image sync) */
	TD_REQUIRED = 1u << 1, /* a task definition must give it */
	TD_AGENT = 1u << 2,    /* only meaningful in the agent (schedule, timezone, enabled) */
};

struct taskdef_setting {
	const char *name; /* config key and JSON field ("part_size") */
	unsigned kinds;	  /* TASKDEF_S3 | TASKDEF_IMAGE */
	unsigned flags;	  /* TD_* */
	int type;	  /* enum taskdef_type */
	const char *arg;  /* placeholder for --help ("SIZE"); NULL for a boolean */
	/* The default as text, for help and docs (NULL: none); "A|B" when it
	 * differs by kind: A for S3 tasks, B for image tasks. */
	const char *deflt;
	const char *help;
	const char *words; /* TD_WORD: "AES256|aws:kms" */
	uint64_t min, max; /* TD_COUNT, TD_SIZE bounds; TD_TEXT: max bytes */
	size_t off;	   /* where the value lives in struct taskdef */
};

/* The table (n entries; static, valid for the program's life). */
const struct taskdef_setting *taskdef_settings(size_t *n);
/* The setting called name ('-' and '_' alike), or NULL. */
const struct taskdef_setting *taskdef_setting_find(const char *name);

/* Initialise t with the defaults of kind. Release with taskdef_release. */
void taskdef_init(struct taskdef *t, int kind);
void taskdef_release(struct taskdef *t);
/* Deep copy (dst is initialised by the call). */
void taskdef_copy(struct taskdef *dst, const struct taskdef *src);

/* Set the setting called key from text. Lists append. Returns 0, -ENOENT for
 * an unknown key, -EPERM for a key that does not apply to t's kind, or
 * -EINVAL/-ERANGE for a bad value; err names the key and says what is wrong
 * (never quoting more than a short, printable part of the value). "name" and
 * "type" are not settings: set t->name and use taskdef_init for them. */
int taskdef_set(struct taskdef *t, const char *key, const char *value, struct dth_err *err) WUR;

/* Where a task's change events come from (the events setting). */
enum taskdef_events {
	TASKDEF_EVENTS_NONE = 0,
	TASKDEF_EVENTS_WEBHOOK,
	TASKDEF_EVENTS_SQS,
	TASKDEF_EVENTS_INOTIFY
};
/* The kind of t->events (checked by taskdef_check); for SQS, *queue_url (may
 * be NULL) points into t->events. */
int taskdef_events(const struct taskdef *t, const char **queue_url);

/* Check the whole definition: required keys, the source and destination
 * forms of the kind (s3: REMOTE:BUCKET[/PREFIX]; image: REMOTE: and
 * REMOTE:[PREFIX]), settings that need another (sse_kms_key_id needs sse
 * aws:kms, max_delete needs delete, images or all for an image task, not
 * both), the name (1 to 255 bytes of printable UTF-8) and that the tag regex
 * and the platforms compile (filters are checked as they are set). The
 * schedule is the agent's to check (schedule.h). 0 or -EINVAL with err set
 * and *field (may be NULL) the name of the setting at fault. With flags,
 * messages name settings as command-line flags (--max-delete). */
int taskdef_check(const struct taskdef *t, bool flags, struct dth_err *err, const char **field) WUR;

/* The definition as a JSON object: name, type and every setting of its kind
 * (defaults included; lists as arrays). New reference. */
json_t *taskdef_to_json(const struct taskdef *t);
/* Build t from a JSON object (name, type, then any settings; strings,
 * numbers, booleans, and arrays of strings for lists). t is initialised by
 * the call (release it even on error). 0, or a negative errno with err set
 * and *field naming the member at fault ("name", "type", a setting, or an
 * unknown member: then borrowed from obj). */
int taskdef_from_json(const json_t *obj, struct taskdef *t, struct dth_err *err,
		      const char **field) WUR;

/* Command-line flags of kind for getopt_long: out holds at least
 * taskdef_cli_count(kind) entries, filled with each TD_CLI setting of that
 * kind (and the --no-NAME form of booleans); val is base + 2 * table index
 * (+ 1 for the --no- form). Returns the number of entries written. */
struct option;
size_t taskdef_cli_count(int kind);
size_t taskdef_cli_options(int kind, int base, struct option *out);
/* Apply a flag returned by getopt_long (val from taskdef_cli_options, arg
 * its argument or NULL): 1 when val is one of the table's, 0 when it is not
 * (the caller's own flag), or a negative errno as taskdef_set. */
int taskdef_cli_apply(struct taskdef *t, int base, int val, const char *arg,
		      struct dth_err *err) WUR;
/* "  --part-size SIZE   help (default 8M)" lines for the flags of kind. */
void taskdef_cli_help(FILE *f, int kind);

#endif
