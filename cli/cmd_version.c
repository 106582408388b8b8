/* dth version [--json]: the version, the git revision it was built from,
 * and the versions of the libraries it runs with (as the libraries report
 * them at run time where they can, else as built against). */
#include "common/compat.h"

#define FUSE_USE_VERSION 314

#include <curl/curl.h>
#include <expat.h>
#include <fuse3/fuse.h>
#include <jansson.h>
#include <lmdb.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "build_info.h"
#include "cli/cli.h"

struct lib_version {
	const char *name;
	char value[128];
};

static void put(struct lib_version *v, const char *name, const char *value)
{
	v->name = name;
	str_copy_msg(v->value, value ? value : "?", sizeof(v->value));
}

static size_t lib_versions(struct lib_version *v)
{
	size_t n = 0;
	char tmp[64];
	put(&v[n++], "libcurl", curl_version_info(CURLVERSION_NOW)->version);
	put(&v[n++], "openssl", OpenSSL_version(OPENSSL_VERSION_STRING));
	int maj, min, patch;
	mdb_version(&maj, &min, &patch);
	xsnprintf(tmp, sizeof(tmp), "%d.%d.%d", maj, min, patch);
	put(&v[n++], "lmdb", tmp);
	put(&v[n++], "libfuse", fuse_pkgversion());
	put(&v[n++], "jansson", jansson_version_str());
	XML_Expat_Version e = XML_ExpatVersionInfo();
	xsnprintf(tmp, sizeof(tmp), "%d.%d.%d", e.major, e.minor, e.micro);
	put(&v[n++], "expat", tmp);
	put(&v[n++], "libmicrohttpd", MHD_get_version());
	unsigned x = XXH_versionNumber();
	xsnprintf(tmp, sizeof(tmp), "%u.%u.%u", x / 10000, x / 100 % 100, x % 100);
	put(&v[n++], "xxhash", tmp);
	put(&v[n++], "libsystemd", DTH_LIBSYSTEMD_VERSION " (built against)");
	return n;
}

int cmd_version(int argc, char **argv)
{
	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		fputs(
		    "usage: dth version [--json]\n"
		    "  prints dth's version, the git revision it was built from and the versions\n"
		    "  of the libraries linked\n\n"
		    "options:\n"
		    "  --json                           one JSON object: version, revision, "
		    "libraries\n"
		    "  --help                           this help\n",
		    stdout);
		return EXIT_DONE;
	}
	bool json = argc == 2 && !strcmp(argv[1], "--json");
	if (argc > 2 || (argc == 2 && !json)) {
		cli_error("usage: dth version [--json]");
		return EXIT_USAGE;
	}
	struct lib_version v[16];
	size_t n = lib_versions(v);
	if (json) {
		json_t *libs = json_object();
		for (size_t i = 0; i < n; i++)
			json_object_set_new(libs, v[i].name, json_string(v[i].value));
		json_t *o = json_pack("{s:s, s:s, s:o}", "version", DTH_VERSION, "revision",
				      DTH_GIT_REVISION, "libraries", libs);
		char *s = json_dumps(o, JSON_COMPACT);
		puts(s);
		free(s);
		json_decref(o);
		return EXIT_DONE;
	}
	printf("dth %s (revision %s)\n", DTH_VERSION, DTH_GIT_REVISION);
	for (size_t i = 0; i < n; i++)
		printf("  %-14s %s\n", v[i].name, v[i].value);
	return EXIT_DONE;
}
