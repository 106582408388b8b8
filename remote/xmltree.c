/* XML tree (xmltree.h). Nodes live in one array (children and siblings are
 * indexes, -1 for none) and their text in one buffer, so the tree is freed
 * at once and never points into memory that moves: text offsets are turned
 * into pointers after the parse. */
#include "common/compat.h"

#include "remote/xmltree.h"

#include <errno.h>
#include <expat.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"

struct xmlnode {
	char *name;
	size_t text_off, text_len; /* into tree->text */
	const char *text;	   /* set after the parse */
	long first_child, last_child, next;
	struct xmltree *tree;
};

struct xmltree {
	struct xmlnode *nodes;
	size_t n, cap;
	struct buf text;
	long stack[XMLTREE_DEPTH_MAX];
	int depth;
	XML_Parser p;
	char error[160];
};

static void fail(struct xmltree *t, const char *why)
{
	if (!t->error[0])
		str_copy_fit(t->error, why, sizeof(t->error));
	XML_StopParser(t->p, XML_FALSE);
}

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
	struct xmltree *t = ud;
	(void)attrs;
	if (t->depth >= XMLTREE_DEPTH_MAX || t->n >= XMLTREE_NODES_MAX)
		return fail(t, "xml: nested too deep or too many elements");
	if (t->n == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 32;
		t->nodes = xrealloc(t->nodes, t->cap * sizeof(*t->nodes));
	}
	long i = (long)t->n++;
	struct xmlnode *n = &t->nodes[i];
	memset(n, 0, sizeof(*n));
	n->name = xstrdup(name);
	n->first_child = n->last_child = n->next = -1;
	n->text_off = SIZE_MAX; /* no text yet */
	n->tree = t;
	if (t->depth > 0) {
		struct xmlnode *parent = &t->nodes[t->stack[t->depth - 1]];
		if (parent->last_child >= 0)
			t->nodes[parent->last_child].next = i;
		else
			parent->first_child = i;
		parent->last_child = i;
	} else if (i != 0) {
		return fail(t, "xml: more than one root element");
	}
	t->stack[t->depth++] = i;
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
	struct xmltree *t = ud;
	(void)name;
	if (t->depth > 0)
		t->depth--;
}

/* Text goes to the open element; text split by a child is concatenated
 * only when nothing else was written in between (mixed content is not
 * expected in these answers: it is kept in order, the pieces joined). */
static void XMLCALL on_text(void *ud, const XML_Char *s, int len)
{
	struct xmltree *t = ud;
	if (t->depth == 0 || len <= 0)
		return;
	if (t->text.len + (size_t)len + 1 > XMLTREE_TEXT_MAX)
		return fail(t, "xml: too much text");
	struct xmlnode *n = &t->nodes[t->stack[t->depth - 1]];
	if (n->text_off == SIZE_MAX || n->text_off + n->text_len != t->text.len) {
		if (n->text_off != SIZE_MAX) { /* move the earlier pieces to the end */
			struct buf old = BUF_INIT;
			buf_add(&old, t->text.data + n->text_off, n->text_len);
			n->text_off = t->text.len;
			buf_add(&t->text, old.data, old.len);
			buf_release(&old);
		} else {
			n->text_off = t->text.len;
		}
	}
	buf_add(&t->text, s, (size_t)len);
	n->text_len += (size_t)len;
}

static void XMLCALL on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
			       const XML_Char *pubid, int has_internal_subset)
{
	(void)name, (void)sysid, (void)pubid, (void)has_internal_subset;
	fail(ud, "xml: document type declarations are not accepted");
}

static void XMLCALL on_entity(void *ud, const XML_Char *name, int is_param, const XML_Char *value,
			      int value_len, const XML_Char *base, const XML_Char *sysid,
			      const XML_Char *pubid, const XML_Char *notation)
{
	(void)name, (void)is_param, (void)value, (void)value_len, (void)base, (void)sysid,
	    (void)pubid, (void)notation;
	fail(ud, "xml: entity declarations are not accepted");
}

void xmltree_free(struct xmltree *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++)
		free(t->nodes[i].name);
	free(t->nodes);
	buf_release(&t->text);
	free(t);
}

/* After the parse: every node's text as a NUL-terminated string. */
static void seal(struct xmltree *t)
{
	struct buf all = BUF_INIT;
	size_t *off = xcalloc(t->n ? t->n : 1, sizeof(*off));
	for (size_t i = 0; i < t->n; i++) {
		struct xmlnode *n = &t->nodes[i];
		off[i] = all.len;
		if (n->text_off != SIZE_MAX)
			buf_add(&all, t->text.data + n->text_off, n->text_len);
		buf_addch(&all, '\0');
	}
	buf_release(&t->text);
	t->text = all;
	for (size_t i = 0; i < t->n; i++)
		t->nodes[i].text = t->text.data + off[i];
	free(off);
}

int xmltree_parse(const char *data, size_t len, struct xmltree **out, struct dth_err *err)
{
	*out = NULL;
	struct xmltree *t = xcalloc(1, sizeof(*t));
	buf_init(&t->text);
	t->p = XML_ParserCreate("UTF-8");
	if (!t->p) {
		free(t);
		return err_set(err, -ENOMEM, "xml: cannot create a parser");
	}
	XML_SetUserData(t->p, t);
	XML_SetElementHandler(t->p, on_start, on_end);
	XML_SetCharacterDataHandler(t->p, on_text);
	XML_SetStartDoctypeDeclHandler(t->p, on_doctype);
	XML_SetEntityDeclHandler(t->p, on_entity);
	XML_SetParamEntityParsing(t->p, XML_PARAM_ENTITY_PARSING_NEVER);
	enum XML_Status st =
	    len > (size_t)INT32_MAX ? XML_STATUS_ERROR : XML_Parse(t->p, data, (int)len, XML_TRUE);
	int rc = 0;
	if (t->error[0])
		rc = err_set(err, -EPROTO, "%s", t->error);
	else if (st != XML_STATUS_OK)
		rc = err_set(err, -EPROTO, "xml: %s at line %lu",
			     XML_ErrorString(XML_GetErrorCode(t->p)),
			     (unsigned long)XML_GetCurrentLineNumber(t->p));
	else if (!t->n)
		rc = err_set(err, -EPROTO, "xml: no element");
	XML_ParserFree(t->p);
	t->p = NULL;
	if (rc) {
		xmltree_free(t);
		return rc;
	}
	seal(t);
	*out = t;
	return 0;
}

const struct xmlnode *xmltree_root(const struct xmltree *t)
{
	return t->n ? &t->nodes[0] : NULL;
}

const char *xmlnode_name(const struct xmlnode *n)
{
	return n->name;
}

const char *xmlnode_text(const struct xmlnode *n, size_t *len)
{
	if (len)
		*len = n->text_len;
	return n->text;
}

static const struct xmlnode *from(const struct xmlnode *n, long i, const char *name)
{
	for (; i >= 0; i = n->tree->nodes[i].next)
		if (!name || !strcmp(n->tree->nodes[i].name, name))
			return &n->tree->nodes[i];
	return NULL;
}

const struct xmlnode *xmlnode_child(const struct xmlnode *n, const char *name)
{
	return n ? from(n, n->first_child, name) : NULL;
}

const struct xmlnode *xmlnode_next(const struct xmlnode *n, const char *name)
{
	return n ? from(n, n->next, name) : NULL;
}

const struct xmlnode *xmlnode_at(const struct xmlnode *n, const char *path)
{
	while (n && *path) {
		size_t l = strcspn(path, "/");
		char name[128];
		if (l >= sizeof(name))
			return NULL;
		memcpy(name, path, l);
		name[l] = '\0';
		n = xmlnode_child(n, name);
		path += l + (path[l] == '/');
	}
	return n;
}

const char *xmlnode_text_at(const struct xmlnode *n, const char *path)
{
	n = xmlnode_at(n, path);
	return n ? n->text : NULL;
}
