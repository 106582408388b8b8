/* The task settings table as JSON (see tdschema.h). */
#include "common/compat.h"

#include "agent/tdschema.h"

#include <string.h>

#include "agent/taskdef.h"
#include "remote/provider.h"

static const char *type_name(int type)
{
	static const char *const names[] = {"bool", "count", "size",  "word",
					    "text", "list",  "custom"};
	return type >= 0 && type < (int)ARRAY_SIZE(names) ? names[type] : "custom";
}

static json_t *kinds_json(unsigned kinds)
{
	json_t *a = json_array();
	for (int k = TASKDEF_S3; k <= TASKDEF_IMAGE; k <<= 1)
		if (kinds & (unsigned)k)
			json_array_append_new(a, json_string(taskdef_kind_name(k)));
	return a;
}

/* "A|B" differs by kind (A for S3 tasks, B for image tasks). */
static json_t *default_json(const struct taskdef_setting *s)
{
	if (!s->deflt)
		return json_null();
	const char *bar = strchr(s->deflt, '|');
	if (!bar || s->type == TD_WORD)
		return json_string(s->deflt);
	return json_pack("{s:s%, s:s}", "s3", s->deflt, (size_t)(bar - s->deflt), "image", bar + 1);
}

/* "AES256|aws:kms" as ["AES256", "aws:kms"]. */
static json_t *words_json(const char *words)
{
	json_t *a = json_array();
	while (words && *words) {
		size_t n = strcspn(words, "|");
		json_array_append_new(a, json_stringn(words, n));
		words += n + (words[n] == '|');
	}
	return a;
}

static json_t *setting_json(const struct taskdef_setting *s)
{
	json_t *o = json_pack("{s:s, s:o, s:s, s:b, s:b, s:b, s:o, s:s, s:s?}", "name", s->name,
			      "kinds", kinds_json(s->kinds), "type", type_name(s->type), "cli",
			      !!(s->flags & TD_CLI), "required", !!(s->flags & TD_REQUIRED),
			      "agent_only", !!(s->flags & TD_AGENT), "default", default_json(s),
			      "help", s->help, "arg", s->arg);
	if (s->type == TD_WORD)
		json_object_set_new(o, "words", words_json(s->words));
	bool bounds = s->type == TD_COUNT || s->type == TD_SIZE || (s->type == TD_CUSTOM && s->max);
	if (bounds)
		json_object_set_new(o, "min", json_integer((json_int_t)s->min));
	if (bounds || s->type == TD_TEXT || s->type == TD_LIST)
		json_object_set_new(o, "max", json_integer((json_int_t)s->max));
	return o;
}

json_t *tdschema_json(void)
{
	size_t n;
	const struct taskdef_setting *tab = taskdef_settings(&n);
	json_t *settings = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(settings, setting_json(&tab[i]));
	json_t *providers = json_array();
	const struct provider_preset *p;
	for (size_t i = 0; (p = provider_at(i)); i++)
		json_array_append_new(providers, json_pack("{s:s, s:b, s:s?}", "name", p->name,
							   "needs_endpoint", p->needs_endpoint,
							   "default_region", p->default_region));
	return json_pack("{s:o, s:{s:i, s:i}, s:o}", "settings", settings, "name_rule", "min_bytes",
			 1, "max_bytes", TASKDEF_NAME_MAX, "providers", providers);
}
