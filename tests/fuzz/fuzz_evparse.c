/* Fuzz target for agent/evparse.h: any bytes as an S3 event body and as a
 * registry notification. Checks: each call returns a count >= 0 or -EINVAL /
 * -EFBIG with a message; every item has a kind, a bucket and a key of the
 * length it claims. */
#include "common/compat.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/evparse.h"

static int check(void *ctx, const struct evparse_item *it)
{
	(void)ctx;
	if (!it->kind || !it->bucket || !it->key || !it->key_len || !it->sequencer || !it->host)
		abort();
	volatile char c = it->key[it->key_len - 1];
	(void)c;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dth_err e;
	int n = evparse_s3((const char *)data, size, check, NULL, NULL, &e);
	if (n < 0 && ((n != -EINVAL && n != -EFBIG) || !e.message[0]))
		abort();
	n = evparse_registry((const char *)data, size, check, NULL, NULL, &e);
	if (n < 0 && ((n != -EINVAL && n != -EFBIG) || !e.message[0]))
		abort();
	return 0;
}
