/* Unit tests of remote/dirlist.c: keys in byte order across levels, sizes and
 * times, symbolic links and FIFOs skipped, empty directories, a deep tree,
 * and an unreadable directory as an error (when not root). */
#include "common/compat.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "remote/dirlist.h"
#include "common/buf.h"
#include "tests/unit/tap.h"

static char root[64];

static void put(const char *rel, size_t size)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	FILE *f = fopen(p, "w");
	for (size_t i = 0; f && i < size; i++)
		fputc('x', f);
	if (f)
		fclose(f);
}

static void dir(const char *rel)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	mkdir(p, 0700);
}

/* Every key, '|'-separated, into out; the count of skipped into *skipped. */
static int walk(const char *top, struct buf *out, uint64_t *skipped, struct dth_err *err)
{
	struct dirlist *d;
	int rc = dirlist_open(top, &d, err);
	if (rc)
		return rc;
	struct dirlist_entry e;
	while ((rc = dirlist_next(d, &e, err)) == 1) {
		buf_add(out, e.key, e.key_len);
		buf_addf(out, ":%llu|", (unsigned long long)e.size);
	}
	*skipped = dirlist_skipped(d);
	dirlist_free(d);
	return rc;
}

int main(void)
{
	snprintf(root, sizeof(root), "/tmp/dth-test-dirlist-XXXXXX");
	if (!mkdtemp(root))
		return 1;
	put("a-b", 1);
	put("a0", 2);
	put("b", 3);
	dir("a");
	put("a/x", 4);
	dir("a/y");
	put("a/y/z", 5);
	dir("empty");
	dir("a/y/deeper");
	char p[256];
	snprintf(p, sizeof(p), "%s/l", root);
	ok(symlink("/etc", p) == 0, "a symbolic link");
	snprintf(p, sizeof(p), "%s/a/fifo", root);
	ok(mkfifo(p, 0600) == 0, "a FIFO");
	struct buf got = BUF_INIT;
	uint64_t skipped = 0;
	struct dth_err err;
	is_int(walk(root, &got, &skipped, &err), 0, "walked");
	is_str(buf_str(&got), "a-b:1|a/x:4|a/y/z:5|a0:2|b:3|",
	       "files only, in byte order of the whole key, with sizes");
	is_int((int)skipped, 2, "the link and the FIFO skipped");

	/* a deep path */
	struct buf rel = BUF_INIT;
	for (int i = 0; i < 40; i++) {
		buf_adds(&rel, i ? "/d" : "deep");
		dir(rel.data);
	}
	buf_adds(&rel, "/f");
	put(rel.data, 6);
	buf_reset(&got);
	is_int(walk(root, &got, &skipped, &err), 0, "walked a deep tree");
	ok(strstr(buf_str(&got), "deep/d/d/") && strstr(buf_str(&got), "/d/f:6|"),
	   "a file 40 levels down");
	buf_release(&rel);

	is_int(walk("/nonexistent-dth", &got, &skipped, &err), -ENOENT, "a missing root");
	ok(strstr(err.message, "/nonexistent-dth") != NULL, "named (%s)", err.message);
	if (geteuid() != 0) {
		snprintf(p, sizeof(p), "%s/a/y", root);
		chmod(p, 0);
		buf_reset(&got);
		int rc = walk(root, &got, &skipped, &err);
		ok(rc == -EACCES && strstr(err.message, "a/y"),
		   "an unreadable directory is an error, never an empty one (%s)", err.message);
		chmod(p, 0700);
	} else {
		ok(1, "# skip unreadable directory: root reads every directory");
	}
	buf_release(&got);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	if (system(cmd))
		printf("# could not remove %s\n", root);
	return tap_done();
}
