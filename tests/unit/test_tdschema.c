/* agent/tdschema: the settings table as JSON, entry by entry against the
 * table itself, and the providers against remote/provider.c's presets. */
#include "common/compat.h"

#include <string.h>

#include "agent/taskdef.h"
#include "agent/tdschema.h"
#include "remote/provider.h"
#include "tests/unit/tap.h"

static const char *jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static bool has_kind(const json_t *kinds, const char *k)
{
	size_t i;
	json_t *v;
	json_array_foreach(kinds, i, v)
	{
		if (!strcmp(json_string_value(v), k))
			return true;
	}
	return false;
}

static bool flag_is(const json_t *e, const char *key, bool want)
{
	return json_is_true(json_object_get(e, key)) == want;
}

/* Entry e says what row s of the table says. */
static bool row_ok(const json_t *e, const struct taskdef_setting *s)
{
	const json_t *kinds = json_object_get(e, "kinds");
	const json_t *arg = json_object_get(e, "arg"), *deflt = json_object_get(e, "default");
	if (strcmp(jstr(e, "name"), s->name) || strcmp(jstr(e, "help"), s->help))
		return false;
	if (has_kind(kinds, "s3") != !!(s->kinds & TASKDEF_S3) ||
	    has_kind(kinds, "image") != !!(s->kinds & TASKDEF_IMAGE))
		return false;
	if (!flag_is(e, "required", s->flags & TD_REQUIRED) ||
	    !flag_is(e, "agent_only", s->flags & TD_AGENT) || !flag_is(e, "cli", s->flags & TD_CLI))
		return false;
	if (s->arg ? !json_is_string(arg) || strcmp(json_string_value(arg), s->arg)
		   : !json_is_null(arg))
		return false;
	return !s->deflt == json_is_null(deflt);
}

/* Every entry says what its row of the table says. */
static void test_rows(const json_t *doc)
{
	size_t n;
	const struct taskdef_setting *tab = taskdef_settings(&n);
	const json_t *list = json_object_get(doc, "settings");
	is_int(json_array_size(list), n, "one entry per setting of the table");
	bool same = true;
	for (size_t i = 0; i < n && i < json_array_size(list); i++) {
		if (!row_ok(json_array_get(list, i), &tab[i])) {
			printf("# row %zu (%s) differs\n", i, tab[i].name);
			same = false;
		}
	}
	ok(same, "names, kinds, flags, help, arg and defaults as in the table");
}

static const json_t *find(const json_t *doc, const char *name)
{
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(doc, "settings"), i, e)
	{
		if (!strcmp(jstr(e, "name"), name))
			return e;
	}
	return NULL;
}

static void test_examples(const json_t *doc)
{
	const json_t *e = find(doc, "part_size");
	is_str(e ? jstr(e, "type") : NULL, "size", "part_size is a size");
	is_str(e ? jstr(e, "default") : NULL, "8M", "  default 8M");
	is_int(json_integer_value(json_object_get(e, "min")), 5 << 20, "  at least 5 MiB");
	is_int(json_integer_value(json_object_get(e, "max")), 5LL << 30, "  at most 5 GiB");
	ok(e && !has_kind(json_object_get(e, "kinds"), "image"), "  for S3 tasks only");

	e = find(doc, "concurrency");
	const json_t *d = json_object_get(e, "default");
	ok(json_is_object(d) && !strcmp(jstr(d, "s3"), "16") && !strcmp(jstr(d, "image"), "8"),
	   "concurrency's default differs by kind");

	e = find(doc, "sse");
	const json_t *w = json_object_get(e, "words");
	ok(json_array_size(w) == 2 && !strcmp(json_string_value(json_array_get(w, 0)), "AES256") &&
	       !strcmp(json_string_value(json_array_get(w, 1)), "aws:kms"),
	   "sse is a word among AES256 and aws:kms");
	ok(json_is_null(json_object_get(e, "default")), "  without a default");

	e = find(doc, "source");
	ok(json_is_true(json_object_get(e, "required")), "source is required");
	is_int(json_integer_value(json_object_get(e, "max")), 1023,
	       "  a text of at most 1023 bytes");
	ok(!json_object_get(e, "min"), "  with no minimum");

	e = find(doc, "schedule");
	ok(json_is_true(json_object_get(e, "agent_only")), "schedule is the agent's");
	is_str(jstr(e, "default"), "every 1h", "  every 1h by default");

	e = find(doc, "metadata");
	is_str(jstr(e, "type"), "bool", "metadata is a boolean");
	ok(json_is_null(json_object_get(e, "arg")), "  with no argument");

	e = find(doc, "retries");
	ok(!strcmp(jstr(e, "type"), "custom") &&
	       json_integer_value(json_object_get(e, "max")) == 100,
	   "retries is custom, up to 100");
	e = find(doc, "images");
	is_str(jstr(e, "type"), "list", "images is a list");

	const json_t *nr = json_object_get(doc, "name_rule");
	ok(json_integer_value(json_object_get(nr, "min_bytes")) == 1 &&
	       json_integer_value(json_object_get(nr, "max_bytes")) == TASKDEF_NAME_MAX,
	   "the name rule: 1 to %d bytes", TASKDEF_NAME_MAX);
}

static void test_providers(const json_t *doc)
{
	const json_t *list = json_object_get(doc, "providers");
	size_t n = 0;
	while (provider_at(n))
		n++;
	ok(n >= 9, "nine presets at least (%zu)", n);
	is_int(json_array_size(list), n, "one entry per preset");
	bool same = true;
	for (size_t i = 0; i < n; i++) {
		const struct provider_preset *p = provider_at(i);
		const json_t *e = json_array_get(list, i);
		same = same && !strcmp(jstr(e, "name"), p->name) &&
		       json_is_true(json_object_get(e, "needs_endpoint")) == p->needs_endpoint &&
		       (p->default_region ? !strcmp(jstr(e, "default_region"), p->default_region)
					  : json_is_null(json_object_get(e, "default_region")));
		same = same && provider_find(p->name) == p;
	}
	ok(same, "names, endpoints and default regions as the presets");
}

int main(void)
{
	json_t *doc = tdschema_json();
	ok(doc != NULL, "the document is made");
	test_rows(doc);
	test_examples(doc);
	test_providers(doc);
	json_decref(doc);
	return tap_done();
}
