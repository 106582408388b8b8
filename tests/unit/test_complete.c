/* Unit tests: the completions' candidates (agent/complete.c): remote names,
 * task names from the config and the manifest, a path's remote part, and the
 * private cache (freshness, what is refused). Listings against a server are
 * in tests/integration/test_complete.py. */
#include "common/compat.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/complete.h"
#include "common/buf.h"
#include "common/err.h"
#include "manifest/manifest.h"
#include "remote/remotes.h"
#include "tests/unit/tap.h"

static void collect(void *ctx, const char *cand)
{
	buf_addf(ctx, "%s,", cand);
}

static struct config *make_config(void)
{
	struct config *cfg = config_new_empty();
	struct dth_err err;
	err_clear(&err);
	const char *text = "[remote src]\ntype = s3\nprovider = ceph\n"
			   "endpoint = http://127.0.0.1:1\nregion = us-east-1\n"
			   "[remote srv2]\ntype = s3\nprovider = minio\n"
			   "endpoint = http://127.0.0.1:1\nregion = us-east-1\n"
			   "[remote hub]\ntype = registry\nurl = https://registry.example\n"
			   "[task photos]\nsource = src:b\ndestination = srv2:c\n"
			   "[task pets]\nsource = src:b\ndestination = srv2:d\n";
	int rc = config_parse_text(cfg, text, "test.conf", &err);
	if (!rc)
		rc = config_finish(cfg, (char *const[]){NULL}, &err);
	ok(rc == 0, "config parses (%s)", err.message);
	return cfg;
}

static void test_names(struct config *cfg, const char *tmp)
{
	struct buf b = BUF_INIT;
	complete_remotes(cfg, "", NULL, NULL, collect, &b);
	is_str(buf_str(&b), "src,srv2,hub,", "every remote, in order");
	buf_reset(&b);
	complete_remotes(cfg, "sr", "s3", ":", collect, &b);
	is_str(buf_str(&b), "src:,srv2:,", "s3 remotes starting with sr, with a colon");
	buf_reset(&b);
	is_int(complete_path(cfg, "h", NULL, 60, 100, collect, &b), 0, "path without a colon");
	is_str(buf_str(&b), "", "a registry is no path's remote");
	buf_reset(&b);
	is_int(complete_path(cfg, "nope:", NULL, 60, 100, collect, &b), -ENOENT, "unknown remote");
	is_int(complete_path(cfg, "hub:x", NULL, 60, 100, collect, &b), -EINVAL,
	       "a registry has no buckets");
	is_str(buf_str(&b), "", "nothing emitted");

	/* tasks: the config's, then the manifest's, each once */
	struct buf dir = BUF_INIT;
	buf_addf(&dir, "%s/state", tmp);
	buf_reset(&b);
	ok(complete_tasks(cfg, buf_str(&dir), "", collect, &b) < 0, "no manifest: an error");
	is_str(buf_str(&b), "photos,pets,", "... and the config's tasks anyway");
	struct dth_err err;
	err_clear(&err);
	struct manifest *m = manifest_open(buf_str(&dir), MANIFEST_RDWR, &err);
	ok(m != NULL, "manifest made");
	const char *names[] = {"photos", "archive", "pictures"};
	for (size_t i = 0; m && i < 3; i++) {
		struct task_record t;
		uint32_t id;
		bool created;
		memset(&t, 0, sizeof(t));
		str_copy_fit(t.name, names[i], sizeof(t.name));
		str_copy_fit(t.kind, "s3", sizeof(t.kind));
		is_int(manifest_task_ensure(m, &t, &id, &created), 0, "task %s recorded", names[i]);
	}
	manifest_free(m);
	buf_reset(&b);
	is_int(complete_tasks(cfg, buf_str(&dir), "p", collect, &b), 0, "tasks from both");
	is_str(buf_str(&b), "photos,pets,pictures,", "starting with p, photos once");
	buf_reset(&b);
	is_int(complete_tasks(NULL, buf_str(&dir), "", collect, &b), 0, "no config");
	is_str(buf_str(&b), "photos,archive,pictures,", "the manifest's in id order");
	buf_release(&dir);
	buf_release(&b);
}

static void test_cache(const char *tmp)
{
	struct buf dir = BUF_INIT, out = BUF_INIT;
	bool trunc = true;
	buf_addf(&dir, "%s/cache/dth/complete", tmp);
	const char *d = buf_str(&dir);
	is_int(complete_cache_get(d, "k", 60, &out, &trunc), -ENOENT, "absent directory");
	is_int(complete_cache_put(d, "k", "a\nb/\n", 5, false), 0, "put makes the directories");
	struct stat st;
	ok(stat(d, &st) == 0 && (st.st_mode & 0777) == 0700, "directory mode 0700");
	is_int(complete_cache_get(d, "k", 60, &out, &trunc), 0, "fresh answer");
	is_str(buf_str(&out), "a\nb/\n", "entries kept");
	ok(!trunc, "not truncated");
	buf_reset(&out);
	is_int(complete_cache_get(d, "other", 60, &out, &trunc), -ENOENT, "another key");
	is_int(complete_cache_get(d, "k", 0, &out, &trunc), -ENOENT, "stale with ttl 0");
	is_int(complete_cache_put(d, "e", "", 0, true), 0, "an empty answer");
	is_int(complete_cache_get(d, "e", 60, &out, &trunc), 0, "empty answer read");
	ok(out.len == 0 && trunc, "empty and truncated");

	/* find the file of "k": the only one besides "e"'s */
	struct buf f = BUF_INIT;
	char cmd[512];
	xsnprintf(cmd, sizeof(cmd), "ls %s", d);
	FILE *p = popen(cmd, "r");
	char line[256];
	int n = 0;
	while (p && fgets(line, sizeof(line), p)) {
		line[strcspn(line, "\n")] = '\0';
		n++;
		if (!f.len)
			buf_addf(&f, "%s/%s", d, line);
	}
	if (p)
		pclose(p);
	is_int(n, 2, "two files, named by a hash (no temporary left)");
	ok(stat(buf_str(&f), &st) == 0 && (st.st_mode & 0777) == 0600, "file mode 0600");

	/* not private: refused */
	ok(chmod(buf_str(&f), 0644) == 0, "chmod file 0644");
	buf_reset(&out);
	int r1 = complete_cache_get(d, "k", 60, &out, &trunc);
	int r2 = complete_cache_get(d, "e", 60, &out, &trunc);
	ok(r1 == -EPERM || r2 == -EPERM, "a file others can read is refused");
	ok(chmod(buf_str(&f), 0600) == 0, "chmod back");
	ok(chmod(d, 0755) == 0, "chmod directory 0755");
	is_int(complete_cache_get(d, "k", 60, &out, &trunc), -EPERM,
	       "an open directory is refused");
	is_int(complete_cache_put(d, "k", "x\n", 2, false), -EPERM, "... for writing too");
	ok(chmod(d, 0700) == 0, "chmod back");

	/* a symbolic link in place of the file is refused */
	struct buf target = BUF_INIT;
	buf_addf(&target, "%s/elsewhere", tmp);
	ok(rename(buf_str(&f), buf_str(&target)) == 0 &&
	       symlink(buf_str(&target), buf_str(&f)) == 0,
	   "file replaced by a symlink");
	r1 = complete_cache_get(d, "k", 60, &out, &trunc);
	r2 = complete_cache_get(d, "e", 60, &out, &trunc);
	ok(r1 == -EPERM || r2 == -EPERM, "a symlink is refused");

	/* a garbled file is as if absent */
	is_int(complete_cache_put(d, "g", "no newline", 10, false), 0, "put garbled");
	is_int(complete_cache_get(d, "g", 60, &out, &trunc), -ENOENT, "garbled taken as absent");

	setenv("XDG_CACHE_HOME", "/x/cache", 1);
	char *cd = complete_cache_dir();
	is_str(cd, "/x/cache/dth/complete", "XDG_CACHE_HOME");
	free(cd);
	unsetenv("XDG_CACHE_HOME");
	setenv("HOME", "/home/u", 1);
	cd = complete_cache_dir();
	is_str(cd, "/home/u/.cache/dth/complete", "HOME");
	free(cd);
	buf_release(&target);
	buf_release(&f);
	buf_release(&dir);
	buf_release(&out);
}

int main(void)
{
	char tmp[] = "/tmp/dth-test-complete-XXXXXX";
	if (!mkdtemp(tmp)) {
		perror("mkdtemp");
		return 1;
	}
	struct config *cfg = make_config();
	test_names(cfg, tmp);
	config_free(cfg);
	test_cache(tmp);
	char cmd[128];
	xsnprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", tmp);
	return tap_done();
}
