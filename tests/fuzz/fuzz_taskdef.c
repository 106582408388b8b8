/* Fuzz target for the task definitions the agent takes from outside: an
 * API body (JSON, agent/taskdef.h taskdef_from_json) and a tasks.d file
 * (agent/taskset.h taskset_add_text). The first byte chooses: even, the rest
 * is a JSON body; odd, a drop-in file.
 *
 * Checks: no crash; a definition that taskdef_from_json and taskdef_check
 * accept survives a round trip through taskdef_to_json unchanged; every
 * drop-in entry has a name and either checks or carries an error. */
#include "common/compat.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/taskdef.h"
#include "agent/taskset.h"

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			fprintf(stderr, "fuzz_taskdef: check failed at line %d: %s\n", __LINE__,   \
				#c);                                                               \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static void json_body(const uint8_t *data, size_t size)
{
	json_error_t jerr;
	json_t *j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
	if (!j)
		return;
	struct taskdef t;
	struct dth_err err;
	const char *field = NULL;
	int rc = taskdef_from_json(j, &t, &err, &field);
	if (!rc)
		rc = taskdef_check(&t, false, &err, &field);
	if (!rc) {
		json_t *out = taskdef_to_json(&t);
		struct taskdef u;
		CHECK(taskdef_from_json(out, &u, &err, &field) == 0);
		json_t *again = taskdef_to_json(&u);
		CHECK(json_equal(out, again));
		json_decref(again);
		json_decref(out);
		taskdef_release(&u);
	} else {
		CHECK(err.message[0] != '\0');
	}
	taskdef_release(&t);
	json_decref(j);
}

static void dropin(const uint8_t *data, size_t size)
{
	struct taskset ts;
	taskset_init(&ts);
	taskset_add_text(&ts, (const char *)data, size, "/fuzz/tasks.d/f.conf",
			 TASKDEF_FROM_DROPIN);
	for (size_t i = 0; i < ts.n; i++) {
		CHECK(ts.v[i].def.name != NULL);
		if (!ts.v[i].error) {
			struct dth_err err;
			CHECK(taskdef_check(&ts.v[i].def, false, &err, NULL) == 0);
		}
	}
	taskset_release(&ts);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 65536)
		return 0;
	if (data[0] % 2 == 0)
		json_body(data + 1, size - 1);
	else
		dropin(data + 1, size - 1);
	return 0;
}
