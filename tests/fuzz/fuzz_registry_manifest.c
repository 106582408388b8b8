/* Fuzz target for remote/oci.h (registry manifests and indexes). The first
 * input byte picks the media type the bytes are served with (modulo 7: OCI
 * manifest, Docker v2s2, OCI index, Docker list, each with a "; charset"
 * parameter now and then, "application/json", schema 1, none); the rest is the
 * body. A parse must keep the contract of oci.h: on success every descriptor
 * is valid (sha256 digest, exact size within the bounds, 0 only for the empty
 * blob, one size per digest), strings are bounded and printable, flags belong
 * to their kind; on failure the result is empty and the message names the
 * manifest. Parsing the same bytes twice gives the same result. */
#include "common/compat.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "remote/oci.h"
#include "remote/registry.h"

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			fprintf(stderr, "fuzz_registry_manifest: check failed at line %d: %s\n",   \
				__LINE__, #c);                                                     \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static const char *const media_types[] = {
    REGISTRY_MT_OCI_MANIFEST,
    REGISTRY_MT_DOCKER_MANIFEST,
    REGISTRY_MT_OCI_INDEX,
    REGISTRY_MT_DOCKER_LIST,
    "application/json",
    REGISTRY_MT_DOCKER_V1_SIGNED,
    NULL,
};

static bool printable_bounded(const char *s, size_t max)
{
	size_t n = strnlen(s, max);
	if (n >= max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
			return false;
	return true;
}

static void check_desc(const struct oci_desc *d, bool child, bool layer)
{
	CHECK(registry_digest_valid(d->digest));
	bool empty = strcmp(d->digest, OCI_EMPTY_DIGEST) == 0;
	CHECK((d->size == 0) == empty);
	CHECK(d->size <= (child ? REGISTRY_MANIFEST_MAX : OCI_BLOB_SIZE_MAX));
	CHECK(printable_bounded(d->media_type, sizeof(d->media_type)));
	CHECK(!d->foreign || layer);
	CHECK(!d->has_platform || child);
	if (d->has_platform) {
		CHECK(printable_bounded(d->platform.os, sizeof(d->platform.os)));
		CHECK(printable_bounded(d->platform.arch, sizeof(d->platform.arch)));
		CHECK(printable_bounded(d->platform.variant, sizeof(d->platform.variant)));
	} else {
		CHECK(d->platform.os[0] == '\0' && d->platform.arch[0] == '\0');
	}
}

static void check_ok(const struct oci_manifest *m, const char *mt)
{
	enum registry_manifest_kind kind = registry_media_type_kind(mt);
	CHECK(m->kind == kind);
	CHECK(kind == REGISTRY_KIND_IMAGE || kind == REGISTRY_KIND_INDEX);
	CHECK(m->n_items <= OCI_ITEMS_MAX);
	CHECK((m->n_items == 0) == (m->items == NULL));
	bool index = kind == REGISTRY_KIND_INDEX;
	if (!index)
		check_desc(&m->config, false, false);
	else
		CHECK(m->config.digest[0] == '\0' && m->config.size == 0);
	for (size_t i = 0; i < m->n_items; i++) {
		check_desc(&m->items[i], index, !index);
		/* one size per digest (quadratic: fine at fuzzing sizes) */
		if (m->n_items <= 512) {
			for (size_t k = 0; k < i; k++)
				if (!strcmp(m->items[k].digest, m->items[i].digest))
					CHECK(m->items[k].size == m->items[i].size);
			if (!index && !strcmp(m->config.digest, m->items[i].digest))
				CHECK(m->config.size == m->items[i].size);
		}
	}
}

static bool same(const struct oci_manifest *a, const struct oci_manifest *b)
{
	return a->kind == b->kind && a->n_items == b->n_items &&
	       memcmp(&a->config, &b->config, sizeof(a->config)) == 0 &&
	       (a->n_items == 0 || memcmp(a->items, b->items, a->n_items * sizeof(*a->items)) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	const char *mt = media_types[data[0] % 7];
	char mtp[REGISTRY_MEDIA_TYPE_MAX];
	if (mt && (data[0] & 0x80)) {
		snprintf(mtp, sizeof(mtp), "%s; charset=utf-8", mt);
		mt = mtp;
	}
	const char *body = (const char *)data + 1;
	size_t len = size - 1;

	struct oci_manifest m, m2;
	struct dth_err e, e2;
	err_clear(&e);
	err_clear(&e2);
	/* every field written, so that same() can compare whole structs */
	memset(&m, 0x5a, sizeof(m));
	int rc = oci_manifest_parse(body, len, mt, "fuzz/repo@sha256:x", &m, &e);
	int rc2 = oci_manifest_parse(body, len, mt, "fuzz/repo@sha256:x", &m2, &e2);
	CHECK(rc == rc2);
	if (rc == 0) {
		check_ok(&m, mt);
		CHECK(same(&m, &m2));
		CHECK(e.code == 0);
	} else {
		CHECK(rc == -EBADMSG || rc == -ENOTSUP || rc == -EFBIG);
		CHECK(e.code == rc);
		CHECK(strncmp(e.message, "manifest fuzz/repo@sha256:x: ", 29) == 0);
		CHECK(strcmp(e.message, e2.message) == 0);
		CHECK(m.items == NULL && m.n_items == 0 && m.kind == REGISTRY_KIND_UNKNOWN);
		CHECK(printable_bounded(e.message, sizeof(e.message)));
		if (registry_media_type_kind(mt) != REGISTRY_KIND_IMAGE &&
		    registry_media_type_kind(mt) != REGISTRY_KIND_INDEX)
			CHECK(rc == -ENOTSUP);
	}
	oci_manifest_release(&m);
	oci_manifest_release(&m2);
	oci_manifest_release(&m2);
	return 0;
}
