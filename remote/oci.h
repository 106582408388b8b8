/* Registry manifests, parsed and checked in one place: OCI image manifests
 * and Docker v2 schema 2 manifests (an image: a config blob and layers), OCI
 * indexes and Docker manifest lists (an index: child manifests with their
 * platforms). Pure functions of their input: no I/O, no globals, thread-safe.
 *
 * The bytes come from a registry dth does not trust, and what they say drives
 * what is fetched, how much of it is read and what is stored, so validation is
 * strict: every descriptor has a sha256 digest and its exact size (0 only for
 * the empty blob, whose digest is OCI_EMPTY_DIGEST and whose size is 0), counts
 * are bounded, and a document that could be read two ways (duplicate keys, an
 * image with "manifests", an index with "layers" or "config", a mediaType field
 * of the other kind than the one served) is refused. Unknown members are
 * ignored, as the specs ask, and an optional member (or the layers or
 * manifests array) given as null counts as absent (empty): Go writes nil
 * slices and pointers so. */
#ifndef DTH_OCI_H
#define DTH_OCI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/util.h"
#include "remote/registry.h"

#define OCI_EMPTY_DIGEST  "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define OCI_BLOB_SIZE_MAX ((uint64_t)1 << 40) /* 1 TiB: a larger descriptor is refused */
#define OCI_ITEMS_MAX	  4096		      /* layers of an image, children of an index */
#define OCI_PLATFORM_MAX  64		      /* os, architecture, variant: bytes with NUL */

struct oci_platform {
	char os[OCI_PLATFORM_MAX];
	char arch[OCI_PLATFORM_MAX];
	char variant[OCI_PLATFORM_MAX]; /* "" when absent */
};

struct oci_desc {
	char digest[REGISTRY_DIGEST_MAX];	  /* "sha256:<64 hex>" */
	uint64_t size;				  /* exact: 0 only for OCI_EMPTY_DIGEST */
	char media_type[REGISTRY_MEDIA_TYPE_MAX]; /* "" when the descriptor has none */
	/* a layer with "urls" and a foreign or non-distributable media type: it
	 * is served from those urls, registries need not hold it, dth does not
	 * copy it */
	bool foreign;
	bool has_platform; /* index children: a platform was given */
	struct oci_platform platform;
};

struct oci_manifest {
	enum registry_manifest_kind kind; /* REGISTRY_KIND_IMAGE or REGISTRY_KIND_INDEX */
	struct oci_desc config;		  /* image: its config blob */
	/* image: its layers in order; index: its child manifests in order (a
	 * digest may appear more than once, always with the same size). Owned;
	 * NULL when there are none. */
	struct oci_desc *items;
	size_t n_items;
};

/* Parse the manifest bytes body (len bytes, as served) of media type
 * media_type (parameters after ';' ignored). name names the manifest in
 * messages (e.g. "repo@sha256:..."; NULL: none). 0 with *out filled (release
 * it with oci_manifest_release), or a negative errno with *out empty and err
 * saying which manifest and which descriptor ("manifest NAME: layers[2]: ..."):
 *   -ENOTSUP  media_type is neither an image manifest nor an index
 *   -EFBIG    len > REGISTRY_MANIFEST_MAX
 *   -EBADMSG  not JSON, not an object, duplicate keys, schemaVersion not 2,
 *             an ambiguous document (see above), a missing or mistyped member,
 *             more than OCI_ITEMS_MAX items, or a bad descriptor: digest not
 *             sha256:<64 hex>; size not an integer in 0..OCI_BLOB_SIZE_MAX
 *             (a child manifest: 1..REGISTRY_MANIFEST_MAX), 0 for another
 *             digest than the empty blob's, or another size than the one the
 *             same digest has elsewhere in the document; mediaType not a
 *             printable string shorter than REGISTRY_MEDIA_TYPE_MAX; urls not
 *             an array of strings; a platform without os or architecture, or
 *             with a value that is not a printable string shorter than
 *             OCI_PLATFORM_MAX. */
int oci_manifest_parse(const void *body, size_t len, const char *media_type, const char *name,
		       struct oci_manifest *out, struct dth_err *err) WUR;
/* Free what parse allocated; m is empty afterwards (releasing twice is fine). */
void oci_manifest_release(struct oci_manifest *m);

#endif
