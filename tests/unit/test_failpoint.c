/* Unit tests of common/failpoint.c: DTH_FAILPOINT parsing, and a child that
 * dies by SIGKILL at exactly the N-th hit of the armed point. */
#include "common/compat.h"

#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/failpoint.h"
#include "tests/unit/tap.h"

static void test_parse(void)
{
	struct dth_err err;
	enum failpoint fp;
	uint64_t n;
	err_clear(&err);
	ok(failpoint_parse("part-uploaded:7", &fp, &n, &err) == 0 &&
	       fp == FAILPOINT_PART_UPLOADED && n == 7,
	   "part-uploaded:7");
	ok(failpoint_parse("manifest-put", &fp, &n, &err) == 0 && fp == FAILPOINT_MANIFEST_PUT &&
	       n == 1,
	   "a name alone means its first hit");
	static const char *const bad[] = {"part-uploaded:0",
					  "part-uploaded:",
					  "part-uploaded:x",
					  "part-uploaded:-1",
					  "part-upload:3",
					  "Part-uploaded",
					  ":3",
					  "part-uploaded:3:4",
					  "part-uploaded:99999999999999999999"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		err_clear(&err);
		int rc = failpoint_parse(bad[i], &fp, &n, &err);
		ok(rc == -EINVAL && fp == FAILPOINT_NONE && strstr(err.message, "DTH_FAILPOINT"),
		   "'%s' refused (%s)", bad[i], err.message);
	}
	for (int i = FAILPOINT_NONE + 1; i < FAILPOINT__COUNT; i++) {
		const char *name = failpoint_name((enum failpoint)i);
		ok(name && failpoint_parse(name, &fp, &n, &err) == 0 && (int)fp == i,
		   "%s round-trips", name ? name : "(null)");
	}
	ok(!failpoint_name(FAILPOINT_NONE) && !failpoint_name(FAILPOINT__COUNT),
	   "no name outside the points");
}

/* In a child: arm spec, hit `others` times another point and `hits` times
 * the armed one; exit 0 if still alive. Returns the wait status. */
static int child_run(const char *spec, int hits, int others)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		struct dth_err err;
		err_clear(&err);
		setenv("DTH_FAILPOINT", spec, 1);
		if (failpoint_init(&err))
			_exit(2);
		for (int i = 0; i < others; i++)
			failpoint_hit(FAILPOINT_OBJECT_PUT);
		for (int i = 0; i < hits; i++)
			failpoint_hit(FAILPOINT_PART_UPLOADED);
		_exit(0);
	}
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return st;
}

static void test_kill(void)
{
	int st = child_run("part-uploaded:3", 2, 10);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "alive after 2 of 3 hits (and other points)");
	st = child_run("part-uploaded:3", 3, 10);
	ok(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "killed by SIGKILL at the 3rd hit");
	st = child_run("part-uploaded", 1, 0);
	ok(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "killed at the first hit by default");
	st = child_run("nonsense:1", 1, 0);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 2, "an unknown name fails init");
}

static void test_unset(void)
{
	struct dth_err err;
	err_clear(&err);
	unsetenv("DTH_FAILPOINT");
	ok(failpoint_init(&err) == 0 && failpoint_armed == FAILPOINT_NONE, "unset: nothing armed");
	for (int i = 0; i < 1000; i++)
		failpoint_hit(FAILPOINT_PART_UPLOADED);
	ok(1, "unarmed hits do nothing");
}

int main(void)
{
	test_parse();
	test_unset();
	test_kill();
	return tap_done();
}
