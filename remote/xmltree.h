/* A small XML tree (expat) for the answers of AWS's query protocol (SQS's
 * older protocol, SNS): whole documents of a few KiB, read by element paths.
 * Hostile input (malformed XML, a DOCTYPE or any entity declaration, nesting
 * deeper than XMLTREE_DEPTH_MAX, more than XMLTREE_NODES_MAX elements or
 * XMLTREE_TEXT_MAX bytes of text) is refused with -EPROTO and a message,
 * never a crash. Namespaces are not processed: names are as written. */
#ifndef DTH_XMLTREE_H
#define DTH_XMLTREE_H

#include <stddef.h>

#include "common/err.h"
#include "common/util.h"

#define XMLTREE_DEPTH_MAX 32
#define XMLTREE_NODES_MAX 20000
#define XMLTREE_TEXT_MAX  (8u << 20)

struct xmltree;
struct xmlnode;

/* Parse len bytes. On success *out is owned by the caller (xmltree_free). */
int xmltree_parse(const char *data, size_t len, struct xmltree **out, struct dth_err *err) WUR;
void xmltree_free(struct xmltree *t);
const struct xmlnode *xmltree_root(const struct xmltree *t);

const char *xmlnode_name(const struct xmlnode *n);
/* The element's own text (its character data, concatenated; "" when none),
 * NUL-terminated; *len (may be NULL) its length. Valid while the tree lives. */
const char *xmlnode_text(const struct xmlnode *n, size_t *len);
/* The first child called name (NULL: any), or NULL. */
const struct xmlnode *xmlnode_child(const struct xmlnode *n, const char *name);
/* The next sibling called name (NULL: any) after n, or NULL. */
const struct xmlnode *xmlnode_next(const struct xmlnode *n, const char *name);
/* The element at path ("A/B/C": first children by name) under n, or NULL. */
const struct xmlnode *xmlnode_at(const struct xmlnode *n, const char *path);
/* Its text, or NULL when there is no such element. */
const char *xmlnode_text_at(const struct xmlnode *n, const char *path);

#endif
