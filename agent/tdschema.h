/* The task settings table (taskdef_settings) as JSON, for the web console's
 * form (GET /api/v1/settings): made from the table itself, so the form, the
 * CLI flags, the config keys and the API's fields cannot drift apart.
 *
 *   {"settings": [{"name", "kinds": ["s3", "image"], "type", "cli",
 *                  "required", "agent_only", "default", "help", "arg",
 *                  "words" (word), "min"/"max" (count, size, custom with
 *                  bounds), "max" (text, list: bytes of a value)}, ...],
 *    "name_rule": {"min_bytes": 1, "max_bytes": 255},
 *    "providers": [{"name", "needs_endpoint", "default_region"}, ...]}
 *
 * type is bool, count, size, word, text, list or custom; default is the text
 * of the table, null when none, or {"s3": A, "image": B} when it differs by
 * kind; arg is the placeholder of --help (null for a boolean). */
#ifndef DTH_TDSCHEMA_H
#define DTH_TDSCHEMA_H

#include <jansson.h>

/* A new reference (the same document every call). */
json_t *tdschema_json(void);

#endif
