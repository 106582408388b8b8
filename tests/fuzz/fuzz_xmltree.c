/* Fuzz target for remote/xmltree.h: any bytes as a document. Checks: a parse
 * succeeds or fails with -EPROTO and a message; a tree's every element is
 * reachable by child and next links and each text is NUL-terminated at its
 * length. */
#include "common/compat.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "remote/xmltree.h"

static size_t walk(const struct xmlnode *n, int depth)
{
	size_t count = 0;
	for (; n; n = xmlnode_next(n, NULL)) {
		size_t len;
		const char *t = xmlnode_text(n, &len);
		if (t[len] != '\0' || depth > XMLTREE_DEPTH_MAX)
			abort();
		count += 1 + walk(xmlnode_child(n, NULL), depth + 1);
	}
	return count;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct xmltree *t = NULL;
	struct dth_err e;
	err_clear(&e);
	int rc = xmltree_parse((const char *)data, size, &t, &e);
	if (rc && (rc != -EPROTO || !e.message[0] || t))
		abort();
	if (t && (walk(xmltree_root(t), 1) == 0 || walk(xmltree_root(t), 1) > XMLTREE_NODES_MAX))
		abort();
	xmltree_free(t);
	return 0;
}
