/* Unit tests of agent/dirwatch.c with a real manifest and the kernel's
 * inotify: a closed write, a rename, a delete and a new directory with files
 * end in the journal as keys (each once per batch, after the quiet period);
 * a file still open for writing is not taken until it is closed; a
 * directory moved within the tree asks for a rescan; stopping keeps what
 * was gathered. */
#include "common/compat.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/dirwatch.h"
#include "agent/evring.h"
#include "agent/intake.h"
#include "common/buf.h"
#include "manifest/manifest.h"
#include "tests/unit/tap.h"

static char root[64], state[64];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned kicks, rescans;
static struct buf seen = BUF_INIT; /* "kind:key|" of the changes noted, oldest first */

static void kick(void *ctx, const struct intake_counts *c, unsigned refused)
{
	(void)ctx;
	(void)refused;
	json_t *doc = evring_json(c->seen);
	json_t *list = json_object_get(doc, "events");
	pthread_mutex_lock(&lock);
	kicks++;
	rescans += c->rescan;
	for (size_t i = json_array_size(list); i-- > 0;) {
		json_t *e = json_array_get(list, i);
		buf_addf(&seen, "%s:%s|", json_string_value(json_object_get(e, "kind")),
			 json_string_value(json_object_get(e, "key")));
	}
	pthread_mutex_unlock(&lock);
	json_decref(doc);
}

/* The changes noted since the last call. */
static void seen_take(struct buf *out)
{
	pthread_mutex_lock(&lock);
	buf_reset(out);
	buf_add(out, buf_str(&seen), seen.len);
	buf_reset(&seen);
	pthread_mutex_unlock(&lock);
}

static unsigned kicks_now(void)
{
	pthread_mutex_lock(&lock);
	unsigned n = kicks;
	pthread_mutex_unlock(&lock);
	return n;
}

/* Wait until more than `after` keepings happened (up to 5 s). */
static bool wait_kick(unsigned after)
{
	for (int i = 0; i < 500; i++) {
		if (kicks_now() > after)
			return true;
		usleep(10000);
	}
	return false;
}

static void path_of(const char *rel, char *out, size_t n)
{
	snprintf(out, n, "%s/%s", root, rel);
}

static void put(const char *rel, const char *body)
{
	char p[256];
	path_of(rel, p, sizeof(p));
	FILE *f = fopen(p, "w");
	if (f) {
		fputs(body, f);
		fclose(f);
	}
}

static int collect(void *ctx, const struct manifest_event *ev)
{
	buf_add(ctx, ev->key, ev->key_len);
	buf_addch(ctx, '|');
	return 0;
}

/* The journal's keys, '|'-separated, then acknowledged. */
static void drain(struct manifest *m, uint32_t id, struct buf *out, bool *rescan)
{
	buf_reset(out);
	struct manifest_events_state st;
	*rescan = manifest_events_state(m, id, &st) == 0 && st.rescan;
	if (manifest_events_page(m, id, 1000, collect, out) < 0)
		buf_adds(out, "ERROR");
	if (manifest_events_state(m, id, &st) == 0 &&
	    manifest_events_ack(m, id, st.next ? st.next - 1 : 0, true))
		buf_adds(out, "ACK-ERROR");
}

static bool has(const struct buf *b, const char *key)
{
	char k[256];
	snprintf(k, sizeof(k), "|%s|", key);
	struct buf all = BUF_INIT;
	buf_addch(&all, '|');
	buf_adds(&all, buf_str(b));
	bool found = strstr(all.data, k) != NULL;
	buf_release(&all);
	return found;
}

int main(void)
{
	snprintf(root, sizeof(root), "/tmp/dth-test-dirwatch-XXXXXX");
	snprintf(state, sizeof(state), "/tmp/dth-test-dirwatch-st-XXXXXX");
	if (!mkdtemp(root) || !mkdtemp(state))
		return 1;
	char p[256], q[256];
	path_of("old", p, sizeof(p));
	mkdir(p, 0700);
	put("old/x", "x");
	put("gone", "g");

	struct dth_err err;
	struct manifest *m = manifest_open(state, MANIFEST_RDWR, &err);
	ok(m != NULL, "manifest opened");
	if (!m)
		return tap_done();
	struct task_record t;
	memset(&t, 0, sizeof(t));
	str_copy_fit(t.name, "w", sizeof(t.name));
	str_copy_fit(t.kind, "s3", sizeof(t.kind));
	uint32_t id = 0;
	bool created;
	is_int(manifest_task_ensure(m, &t, &id, &created), 0, "task made");

	struct dirwatch_opts o = {.name = "w", .root = root, .m = m, .task = id, .kick = kick};
	struct dirwatch *w = dirwatch_start(&o, &err);
	ok(w != NULL, "watcher started");
	if (!w)
		return tap_done();
	is_int((int)dirwatch_watches(w), 2, "two directories watched");

	struct buf keys = BUF_INIT;
	bool rescan;
	ok(wait_kick(0), "a first keeping");
	drain(m, id, &keys, &rescan);
	ok(rescan && keys.len == 0, "a rescan asked for as watching begins");
	struct buf noted = BUF_INIT;
	seen_take(&noted);
	is_str(buf_str(&noted), "rescan:|", "  noted as a rescan");
	/* a file held open: nothing until it is closed */
	path_of("slow", p, sizeof(p));
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ok(fd >= 0 && write(fd, "abc", 3) == 3, "a file written, still open");
	unsigned k0 = kicks_now();
	usleep(DIRWATCH_QUIET_MS * 1000 * 2);
	is_int((int)kicks_now(), (int)k0, "nothing kept while it is open");
	close(fd);
	ok(wait_kick(k0), "kept once closed");
	drain(m, id, &keys, &rescan);
	is_str(buf_str(&keys), "slow|", "the closed file, once");

	/* a write twice, a rename, a delete, a new directory with a file */
	k0 = kicks_now();
	put("a", "1");
	put("a", "2");
	path_of("slow", p, sizeof(p));
	path_of("old/slow2", q, sizeof(q));
	ok(rename(p, q) == 0, "renamed into a subdirectory");
	path_of("gone", p, sizeof(p));
	ok(unlink(p) == 0, "deleted");
	path_of("new", p, sizeof(p));
	mkdir(p, 0700);
	put("new/in", "n");
	ok(wait_kick(k0), "kept after the quiet period");
	usleep(DIRWATCH_QUIET_MS * 1000 * 2);
	drain(m, id, &keys, &rescan);
	ok(has(&keys, "a") && has(&keys, "slow") && has(&keys, "old/slow2") && has(&keys, "gone") &&
	       has(&keys, "new/in"),
	   "every changed key: %s", buf_str(&keys));
	ok(!strstr(buf_str(&keys), "a|a|"), "a key once per batch");
	ok(!rescan, "no rescan asked for");
	seen_take(&noted);
	ok(strstr(buf_str(&noted), "put:a|") && strstr(buf_str(&noted), "delete:slow|") &&
	       strstr(buf_str(&noted), "put:old/slow2|") &&
	       strstr(buf_str(&noted), "delete:gone|") && strstr(buf_str(&noted), "put:new/in|"),
	   "each change noted with its kind: %s", buf_str(&noted));
	buf_release(&noted);

	/* a directory moved within the tree: a rescan */
	k0 = kicks_now();
	path_of("old", p, sizeof(p));
	path_of("renamed", q, sizeof(q));
	ok(rename(p, q) == 0, "a directory moved");
	ok(wait_kick(k0), "kept");
	usleep(DIRWATCH_QUIET_MS * 1000 * 2);
	drain(m, id, &keys, &rescan);
	ok(rescan, "a rescan asked for");
	put("renamed/after", "r");
	k0 = kicks_now();
	ok(wait_kick(k0), "the moved directory is still watched");
	drain(m, id, &keys, &rescan);
	ok(has(&keys, "renamed/after"), "under its new name: %s", buf_str(&keys));

	/* moved out of the tree: no longer watched */
	k0 = kicks_now();
	path_of("renamed", p, sizeof(p));
	snprintf(q, sizeof(q), "%s-outside", root);
	ok(rename(p, q) == 0, "a directory moved out of the tree");
	ok(wait_kick(k0), "kept");
	usleep(DIRWATCH_QUIET_MS * 1000 * 2);
	drain(m, id, &keys, &rescan);
	ok(rescan, "a rescan asked for");
	char late[320];
	snprintf(late, sizeof(late), "%s/late", q);
	FILE *f = fopen(late, "w");
	if (f)
		fclose(f);
	k0 = kicks_now();
	usleep(DIRWATCH_QUIET_MS * 1000 * 3);
	is_int((int)kicks_now(), (int)k0, "a file written there is none of the tree's");

	/* stopping keeps what was gathered */
	put("last", "l");
	dirwatch_signal(w);
	dirwatch_free(w);
	drain(m, id, &keys, &rescan);
	ok(has(&keys, "last"), "kept at stop: %s", buf_str(&keys));

	buf_release(&keys);
	manifest_free(m);
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf %s %s %s-outside", root, state, root);
	if (system(cmd))
		printf("# could not remove %s\n", root);
	return tap_done();
}
