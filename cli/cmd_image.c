/* dth image: look at container registries (inspect, tags, repos). */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/buf.h"
#include "common/util.h"
#include "remote/http.h"
#include "remote/registry.h"
#include "remote/remotes.h"

static void image_usage(FILE *f)
{
	fputs("usage: dth image inspect [--raw] [--config FILE] REMOTE:REPO[:TAG|@DIGEST]\n"
	      "       dth image tags [--config FILE] REMOTE:REPO\n"
	      "       dth image repos [--config FILE] REMOTE:\n"
	      "\n"
	      "  inspect   the manifest of an image: without --raw, JSON with its digest,\n"
	      "            media type and size (and, for an index, each platform's manifest);\n"
	      "            with --raw, the manifest bytes exactly as the registry serves them\n"
	      "            (tag default: latest)\n"
	      "  tags      every tag of a repository, one per line\n"
	      "  repos     every repository of the registry (its catalog), one per line\n"
	      "\n"
	      "REMOTE is a [remote NAME] of type registry in the config file.\n"
	      "\nexit status: 0 done, 1 failed, 2 bad usage or config, 3 the registry cannot be\n"
	      "reached, refuses the credentials or has no such image\n",
	      f);
}

struct image_ctx {
	struct config *cfg;
	struct http_engine *http;
	struct registry_client *client;
};

static void image_close(struct image_ctx *x)
{
	registry_client_free(x->client);
	http_engine_free(x->http);
	config_free(x->cfg);
}

/* Open REMOTE (the part of spec before ':'); *rest points after the ':'. */
static int image_open(struct image_ctx *x, const char *cfg_file, const char *spec,
		      const char **rest)
{
	memset(x, 0, sizeof(*x));
	const char *colon = strchr(spec, ':');
	if (!colon || colon == spec) {
		cli_error("bad image '%s': expected REMOTE:REPO[:TAG|@DIGEST]", spec);
		return EXIT_USAGE;
	}
	*rest = colon + 1;
	int rc = cli_config_load(cfg_file, &x->cfg);
	if (rc)
		return rc;
	char *name = xstrndup(spec, (size_t)(colon - spec));
	const struct remote_def *def = config_remote(x->cfg, name);
	if (!def) {
		const char *path = config_path(x->cfg);
		cli_error(
		    "no remote called '%s' (define [remote %s] with type = registry in %s, or "
		    "set DTH_REMOTE_%s_TYPE=registry and DTH_REMOTE_%s_URL)",
		    name, name, path ? path : "the config file", name, name);
		free(name);
		return EXIT_USAGE;
	}
	if (!def->type || strcmp(def->type, "registry") != 0) {
		cli_error("remote '%s' is of type %s; dth image needs a registry remote", name,
			  def->type ? def->type : "s3");
		free(name);
		return EXIT_USAGE;
	}
	struct http_engine_opts ho;
	memset(&ho, 0, sizeof(ho));
	ho.tls_verify = def->tls_verify;
	ho.ca_file = def->ca_file;
	x->http = http_engine_new(&ho);
	if (!x->http) {
		cli_error("cannot start the http engine");
		free(name);
		return EXIT_SOME_FAILED;
	}
	struct dth_err err;
	err_clear(&err);
	if (remote_open_registry(def, x->http, &x->client, &err)) {
		cli_error("remote '%s': %s", name, err.message);
		free(name);
		return EXIT_USAGE;
	}
	free(name);
	return EXIT_DONE;
}

static int image_fail(int rc, const struct dth_err *err)
{
	cli_error("%s", err->message[0] ? err->message : strerror(-rc));
	if (rc == -EINVAL && err->http_status == 0)
		return EXIT_USAGE;
	if (rc == -ENOTSUP || rc == -EBADMSG)
		return EXIT_SOME_FAILED;
	return cli_exit_for_remote(rc);
}

static void platform_str(json_t *p, struct buf *out)
{
	const char *os = json_string_value(json_object_get(p, "os"));
	const char *arch = json_string_value(json_object_get(p, "architecture"));
	const char *var = json_string_value(json_object_get(p, "variant"));
	buf_addf(out, "%s/%s", os ? os : "?", arch ? arch : "?");
	if (var)
		buf_addf(out, "/%s", var);
}

/* The JSON summary of a manifest. */
static json_t *inspect_json(const char *repo, const char *ref, const struct registry_manifest *m)
{
	json_t *o = json_object();
	json_object_set_new(o, "name", json_string(repo));
	json_object_set_new(o, "reference", json_string(ref));
	json_object_set_new(o, "digest", json_string(m->digest));
	json_object_set_new(o, "mediaType", json_string(m->media_type));
	json_object_set_new(o, "size", json_integer((json_int_t)m->size));
	json_t *doc = json_loadb(m->body.data, m->body.len, 0, NULL);
	enum registry_manifest_kind k = registry_media_type_kind(m->media_type);
	json_object_set_new(o, "kind", json_string(k == REGISTRY_KIND_INDEX ? "index" : "image"));
	if (doc && k == REGISTRY_KIND_INDEX) {
		json_t *arr = json_array();
		size_t i;
		json_t *c;
		json_array_foreach(json_object_get(doc, "manifests"), i, c)
		{
			json_t *e = json_object();
			json_object_set(e, "digest", json_object_get(c, "digest"));
			json_object_set(e, "mediaType", json_object_get(c, "mediaType"));
			json_object_set(e, "size", json_object_get(c, "size"));
			json_t *p = json_object_get(c, "platform");
			if (json_is_object(p)) {
				struct buf ps = BUF_INIT;
				platform_str(p, &ps);
				json_object_set_new(e, "platform", json_string(buf_str(&ps)));
				buf_release(&ps);
			}
			json_array_append_new(arr, e);
		}
		json_object_set_new(o, "manifests", arr);
	} else if (doc) {
		json_t *cfg = json_object_get(doc, "config");
		if (json_is_object(cfg))
			json_object_set(o, "config", json_object_get(cfg, "digest"));
		json_t *arr = json_array();
		size_t i;
		json_t *l;
		uint64_t total = 0;
		json_array_foreach(json_object_get(doc, "layers"), i, l)
		{
			json_t *e = json_object();
			json_object_set(e, "digest", json_object_get(l, "digest"));
			json_object_set(e, "mediaType", json_object_get(l, "mediaType"));
			json_object_set(e, "size", json_object_get(l, "size"));
			json_t *sz = json_object_get(l, "size");
			if (json_is_integer(sz))
				total += (uint64_t)json_integer_value(sz);
			json_array_append_new(arr, e);
		}
		json_object_set_new(o, "layers", arr);
		json_object_set_new(o, "layersSize", json_integer((json_int_t)total));
	}
	json_decref(doc);
	return o;
}

static int image_inspect(const char *config, bool raw, const char *spec)
{
	struct image_ctx x;
	const char *rest;
	int ec = image_open(&x, config, spec, &rest);
	if (ec) {
		image_close(&x);
		return ec;
	}
	char *repo = NULL, *tag = NULL, *digest = NULL;
	struct dth_err err;
	err_clear(&err);
	struct registry_manifest m;
	registry_manifest_init(&m);
	int rc = registry_parse_reference(rest, &repo, &tag, &digest, &err);
	if (rc) {
		cli_error("%s", err.message);
		ec = EXIT_USAGE;
		goto cleanup;
	}
	const char *ref = digest ? digest : tag ? tag : "latest";
	rc = registry_manifest_get(x.client, repo, ref, &m, &err);
	if (rc) {
		ec = image_fail(rc, &err);
		goto cleanup;
	}
	if (raw) {
		if (fwrite(m.body.data, 1, m.body.len, stdout) != m.body.len) {
			cli_error("cannot write the manifest: %s", strerror(errno));
			ec = EXIT_SOME_FAILED;
			goto cleanup;
		}
	} else {
		json_t *o = inspect_json(repo, ref, &m);
		char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		printf("%s\n", s ? s : "{}");
		free(s);
		json_decref(o);
	}
	if (fflush(stdout) != 0) {
		cli_error("cannot write the output: %s", strerror(errno));
		ec = EXIT_SOME_FAILED;
	}
cleanup:
	registry_manifest_release(&m);
	free(repo);
	free(tag);
	free(digest);
	image_close(&x);
	return ec;
}

static int print_name(void *ctx, const char *name)
{
	(void)ctx;
	if (printf("%s\n", name) < 0)
		return -EIO;
	return 0;
}

static int image_list(const char *config, bool catalog, const char *spec)
{
	struct image_ctx x;
	const char *rest;
	int ec = image_open(&x, config, spec, &rest);
	if (ec) {
		image_close(&x);
		return ec;
	}
	struct dth_err err;
	err_clear(&err);
	int rc;
	if (catalog) {
		if (*rest) {
			cli_error("dth image repos takes REMOTE: (nothing after the ':')");
			image_close(&x);
			return EXIT_USAGE;
		}
		rc = registry_catalog(x.client, print_name, NULL, &err);
	} else {
		if (!*rest || strchr(rest, '@') ||
		    strchr(strchr(rest, '/') ? strrchr(rest, '/') : rest, ':')) {
			cli_error("dth image tags takes REMOTE:REPO (no tag or digest)");
			image_close(&x);
			return EXIT_USAGE;
		}
		rc = registry_tags_list(x.client, rest, print_name, NULL, &err);
	}
	if (rc)
		ec = image_fail(rc, &err);
	else if (fflush(stdout) != 0)
		ec = EXIT_SOME_FAILED;
	image_close(&x);
	return ec;
}

int cmd_image(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		image_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : EXIT_DONE;
	}
	const char *sub = argv[1];
	bool raw = false;
	const char *config = NULL;
	static const struct option opts[] = {
	    {"raw", no_argument, NULL, 'r'},
	    {"config", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	optind = 1;
	int c;
	while ((c = getopt_long(argc - 1, argv + 1, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			raw = true;
			break;
		case 'c':
			config = optarg;
			break;
		case 'h':
			image_usage(stdout);
			return EXIT_DONE;
		default:
			image_usage(stderr);
			return EXIT_USAGE;
		}
	}
	int nargs = argc - 1 - optind;
	char **args = argv + 1 + optind;
	if (nargs != 1) {
		cli_error("dth image %s takes one argument", sub);
		image_usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(sub, "inspect"))
		return image_inspect(config, raw, args[0]);
	if (raw) {
		cli_error("--raw applies to dth image inspect only");
		return EXIT_USAGE;
	}
	if (!strcmp(sub, "tags"))
		return image_list(config, false, args[0]);
	if (!strcmp(sub, "repos"))
		return image_list(config, true, args[0]);
	cli_error("unknown image command '%s' (inspect, tags, repos)", sub);
	image_usage(stderr);
	return EXIT_USAGE;
}
