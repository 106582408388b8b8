/* agent/evring: events noted, newest first, bounded; keys as text (UTF-8
 * kept, other bytes in their printable form, long keys cut at a character);
 * rings moved into another. */
#include "common/compat.h"

#include <string.h>
#include <time.h>

#include "agent/evring.h"
#include "common/util.h"
#include "tests/unit/tap.h"

static json_t *ev(json_t *doc, size_t i)
{
	return json_array_get(json_object_get(doc, "events"), i);
}

static const char *str(json_t *doc, size_t i, const char *key)
{
	return json_string_value(json_object_get(ev(doc, i), key));
}

static void test_basic(void)
{
	json_t *doc = evring_json(NULL);
	ok(json_array_size(json_object_get(doc, "events")) == 0, "no ring: no event");
	json_decref(doc);

	struct evring *r = evring_new();
	evring_add(r, "webhook", "put", "a/b.txt", 7, "accepted", NULL);
	evring_add(r, "webhook", "delete", "x\0y\xff", 4, "ignored", "another bucket");
	evring_add(r, "webhook", "body", "", 0, "refused", "not JSON");
	is_int(evring_count(r), 3, "three events");
	doc = evring_json(r);
	is_str(str(doc, 0, "kind"), "body", "newest first");
	is_str(str(doc, 0, "outcome"), "refused", "  its outcome");
	is_str(str(doc, 0, "reason"), "not JSON", "  its reason");
	is_str(str(doc, 1, "key"), "x\\x00y\\xff", "a key that is not UTF-8: its printable form");
	is_str(str(doc, 1, "reason"), "another bucket", "  why it was ignored");
	is_str(str(doc, 2, "key"), "a/b.txt", "a UTF-8 key as it is");
	is_str(str(doc, 2, "source"), "webhook", "  its source");
	ok(!json_object_get(ev(doc, 2), "reason"), "  no reason when accepted");
	json_int_t t = json_integer_value(json_object_get(ev(doc, 2), "t"));
	ok(t > 1600000000 && t <= (json_int_t)time(NULL), "  its time, unix seconds");
	json_decref(doc);
	evring_free(r);
}

static void test_bounds(void)
{
	struct evring *r = evring_new();
	char key[32];
	for (int i = 0; i < EVRING_CAP + 25; i++) {
		xsnprintf(key, sizeof(key), "k%d", i);
		evring_add(r, "sqs", "put", key, strlen(key), "accepted", NULL);
	}
	is_int(evring_count(r), EVRING_CAP, "at most %d events", EVRING_CAP);
	json_t *doc = evring_json(r);
	is_str(str(doc, 0, "key"), "k124", "the newest kept");
	is_str(str(doc, EVRING_CAP - 1, "key"), "k25", "the oldest ones went");
	json_decref(doc);

	/* A long key is cut at a character's start. */
	char big[EVRING_KEY_MAX + 8];
	memset(big, 'a', sizeof(big));
	memcpy(big + EVRING_KEY_MAX - 1, "\xc3\xa9", 2); /* é across the limit */
	evring_clear(r);
	evring_add(r, "inotify", "put", big, sizeof(big), "accepted", NULL);
	doc = evring_json(r);
	const char *k = str(doc, 0, "key");
	ok(k && strlen(k) == EVRING_KEY_MAX - 1 && k[EVRING_KEY_MAX - 2] == 'a',
	   "a long key cut before the character that crosses the limit");
	json_decref(doc);
	evring_free(r);
}

static void test_move(void)
{
	struct evring *to = evring_new(), *from = evring_new();
	evring_add(to, "webhook", "put", "old", 3, "accepted", NULL);
	evring_add(from, "sqs", "put", "n1", 2, "accepted", NULL);
	evring_add(from, "sqs", "delete", "n2", 2, "ignored", "outside the prefix");
	evring_move(to, from);
	is_int(evring_count(from), 0, "the source ring is left empty");
	is_int(evring_count(to), 3, "the events are appended");
	json_t *doc = evring_json(to);
	ok(!strcmp(str(doc, 0, "key"), "n2") && !strcmp(str(doc, 1, "key"), "n1") &&
	       !strcmp(str(doc, 2, "key"), "old"),
	   "in their order, after the old ones");
	json_decref(doc);
	evring_add(from, "sqs", "put", "again", 5, "accepted", NULL);
	is_int(evring_count(from), 1, "the emptied ring takes events again");
	evring_free(from);
	evring_free(to);
}

int main(void)
{
	test_basic();
	test_bounds();
	test_move();
	return tap_done();
}
