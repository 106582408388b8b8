/* dth image: look at container registries (inspect, tags, repos). */
#include "common/compat.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <pthread.h>
#include <regex.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/image.h"
#include "agent/taskdef.h"
#include "agent/taskrun.h"
#include "cli/cli.h"
#include "common/buf.h"
#include "common/util.h"
#include "manifest/manifest.h"
#include "common/log.h"
#include "remote/creds.h"
#include "remote/ecr.h"
#include "remote/http.h"
#include "remote/registry.h"
#include "remote/remotes.h"

static void image_usage(FILE *f)
{
	fputs("usage: dth image inspect [--raw] [--config FILE] REMOTE:REPO[:TAG|@DIGEST]\n"
	      "       dth image tags [--config FILE] REMOTE:REPO\n"
	      "       dth image repos [--config FILE] REMOTE:\n"
	      "       dth image sync [--config FILE] [--state DIR] [--task NAME]\n"
	      "                      (--images LIST | --images-file FILE | --all)\n"
	      "                      [--tags REGEX] [--platform OS/ARCH[/VARIANT][,...]]\n"
	      "                      [--concurrency N] [--json] [--no-progress]\n"
	      "                      SRC: DST:[PREFIX]\n"
	      "\n"
	      "  inspect   the manifest of an image: without --raw, JSON with its digest,\n"
	      "            media type and size (and, for an index, each platform's manifest);\n"
	      "            with --raw, the manifest bytes exactly as the registry serves them\n"
	      "            (tag default: latest)\n"
	      "  tags      every tag of a repository, one per line\n"
	      "  repos     every repository of the registry (its catalog), one per line\n"
	      "  sync      copy images (LIST: repo[:tag],...; a repo without a tag: every tag)\n"
	      "            from SRC to DST (under PREFIX/), manifests byte for byte; a rerun\n"
	      "            skips tags whose source digest is unchanged\n"
	      "            --all: every repository of SRC (its catalog), each with every tag;\n"
	      "            a registry refusing the catalog is a run error (exit 3)\n"
	      "            --tags REGEX: of repos given without a tag (and of --all), only\n"
	      "            tags the POSIX extended REGEX matches whole (explicit tags are kept)\n"
	      "            --platform: copy only those platforms (a platform without a variant\n"
	      "            matches every variant). Without it an index is copied whole, its\n"
	      "            digest kept. With it, for an index: when every child matches, the\n"
	      "            index is copied whole (digest kept); when exactly one matches, the\n"
	      "            destination tag is that child manifest itself (the child's digest);\n"
	      "            when several match, the tag gets a new index of only those children\n"
	      "            (same media type, a new digest, recorded as the tag's dst_digest);\n"
	      "            when none matches, the tag is skipped with a note. An image manifest\n"
	      "            whose config is for another platform is skipped with a note.\n"
	      "            Reruns skip a tag only when its source and the --platform selection\n"
	      "            (any order) are those of its last copy\n"
	      "            On a terminal a live line (stderr) shows tags done/known, copied,\n"
	      "            unchanged, failed, blobs, bytes and rate; --no-progress: none\n"
	      "\n"
	      "REMOTE is a [remote NAME] of type registry in the config file (dth image sync\n"
	      "also takes type ecr: the ECR API gives the registry credentials, renewed before\n"
	      "they expire, destination repositories are created when missing, and --all lists\n"
	      "the repositories with DescribeRepositories).\n"
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
	x->http = remote_http_new(def);
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

/* ---- dth image sync ---- */

static volatile sig_atomic_t sync_stop;

static void on_sync_signal(int sig)
{
	(void)sig;
	sync_stop = 1;
}

struct sync_failures {
	json_t *list;
	json_t *notes;
	struct progress *pg; /* NULL, or the progress line to clear around messages */
};

/* The live progress line of image sync (progress thread). */
static void draw_image_progress(void *ctx, double elapsed)
{
	struct image_progress *p = ctx;
#define LD(f) ((unsigned long long)__atomic_load_n(&p->f, __ATOMIC_RELAXED))
	unsigned long long copied = LD(copied), skipped = LD(skipped), failed = LD(failed);
	unsigned long long done = copied + skipped + failed + LD(filtered);
	uint64_t bytes = __atomic_load_n(&p->bytes, __ATOMIC_RELAXED);
	bool all_known = __atomic_load_n(&p->listing_done, __ATOMIC_RELAXED);
	char b[32], r[32];
	progress_fmt_bytes(bytes, b);
	progress_fmt_bytes(elapsed > 0 ? (uint64_t)((double)bytes / elapsed) : 0, r);
	fprintf(stderr,
		"tags %llu/%llu%s, copied %llu, unchanged %llu, failed %llu; blobs %llu, %s at "
		"%s/s",
		done, LD(tags), all_known ? "" : "+", copied, skipped, failed, LD(blobs), b, r);
#undef LD
}

static void on_image_note(void *ctx, const char *ref, const char *message)
{
	struct sync_failures *f = ctx;
	json_array_append_new(f->notes, json_pack("{s:s, s:s}", "image", ref, "note", message));
	progress_suspend(f->pg);
	fprintf(stderr, "dth: note: %s: %s\n", ref, message);
	progress_resume(f->pg);
}

static void on_image_failure(void *ctx, const char *ref, int rc, const char *message)
{
	struct sync_failures *f = ctx;
	(void)rc;
	json_array_append_new(f->list, json_pack("{s:s, s:s}", "image", ref, "error", message));
	progress_suspend(f->pg);
	cli_error("%s: %s", ref, message);
	progress_resume(f->pg);
}

/* The flags of dth image sync besides the task's settings (taskdef.h). */
enum {
	O_CONFIG = 256,
	O_STATE,
	O_TASK,
	O_IMAGES_FILE,
	O_JSON,
	O_HELP,
	O_NO_PROGRESS,
	O_TASKDEF = 512,
};

static const struct option own_opts[] = {
    {"config", required_argument, NULL, O_CONFIG},
    {"state", required_argument, NULL, O_STATE},
    {"task", required_argument, NULL, O_TASK},
    {"images-file", required_argument, NULL, O_IMAGES_FILE},
    {"json", no_argument, NULL, O_JSON},
    {"no-progress", no_argument, NULL, O_NO_PROGRESS},
    {"help", no_argument, NULL, O_HELP},
};

struct image_args {
	const char *config, *state, *task;
	bool json, no_progress;
};

/* The lines of file as images of def. */
static int read_images_file(struct taskdef *def, const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		cli_error("--images-file %s: %s", path, strerror(errno));
		return EXIT_USAGE;
	}
	struct buf text = BUF_INIT;
	char chunk[4096];
	size_t got;
	while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_add(&text, chunk, got);
	fclose(f);
	struct dth_err err;
	int rc = taskdef_set(def, "images", buf_str(&text), &err);
	buf_release(&text);
	if (rc) {
		cli_error("--images-file %s: %s", path, err.message);
		return EXIT_USAGE;
	}
	return EXIT_DONE;
}

static int image_sync_parse(int argc, char **argv, struct image_args *a, struct taskdef *def)
{
	size_t no = ARRAY_SIZE(own_opts), nt = taskdef_cli_count(TASKDEF_IMAGE);
	struct option *lopts = xcalloc(no + nt + 1, sizeof(*lopts));
	memcpy(lopts, own_opts, sizeof(own_opts));
	taskdef_cli_options(TASKDEF_IMAGE, O_TASKDEF, lopts + no);
	struct dth_err err;
	int rc = EXIT_USAGE, c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+h", lopts, NULL)) != -1) {
		int tr;
		switch (c) {
		case O_CONFIG:
			a->config = optarg;
			continue;
		case O_STATE:
			a->state = optarg;
			continue;
		case O_TASK:
			a->task = optarg;
			continue;
		case O_IMAGES_FILE:
			if (read_images_file(def, optarg))
				goto out;
			continue;
		case O_JSON:
			a->json = true;
			continue;
		case O_NO_PROGRESS:
			a->no_progress = true;
			continue;
		case 'h':
		case O_HELP:
			image_usage(stdout);
			rc = -1;
			goto out;
		}
		tr = taskdef_cli_apply(def, O_TASKDEF, c, optarg, &err);
		if (tr < 0) {
			cli_error("image sync: %s", err.message);
			goto out;
		}
		if (tr == 0) {
			cli_error("image sync: unknown or incomplete option '%s'",
				  argv[optind - 1]);
			image_usage(stderr);
			goto out;
		}
	}
	if (argc - optind != 2) {
		cli_error(
		    "image sync needs a source and a destination (REMOTE: and REMOTE:[PREFIX])");
		goto out;
	}
	def->source = xstrdup(argv[optind]);
	def->destination = xstrdup(argv[optind + 1]);
	rc = EXIT_DONE;
out:
	free(lopts);
	return rc;
}

static void image_hook_failure(void *ctx, const char *ref, size_t len, const char *message)
{
	(void)len;
	on_image_failure(ctx, ref, 0, message);
}

static void image_print(const struct image_args *a, struct sync_failures *fails,
			const struct taskrun_result *r)
{
	const json_t *rep = r->report;
	if (a->json) {
		json_object_set(r->report, "failures", fails->list);
		json_object_set(r->report, "notes", fails->notes);
		char *s = json_dumps(r->report, JSON_COMPACT);
		if (s) {
			puts(s);
			free(s);
		}
		return;
	}
#define NUM(k) ((unsigned long long)json_integer_value(json_object_get(rep, k)))
	char b[32];
	progress_fmt_bytes(NUM("bytes"), b);
	fprintf(stderr,
		"%s: %llu images copied, %llu unchanged, %llu failed; %llu blobs (%s) in %.1f s "
		"(%llu requests)\n",
		json_string_value(json_object_get(rep, "task")), NUM("copied"), NUM("skipped"),
		NUM("failed"), NUM("blobs"), b, r->seconds, (unsigned long long)r->requests);
#undef NUM
}

static int image_sync_go(const struct image_args *a, const struct taskdef *def, struct config *cfg,
			 struct manifest *m)
{
	struct sync_failures fails = {json_array(), json_array(), NULL};
	struct taskrun_live live;
	struct taskrun_opts o = {
	    .def = def,
	    .cfg = cfg,
	    .manifest = m,
	    .stop = &sync_stop,
	    .live = &live,
	    .on_failure = image_hook_failure,
	    .on_note = on_image_note,
	    .hook_ctx = &fails,
	};
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sync_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	fails.pg =
	    progress_start_with(!a->json && !a->no_progress, draw_image_progress, &live.image);
	struct taskrun_result r;
	int exitc = taskrun_run(&o, &r);
	progress_stop(fails.pg);
	fails.pg = NULL;
	if (r.error[0])
		cli_error("%s", r.error);
	if (r.report)
		image_print(a, &fails, &r);
	taskrun_result_release(&r);
	json_decref(fails.list);
	json_decref(fails.notes);
	return exitc;
}

static int image_sync_cmd(int argc, char **argv)
{
	struct image_args a = {0};
	struct taskdef def;
	struct config *cfg = NULL;
	struct manifest *m = NULL;
	char *state_dir = NULL;
	struct dth_err err;
	err_clear(&err);
	taskdef_init(&def, TASKDEF_IMAGE);
	int exitc = image_sync_parse(argc, argv, &a, &def);
	if (exitc) {
		exitc = exitc < 0 ? EXIT_DONE : exitc;
		goto out;
	}
	struct buf tname = BUF_INIT;
	if (a.task)
		buf_adds(&tname, a.task);
	else
		buf_addf(&tname, "image:%s--%s", def.source, def.destination);
	def.name = buf_detach(&tname, NULL);
	exitc = EXIT_USAGE;
	struct task_record probe;
	if (taskdef_check(&def, true, &err, NULL) || taskrun_record_new(&def, &probe, &err)) {
		cli_error("image sync: %s", err.message);
		goto out;
	}
	if ((exitc = cli_config_load(a.config, &cfg)))
		goto out;
	state_dir = cli_state_dir(a.state);
	m = manifest_open(state_dir, MANIFEST_RDWR, &err);
	if (!m) {
		cli_error("state directory %s: %s", state_dir, err.message);
		exitc = EXIT_USAGE;
		goto out;
	}
	exitc = image_sync_go(&a, &def, cfg, m);
out:
	if (m)
		manifest_free(m);
	config_free(cfg);
	free(state_dir);
	taskdef_release(&def);
	return exitc;
}

int cmd_image(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		image_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : EXIT_DONE;
	}
	const char *sub = argv[1];
	if (!strcmp(sub, "sync"))
		return image_sync_cmd(argc - 1, argv + 1);
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
