/* Registry manifests: see oci.h. One pass over the jansson tree: the
 * descriptors are checked and copied out as they are met, then the sizes of
 * repeated digests are compared on a sorted copy. Every failure goes through
 * bad(), which names the manifest and the descriptor. */
#include "common/compat.h"

#include "remote/oci.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WHERE_MAX 48
#define SHOWN_MAX 80

enum role { ROLE_CONFIG, ROLE_LAYER, ROLE_CHILD };

struct parse {
	const char *name;
	struct dth_err *err;
};

/* A printable rendering of untrusted bytes (at most SHOWN_MAX of them). */
static void shown(const char *s, size_t n, char *out, size_t outsz)
{
	size_t j = 0;
	for (size_t i = 0; i < n && j + 4 < outsz; i++) {
		if (i >= SHOWN_MAX) {
			memcpy(out + j, "...", 3);
			j += 3;
			break;
		}
		unsigned char ch = (unsigned char)s[i];
		out[j++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
	}
	out[j] = '\0';
}

/* -EBADMSG with "manifest NAME: WHERE: what". */
static int bad(const struct parse *p, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int bad(const struct parse *p, const char *where, const char *fmt, ...)
{
	char what[320];
	va_list ap;
	va_start(ap, fmt);
	msg_vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return err_set(p->err, -EBADMSG, "manifest%s%.200s: %s%s%s", p->name ? " " : "",
		       p->name ? p->name : "", where ? where : "", where ? ": " : "", what);
}

static bool printable(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
			return false;
	return true;
}

/* Member key of obj, NULL when absent or null (Go writes a nil slice or
 * pointer as null). */
static json_t *member(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	return json_is_null(v) ? NULL : v;
}

/* An optional string member: 0 with *s NULL when absent; a value that is not
 * a printable string shorter than max bytes is refused. */
static int opt_string(const struct parse *p, const char *where, json_t *obj, const char *key,
		      size_t max, const char **s)
{
	*s = NULL;
	json_t *v = member(obj, key);
	if (!v)
		return 0;
	if (!json_is_string(v))
		return bad(p, where, "%s is not a string", key);
	size_t n = json_string_length(v);
	const char *str = json_string_value(v);
	if (n >= max || !printable(str, n)) {
		char sh[SHOWN_MAX + 8];
		shown(str, n, sh, sizeof(sh));
		return bad(p, where, "bad %s '%s' (printable, at most %zu bytes)", key, sh,
			   max - 1);
	}
	*s = str;
	return 0;
}

static int parse_platform(const struct parse *p, const char *where, json_t *pl, struct oci_desc *d)
{
	if (!json_is_object(pl))
		return bad(p, where, "platform is not an object");
	const char *os, *arch, *variant;
	int rc = opt_string(p, where, pl, "os", OCI_PLATFORM_MAX, &os);
	if (!rc)
		rc = opt_string(p, where, pl, "architecture", OCI_PLATFORM_MAX, &arch);
	if (!rc)
		rc = opt_string(p, where, pl, "variant", OCI_PLATFORM_MAX, &variant);
	if (rc)
		return rc;
	if (!os || !arch)
		return bad(p, where, "platform without %s", os ? "architecture" : "os");
	str_copy_fit(d->platform.os, os, sizeof(d->platform.os));
	str_copy_fit(d->platform.arch, arch, sizeof(d->platform.arch));
	if (variant)
		str_copy_fit(d->platform.variant, variant, sizeof(d->platform.variant));
	d->has_platform = true;
	return 0;
}

/* Whether a layer media type says the blob lives elsewhere. */
static bool foreign_type(const char *mt)
{
	return mt && (strstr(mt, "foreign") || strstr(mt, "nondistributable"));
}

/* One descriptor at where: digest, exact size, media type, urls, and for an
 * index child its platform. */
static int parse_desc(const struct parse *p, const char *where, json_t *j, enum role role,
		      struct oci_desc *d)
{
	bool child = role == ROLE_CHILD;
	memset(d, 0, sizeof(*d));
	if (!json_is_object(j))
		return bad(p, where, "not an object");
	json_t *dj = json_object_get(j, "digest");
	if (!json_is_string(dj))
		return bad(p, where, "no digest");
	const char *digest = json_string_value(dj);
	size_t dlen = json_string_length(dj);
	if (dlen >= sizeof(d->digest) || strlen(digest) != dlen || !registry_digest_valid(digest)) {
		char sh[SHOWN_MAX + 8];
		shown(digest, dlen, sh, sizeof(sh));
		return bad(p, where, "bad digest '%s' (sha256:<64 lowercase hex>)", sh);
	}
	memcpy(d->digest, digest, dlen + 1);
	json_t *sz = json_object_get(j, "size");
	if (!sz)
		return bad(p, where, "%s has no size", d->digest);
	if (!json_is_integer(sz))
		return bad(p, where, "%s: size is not an integer", d->digest);
	json_int_t n = json_integer_value(sz);
	uint64_t max = child ? REGISTRY_MANIFEST_MAX : OCI_BLOB_SIZE_MAX;
	if (n < 0 || (uint64_t)n > max)
		return bad(p, where, "%s: size %lld out of range (0 to %llu)", d->digest,
			   (long long)n, (unsigned long long)max);
	bool empty = !strcmp(d->digest, OCI_EMPTY_DIGEST);
	if (n == 0 && !empty)
		return bad(p, where,
			   "%s: size 0, but only the empty blob (%s) has no bytes: the exact size "
			   "is required",
			   d->digest, OCI_EMPTY_DIGEST);
	if (n != 0 && empty)
		return bad(p, where, "%s is the empty blob's digest but size is %lld", d->digest,
			   (long long)n);
	d->size = (uint64_t)n;
	const char *mt;
	int rc = opt_string(p, where, j, "mediaType", REGISTRY_MEDIA_TYPE_MAX, &mt);
	if (rc)
		return rc;
	if (mt)
		str_copy_fit(d->media_type, mt, sizeof(d->media_type));
	json_t *urls = member(j, "urls");
	if (urls) {
		if (!json_is_array(urls))
			return bad(p, where, "%s: urls is not an array", d->digest);
		size_t i;
		json_t *u;
		json_array_foreach(urls, i, u)
		{
			if (!json_is_string(u))
				return bad(p, where, "%s: urls[%zu] is not a string", d->digest, i);
		}
		d->foreign = role == ROLE_LAYER && json_array_size(urls) > 0 && foreign_type(mt);
	}
	json_t *pl = member(j, "platform");
	if (child && pl)
		return parse_platform(p, where, pl, d);
	return 0;
}

static int cmp_desc_ptr(const void *a, const void *b)
{
	const struct oci_desc *x = *(const struct oci_desc *const *)a;
	const struct oci_desc *y = *(const struct oci_desc *const *)b;
	return strcmp(x->digest, y->digest);
}

/* The same digest must have the same size wherever it appears. */
static int check_sizes(const struct parse *p, struct oci_manifest *m)
{
	size_t n = m->n_items + (m->kind == REGISTRY_KIND_IMAGE);
	if (n < 2)
		return 0;
	const struct oci_desc **v = xcalloc(n, sizeof(*v));
	size_t k = 0;
	if (m->kind == REGISTRY_KIND_IMAGE)
		v[k++] = &m->config;
	for (size_t i = 0; i < m->n_items; i++)
		v[k++] = &m->items[i];
	qsort(v, n, sizeof(*v), cmp_desc_ptr);
	int rc = 0;
	for (size_t i = 1; i < n && !rc; i++)
		if (!strcmp(v[i]->digest, v[i - 1]->digest) && v[i]->size != v[i - 1]->size)
			rc =
			    bad(p, NULL, "%s appears with sizes %llu and %llu", v[i]->digest,
				(unsigned long long)v[i - 1]->size, (unsigned long long)v[i]->size);
	free(v);
	return rc;
}

static int parse_items(const struct parse *p, json_t *arr, const char *key, enum role role,
		       struct oci_manifest *out)
{
	if (json_is_null(arr)) /* a Go nil slice: none */
		return 0;
	if (!json_is_array(arr))
		return bad(p, NULL, "%s is %s", key, arr ? "not an array" : "missing");
	size_t n = json_array_size(arr);
	if (n > OCI_ITEMS_MAX)
		return bad(p, NULL, "%zu %s, more than the %u allowed", n, key, OCI_ITEMS_MAX);
	if (n == 0)
		return 0;
	out->items = xcalloc(n, sizeof(*out->items));
	for (size_t i = 0; i < n; i++) {
		char where[WHERE_MAX];
		msg_snprintf(where, sizeof(where), "%s[%zu]", key, i);
		int rc = parse_desc(p, where, json_array_get(arr, i), role, &out->items[i]);
		if (rc)
			return rc;
		out->n_items = i + 1;
	}
	return 0;
}

static int parse_doc(const struct parse *p, json_t *doc, enum registry_manifest_kind kind,
		     struct oci_manifest *out)
{
	if (!json_is_object(doc))
		return bad(p, NULL, "not a JSON object");
	json_t *sv = json_object_get(doc, "schemaVersion");
	if (json_is_integer(sv) && json_integer_value(sv) != 2)
		return bad(p, NULL, "schemaVersion is %lld, not 2",
			   (long long)json_integer_value(sv));
	if (!json_is_integer(sv))
		return bad(p, NULL, "schemaVersion is %s, not 2", sv ? "not a number" : "missing");
	const char *bmt;
	int rc = opt_string(p, NULL, doc, "mediaType", REGISTRY_MEDIA_TYPE_MAX, &bmt);
	if (rc)
		return rc;
	if (bmt && registry_media_type_kind(bmt) != kind)
		return bad(p, NULL, "its mediaType '%s' is not of the kind served (%s)", bmt,
			   kind == REGISTRY_KIND_IMAGE ? "an image manifest" : "an index");
	out->kind = kind;
	if (kind == REGISTRY_KIND_INDEX) {
		if (json_object_get(doc, "layers") || json_object_get(doc, "config"))
			return bad(p, NULL, "an index with %s (ambiguous)",
				   json_object_get(doc, "layers") ? "layers" : "config");
		rc =
		    parse_items(p, json_object_get(doc, "manifests"), "manifests", ROLE_CHILD, out);
	} else {
		if (json_object_get(doc, "manifests"))
			return bad(p, NULL, "an image manifest with manifests (ambiguous)");
		json_t *cfg = json_object_get(doc, "config");
		if (!cfg)
			return bad(p, NULL, "no config");
		rc = parse_desc(p, "config", cfg, ROLE_CONFIG, &out->config);
		if (!rc)
			rc = parse_items(p, json_object_get(doc, "layers"), "layers", ROLE_LAYER,
					 out);
	}
	if (!rc)
		rc = check_sizes(p, out);
	return rc;
}

int oci_manifest_parse(const void *body, size_t len, const char *media_type, const char *name,
		       struct oci_manifest *out, struct dth_err *err)
{
	memset(out, 0, sizeof(*out));
	struct parse p = {.name = name, .err = err};
	enum registry_manifest_kind kind = registry_media_type_kind(media_type);
	if (kind != REGISTRY_KIND_IMAGE && kind != REGISTRY_KIND_INDEX) {
		char sh[SHOWN_MAX + 8];
		shown(media_type ? media_type : "", media_type ? strlen(media_type) : 0, sh,
		      sizeof(sh));
		return err_set(err, -ENOTSUP, "manifest%s%.200s: unsupported media type '%s'",
			       name ? " " : "", name ? name : "", sh);
	}
	if (len > REGISTRY_MANIFEST_MAX)
		return err_set(err, -EFBIG, "manifest%s%.200s: %zu bytes, more than the %u allowed",
			       name ? " " : "", name ? name : "", len, REGISTRY_MANIFEST_MAX);
	json_error_t je;
	json_t *doc = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &je);
	if (!doc) {
		char sh[SHOWN_MAX + 8];
		shown(je.text, strlen(je.text), sh, sizeof(sh));
		return bad(&p, NULL, "not valid JSON (line %d, column %d: %s)", je.line, je.column,
			   sh);
	}
	int rc = parse_doc(&p, doc, kind, out);
	json_decref(doc);
	if (rc)
		oci_manifest_release(out);
	return rc;
}

void oci_manifest_release(struct oci_manifest *m)
{
	if (!m)
		return;
	free(m->items);
	memset(m, 0, sizeof(*m));
}
