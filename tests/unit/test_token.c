#include "common/compat.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/token.h"
#include "common/buf.h"
#include "tests/unit/tap.h"

static char dir[64];

static char *path_of(const char *name)
{
	struct buf b = BUF_INIT;
	buf_addf(&b, "%s/%s", dir, name);
	return buf_detach(&b, NULL);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	unlink(path);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
		perror(path);
		exit(1);
	}
	fchmod(fd, mode);
	close(fd);
}

static int read_file(const char *path, char *out, size_t outsz)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, out, outsz - 1);
	close(fd);
	if (n < 0)
		return -1;
	out[n] = '\0';
	return (int)n;
}

static void test_create_and_reuse(void)
{
	struct dth_err err;
	err_clear(&err);
	struct token *t = NULL;
	bool created = false;
	/* A state directory that does not exist yet is made. */
	char *sd = path_of("state");
	int rc = token_load_or_create(sd, &t, &created, &err);
	is_int(rc, 0, "a token is made on first start (%s)", err.message);
	ok(created, "and reported as new");
	char *p = path_of("state/agent.token");
	struct stat st;
	ok(stat(p, &st) == 0 && (st.st_mode & 07777) == 0600, "agent.token is mode 0600 (%o)",
	   (unsigned)(st.st_mode & 07777));
	char text[256];
	int n = read_file(p, text, sizeof(text));
	is_int(n, 65, "64 hex characters and a newline");
	ok(n == 65 && text[64] == '\n' && strspn(text, "0123456789abcdef") == 64, "lowercase hex");
	is_str(token_path(t), p, "token_path names the file");
	ok(token_value(t) && strlen(token_value(t)) == 64 && memcmp(token_value(t), text, 64) == 0,
	   "token_value is the file's token");
	ok(stat(sd, &st) == 0 && (st.st_mode & 0777) == 0700, "the state directory is 0700");

	/* No temporary file is left behind. */
	int left = 0;
	char *tmpl = path_of("state");
	struct buf cmd = BUF_INIT;
	buf_addf(&cmd, "ls -A %s | grep -c -v '^agent.token$' > %s/count", tmpl, dir);
	if (system(cmd.data) >= 0) {
		char *cp = path_of("count");
		char c[16];
		if (read_file(cp, c, sizeof(c)) > 0)
			left = atoi(c);
		free(cp);
	}
	is_int(left, 0, "no temporary file left in the state directory");
	buf_release(&cmd);
	free(tmpl);

	/* A second start reuses it. */
	struct token *t2 = NULL;
	created = true;
	rc = token_load_or_create(sd, &t2, &created, &err);
	is_int(rc, 0, "the second start loads the token");
	ok(!created, "not made again");
	ok(t2 && strcmp(token_value(t2), token_value(t)) == 0, "the same token");
	token_free(t2);

	/* Two stores give different tokens. */
	char *sd2 = path_of("state2");
	rc = token_load_or_create(sd2, &t2, NULL, &err);
	ok(rc == 0 && strcmp(token_value(t2), token_value(t)) != 0,
	   "another state directory gets another token");
	token_free(t2);
	free(sd2);

	/* The client's side. */
	rc = token_load(p, &t2, &err);
	ok(rc == 0 && strcmp(token_value(t2), token_value(t)) == 0, "token_load reads it");
	token_free(t2);
	char *missing = path_of("nope/agent.token");
	rc = token_load(missing, &t2, &err);
	is_int(rc, -ENOENT, "token_load of a missing file is -ENOENT");
	ok(!t2, "and gives no token");
	free(missing);

	token_free(t);
	free(p);
	free(sd);
}

static void test_refusals(void)
{
	struct dth_err err;
	err_clear(&err);
	struct token *t = NULL;
	char *sd = path_of("bad");
	mkdir(sd, 0700);
	char *p = path_of("bad/agent.token");
	const char *good = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n";

	write_file(p, good, 0644);
	int rc = token_load_or_create(sd, &t, NULL, &err);
	is_int(rc, -EACCES, "a 0644 token file is refused");
	ok(strstr(err.message, p) && strstr(err.message, "0644"),
	   "the message names the file and its mode: %s", err.message);
	ok(!t, "no token");
	char text[256];
	ok(read_file(p, text, sizeof(text)) == 65 && !strcmp(text, good),
	   "the refused file is left as it was");

	write_file(p, good, 0620);
	rc = token_load_or_create(sd, &t, NULL, &err);
	is_int(rc, -EACCES, "a group-writable token file is refused");

	write_file(p, good, 0600);
	rc = token_load_or_create(sd, &t, NULL, &err);
	is_int(rc, 0, "the same file at 0600 is taken");
	is_str(t ? token_value(t) : NULL,
	       "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	       "with its token");
	token_free(t);
	t = NULL;

	const char *bad[] = {
	    "",
	    "\n",
	    "0123456789abcdef\n",
	    "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef\n",
	    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0\n",
	    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg\n",
	    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n\n",
	    " 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		write_file(p, bad[i], 0600);
		rc = token_load_or_create(sd, &t, NULL, &err);
		is_int(rc, -EINVAL, "malformed token file %zu is -EINVAL", i);
		ok(!t && strstr(err.message, p), "the message names the file");
	}
	/* Without the final newline it is still a token. */
	write_file(p, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", 0600);
	rc = token_load(p, &t, &err);
	is_int(rc, 0, "a token without its newline is taken");
	token_free(t);
	t = NULL;

	/* A symbolic link is not followed. */
	unlink(p);
	char *target = path_of("bad/real");
	write_file(target, good, 0600);
	if (symlink(target, p) == 0) {
		rc = token_load(p, &t, &err);
		is_int(rc, -EACCES, "a symbolic link is refused");
	}
	free(target);
	free(p);
	free(sd);
}

static void test_check(void)
{
	struct dth_err err;
	err_clear(&err);
	char *sd = path_of("check");
	mkdir(sd, 0700);
	char *p = path_of("check/agent.token");
	const char *hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
	struct buf text = BUF_INIT;
	buf_addf(&text, "%s\n", hex);
	write_file(p, text.data, 0600);
	struct token *t = NULL;
	int rc = token_load(p, &t, &err);
	is_int(rc, 0, "load a known token");
	if (rc)
		return;

	struct buf h = BUF_INIT;
	buf_addf(&h, "Bearer %s", hex);
	ok(token_check(t, h.data), "Bearer TOKEN passes");
	buf_reset(&h);
	buf_addf(&h, "bearer %s", hex);
	ok(token_check(t, h.data), "the scheme in any case");
	buf_reset(&h);
	buf_addf(&h, "BEARER   %s", hex);
	ok(token_check(t, h.data), "several spaces after the scheme");

	buf_reset(&h);
	buf_addf(&h, "Bearer %.63s0", hex);
	ok(!token_check(t, h.data), "the last character wrong");
	buf_reset(&h);
	buf_addf(&h, "Bearer 1%s", hex + 1);
	ok(!token_check(t, h.data), "the first character wrong");
	buf_reset(&h);
	buf_addf(&h, "Bearer %.32s", hex);
	ok(!token_check(t, h.data), "a prefix of the token");
	buf_reset(&h);
	buf_addf(&h, "Bearer %s0", hex);
	ok(!token_check(t, h.data), "the token and one more character");
	buf_reset(&h);
	buf_addf(&h, "Bearer %s ", hex);
	ok(!token_check(t, h.data), "the token and a trailing space");
	ok(!token_check(t, "Bearer "), "an empty token");
	ok(!token_check(t, ""), "an empty header");
	ok(!token_check(t, NULL), "no header");
	ok(!token_check(t, hex), "the token without a scheme");
	buf_reset(&h);
	buf_addf(&h, "Basic %s", hex);
	ok(!token_check(t, h.data), "Basic TOKEN");
	buf_reset(&h);
	buf_addf(&h, "Bearer%s", hex);
	ok(!token_check(t, h.data), "no space after the scheme");
	buf_reset(&h);
	buf_addf(&h, "Bearer %s",
		 "00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF");
	ok(!token_check(t, h.data), "the token in uppercase");
	ok(!token_check(NULL, "Bearer x"), "no token at all");

	buf_release(&h);
	buf_release(&text);
	token_free(t);
	free(p);
	free(sd);
}

int main(void)
{
	xsnprintf(dir, sizeof(dir), "/tmp/dth-token-XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	test_create_and_reuse();
	test_refusals();
	test_check();
	struct buf cmd = BUF_INIT;
	buf_addf(&cmd, "rm -rf %s", dir);
	if (system(cmd.data) != 0)
		printf("# could not remove %s\n", dir);
	buf_release(&cmd);
	return tap_done();
}
