/* Fuzz target for registry_parse_ratelimit (remote/registry.h), the parser of
 * Docker Hub's ratelimit-limit and ratelimit-remaining headers ("76;w=21600").
 * The input is one header value.
 *
 * Checks: 0 with a count >= 0 and a window that is -1 or > 0, or -1 with both
 * set to -1; the values written back as "COUNT;w=WINDOW" (or "COUNT") parse
 * to the same values. */
#include "common/compat.h"

#include <stdint.h>
#include <stdio.h>

#include "remote/registry.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *v = fuzz_cstr(data, size);
	int64_t count = 7, window = 7;
	int rc = registry_parse_ratelimit(v, &count, &window);
	if (rc) {
		CHECK(rc == -1 && count == -1 && window == -1);
		free(v);
		return 0;
	}
	CHECK(rc == 0 && count >= 0 && (window == -1 || window > 0));
	char w[64];
	if (window > 0)
		snprintf(w, sizeof(w), "%lld;w=%lld", (long long)count, (long long)window);
	else
		snprintf(w, sizeof(w), "%lld", (long long)count);
	int64_t c2, w2;
	CHECK(registry_parse_ratelimit(w, &c2, &w2) == 0);
	CHECK(c2 == count && w2 == window);
	free(v);
	return 0;
}
