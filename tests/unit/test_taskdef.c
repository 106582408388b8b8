/* Unit tests of agent/taskdef.c: the settings table, values from text, JSON
 * and command-line flags, and the checks of a whole definition. */
#include "common/compat.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "agent/taskdef.h"
#include "tests/unit/tap.h"

static void test_table(void)
{
	size_t n;
	const struct taskdef_setting *t = taskdef_settings(&n);
	ok(n > 20 && n < 64, "table has %zu settings (fits the given bitmask)", n);
	bool snake = true, unique = true, helped = true;
	for (size_t i = 0; i < n; i++) {
		for (const char *p = t[i].name; *p; p++)
			if (!((*p >= 'a' && *p <= 'z') || *p == '_'))
				snake = false;
		for (size_t j = i + 1; j < n; j++)
			if (!strcmp(t[i].name, t[j].name))
				unique = false;
		if (!t[i].help || !*t[i].help || !t[i].kinds)
			helped = false;
	}
	ok(snake, "every name is snake_case");
	ok(unique, "names are unique");
	ok(helped, "every setting has help and a kind");
	ok(taskdef_setting_find("part-size") == taskdef_setting_find("part_size") &&
	       taskdef_setting_find("part_size"),
	   "dashes and underscores find the same setting");
	ok(!taskdef_setting_find("part_sizes"), "unknown name");
}

static void test_values(void)
{
	struct taskdef t;
	struct dth_err err;
	taskdef_init(&t, TASKDEF_S3);
	is_int(t.concurrency, 16, "s3 default concurrency");
	is_int(taskdef_set(&t, "part-size", "64M", &err), 0, "part-size 64M");
	is_int(t.part_size, 64ULL << 20, "part size set");
	is_int(taskdef_set(&t, "part_size", "1M", &err), -ERANGE, "part size below 5M refused");
	ok(strstr(err.message, "part_size") != NULL, "error names the key: %s", err.message);
	is_int(t.part_size, 64ULL << 20, "a refused value changes nothing");
	is_int(taskdef_set(&t, "part_size", "lots", &err), -EINVAL, "not a size");
	is_int(taskdef_set(&t, "metadata", "off", &err), 0, "bool off");
	ok(!t.metadata, "metadata off");
	is_int(taskdef_set(&t, "metadata", "maybe", &err), -EINVAL, "bad bool");
	is_int(taskdef_set(&t, "sse", "AES256", &err), 0, "sse word");
	is_int(taskdef_set(&t, "sse", "aes256", &err), -EINVAL, "sse words are exact");
	is_int(taskdef_set(&t, "images", "nginx", &err), -EPERM, "image key on an s3 task");
	is_int(taskdef_set(&t, "colour", "blue", &err), -ENOENT, "unknown key");
	is_int(taskdef_set(&t, "storage_class", "GLACIER\n", &err), -EINVAL,
	       "control characters refused");
	is_int(taskdef_set(&t, "storage_class", "\xff\xfe", &err), -EINVAL, "not UTF-8");
	is_int(taskdef_set(&t, "include", "*.jpg", &err), 0, "include");
	is_int(taskdef_set(&t, "exclude", "tmp/*", &err), 0, "exclude");
	is_int(taskdef_set(&t, "include", "[", &err), -EINVAL, "bad glob refused when set");
	is_int(t.n_patterns, 2, "patterns kept in order");
	ok(t.patterns[0].include && !t.patterns[1].include, "include then exclude");
	is_int(taskdef_set(&t, "max_delete", "5%", &err), 0, "max_delete percent");
	is_int(t.max_delete_percent, 5, "5%%");
	is_int(taskdef_set(&t, "max_delete", "101%", &err), -ERANGE, "over 100%%");
	is_int(taskdef_set(&t, "max_delete", "12", &err), 0, "max_delete count");
	ok(t.max_delete == 12 && t.max_delete_percent == -1, "count replaces percent");
	is_int(taskdef_set(&t, "retries", "101", &err), -ERANGE, "retries bounded");
	is_int(taskdef_set(&t, "retries", "3", &err), 0, "retries");
	is_int(t.retries, 3, "retries set");
	taskdef_release(&t);

	taskdef_init(&t, TASKDEF_IMAGE);
	is_int(t.concurrency, 8, "image default concurrency");
	is_int(taskdef_set(&t, "images", "nginx:1.27, alpine ,,busybox\nredis", &err), 0,
	       "images list");
	is_int(t.n_images, 4, "four images, blanks skipped");
	is_str(t.images[1], "alpine", "trimmed");
	is_int(taskdef_set(&t, "part_size", "8M", &err), -EPERM, "s3 key on an image task");
	taskdef_release(&t);
}

static struct taskdef s3_def(void)
{
	struct taskdef t;
	taskdef_init(&t, TASKDEF_S3);
	t.name = xstrdup("mirror");
	t.source = xstrdup("src:bucket/pre");
	t.destination = xstrdup("dst:bucket");
	return t;
}

static void test_check(void)
{
	struct dth_err err;
	const char *field;
	struct taskdef t = s3_def();
	is_int(taskdef_check(&t, false, &err, &field), 0, "a whole s3 definition");
	ok(field == NULL, "no field at fault");
	struct dth_err e2;
	ok(!taskdef_set(&t, "sse_kms_key_id", "k", &e2), "kms key set");
	is_int(taskdef_check(&t, false, &err, &field), -EINVAL, "kms key without sse aws:kms");
	is_str(field, "sse_kms_key_id", "field named");
	ok(!taskdef_set(&t, "sse", "aws:kms", &e2), "sse aws:kms");
	is_int(taskdef_check(&t, false, &err, &field), 0, "now fine");
	ok(!taskdef_set(&t, "max_delete", "3", &e2), "max_delete");
	is_int(taskdef_check(&t, false, &err, &field), -EINVAL, "max_delete without delete");
	is_str(field, "max_delete", "field named");
	is_int(taskdef_check(&t, true, &err, NULL), -EINVAL, "as flags");
	is_str(err.message, "--max-delete needs --delete", "flags named");
	t.max_delete = -1;
	static const struct {
		const char *v;
		int rc, kind;
	} evs[] = {{"none", 0, TASKDEF_EVENTS_NONE},
		   {"webhook", 0, TASKDEF_EVENTS_WEBHOOK},
		   {"sqs:https://sqs.eu-west-1.amazonaws.com/1/q", 0, TASKDEF_EVENTS_SQS},
		   {"sqs:queue-name", -EINVAL, TASKDEF_EVENTS_SQS},
		   {"inotify", -EINVAL, TASKDEF_EVENTS_INOTIFY},
		   {"hook", -EINVAL, -EINVAL}};
	for (size_t i = 0; i < ARRAY_SIZE(evs); i++) {
		ok(!taskdef_set(&t, "events", evs[i].v, &e2), "events %s set", evs[i].v);
		is_int(taskdef_events(&t, NULL), evs[i].kind, "events %s: its kind", evs[i].v);
		is_int(taskdef_check(&t, false, &err, &field), evs[i].rc, "events %s checked",
		       evs[i].v);
		if (evs[i].rc)
			is_str(field, "events", "events named: %s", err.message);
	}
	/* a local directory as the source */
	char *s3src = t.source;
	t.source = xstrdup("/srv/data");
	ok(!taskdef_set(&t, "events", "inotify", &e2), "events inotify");
	is_int(taskdef_check(&t, false, &err, &field), 0, "inotify on a local source");
	ok(!taskdef_set(&t, "events", "webhook", &e2), "events webhook");
	is_int(taskdef_check(&t, false, &err, &field), -EINVAL, "a webhook for a local source");
	ok(strstr(err.message, "inotify") != NULL, "said what instead: %s", err.message);
	free(t.source);
	t.source = xstrdup("./data");
	is_int(taskdef_check(&t, false, &err, &field), -EINVAL, "a relative local source");
	is_str(field, "source", "source named: %s", err.message);
	free(t.source);
	t.source = s3src;
	char *s3dst = t.destination;
	t.destination = xstrdup("/srv/out");
	ok(!taskdef_set(&t, "events", "none", &e2), "events none");
	is_int(taskdef_check(&t, false, &err, &field), -EINVAL, "a local destination");
	is_str(field, "destination", "destination named: %s", err.message);
	free(t.destination);
	t.destination = s3dst;
	ok(!taskdef_set(&t, "events", "webhook", &e2), "events webhook again");
	ok(!taskdef_set(&t, "notify", "webhook:https://h/x, sns:arn:aws:sns:eu-west-1:1:t", &e2),
	   "notify: two targets");
	is_int((int)t.n_notify, 2, "notify: two items");
	is_int(taskdef_check(&t, false, &err, &field), 0, "notify: both fine");
	ok(!taskdef_set(&t, "notify", "mailto:me", &e2), "notify: a third");
	is_int(taskdef_check(&t, false, &err, &field), -EINVAL, "notify: mailto refused");
	is_str(field, "notify", "notify named: %s", err.message);
	struct taskdef c2;
	taskdef_copy(&c2, &t);
	ok(c2.n_notify == 3 && c2.notify != t.notify && !strcmp(c2.notify[2], "mailto:me"),
	   "notify: copied deep");
	taskdef_release(&c2);
	free(t.destination);
	t.destination = xstrdup("nocolon");
	ok(!taskdef_set(&t, "delete", "true", &e2), "delete");
	is_int(taskdef_check(&t, false, &err, &field), -EINVAL, "bad destination");
	is_str(field, "destination", "field named: %s", err.message);
	free(t.name);
	t.name = xstrdup("");
	is_int(taskdef_check(&t, false, &err, &field), -EINVAL, "empty name");
	is_str(field, "name", "name at fault");
	taskdef_release(&t);

	taskdef_init(&t, TASKDEF_IMAGE);
	t.name = xstrdup("img");
	t.source = xstrdup("hub:");
	t.destination = xstrdup("mine:mirror");
	is_int(taskdef_check(&t, false, &err, &field), -EINVAL, "images or all needed");
	is_str(field, "images", "images named");
	ok(!taskdef_set(&t, "all", "yes", &e2), "all");
	is_int(taskdef_check(&t, false, &err, &field), 0, "all is enough");
	ok(!taskdef_set(&t, "tags", "1\\.(", &e2), "tags set (checked later)");
	is_int(taskdef_check(&t, false, &err, &field), -EINVAL, "bad regex");
	is_str(field, "tags", "tags named");
	/* regexes whose compilation would take gigabytes are refused first */
	static const struct {
		const char *re;
		int rc;
	} res[] = {
	    {"v++++++++++++++++++++++++++++++.*", -EINVAL},
	    {"a*?", -EINVAL},
	    {"(((a{100}){100}){100})", -EINVAL},
	    {"((((((((((((((((((((a{2}){2}){2}){2}){2}){2}){2}){2}){2}){2}){2}){2}){2}){2}){2}){2}"
	     "){2}){2}){2}){2})",
	     -EINVAL},
	    {"a{99999999999999999999}", -EINVAL},
	    {"((a{100}){100})", 0},
	    {"^v?[0-9]+(\\.[0-9]+){1,2}(-[a-z0-9]+)?$", 0},
	    {"[[:digit:]]+\\.[]a-z]*|latest", 0},
	    {"(1\\.2[0-9]*|stable)-alpine", 0}};
	for (size_t i = 0; i < ARRAY_SIZE(res); i++) {
		free(t.tags);
		t.tags = xstrdup(res[i].re);
		is_int(taskdef_check(&t, false, &err, &field), res[i].rc, "tags %s: %s", res[i].re,
		       res[i].rc ? err.message : "accepted");
	}
	free(t.tags);
	t.tags = NULL;
	ok(!taskdef_set(&t, "platform", "linux", &e2), "platform set");
	is_int(taskdef_check(&t, false, &err, &field), -EINVAL, "bad platform");
	is_str(field, "platform", "platform named");
	free(t.source);
	t.source = xstrdup("hub:library");
	free(t.platform);
	t.platform = NULL;
	is_int(taskdef_check(&t, false, &err, &field), -EINVAL, "image source takes no path");
	is_str(field, "source", "source named");
	taskdef_release(&t);
}

static void test_json(void)
{
	struct dth_err err;
	const char *field;
	struct taskdef t = s3_def();
	ok(!taskdef_set(&t, "exclude", "*.tmp", &err) && !taskdef_set(&t, "part_size", "16M", &err),
	   "settings");
	json_t *j = taskdef_to_json(&t);
	ok(json_integer_value(json_object_get(j, "part_size")) == 16 << 20, "part_size in bytes");
	ok(json_is_true(json_object_get(j, "metadata")), "booleans");
	ok(json_object_get(j, "images") == NULL, "no image keys in an s3 task");
	struct taskdef u;
	is_int(taskdef_from_json(j, &u, &err, &field), 0, "round trip");
	json_t *j2 = taskdef_to_json(&u);
	ok(json_equal(j, j2), "same JSON after a round trip");
	json_decref(j2);
	taskdef_release(&u);
	json_decref(j);
	taskdef_release(&t);

	j = json_pack("{s:s, s:s, s:s, s:s, s:s}", "name", "a", "type", "s3", "source", "x:b",
		      "destination", "y:c", "part_size", "2M");
	is_int(taskdef_from_json(j, &u, &err, &field), -ERANGE, "bad value");
	is_str(field, "part_size", "field of a bad value");
	taskdef_release(&u);
	json_decref(j);
	j = json_pack("{s:s, s:s, s:s, s:i}", "name", "a", "source", "x:b", "destination", "y:c",
		      "colour", 3);
	is_int(taskdef_from_json(j, &u, &err, &field), -ENOENT, "unknown member");
	is_str(field, "colour", "unknown member named");
	taskdef_release(&u);
	json_decref(j);
	j = json_pack("{s:s, s:s}", "name", "a", "type", "tape");
	is_int(taskdef_from_json(j, &u, &err, &field), -EINVAL, "bad type");
	is_str(field, "type", "type named");
	taskdef_release(&u);
	json_decref(j);
	j = json_pack("{s:s, s:s, s:[s,s], s:b, s:i}", "name", "i", "type", "image", "images", "a",
		      "b:1", "all", 0, "concurrency", 4);
	is_int(taskdef_from_json(j, &u, &err, &field), 0, "arrays, booleans, numbers");
	ok(u.n_images == 2 && !u.all && u.concurrency == 4, "values taken");
	taskdef_release(&u);
	json_decref(j);
	j = json_pack("{s:s, s:{}}", "name", "a", "part_size");
	is_int(taskdef_from_json(j, &u, &err, &field), -EINVAL, "an object value refused");
	taskdef_release(&u);
	json_decref(j);
	j = json_pack("{s:s, s:[s]}", "name", "a", "part_size", "8M");
	is_int(taskdef_from_json(j, &u, &err, &field), -EINVAL, "an array for a single value");
	taskdef_release(&u);
	json_decref(j);
}

static void test_cli(void)
{
	size_t n = taskdef_cli_count(TASKDEF_S3);
	struct option *o = calloc(n + 1, sizeof(*o));
	is_int(taskdef_cli_options(TASKDEF_S3, 1000, o), n, "options written");
	bool has_no_meta = false, has_part = false, has_schedule = false;
	for (size_t i = 0; i < n; i++) {
		has_no_meta |= !strcmp(o[i].name, "no-metadata");
		has_part |= !strcmp(o[i].name, "part-size") && o[i].has_arg == required_argument;
		has_schedule |= !strcmp(o[i].name, "schedule");
	}
	ok(has_no_meta && has_part, "--no-metadata and --part-size");
	ok(!has_schedule, "agent-only keys are not flags");
	struct taskdef t = s3_def();
	struct dth_err err;
	int val = -1;
	for (size_t i = 0; i < n; i++)
		if (!strcmp(o[i].name, "no-metadata"))
			val = o[i].val;
	is_int(taskdef_cli_apply(&t, 1000, val, NULL, &err), 1, "--no-metadata applied");
	ok(!t.metadata, "metadata off");
	for (size_t i = 0; i < n; i++)
		if (!strcmp(o[i].name, "part-size"))
			val = o[i].val;
	is_int(taskdef_cli_apply(&t, 1000, val, "1K", &err), -ERANGE, "bad --part-size");
	ok(!strncmp(err.message, "--part-size", 11), "the flag is named: %s", err.message);
	is_int(taskdef_cli_apply(&t, 1000, 999, NULL, &err), 0, "not ours");
	taskdef_release(&t);
	free(o);
}

int main(void)
{
	test_table();
	test_values();
	test_check();
	test_json();
	test_cli();
	return tap_done();
}
