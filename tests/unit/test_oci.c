/* Unit tests of remote/oci.c: the manifest and index parser and its checks. */
#include "common/compat.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "remote/oci.h"
#include "remote/registry.h"
#include "tests/unit/tap.h"

#define MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define MT_OCI_LAYER  "application/vnd.oci.image.layer.v1.tar+gzip"
#define MT_FOREIGN    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
#define NAME	      "test/x@sha256:0000"

static char d_cfg[REGISTRY_DIGEST_MAX], d_l1[REGISTRY_DIGEST_MAX], d_l2[REGISTRY_DIGEST_MAX],
    d_m1[REGISTRY_DIGEST_MAX], d_m2[REGISTRY_DIGEST_MAX];

static int parse(const char *doc, const char *mt, struct oci_manifest *m, struct dth_err *e)
{
	err_clear(e);
	return oci_manifest_parse(doc, strlen(doc), mt, NAME, m, e);
}

/* An image manifest with config and layer sizes given as JSON text. */
static void image_doc(struct buf *b, const char *cfg_size, const char *l1_digest,
		      const char *l1_size)
{
	buf_reset(b);
	buf_addf(b,
		 "{\"schemaVersion\":2,\"mediaType\":\"" REGISTRY_MT_OCI_MANIFEST "\","
		 "\"config\":{\"mediaType\":\"" MT_OCI_CONFIG "\",\"digest\":\"%s\",\"size\":%s},"
		 "\"layers\":[{\"mediaType\":\"" MT_OCI_LAYER "\",\"digest\":\"%s\",\"size\":%s}]}",
		 d_cfg, cfg_size, l1_digest, l1_size);
}

static void test_image(void)
{
	struct buf b = BUF_INIT;
	struct oci_manifest m;
	struct dth_err e;
	buf_addf(
	    &b,
	    "{\"schemaVersion\":2,\"mediaType\":\"" REGISTRY_MT_OCI_MANIFEST "\","
	    "\"config\":{\"mediaType\":\"" MT_OCI_CONFIG "\",\"digest\":\"%s\",\"size\":7023},"
	    "\"layers\":[{\"mediaType\":\"" MT_OCI_LAYER "\",\"digest\":\"%s\",\"size\":32654},"
	    "{\"mediaType\":\"" MT_FOREIGN "\",\"digest\":\"%s\",\"size\":16724,"
	    "\"urls\":[\"https://example.com/l2\"]},"
	    "{\"mediaType\":\"" MT_OCI_LAYER "\",\"digest\":\"" OCI_EMPTY_DIGEST "\",\"size\":0},"
	    "{\"mediaType\":\"" MT_OCI_LAYER "\",\"digest\":\"%s\",\"size\":32654}],"
	    "\"annotations\":{\"a\":\"b\"},\"unknown\":[1,2,3]}",
	    d_cfg, d_l1, d_l2, d_l1);
	int rc = parse(buf_str(&b), REGISTRY_MT_OCI_MANIFEST, &m, &e);
	is_int(rc, 0, "oci image manifest parses: %s", e.message);
	is_int(m.kind, REGISTRY_KIND_IMAGE, "kind image");
	is_str(m.config.digest, d_cfg, "config digest");
	is_int(m.config.size, 7023, "config size");
	is_str(m.config.media_type, MT_OCI_CONFIG, "config media type");
	is_int(m.n_items, 4, "four layers (a repeated digest kept)");
	ok(m.n_items == 4 && !strcmp(m.items[0].digest, d_l1) && m.items[0].size == 32654 &&
	       !m.items[0].foreign,
	   "layer 0");
	ok(m.n_items == 4 && m.items[1].foreign && m.items[1].size == 16724,
	   "foreign layer with urls flagged");
	ok(m.n_items == 4 && m.items[2].size == 0 && !strcmp(m.items[2].digest, OCI_EMPTY_DIGEST),
	   "the empty blob has size 0");
	oci_manifest_release(&m);
	ok(m.items == NULL && m.n_items == 0, "released");
	oci_manifest_release(&m);

	/* Docker v2 schema 2, media type with parameters, no mediaType in the body */
	buf_reset(&b);
	buf_addf(&b,
		 "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"application/"
		 "vnd.docker.container.image.v1+json\",\"digest\":\"%s\",\"size\":1},"
		 "\"layers\":[{\"mediaType\":\"" MT_FOREIGN "\",\"digest\":\"%s\",\"size\":2}]}",
		 d_cfg, d_l1);
	rc = parse(buf_str(&b), REGISTRY_MT_DOCKER_MANIFEST "; charset=utf-8", &m, &e);
	is_int(rc, 0, "docker v2s2 parses: %s", e.message);
	ok(m.n_items == 1 && !m.items[0].foreign, "a foreign media type without urls is copied");
	oci_manifest_release(&m);

	/* null for optional members and the arrays: absent (as Go writes nil) */
	buf_reset(&b);
	buf_addf(&b,
		 "{\"schemaVersion\":2,\"mediaType\":null,\"config\":{\"digest\":\"%s\",\"size\":2,"
		 "\"mediaType\":null,\"urls\":null},\"layers\":null}",
		 d_cfg);
	rc = parse(buf_str(&b), REGISTRY_MT_OCI_MANIFEST, &m, &e);
	ok(rc == 0 && m.n_items == 0 && m.config.media_type[0] == '\0', "nulls are absent: %s",
	   e.message);
	oci_manifest_release(&m);
	rc = parse("{\"schemaVersion\":2,\"manifests\":null}", REGISTRY_MT_OCI_INDEX, &m, &e);
	ok(rc == 0 && m.n_items == 0, "manifests null: none (%s)", e.message);
	oci_manifest_release(&m);

	/* no layers at all (an artifact) */
	buf_reset(&b);
	buf_addf(&b,
		 "{\"schemaVersion\":2,\"config\":{\"digest\":\"%s\",\"size\":2},\"layers\":[]}",
		 d_cfg);
	rc = parse(buf_str(&b), REGISTRY_MT_OCI_MANIFEST, &m, &e);
	ok(rc == 0 && m.n_items == 0 && m.items == NULL, "empty layers: %s", e.message);
	ok(m.config.media_type[0] == '\0', "absent media type is empty");
	oci_manifest_release(&m);
	buf_release(&b);
}

static void test_index(void)
{
	struct buf b = BUF_INIT;
	struct oci_manifest m;
	struct dth_err e;
	buf_addf(&b,
		 "{\"schemaVersion\":2,\"mediaType\":\"" REGISTRY_MT_DOCKER_LIST "\","
		 "\"manifests\":[{\"mediaType\":\"" REGISTRY_MT_DOCKER_MANIFEST "\","
		 "\"digest\":\"%s\",\"size\":528,\"platform\":{\"architecture\":\"amd64\","
		 "\"os\":\"linux\"}},"
		 "{\"mediaType\":\"" REGISTRY_MT_DOCKER_MANIFEST "\",\"digest\":\"%s\","
		 "\"size\":529,\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\","
		 "\"variant\":\"v8\",\"os.features\":[\"x\"]}},"
		 "{\"mediaType\":\"" REGISTRY_MT_OCI_MANIFEST
		 "\",\"digest\":\"%s\",\"size\":528}]}",
		 d_m1, d_m2, d_m1);
	int rc = parse(buf_str(&b), REGISTRY_MT_DOCKER_LIST, &m, &e);
	is_int(rc, 0, "manifest list parses: %s", e.message);
	is_int(m.kind, REGISTRY_KIND_INDEX, "kind index");
	is_int(m.n_items, 3, "three children");
	if (m.n_items == 3) {
		ok(m.items[0].has_platform && !strcmp(m.items[0].platform.os, "linux") &&
		       !strcmp(m.items[0].platform.arch, "amd64") &&
		       m.items[0].platform.variant[0] == '\0',
		   "child 0 platform");
		ok(!strcmp(m.items[1].platform.variant, "v8") && m.items[1].size == 529,
		   "child 1 variant and size");
		ok(!m.items[2].has_platform, "child 2 without platform");
		is_str(m.items[2].media_type, REGISTRY_MT_OCI_MANIFEST, "child media type");
	}
	oci_manifest_release(&m);
	/* an OCI index served with the OCI media type */
	buf_reset(&b);
	buf_addf(&b, "{\"schemaVersion\":2,\"manifests\":[]}");
	rc = parse(buf_str(&b), REGISTRY_MT_OCI_INDEX, &m, &e);
	ok(rc == 0 && m.n_items == 0, "empty index: %s", e.message);
	oci_manifest_release(&m);
	buf_release(&b);
}

/* doc (with %s for the digests) must be refused with -EBADMSG and a message
 * holding each of the words. */
static void refused(const char *what, const char *mt, const char *doc, const char *w1,
		    const char *w2)
{
	struct oci_manifest m;
	struct dth_err e;
	int rc = parse(doc, mt, &m, &e);
	is_int(rc, -EBADMSG, "%s: refused (%s)", what, e.message);
	ok(strstr(e.message, "manifest " NAME) != NULL, "%s: the manifest named", what);
	ok(!w1 || strstr(e.message, w1), "%s: message has '%s'", what, w1 ? w1 : "");
	ok(!w2 || strstr(e.message, w2), "%s: message has '%s'", what, w2 ? w2 : "");
	ok(m.items == NULL && m.n_items == 0, "%s: nothing left allocated", what);
	oci_manifest_release(&m);
}

static void test_sizes(void)
{
	struct buf b = BUF_INIT;
	/* defect 8: a size of 0 is only the empty blob's */
	image_doc(&b, "5", d_l1, "0");
	refused("size 0 for a non-empty blob", REGISTRY_MT_OCI_MANIFEST, buf_str(&b), "layers[0]",
		d_l1);
	image_doc(&b, "0", d_l1, "5");
	refused("config of size 0", REGISTRY_MT_OCI_MANIFEST, buf_str(&b), "config", "size 0");
	image_doc(&b, "5", OCI_EMPTY_DIGEST, "3");
	refused("the empty blob with a size", REGISTRY_MT_OCI_MANIFEST, buf_str(&b), "layers[0]",
		"empty blob");
	image_doc(&b, "5", d_l1, "-1");
	refused("negative size", REGISTRY_MT_OCI_MANIFEST, buf_str(&b), "layers[0]", "-1");
	image_doc(&b, "5", d_l1, "1.5");
	refused("fractional size", REGISTRY_MT_OCI_MANIFEST, buf_str(&b), "layers[0]",
		"not an integer");
	image_doc(&b, "5", d_l1, "1e3");
	refused("size with an exponent", REGISTRY_MT_OCI_MANIFEST, buf_str(&b), "layers[0]",
		"not an integer");
	image_doc(&b, "5", d_l1, "\"12\"");
	refused("size as a string", REGISTRY_MT_OCI_MANIFEST, buf_str(&b), "layers[0]",
		"not an integer");
	image_doc(&b, "5", d_l1, "null");
	refused("size null", REGISTRY_MT_OCI_MANIFEST, buf_str(&b), "layers[0]", "not an integer");
	image_doc(&b, "5", d_l1, "1099511627777");
	refused("size over 1 TiB", REGISTRY_MT_OCI_MANIFEST, buf_str(&b), "layers[0]",
		"out of range");
	image_doc(&b, "5", d_l1, "99999999999999999999999");
	refused("size past 64 bits", REGISTRY_MT_OCI_MANIFEST, buf_str(&b), "JSON", NULL);
	image_doc(&b, "5", d_l1, "1099511627776");
	struct oci_manifest m;
	struct dth_err e;
	int rc = parse(buf_str(&b), REGISTRY_MT_OCI_MANIFEST, &m, &e);
	ok(rc == 0 && m.items[0].size == OCI_BLOB_SIZE_MAX, "a size of exactly 1 TiB: %s",
	   e.message);
	oci_manifest_release(&m);
	/* the same digest with two sizes */
	image_doc(&b, "5", d_cfg, "6");
	refused("one digest, two sizes", REGISTRY_MT_OCI_MANIFEST, buf_str(&b), d_cfg, "sizes");
	buf_reset(&b);
	buf_addf(&b, "{\"schemaVersion\":2,\"config\":{\"digest\":\"%s\",\"size\":2}}", d_cfg);
	refused("no layers", REGISTRY_MT_OCI_MANIFEST, buf_str(&b), "layers", "missing");
	buf_reset(&b);
	buf_addf(&b,
		 "{\"schemaVersion\":2,\"config\":{\"digest\":\"%s\",\"size\":2},"
		 "\"layers\":[{\"digest\":\"%s\"}]}",
		 d_cfg, d_l1);
	refused("a layer without size", REGISTRY_MT_OCI_MANIFEST, buf_str(&b), "layers[0]",
		"no size");
	/* index children: a manifest is never empty nor larger than dth fetches */
	buf_reset(&b);
	buf_addf(&b, "{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"%s\",\"size\":0}]}", d_m1);
	refused("child of size 0", REGISTRY_MT_OCI_INDEX, buf_str(&b), "manifests[0]", "size 0");
	buf_reset(&b);
	buf_addf(&b, "{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"%s\",\"size\":4194305}]}",
		 d_m1);
	refused("child over the manifest limit", REGISTRY_MT_OCI_INDEX, buf_str(&b), "manifests[0]",
		"out of range");
	buf_release(&b);
}

static void test_refused(void)
{
	struct buf b = BUF_INIT;
	image_doc(&b, "5", "sha256:ABC", "5");
	refused("short digest", REGISTRY_MT_OCI_MANIFEST, buf_str(&b), "layers[0]", "bad digest");
	image_doc(&b, "5",
		  "sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "5");
	refused("another algorithm", REGISTRY_MT_OCI_MANIFEST, buf_str(&b), "layers[0]", "sha512");
	image_doc(&b, "5",
		  "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85\\u0001",
		  "5");
	refused("control character in a digest", REGISTRY_MT_OCI_MANIFEST, buf_str(&b), "layers[0]",
		"?'");
	buf_reset(&b);
	buf_addf(&b, "{\"schemaVersion\":2,\"config\":{\"size\":2},\"layers\":[]}");
	refused("config without digest", REGISTRY_MT_OCI_MANIFEST, buf_str(&b), "config",
		"no digest");
	buf_reset(&b);
	buf_addf(&b, "{\"schemaVersion\":2,\"layers\":[]}");
	refused("no config", REGISTRY_MT_OCI_MANIFEST, buf_str(&b), "no config", NULL);
	buf_reset(&b);
	buf_addf(&b, "{\"schemaVersion\":2,\"config\":[],\"layers\":[]}");
	refused("config not an object", REGISTRY_MT_OCI_MANIFEST, buf_str(&b), "config",
		"not an object");
	buf_reset(&b);
	buf_addf(&b,
		 "{\"schemaVersion\":2,\"config\":{\"digest\":\"%s\",\"size\":2},\"layers\":{}}",
		 d_cfg);
	refused("layers not an array", REGISTRY_MT_OCI_MANIFEST, buf_str(&b), "layers",
		"not an array");
	refused("not JSON", REGISTRY_MT_OCI_MANIFEST, "{\"schemaVersion\":2,", "not valid JSON",
		"line 1");
	refused("empty body", REGISTRY_MT_OCI_MANIFEST, "", "not valid JSON", NULL);
	refused("an array", REGISTRY_MT_OCI_INDEX, "[1,2]", "not a JSON object", NULL);
	refused("trailing garbage", REGISTRY_MT_OCI_INDEX,
		"{\"schemaVersion\":2,\"manifests\":[]}x", "not valid JSON", NULL);
	refused("duplicate keys", REGISTRY_MT_OCI_INDEX,
		"{\"schemaVersion\":2,\"manifests\":[],\"manifests\":[]}", "not valid JSON",
		"duplicate");
	refused("schema version 1", REGISTRY_MT_OCI_INDEX, "{\"schemaVersion\":1,\"manifests\":[]}",
		"schemaVersion", NULL);
	refused("no schema version", REGISTRY_MT_OCI_INDEX, "{\"manifests\":[]}", "schemaVersion",
		"missing");
	refused("schema version as a string", REGISTRY_MT_OCI_INDEX,
		"{\"schemaVersion\":\"2\",\"manifests\":[]}", "schemaVersion", NULL);
	refused("index served as an image", REGISTRY_MT_OCI_MANIFEST,
		"{\"schemaVersion\":2,\"mediaType\":\"" REGISTRY_MT_OCI_INDEX
		"\",\"manifests\":[]}",
		"mediaType", NULL);
	refused("media type with a newline", REGISTRY_MT_OCI_INDEX,
		"{\"schemaVersion\":2,\"mediaType\":\"a\\nb\",\"manifests\":[]}", "mediaType",
		NULL);
	buf_reset(&b);
	buf_addf(&b,
		 "{\"schemaVersion\":2,\"manifests\":[],\"config\":{\"digest\":\"%s\",\"size\":2},"
		 "\"layers\":[]}",
		 d_cfg);
	refused("an index with layers", REGISTRY_MT_OCI_INDEX, buf_str(&b), "ambiguous", NULL);
	refused("an image with manifests", REGISTRY_MT_OCI_MANIFEST, buf_str(&b), "ambiguous",
		NULL);
	refused("index without manifests", REGISTRY_MT_OCI_INDEX, "{\"schemaVersion\":2}",
		"manifests", "missing");
	buf_reset(&b);
	buf_addf(&b,
		 "{\"schemaVersion\":2,\"config\":{\"digest\":\"%s\",\"size\":2},"
		 "\"layers\":[{\"digest\":\"%s\",\"size\":3,\"urls\":\"x\"}]}",
		 d_cfg, d_l1);
	refused("urls not an array", REGISTRY_MT_OCI_MANIFEST, buf_str(&b), "urls", NULL);
	buf_reset(&b);
	buf_addf(&b,
		 "{\"schemaVersion\":2,\"config\":{\"digest\":\"%s\",\"size\":2},"
		 "\"layers\":[{\"digest\":\"%s\",\"size\":3,\"urls\":[1]}]}",
		 d_cfg, d_l1);
	refused("a url not a string", REGISTRY_MT_OCI_MANIFEST, buf_str(&b), "urls[0]", NULL);
	buf_reset(&b);
	buf_addf(&b,
		 "{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"%s\",\"size\":9,"
		 "\"platform\":{\"architecture\":\"amd64\"}}]}",
		 d_m1);
	refused("platform without os", REGISTRY_MT_OCI_INDEX, buf_str(&b), "manifests[0]",
		"without os");
	buf_reset(&b);
	buf_addf(&b,
		 "{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"%s\",\"size\":9,"
		 "\"platform\":{\"os\":\"linux\",\"architecture\":7}}]}",
		 d_m1);
	refused("architecture not a string", REGISTRY_MT_OCI_INDEX, buf_str(&b), "architecture",
		NULL);
	buf_reset(&b);
	buf_addf(&b,
		 "{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"%s\",\"size\":9,"
		 "\"platform\":{\"os\":\"linux\",\"architecture\":\"%0100d\"}}]}",
		 d_m1, 0);
	refused("architecture too long", REGISTRY_MT_OCI_INDEX, buf_str(&b), "architecture", NULL);
	buf_reset(&b);
	buf_addf(&b,
		 "{\"schemaVersion\":2,\"manifests\":[{\"digest\":\"%s\",\"size\":9,"
		 "\"platform\":\"linux/amd64\"}]}",
		 d_m1);
	refused("platform not an object", REGISTRY_MT_OCI_INDEX, buf_str(&b), "platform", NULL);

	/* bounded counts */
	buf_reset(&b);
	buf_addf(&b, "{\"schemaVersion\":2,\"config\":{\"digest\":\"%s\",\"size\":2},\"layers\":[",
		 d_cfg);
	for (int i = 0; i <= OCI_ITEMS_MAX; i++)
		buf_addf(&b, "%s{\"digest\":\"%s\",\"size\":3}", i ? "," : "", d_l1);
	buf_adds(&b, "]}");
	refused("too many layers", REGISTRY_MT_OCI_MANIFEST, buf_str(&b), "4097 layers", NULL);

	/* what is not a manifest at all */
	struct oci_manifest m;
	struct dth_err e;
	int rc = parse("{}", "application/json", &m, &e);
	ok(rc == -ENOTSUP && strstr(e.message, "application/json"), "json: -ENOTSUP (%s)",
	   e.message);
	rc = parse("{}", REGISTRY_MT_DOCKER_V1_SIGNED, &m, &e);
	is_int(rc, -ENOTSUP, "schema 1: -ENOTSUP");
	rc = parse("{}", NULL, &m, &e);
	is_int(rc, -ENOTSUP, "no media type: -ENOTSUP");
	err_clear(&e);
	rc = oci_manifest_parse("{}", REGISTRY_MANIFEST_MAX + 1, REGISTRY_MT_OCI_INDEX, NULL, &m,
				&e);
	ok(rc == -EFBIG && strstr(e.message, "manifest:") == e.message,
	   "too large: -EFBIG, unnamed (%s)", e.message);
	buf_release(&b);
}

int main(void)
{
	registry_digest_of("config", 6, d_cfg);
	registry_digest_of("layer1", 6, d_l1);
	registry_digest_of("layer2", 6, d_l2);
	registry_digest_of("manifest1", 9, d_m1);
	registry_digest_of("manifest2", 9, d_m2);
	test_image();
	test_index();
	test_sizes();
	test_refused();
	return tap_done();
}
