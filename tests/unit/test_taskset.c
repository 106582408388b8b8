/* Unit tests of agent/taskset.c: tasks from config sections and drop-in
 * files, bad definitions kept as entries with their errors. */
#include "common/compat.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/taskset.h"
#include "common/buf.h"
#include "remote/remotes.h"
#include "tests/unit/tap.h"

static void test_config_sections(void)
{
	struct config *cfg = config_new_empty();
	struct dth_err err;
	const char *text = "[task a]\nsource = s:b/p\ndestination = d:c\ninclude = *.jpg\n"
			   "exclude = tmp/*\n\n[task img]\ntype = image\nsource = r:\n"
			   "destination = q:mirror\nimages = nginx, alpine\n\n"
			   "[task bad]\nsource = s:b\ndestination = d:c\npart_size = 1K\n\n"
			   "[task kind]\ntype = tape\n";
	is_int(config_parse_text(cfg, text, "c.conf", &err), 0, "config parses");
	struct taskset ts;
	taskset_init(&ts);
	taskset_add_config(&ts, cfg);
	is_int(ts.n, 4, "four tasks");
	const struct taskset_entry *a = taskset_find(&ts, "a");
	ok(a && !a->error, "a is fine");
	ok(a && a->def.n_patterns == 2 && a->def.patterns[0].include, "filters in order");
	is_str(a->def.origin_where, "c.conf:1", "origin file and line");
	is_int(a->def.origin, TASKDEF_FROM_CONFIG, "origin config");
	const struct taskset_entry *img = taskset_find(&ts, "img");
	ok(img && !img->error && img->def.kind == TASKDEF_IMAGE && img->def.n_images == 2,
	   "an image task");
	const struct taskset_entry *bad = taskset_find(&ts, "bad");
	ok(bad && bad->error && strstr(bad->error, "c.conf:16") && bad->field &&
	       !strcmp(bad->field, "part_size"),
	   "a bad value: file, line, field (%s)", bad && bad->error ? bad->error : "-");
	const struct taskset_entry *kind = taskset_find(&ts, "kind");
	ok(kind && kind->error && kind->field && !strcmp(kind->field, "type"), "a bad type");
	taskset_release(&ts);
	config_free(cfg);
}

static void test_text(void)
{
	struct taskset ts;
	taskset_init(&ts);
	const char *bare = "source = s:b\ndestination = d:c\nschedule = every 5m\n";
	taskset_add_text(&ts, bare, strlen(bare), "/etc/dth/tasks.d/nightly.conf",
			 TASKDEF_FROM_DROPIN);
	ok(ts.n == 1 && !ts.v[0].error && !strcmp(ts.v[0].def.name, "nightly"),
	   "bare keys: a task named after the file");
	const char *two = "[task x]\nsource = s:b\ndestination = d:c\n[task y]\nsource = s:b\n"
			  "destination = d:e\n";
	taskset_add_text(&ts, two, strlen(two), "/t/two.conf", TASKDEF_FROM_DROPIN);
	ok(taskset_find(&ts, "x") && taskset_find(&ts, "y"), "sections of a drop-in");
	const char *mixed = "source = s:b\n[task z]\nsource = s:b\n";
	taskset_add_text(&ts, mixed, strlen(mixed), "/t/mixed.conf", TASKDEF_FROM_DROPIN);
	const struct taskset_entry *m = taskset_find(&ts, "mixed");
	ok(m && m->error && strstr(m->error, "cannot be mixed"), "bare keys and sections mixed");
	const char *other = "[remote r]\nendpoint = http://h\n";
	taskset_add_text(&ts, other, strlen(other), "/t/other.conf", TASKDEF_FROM_DROPIN);
	const struct taskset_entry *o = taskset_find(&ts, "other");
	ok(o && o->error && strstr(o->error, "[task NAME]"), "only task sections in a drop-in");
	const char *dup = "[task x]\nsource = s:b\ndestination = d:c\n";
	taskset_add_text(&ts, dup, strlen(dup), "/t/dup.conf", TASKDEF_FROM_DROPIN);
	int n = 0;
	const struct taskset_entry *second = NULL;
	for (size_t i = 0; i < ts.n; i++)
		if (!strcmp(ts.v[i].def.name, "x") && ++n == 2)
			second = &ts.v[i];
	ok(second && second->error && strstr(second->error, "defined twice"),
	   "a second definition of a name is an error");
	const char *junk = "[task j]\nsource\n";
	taskset_add_text(&ts, junk, strlen(junk), "/t/junk.conf", TASKDEF_FROM_DROPIN);
	const struct taskset_entry *j = taskset_find(&ts, "junk");
	ok(j && j->error, "a syntax error names the file's task");
	taskset_release(&ts);
}

static void test_dropin_dir(void)
{
	char dir[] = "/tmp/dth-taskset-XXXXXX";
	ok(mkdtemp(dir) != NULL, "temp dir");
	struct buf p = BUF_INIT;
	const char *files[][2] = {{"b.conf", "source = s:b\ndestination = d:c\n"},
				  {"a.conf", "source = s:b\ndestination = d:e\n"},
				  {"ignored.txt", "source = nothing\n"},
				  {".hidden.conf", "source = nothing\n"}};
	for (size_t i = 0; i < 4; i++) {
		buf_reset(&p);
		buf_addf(&p, "%s/%s", dir, files[i][0]);
		FILE *f = fopen(p.data, "w");
		fputs(files[i][1], f);
		fclose(f);
	}
	struct taskset ts;
	taskset_init(&ts);
	struct dth_err err;
	is_int(taskset_add_dropin(&ts, dir, &err), 0, "read the directory");
	ok(ts.n == 2 && !strcmp(ts.v[0].def.name, "a") && !strcmp(ts.v[1].def.name, "b"),
	   "only *.conf, in name order");
	taskset_release(&ts);
	taskset_init(&ts);
	buf_reset(&p);
	buf_addf(&p, "%s/none", dir);
	is_int(taskset_add_dropin(&ts, p.data, &err), 0, "a missing directory is no task");
	is_int(ts.n, 0, "no task");
	taskset_release(&ts);
	char *d = taskset_dropin_dir("/etc/dth/dth.conf");
	is_str(d, "/etc/dth/tasks.d", "tasks.d next to the config file");
	free(d);
	ok(taskset_dropin_dir(NULL) == NULL, "no config file, no drop-ins");
	for (size_t i = 0; i < 4; i++) {
		buf_reset(&p);
		buf_addf(&p, "%s/%s", dir, files[i][0]);
		unlink(p.data);
	}
	rmdir(dir);
	buf_release(&p);
}

int main(void)
{
	test_config_sections();
	test_text();
	test_dropin_dir();
	return tap_done();
}
