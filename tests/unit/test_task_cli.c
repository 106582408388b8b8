/* cli/agentc: the parts of `dth task` that need no agent. */
#include "common/compat.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/agentc.h"
#include "cli/cli.h"
#include "tests/unit/tap.h"

static char dir[64];

static void test_addr(void)
{
	static const struct {
		const char *in, *base, *sock;
	} good[] = {
	    {"127.0.0.1:8391", "http://127.0.0.1:8391", NULL},
	    {"localhost:1", "http://localhost:1", NULL},
	    {"0.0.0.0:8391", "http://127.0.0.1:8391", NULL},
	    {"[::1]:8391", "http://[::1]:8391", NULL},
	    {"[::]:8391", "http://[::1]:8391", NULL},
	    {"http://agent.example:80", "http://agent.example:80", NULL},
	    {"https://agent.example:8443/", "https://agent.example:8443", NULL},
	    {"unix:/run/dth/agent.sock", "http://localhost", "/run/dth/agent.sock"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		struct agentc_addr a;
		struct dth_err err;
		err_clear(&err);
		int rc = agentc_addr_parse(good[i].in, &a, &err);
		is_int(rc, 0, "address %s parses (%s)", good[i].in, err.message);
		is_str(a.base, good[i].base, "  base URL");
		ok(good[i].sock ? a.unix_socket && !strcmp(a.unix_socket, good[i].sock)
				: a.unix_socket == NULL,
		   "  socket %s", good[i].sock ? good[i].sock : "none");
		is_str(a.shown, good[i].in, "  shown as given");
		agentc_addr_release(&a);
	}
	const char *bad[] = {"",
			     "127.0.0.1",
			     "127.0.0.1:",
			     "127.0.0.1:0",
			     "127.0.0.1:65536",
			     "127.0.0.1:80x",
			     ":8391",
			     "::1:8391",
			     "[::1]8391",
			     "ftp://host:21",
			     "unix:relative.sock",
			     "http://user@host:80",
			     "http://host:80/path",
			     "https://host"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct agentc_addr a;
		struct dth_err err;
		err_clear(&err);
		int rc = agentc_addr_parse(bad[i], &a, &err);
		ok(rc == -EINVAL && err.message[0], "address '%s' is refused (%s)", bad[i],
		   err.message);
		agentc_addr_release(&a);
	}
}

static void test_errors(void)
{
	static const struct {
		long status;
		const char *body;
		int exit;
		const char *msg;
	} cases[] = {
	    {400,
	     "{\"error\":{\"code\":\"invalid\",\"field\":\"part_size\",\"message\":\"must be at "
	     "least 5 MiB\"}}",
	     EXIT_USAGE, "part_size: must be at least 5 MiB"},
	    {404, "{\"error\":{\"code\":\"not_found\",\"message\":\"no task called x\"}}",
	     EXIT_USAGE, "no task called x"},
	    {409, "{\"error\":{\"code\":\"conflict\",\"message\":\"task t exists\"}}",
	     EXIT_SOME_FAILED, "task t exists"},
	    {409,
	     "{\"error\":{\"code\":\"read_only\",\"message\":\"task t comes from the config "
	     "file\"}}",
	     EXIT_USAGE, "task t comes from the config file"},
	    {401, "{\"error\":{\"code\":\"unauthorized\",\"message\":\"bad token\"}}",
	     EXIT_UNREACHABLE, "bad token"},
	    {413, "{\"error\":{\"code\":\"too_large\",\"message\":\"too large\"}}", EXIT_USAGE,
	     "too large"},
	    {500, "<html>oops</html>", EXIT_SOME_FAILED, "the agent answered HTTP 500"},
	    {502, "", EXIT_SOME_FAILED, "the agent answered HTTP 502"},
	    {400, "{\"error\":{\"code\":\"bad_request\",\"field\":\"\",\"message\":\"a\\u001bb\"}}",
	     EXIT_USAGE, "a\\x1bb"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct buf m = BUF_INIT;
		int rc = agentc_error(cases[i].status, cases[i].body, strlen(cases[i].body), &m);
		is_int(rc, cases[i].exit, "HTTP %ld maps to exit %d", cases[i].status,
		       cases[i].exit);
		is_str(m.data, cases[i].msg, "  and says it");
		buf_release(&m);
	}
}

static void test_settings(void)
{
	struct dth_err err;
	err_clear(&err);
	json_t *o = json_object();
	ok(agentc_kv("source=a:b/c", o, &err) == 0, "KEY=VALUE");
	ok(agentc_kv("schedule=cron \"0 * * * *\"", o, &err) == 0, "a value with spaces");
	ok(agentc_kv("exclude=", o, &err) == 0, "an empty value");
	ok(agentc_kv("include=a=b", o, &err) == 0, "a value with '='");
	ok(agentc_kv("novalue", o, &err) == -EINVAL, "no '=' is refused (%s)", err.message);
	ok(agentc_kv("=x", o, &err) == -EINVAL, "an empty key is refused");
	ok(agentc_kv("k=\xff", o, &err) == -EINVAL, "a value that is not UTF-8 is refused");
	char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	is_str(s,
	       "{\"exclude\":\"\",\"include\":\"a=b\",\"schedule\":\"cron \\\"0 * * * *\\\"\","
	       "\"source\":\"a:b/c\"}",
	       "every value is sent as a JSON string");
	free(s);
	json_decref(o);

	const char *file = "# tasks\n"
			   "[task one]\n"
			   "type = s3\n"
			   "source = src:bucket/p\n"
			   "[task two]\n"
			   "type = image\n"
			   "workers = 4\n";
	o = json_object();
	char *name = NULL;
	int rc = agentc_task_file(file, strlen(file), "t.conf", "two", o, &name, &err);
	is_int(rc, 0, "[task two] of a task file");
	is_str(name, "two", "  its name");
	s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	is_str(s, "{\"type\":\"image\",\"workers\":\"4\"}", "  only its keys, as strings");
	free(s);
	free(name);
	json_decref(o);

	o = json_object();
	rc = agentc_task_file(file, strlen(file), "t.conf", NULL, o, &name, &err);
	ok(rc == -EINVAL && strstr(err.message, "2 tasks"), "two tasks and no name (%s)",
	   err.message);
	rc = agentc_task_file(file, strlen(file), "t.conf", "three", o, &name, &err);
	ok(rc == -EINVAL && strstr(err.message, "no [task three]"), "no such section (%s)",
	   err.message);
	const char *one = "[task solo]\nsource = a:b\n";
	rc = agentc_task_file(one, strlen(one), "t.conf", NULL, o, &name, &err);
	ok(rc == 0 && name && !strcmp(name, "solo"), "the only task of a file");
	free(name);
	const char *stray = "source = a:b\n[task x]\n";
	rc = agentc_task_file(stray, strlen(stray), "t.conf", NULL, o, &name, &err);
	ok(rc == -EINVAL && strstr(err.message, "t.conf:1"), "a key outside a section (%s)",
	   err.message);
	const char *other = "[remote r]\nurl = x\n";
	rc = agentc_task_file(other, strlen(other), "t.conf", NULL, o, &name, &err);
	ok(rc == -EINVAL, "another section kind is refused (%s)", err.message);
	const char *twice = "[task a]\nx = 1\n[task a]\nx = 2\n";
	rc = agentc_task_file(twice, strlen(twice), "t.conf", "a", o, &name, &err);
	ok(rc == -EINVAL && strstr(err.message, "twice"), "a task twice is refused");
	json_decref(o);
}

static void test_config(void)
{
	char path[128];
	xsnprintf(path, sizeof(path), "%s/dth.conf", dir);
	FILE *f = fopen(path, "w");
	fputs("[remote a]\ntype = s3\nsecret_access_key = x\n"
	      "[agent]\nlisten = unix:/run/dth/agent.sock\ntls_cert = /etc/c.pem\n"
	      "state_dir = /var/lib/dthx\n[task t]\nsource = a:b\n",
	      f);
	fclose(f);
	struct agentc_config c;
	struct dth_err err;
	err_clear(&err);
	int rc = agentc_config_read(path, &c, &err);
	is_int(rc, 0, "the config's [agent] section is read (%s)", err.message);
	is_str(c.listen, "unix:/run/dth/agent.sock", "  listen");
	is_str(c.tls_cert, "/etc/c.pem", "  tls_cert");
	is_str(c.state_dir, "/var/lib/dthx", "  state_dir");
	agentc_config_release(&c);

	char missing[128];
	xsnprintf(missing, sizeof(missing), "%s/none.conf", dir);
	rc = agentc_config_read(missing, &c, &err);
	is_int(rc, -ENOENT, "a config file named but missing is an error");

	/* No file anywhere: the defaults. */
	setenv("HOME", dir, 1);
	unsetenv("DTH_CONFIG");
	rc = agentc_config_read(NULL, &c, &err);
	ok(rc == 0 && !c.listen, "no config file: nothing set");
	agentc_config_release(&c);
	setenv("DTH_CONFIG", path, 1);
	rc = agentc_config_read(NULL, &c, &err);
	ok(rc == 0 && c.listen && !strcmp(c.listen, "unix:/run/dth/agent.sock"),
	   "$DTH_CONFIG is read");
	agentc_config_release(&c);
	unsetenv("DTH_CONFIG");
}

static void test_formats(void)
{
	char s[32];
	static const struct {
		int64_t in;
		const char *out;
	} d[] = {{0, "0s"},	   {59, "59s"},	      {60, "1m00s"},
		 {192, "3m12s"},   {3600, "1h00m"},   {7500, "2h05m"},
		 {86400, "1d00h"}, {273600, "3d04h"}, {-5, "0s"}};
	for (size_t i = 0; i < ARRAY_SIZE(d); i++) {
		agentc_fmt_duration(d[i].in, s);
		is_str(s, d[i].out, "duration %lld", (long long)d[i].in);
	}
	agentc_fmt_time(1714564800, s);
	is_str(s, "2024-05-01 12:00:00", "a time, in UTC");
	agentc_fmt_time(0, s);
	is_str(s, "-", "no time");
	agentc_fmt_bytes(512, s);
	is_str(s, "512 B", "bytes");
	agentc_fmt_bytes(1536, s);
	is_str(s, "1.5 KiB", "KiB");
	agentc_fmt_bytes(5ull << 30, s);
	is_str(s, "5.0 GiB", "GiB");
}

/* What a print function writes, as a string. */
static char *capture(void (*fn)(FILE *, const json_t *, int64_t), const char *json, int64_t now)
{
	json_t *j = json_loads(json, 0, NULL);
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	fn(f, j, now);
	fclose(f);
	json_decref(j);
	return out;
}

static void print_objects_h(FILE *f, const json_t *j, int64_t now)
{
	(void)now;
	agentc_print_objects(f, j, true);
}

static void print_images_h(FILE *f, const json_t *j, int64_t now)
{
	(void)now;
	agentc_print_images(f, j, true);
}

static void test_tables(void)
{
	const int64_t now = 1714564800;
	const char *tasks =
	    "[{\"name\":\"photos\",\"type\":\"s3\",\"state\":\"running\","
	    "\"definition\":{\"source\":\"src:b/p\",\"destination\":\"dst:b\"},"
	    "\"progress\":{\"listed\":10,\"planned\":500,\"transferred\":120,\"bytes\":1572864},"
	    "\"last_run\":{\"seq\":3,\"result\":\"ok\",\"started\":1714564000,\"ended\":1714564500}"
	    ","
	    "\"next_run\":1714564830},"
	    "{\"name\":\"img\",\"type\":\"image\",\"state\":\"idle\","
	    "\"definition\":{\"source\":\"hub:\",\"destination\":\"mirror:lib/\"},"
	    "\"progress\":{\"transferred\":0},\"last_run\":null,\"next_run\":null}]";
	char *out = capture(agentc_print_tasks, tasks, now);
	is_str(out,
	       "NAME    TYPE   STATE    SOURCE → DESTINATION  PROGRESS         LAST-RUN      "
	       "NEXT-RUN\n"
	       "photos  s3     running  src:b/p → dst:b       120/500 1.5 MiB  ok 5m00s ago  "
	       "in 30s\n"
	       "img     image  idle     hub: → mirror:lib/    -                -             -\n",
	       "the task list, aligned (→ counts one column)");
	free(out);

	const char *runs = "[{\"seq\":12,\"started\":1714564800,\"ended\":1714564992,"
			   "\"result\":\"ok\",\"transferred\":42,\"bytes\":1024,\"failed\":0},"
			   "{\"seq\":11,\"started\":1714561200,\"ended\":null,"
			   "\"result\":\"running\",\"transferred\":7,\"bytes\":5,\"failed\":1}]";
	out = capture(agentc_print_runs, runs, now);
	is_str(out,
	       "SEQ  START                DURATION  RESULT   COPIED  BYTES    FAILED\n"
	       "12   2024-05-01 12:00:00  3m12s     ok       42      1.0 KiB  0\n"
	       "11   2024-05-01 11:00:00  1h00m     running  7       5 B      1\n",
	       "the run history");
	free(out);

	const char *objs = "[{\"key\":\"a/b.txt\",\"size\":10,\"status\":\"failed\",\"attempts\":3,"
			   "\"error\":\"AccessDenied\"},"
			   "{\"key\":\"evil\\u001b[2J\",\"size\":2048,\"status\":\"done\","
			   "\"attempts\":1,\"error\":null}]";
	out = capture(print_objects_h, objs, now);
	is_str(out,
	       "STATUS  SIZE     ATTEMPTS  KEY          ERROR\n"
	       "failed  10 B     3         a/b.txt      AccessDenied\n"
	       "done    2.0 KiB  1         evil\\x1b[2J\n",
	       "objects (control bytes of a key escaped)");
	free(out);

	const char *imgs = "[{\"ref\":\"library/nginx:1.27\",\"src_digest\":\"sha256:"
			   "0123456789abcdef0123\",\"status\":\"done\",\"error\":null}]";
	out = capture(print_images_h, imgs, now);
	is_str(out,
	       "STATUS  REF                 SRC-DIGEST           ERROR\n"
	       "done    library/nginx:1.27  sha256:0123456789ab\n",
	       "images");
	free(out);

	const char *task =
	    "{\"name\":\"photos\",\"type\":\"s3\",\"origin\":\"api\",\"read_only\":false,"
	    "\"state\":\"error\",\"error\":{\"code\":\"unreachable\",\"message\":\"src: "
	    "timeout\"},"
	    "\"definition\":{\"source\":\"src:b\",\"destination\":\"dst:b\",\"schedule\":\"every "
	    "2s\",\"workers\":16,\"delete\":false},"
	    "\"progress\":{\"transferred\":0},\"stats\":{\"objects\":{\"done\":5,\"failed\":1}},"
	    "\"last_run\":null,\"next_run\":1714564802,\"overlaps_skipped\":2}";
	out = capture(agentc_print_task, task, now);
	is_str(out,
	       "name:         photos\n"
	       "type:         s3 (from api)\n"
	       "state:        error\n"
	       "error:        unreachable: src: timeout\n"
	       "source:       src:b\n"
	       "destination:  dst:b\n"
	       "schedule:     every 2s\n"
	       "progress:     -\n"
	       "objects:      done 5, failed 1\n"
	       "last run:     -\n"
	       "next run:     in 2s\n"
	       "overlaps:     2\n"
	       "settings:\n"
	       "  delete = false\n"
	       "  destination = dst:b\n"
	       "  schedule = every 2s\n"
	       "  source = src:b\n"
	       "  workers = 16\n",
	       "one task");
	free(out);

	const char *evtask =
	    "{\"name\":\"e\",\"type\":\"s3\",\"state\":\"idle\",\"definition\":{\"events\":"
	    "\"sqs:https://sqs.eu-west-1.amazonaws.com/1/q\"},\"events\":{\"backlog\":3,"
	    "\"received\":120,\"ignored\":2,\"refused\":1}}";
	out = capture(agentc_print_task, evtask, now);
	ok(out && strstr(out, "events:       sqs: 3 waiting; since the agent started 120 "
			      "accepted, 2 ignored, 1 refused\n"),
	   "a task's events (%s)", out ? out : "");
	free(out);

	out = capture(agentc_print_tasks, "[]", now);
	ok(out && str_startswith(out, "NAME") && strchr(out, '\n') == out + strlen(out) - 1,
	   "no tasks: the header alone");
	free(out);
}

int main(void)
{
	xsnprintf(dir, sizeof(dir), "/tmp/dth-taskcli-XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	test_addr();
	test_errors();
	test_settings();
	test_config();
	test_formats();
	test_tables();
	char cmd[128];
	xsnprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", dir);
	return tap_done();
}
