/* Unit tests of agent/prom.c, the Prometheus text writer: exact output,
 * grouping and order, escaping of hostile label values (quotes, backslashes,
 * newlines, invalid UTF-8, 4 KiB long), the name and label rules, repeated
 * series, number formatting, histograms; and, when promtool is on PATH, the
 * output of a rich exposition through `promtool check metrics`, with a
 * broken text that it must refuse (so that check can fail) and names our
 * rules refuse that promtool lints too (so the rules are not weaker). */
#include "common/compat.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/prom.h"
#include "common/buf.h"
#include "common/util.h"
#include "tests/unit/tap.h"

static void skip(const char *reason)
{
	printf("ok %d # SKIP %s\n", ++tap_n, reason);
}

static const char *render(struct prom *p, struct buf *b)
{
	buf_reset(b);
	prom_write(p, b);
	return buf_str(b);
}

static struct prom_family *fam(struct prom *p, const char *name, enum prom_type t)
{
	struct prom_family *f = NULL;
	int rc = prom_family(p, name, t, "Help.", &f);
	if (rc)
		printf("# prom_family(%s) = %d\n", name, rc);
	return f;
}

#define L(n, v) ((struct prom_label){(n), (v)})

static void test_exact(void)
{
	struct prom *p = prom_new();
	struct buf b;
	buf_init(&b);
	is_str(render(p, &b), "", "no family: empty output");
	struct prom_family *objs = NULL, *depth = NULL, *dur = NULL, *idle = NULL;
	ok(!prom_family(p, "dth_objects_transferred_total", PROM_COUNTER, "Objects copied.", &objs),
	   "counter declared");
	ok(!prom_family(p, "dth_queue_depth", PROM_GAUGE, "Objects waiting.", &depth),
	   "gauge declared");
	ok(!prom_family(p, "dth_run_duration_seconds", PROM_HISTOGRAM, "Run time.", &dur),
	   "histogram declared");
	ok(!prom_family(p, "dth_idle_tasks", PROM_GAUGE, "Nothing\\to \"do\"\nhere.", &idle),
	   "gauge with a help to escape declared");
	/* Interleaved: the output groups them by family. */
	struct prom_label t1[] = {L("task", "t1")}, t2[] = {L("task", "t2")};
	ok(!prom_add_u64(objs, t1, 1, 42), "t1 objects");
	ok(!prom_add(depth, t1, 1, 3), "t1 depth");
	ok(!prom_add_u64(objs, t2, 1, 7), "t2 objects");
	double bounds[] = {0.1, 1, 10};
	uint64_t counts[] = {1, 2, 2};
	ok(!prom_histogram(dur, t1, 1, bounds, counts, 3, 2.5, 3), "t1 histogram");
	ok(!prom_add(depth, t2, 1, 0.25), "t2 depth");
	ok(!prom_add(depth, NULL, 0, -1), "depth without labels");
	is_str(render(p, &b),
	       "# HELP dth_objects_transferred_total Objects copied.\n"
	       "# TYPE dth_objects_transferred_total counter\n"
	       "dth_objects_transferred_total{task=\"t1\"} 42\n"
	       "dth_objects_transferred_total{task=\"t2\"} 7\n"
	       "# HELP dth_queue_depth Objects waiting.\n"
	       "# TYPE dth_queue_depth gauge\n"
	       "dth_queue_depth{task=\"t1\"} 3\n"
	       "dth_queue_depth{task=\"t2\"} 0.25\n"
	       "dth_queue_depth -1\n"
	       "# HELP dth_run_duration_seconds Run time.\n"
	       "# TYPE dth_run_duration_seconds histogram\n"
	       "dth_run_duration_seconds_bucket{task=\"t1\",le=\"0.1\"} 1\n"
	       "dth_run_duration_seconds_bucket{task=\"t1\",le=\"1\"} 2\n"
	       "dth_run_duration_seconds_bucket{task=\"t1\",le=\"10\"} 2\n"
	       "dth_run_duration_seconds_bucket{task=\"t1\",le=\"+Inf\"} 3\n"
	       "dth_run_duration_seconds_sum{task=\"t1\"} 2.5\n"
	       "dth_run_duration_seconds_count{task=\"t1\"} 3\n"
	       "# HELP dth_idle_tasks Nothing\\\\to \"do\"\\nhere.\n"
	       "# TYPE dth_idle_tasks gauge\n",
	       "families in declaration order, samples grouped, empty family keeps HELP/TYPE");
	ok(b.len && b.data[b.len - 1] == '\n', "output ends with a newline");

	prom_clear(p);
	is_str(render(p, &b),
	       "# HELP dth_objects_transferred_total Objects copied.\n"
	       "# TYPE dth_objects_transferred_total counter\n"
	       "# HELP dth_queue_depth Objects waiting.\n"
	       "# TYPE dth_queue_depth gauge\n"
	       "# HELP dth_run_duration_seconds Run time.\n"
	       "# TYPE dth_run_duration_seconds histogram\n"
	       "# HELP dth_idle_tasks Nothing\\\\to \"do\"\\nhere.\n"
	       "# TYPE dth_idle_tasks gauge\n",
	       "prom_clear drops samples, keeps families");
	ok(!prom_add_u64(objs, t1, 1, 43), "the same series again after prom_clear");
	ok(!prom_histogram(dur, NULL, 0, NULL, NULL, 0, 0, 0), "a histogram without buckets");
	is_str(strstr(render(p, &b), "dth_run_duration_seconds_bucket"),
	       "dth_run_duration_seconds_bucket{le=\"+Inf\"} 0\n"
	       "dth_run_duration_seconds_sum 0\n"
	       "dth_run_duration_seconds_count 0\n"
	       "# HELP dth_idle_tasks Nothing\\\\to \"do\"\\nhere.\n"
	       "# TYPE dth_idle_tasks gauge\n",
	       "histogram without labels or buckets");
	buf_release(&b);
	prom_free(p);
}

static void test_escaping(void)
{
	struct prom *p = prom_new();
	struct prom_family *g = fam(p, "dth_x", PROM_GAUGE);
	struct buf b;
	buf_init(&b);
	struct prom_label l[] = {L("key", "a\\b\"c\nd\te\rf")};
	ok(!prom_add(g, l, 1, 1), "quotes, backslash, newline, tab, CR");
	is_str(strstr(render(p, &b), "dth_x{"), "dth_x{key=\"a\\\\b\\\"c\\nd\te\rf\"} 1\n",
	       "\\ \" and newline escaped, tab and CR kept");
	prom_clear(p);
	/* valid: é (2), € (3), 😀 (4); invalid: lone continuation, 0xff, a cut
	 * 3-byte sequence, an overlong '/', a UTF-16 surrogate, > U+10FFFF. */
	struct prom_label u[] = {L("key", "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80|\x80|\xff|\xe2\x82|"
					  "\xc0\xaf|\xed\xa0\x80|\xf4\x90\x80\x80")};
	ok(!prom_add(g, u, 1, 1), "invalid UTF-8 accepted");
	const char *out = strstr(render(p, &b), "dth_x{");
	is_str(out,
	       "dth_x{key=\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80|\xEF\xBF\xBD|\xEF\xBF\xBD|"
	       "\xEF\xBF\xBD\xEF\xBF\xBD|\xEF\xBF\xBD\xEF\xBF\xBD|"
	       "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD|"
	       "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"} "
	       "1\n",
	       "valid UTF-8 kept, each invalid byte replaced by U+FFFD");
	ok(utf8_valid(b.data, b.len), "the whole output is valid UTF-8");

	struct prom_family *h = NULL;
	ok(!prom_family(p, "dth_y", PROM_GAUGE, "bad \xff byte\\ and\nline", &h), "help with junk");
	ok(strstr(render(p, &b), "# HELP dth_y bad \xEF\xBF\xBD byte\\\\ and\\nline\n") != NULL,
	   "help escaped and repaired");
	buf_release(&b);
	prom_free(p);
}

/* Values of 4 KiB made of the worst bytes, all different, as object keys
 * and task names may be: one line each, no raw newline, valid UTF-8. */
static void hostile_value(char *v, size_t n, unsigned seed)
{
	static const char junk[] = "\\\"\n\xff\xc3\xe2\x82\xac\x80\rZ{}=,#";
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		v[i] = junk[(seed >> 16) % (sizeof(junk) - 1)];
	}
	v[n] = '\0';
}

static void test_hostile(void)
{
	struct prom *p = prom_new();
	struct prom_family *g = fam(p, "dth_hostile", PROM_GAUGE);
	struct buf b;
	buf_init(&b);
	char v[4097];
	int added = 0;
	for (unsigned i = 0; i < 50; i++) {
		hostile_value(v, sizeof(v) - 1, i + 1);
		struct prom_label l[] = {L("task", "t"), L("key", v)};
		added += !prom_add_u64(g, l, 2, i);
	}
	is_int(added, 50, "50 hostile 4 KiB values added");
	render(p, &b);
	int lines = 0;
	for (size_t i = 0; i < b.len; i++)
		lines += b.data[i] == '\n';
	is_int(lines, 52, "one line per sample (and HELP, TYPE)");
	ok(utf8_valid(b.data, b.len), "output is valid UTF-8");
	ok(strlen(b.data) == b.len, "no NUL in the output");
	buf_release(&b);
	prom_free(p);
}

static void test_series(void)
{
	struct prom *p = prom_new();
	struct prom_family *g = fam(p, "dth_requests_total", PROM_COUNTER);
	struct prom_family *o = fam(p, "dth_errors_total", PROM_COUNTER);
	struct buf b;
	buf_init(&b);
	struct prom_label ab[] = {L("remote", "a"), L("kind", "put")};
	struct prom_label ba[] = {L("kind", "put"), L("remote", "a")};
	struct prom_label ab2[] = {L("remote", "a"), L("kind", "get")};
	ok(!prom_add_u64(g, ab, 2, 1), "first series");
	render(p, &b);
	size_t before = b.len;
	is_int(prom_add_u64(g, ab, 2, 2), -EEXIST, "same labels again: -EEXIST");
	is_int(prom_add_u64(g, ba, 2, 2), -EEXIST, "same labels in another order: -EEXIST");
	ok(!prom_add_u64(g, ab2, 2, 2), "another value: a new series");
	ok(!prom_add_u64(o, ab, 2, 2), "the same labels in another family");
	ok(!prom_add_u64(g, NULL, 0, 1), "no labels");
	is_int(prom_add_u64(g, NULL, 0, 1), -EEXIST, "no labels twice: -EEXIST");
	struct prom_label x1[] = {L("key", "\xff")}, x2[] = {L("key", "\xfe")};
	ok(!prom_add_u64(g, x1, 1, 1), "an invalid byte");
	is_int(prom_add_u64(g, x2, 1, 1), -EEXIST, "another invalid byte prints the same: -EEXIST");
	ok(strstr(render(p, &b), "dth_requests_total{kind=\"put\",remote=\"a\"} 1\n") != NULL,
	   "labels printed sorted by name");
	ok(b.len > before, "output grew");
	/* Many series: the table grows and still finds them all. */
	int fresh = 0, dup = 0;
	char name[32];
	struct prom_family *m = NULL;
	ok(!prom_family(p, "dth_many_things", PROM_GAUGE, "Many.", &m), "dth_many_things");
	for (int round = 0; round < 2; round++)
		for (int i = 0; i < 3000; i++) {
			xsnprintf(name, sizeof(name), "n%d", i);
			struct prom_label l[] = {L("i", name)};
			int rc = prom_add(m, l, 1, i);
			fresh += rc == 0;
			dup += rc == -EEXIST;
		}
	ok(fresh == 3000 && dup == 3000, "3000 series added, each refused once more (%d, %d)",
	   fresh, dup);
	buf_release(&b);
	prom_free(p);
}

/* ---- promtool ---- */

static bool on_path(const char *prog)
{
	const char *path = getenv("PATH");
	if (!path)
		return false;
	char *copy = xstrdup(path), *save = NULL;
	bool found = false;
	for (char *dir = strtok_r(copy, ":", &save); dir && !found;
	     dir = strtok_r(NULL, ":", &save)) {
		char full[4096];
		xsnprintf(full, sizeof(full), "%.2000s/%.100s", dir, prog);
		found = access(full, X_OK) == 0;
	}
	free(copy);
	return found;
}

static int write_all(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t w = write(fd, s, n);
		if (w < 0)
			return -1;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Run `promtool check metrics` with text on stdin; its stderr into err.
 * Returns its exit status, or -1 when it could not run. */
static int promtool(const char *text, size_t len, struct buf *err)
{
	char in[] = "/tmp/dth-prom-in.XXXXXX", er[] = "/tmp/dth-prom-err.XXXXXX";
	int ifd = mkstemp(in), efd = mkstemp(er), status = -1;
	buf_reset(err);
	if (ifd < 0 || efd < 0 || write_all(ifd, text, len) || lseek(ifd, 0, SEEK_SET))
		goto out;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(ifd, 0);
		dup2(efd, 2);
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 1);
		execlp("promtool", "promtool", "check", "metrics", (char *)NULL);
		_exit(127);
	}
	int st;
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
		goto out;
	status = WEXITSTATUS(st);
	char chunk[4096];
	ssize_t r;
	lseek(efd, 0, SEEK_SET);
	while ((r = read(efd, chunk, sizeof(chunk))) > 0)
		buf_add(err, chunk, (size_t)r);
out:
	if (ifd >= 0)
		close(ifd), unlink(in);
	if (efd >= 0)
		close(efd), unlink(er);
	return status;
}

/* A page with every kind of family and value, and hostile label values. */
static void rich(struct prom *p)
{
	struct prom_family *objs = NULL, *bytes = NULL, *depth = NULL, *last = NULL, *dur = NULL,
			   *req = NULL, *empty = NULL, *odd = NULL;
	int rc = prom_family(p, "dth_task_objects_transferred_total", PROM_COUNTER,
			     "Objects copied, per task.", &objs) |
		 prom_family(p, "dth_task_transferred_bytes_total", PROM_COUNTER,
			     "Bytes copied, per task.", &bytes) |
		 prom_family(p, "dth_task_queue_depth", PROM_GAUGE, "Objects waiting.", &depth) |
		 prom_family(p, "dth_task_last_success_timestamp_seconds", PROM_GAUGE,
			     "End of the last good run, Unix time.", &last) |
		 prom_family(p, "dth_task_run_duration_seconds", PROM_HISTOGRAM,
			     "Run durations \"per\" task\\\nsecond line \xff.", &dur) |
		 prom_family(p, "dth_requests_total", PROM_COUNTER, "Requests.", &req) |
		 prom_family(p, "dth_mounts_up", PROM_GAUGE, "Mounts serving.", &empty) |
		 prom_family(p, "dth_odd_values", PROM_GAUGE, "Odd values.", &odd);
	if (rc) {
		printf("# rich: a family was refused\n");
		return;
	}
	char v[4097];
	double bounds[] = {0.5, 1, 60, 3600};
	uint64_t counts[] = {0, 4, 4, 9};
	for (unsigned i = 0; i < 8; i++) {
		hostile_value(v, i == 0 ? 0 : sizeof(v) - 1, i);
		struct prom_label t[] = {L("task", v)};
		struct prom_label r[] = {L("remote", v), L("kind", i & 1 ? "put" : "get")};
		rc |= prom_add_u64(objs, t, 1, i * 1000) |
		      prom_add_u64(bytes, t, 1, UINT64_MAX - i) | prom_add(depth, t, 1, i / 3.0) |
		      prom_add(last, t, 1, 1700000000.125 + i) |
		      prom_histogram(dur, t, 1, bounds, counts, 4, 1234.5, 10 + i) |
		      prom_add_u64(req, r, 2, i);
	}
	struct prom_label k[] = {L("kind", "nan")}, k2[] = {L("kind", "inf")},
			  k3[] = {L("kind", "-inf")}, k4[] = {L("kind", "tiny")};
	rc |= prom_add(odd, k, 1, NAN) | prom_add(odd, k2, 1, INFINITY) |
	      prom_add(odd, k3, 1, -INFINITY) | prom_add(odd, k4, 1, 4.9e-324);
	if (rc)
		printf("# rich: a sample was refused\n");
}

static void test_promtool(void)
{
	if (!on_path("promtool")) {
		skip("promtool not on PATH (Debian: apt-get install prometheus)");
		return;
	}
	signal(SIGPIPE, SIG_IGN);
	struct prom *p = prom_new();
	struct buf b, err;
	buf_init(&b);
	buf_init(&err);
	rich(p);
	render(p, &b);
	int rc = promtool(b.data, b.len, &err);
	ok(rc == 0 && err.len == 0, "promtool check metrics accepts the rich page (rc %d)", rc);
	if (err.len)
		printf("# promtool: %s\n", buf_str(&err));

	/* The check can fail: the same page cut before its last newline, and
	 * with a second TYPE line, are parse errors; a counter without _total
	 * is a lint problem. */
	rc = promtool(b.data, b.len - 1, &err);
	ok(rc == 1, "promtool refuses the page without its final newline (rc %d)", rc);
	struct buf twice;
	buf_init(&twice);
	buf_add(&twice, b.data, b.len);
	buf_adds(&twice, "# TYPE dth_requests_total counter\n");
	rc = promtool(twice.data, twice.len, &err);
	ok(rc == 1, "promtool refuses a second TYPE line (rc %d)", rc);
	buf_release(&twice);
	const char *lint =
	    "# HELP dth_objects Objects.\n# TYPE dth_objects counter\ndth_objects 1\n";
	rc = promtool(lint, strlen(lint), &err);
	ok(rc == 3, "promtool lints a counter without _total (rc %d)", rc);
	buf_release(&b);
	buf_release(&err);
	prom_free(p);
}

/* ---- names ---- */

struct ncase {
	const char *name;
	enum prom_type type;
	int rc;
	bool lint; /* refused by us, and linted (rc 3) by promtool too */
};

static const struct ncase names[] = {
    {"dth_objects_transferred_total", PROM_COUNTER, 0, false},
    {"dth_transferred_bytes_total", PROM_COUNTER, 0, false},
    {"dth_queue_depth", PROM_GAUGE, 0, false},
    {"dth_run_duration_seconds", PROM_GAUGE, 0, false},
    {"dth_last_success_timestamp_seconds", PROM_GAUGE, 0, false},
    {"_dth_x", PROM_GAUGE, 0, false},
    {"dth_request_duration_seconds", PROM_HISTOGRAM, 0, false},
    {"dth_distance_meters", PROM_GAUGE, 0, false},
    {"", PROM_GAUGE, -EINVAL, false},
    {"1dth", PROM_GAUGE, -EINVAL, false},
    {"dth-x", PROM_GAUGE, -EINVAL, false},
    {"dth x", PROM_GAUGE, -EINVAL, false},
    {"__dth", PROM_GAUGE, -EINVAL, false},
    {"dth_\xc3\xa9", PROM_GAUGE, -EINVAL, false},
    {"dthQueueDepth", PROM_GAUGE, -EINVAL, true},
    {"dth:queue", PROM_GAUGE, -EINVAL, true},
    {"dth_objects", PROM_COUNTER, -EINVAL, true},
    {"dth_depth_total", PROM_GAUGE, -EINVAL, true},
    {"dth_duration_seconds_total", PROM_HISTOGRAM, -EINVAL, true},
    {"dth_x_count", PROM_GAUGE, -EINVAL, true},
    {"dth_x_sum", PROM_GAUGE, -EINVAL, true},
    {"dth_x_bucket", PROM_GAUGE, -EINVAL, true},
    {"dth_x_count", PROM_HISTOGRAM, -EINVAL, false},
    {"dth_x_bucket", PROM_HISTOGRAM, -EINVAL, false},
    {"dth_latency_ms", PROM_GAUGE, -EINVAL, true},
    {"dth_latency_s", PROM_GAUGE, -EINVAL, true},
    {"dth_size_mb", PROM_GAUGE, -EINVAL, true},
    {"dth_h_seconds", PROM_GAUGE, -EINVAL, true},
    {"dth_read_sec_total", PROM_COUNTER, -EINVAL, true},
    {"dth_time_milliseconds", PROM_GAUGE, -EINVAL, true},
    {"dth_run_minutes", PROM_GAUGE, -EINVAL, true},
    {"dth_size_kilobytes", PROM_GAUGE, -EINVAL, true},
    {"dth_link_bits", PROM_GAUGE, -EINVAL, true},
    {"dth_queue_gauge", PROM_GAUGE, -EINVAL, true},
    {"dth_gauge_depth", PROM_GAUGE, -EINVAL, true},
    {"dth_runs_counter_total", PROM_COUNTER, -EINVAL, true},
    {"dth_run_histogram", PROM_HISTOGRAM, -EINVAL, true},
};

/* The page a careless writer would print for that family. */
static void naive_page(struct buf *b, const struct ncase *c)
{
	static const char *const types[] = {"counter", "gauge", "histogram"};
	buf_reset(b);
	buf_addf(b, "# HELP %s Help.\n# TYPE %s %s\n", c->name, c->name, types[c->type]);
	if (c->type == PROM_HISTOGRAM)
		buf_addf(b, "%s_bucket{le=\"+Inf\"} 1\n%s_sum 1\n%s_count 1\n", c->name, c->name,
			 c->name);
	else
		buf_addf(b, "%s 1\n", c->name);
}

static void test_names(void)
{
	struct prom *p = prom_new();
	struct prom_family *f = NULL;
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		int rc = prom_family(p, names[i].name, names[i].type, "Help.", &f);
		is_int(rc, names[i].rc, "name '%s' (type %d)", names[i].name, (int)names[i].type);
	}
	char longname[PROM_NAME_MAX + 2];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	is_int(prom_family(p, longname, PROM_GAUGE, "Help.", &f), -EINVAL, "name too long");
	longname[PROM_NAME_MAX] = '\0';
	is_int(prom_family(p, longname, PROM_GAUGE, "Help.", &f), 0, "name of PROM_NAME_MAX");
	is_int(prom_family(p, "dth_queue_depth", PROM_GAUGE, "Again.", &f), -EEXIST,
	       "a family declared twice: -EEXIST");
	is_int(prom_family(p, "dth_queue_depth", PROM_COUNTER, "Again.", &f), -EINVAL,
	       "checked before the repeat");
	is_int(prom_family(p, "dth_other", PROM_GAUGE, "", &f), -EINVAL, "empty help");
	is_int(prom_family(p, "dth_other", PROM_GAUGE, NULL, &f), -EINVAL, "no help");
	is_int(prom_family(p, "dth_other", (enum prom_type)7, "Help.", &f), -EINVAL, "bad type");
	is_int(prom_family(p, NULL, PROM_GAUGE, "Help.", &f), -EINVAL, "no name");
	prom_free(p);

	if (!on_path("promtool")) {
		skip("promtool not on PATH: the refused names are not compared with its lint");
		return;
	}
	struct buf b, err;
	buf_init(&b);
	buf_init(&err);
	int agree = 0, total = 0;
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		if (!names[i].lint)
			continue;
		total++;
		naive_page(&b, &names[i]);
		int rc = promtool(b.data, b.len, &err);
		if (rc == 3)
			agree++;
		else
			printf("# promtool rc %d for '%s'\n", rc, names[i].name);
	}
	is_int(agree, total, "promtool lints every name refused for its lint rules (%d)", total);
	buf_release(&b);
	buf_release(&err);
}

/* ---- labels ---- */

static void test_labels(void)
{
	struct prom *p = prom_new();
	struct prom_family *g = fam(p, "dth_x", PROM_GAUGE);
	struct buf b;
	buf_init(&b);
	char longname[PROM_NAME_MAX + 2];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	static const char *const bad[] = {"le",	 "quantile", "__name__", "__x",	     "Task",
					  "a-b", "1a",	     "",	 "t\xc3\xa9"};
	render(p, &b);
	size_t before = b.len;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct prom_label l[] = {L("task", "t"), L(bad[i], "v")};
		is_int(prom_add(g, l, 2, 1), -EINVAL, "label name '%s' refused", bad[i]);
	}
	struct prom_label ln[] = {L(longname, "v")};
	is_int(prom_add(g, ln, 1, 1), -EINVAL, "label name too long");
	struct prom_label nn[] = {L(NULL, "v")}, nv[] = {L("a", NULL)};
	is_int(prom_add(g, nn, 1, 1), -EINVAL, "NULL label name");
	is_int(prom_add(g, nv, 1, 1), -EINVAL, "NULL label value");
	struct prom_label dup[] = {L("a", "1"), L("b", "2"), L("a", "1")};
	is_int(prom_add(g, dup, 3, 1), -EINVAL, "a label named twice");
	is_int(prom_add(g, NULL, 1, 1), -EINVAL, "n labels but no array");
	render(p, &b);
	is_int(b.len, before, "nothing was added by the refused samples");
	struct prom_label fine[] = {L("_x", ""), L("remote_2", "v")};
	ok(!prom_add(g, fine, 2, 1), "label names _x and remote_2, an empty value");
	ok(strstr(render(p, &b), "dth_x{_x=\"\",remote_2=\"v\"} 1\n") != NULL, "printed");
	buf_release(&b);
	prom_free(p);
}

/* ---- values ---- */

static const char *value_of(double v, struct buf *b)
{
	struct prom *p = prom_new();
	struct prom_family *g = fam(p, "dth_v", PROM_GAUGE);
	if (prom_add(g, NULL, 0, v))
		printf("# prom_add refused %g\n", v);
	render(p, b);
	prom_free(p);
	const char *nl = b->len > 1 ? memrchr(b->data, ' ', b->len) : NULL;
	b->data[b->len - 1] = '\0';
	return nl ? nl + 1 : "";
}

static double read_value(const char *s)
{
	if (!strcmp(s, "+Inf"))
		return INFINITY;
	if (!strcmp(s, "-Inf"))
		return -INFINITY;
	return strtod(s, NULL);
}

static void test_values(void)
{
	struct buf b;
	buf_init(&b);
	static const struct {
		double v;
		const char *s;
	} cases[] = {
	    {0, "0"},
	    {-0.0, "-0"},
	    {3, "3"},
	    {-42, "-42"},
	    {0.1, "0.1"},
	    {1.0 / 3, "0.3333333333333333"},
	    {1e300, "1e+300"},
	    {9007199254740992.0, "9007199254740992"},
	    {9007199254740994.0, "9007199254740994"},
	    {1e20, "1e+20"},
	    {1700000000.125, "1700000000.125"},
	    {4.9e-324, "4.94065645841247e-324"},
	    {INFINITY, "+Inf"},
	    {-INFINITY, "-Inf"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		is_str(value_of(cases[i].v, &b), cases[i].s, "value %s", cases[i].s);
	is_str(value_of(NAN, &b), "NaN", "NaN");

	int exact = 0;
	uint64_t seed = 88172645463325252ULL;
	for (int i = 0; i < 2000; i++) {
		seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
		double v;
		uint64_t bits = i & 1 ? seed : (seed >> 12) | 0x3ff0000000000000ULL;
		memcpy(&v, &bits, sizeof(v));
		if (isnan(v)) {
			exact++;
			continue;
		}
		double back = read_value(value_of(v, &b));
		exact += memcmp(&back, &v, sizeof(v)) == 0;
	}
	is_int(exact, 2000, "2000 random doubles read back exactly");

	struct prom *p = prom_new();
	struct prom_family *c = fam(p, "dth_c_total", PROM_COUNTER);
	is_int(prom_add(c, NULL, 0, -1), -EINVAL, "negative counter refused");
	is_int(prom_add(c, NULL, 0, NAN), -EINVAL, "NaN counter refused");
	is_int(prom_add(c, NULL, 0, INFINITY), -EINVAL, "infinite counter refused");
	ok(!prom_add_u64(c, NULL, 0, UINT64_MAX), "UINT64_MAX counter");
	ok(strstr(render(p, &b), "dth_c_total 18446744073709551615\n") != NULL,
	   "a u64 is printed exactly");
	buf_release(&b);
	prom_free(p);
}

/* ---- histograms ---- */

static void test_histograms(void)
{
	struct prom *p = prom_new();
	struct prom_family *h = NULL;
	is_int(prom_family(p, "dth_h_duration_seconds", PROM_HISTOGRAM, "H.", &h), -EINVAL,
	       "'_h_' is an abbreviated unit");
	h = fam(p, "dth_duration_seconds", PROM_HISTOGRAM);
	struct prom_family *g = fam(p, "dth_g", PROM_GAUGE);
	struct buf b;
	buf_init(&b);
	render(p, &b);
	size_t before = b.len;
	double up[] = {1, 2}, same[] = {1, 1}, down[] = {2, 1}, inf[] = {1, INFINITY},
	       nan[] = {NAN, 1};
	uint64_t c12[] = {1, 2}, c21[] = {2, 1};
	struct prom_label le[] = {L("le", "1")};
	is_int(prom_add(h, NULL, 0, 1), -EINVAL, "prom_add on a histogram");
	is_int(prom_histogram(g, NULL, 0, up, c12, 2, 1, 2), -EINVAL, "prom_histogram on a gauge");
	is_int(prom_histogram(h, NULL, 0, same, c12, 2, 1, 2), -EINVAL, "equal bounds");
	is_int(prom_histogram(h, NULL, 0, down, c12, 2, 1, 2), -EINVAL, "decreasing bounds");
	is_int(prom_histogram(h, NULL, 0, inf, c12, 2, 1, 2), -EINVAL, "an infinite bound");
	is_int(prom_histogram(h, NULL, 0, nan, c12, 2, 1, 2), -EINVAL, "a NaN bound");
	is_int(prom_histogram(h, NULL, 0, up, c21, 2, 1, 2), -EINVAL, "decreasing counts");
	is_int(prom_histogram(h, NULL, 0, up, c12, 2, 1, 1), -EINVAL, "count below a bucket");
	is_int(prom_histogram(h, NULL, 0, NULL, NULL, 2, 1, 2), -EINVAL, "no arrays");
	is_int(prom_histogram(h, le, 1, up, c12, 2, 1, 2), -EINVAL, "a label named le");
	render(p, &b);
	is_int(b.len, before, "nothing was added by the refused histograms");
	struct prom_label t[] = {L("task", "a")};
	ok(!prom_histogram(h, t, 1, up, c12, 2, 0.5, 7), "a histogram");
	is_int(prom_histogram(h, t, 1, up, c12, 2, 0.5, 7), -EEXIST, "the same series again");
	ok(strstr(render(p, &b), "dth_duration_seconds_bucket{task=\"a\",le=\"2\"} 2\n"
				 "dth_duration_seconds_bucket{task=\"a\",le=\"+Inf\"} 7\n"
				 "dth_duration_seconds_sum{task=\"a\"} 0.5\n"
				 "dth_duration_seconds_count{task=\"a\"} 7\n") != NULL,
	   "+Inf bucket, _sum and _count");
	buf_release(&b);
	prom_free(p);
}

int main(void)
{
	test_exact();
	test_escaping();
	test_hostile();
	test_series();
	test_names();
	test_labels();
	test_values();
	test_histograms();
	test_promtool();
	return tap_done();
}
