/* Image mirroring: one run of an image task copies tags of repositories from
 * a source registry to a destination registry, manifests byte for byte
 * (digests preserved), children of an index before the index, blobs before
 * the manifest that references them. State lives in the manifest's images db
 * (per task and "repo:tag": the source digest last copied) and blobs db (per
 * destination registry and repo: blobs known present).
 *
 * Incremental floor: a tag whose source manifest digest (one HEAD by tag)
 * equals its record's src_digest with status done is skipped with no other
 * request at either registry. A tag without such a record is fetched with one
 * GET by tag (no HEAD first).
 *
 * Tags are copied by a pool of min(4, concurrency) tag workers; a blob that
 * one thread is copying into a repository is waited for by another that needs
 * it there, not copied twice. The hooks below are called from any of the
 * run's threads, one call at a time (never concurrently). */
#ifndef DTH_IMAGE_H
#define DTH_IMAGE_H

#include <regex.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/util.h"

struct registry_client;
struct manifest;

/* One --platform entry: "os/arch[/variant]". An empty variant matches any
 * variant (linux/arm64 matches linux/arm64/v8); a given one must be equal. */
struct image_platform {
	char os[32];
	char arch[32];
	char variant[32];
};

/* Parse "os/arch[/variant][,...]" into *out (malloc'd, *n entries). 0, or
 * -EINVAL with err naming the bad entry. */
int image_parse_platforms(const char *s, struct image_platform **out, size_t *n,
			  struct dth_err *err) WUR;
/* Whether re (compiled by the caller as "^(REGEX)$", REG_EXTENDED) matches
 * the whole of tag. */
bool image_tag_matches(const regex_t *re, const char *tag);

struct fairshare_client;

struct image_sync_opts {
	struct registry_client *src; /* borrowed */
	struct registry_client *dst; /* borrowed */
	const char *dst_prefix;	     /* "" or NULL: repos keep their name; else PREFIX/REPO */
	struct manifest *manifest;   /* opened read-write; a writer is made for the run */
	uint32_t task_id;
	const char *const *images; /* "repo[:tag]"; no tag: every tag (tags list) */
	size_t n_images;
	/* Every repository of the source (its catalog), each with every tag, after
	 * images. A catalog the source refuses or cannot serve is a run error. */
	bool all;
	/* NULL, or a filter on the tags of repos given without a tag (and of all):
	 * only tags it matches whole are considered. Explicit tags are kept. */
	const regex_t *tags_re;
	/* n_platforms 0: every platform, an index copied byte for byte. Else, for
	 * an index whose children do not all match: none matches -> the tag is
	 * skipped with a note (status skipped); exactly one -> the destination tag
	 * is that child manifest itself (its digest kept); several -> a new index
	 * of only those children (same media type, new digest: the record's
	 * dst_digest). An image manifest whose config's os/architecture/variant
	 * does not match is skipped with a note. The record's src_digest is the
	 * source digest either way (the rerun floor holds). Indexes nested in an
	 * index are copied whole. */
	const struct image_platform *platforms;
	size_t n_platforms;
	/* Called (one call at a time) for each tag skipped for its platform. */
	void (*on_note)(void *ctx, const char *ref, const char *message);
	void *on_note_ctx;
	unsigned concurrency; /* blob copies in parallel, all tags together; 0: 8 */
	/* The task's last run did not end (it was killed, or the machine went
	 * down): blobs it uploaded may be missing from the blobs database, so no
	 * destination repository is taken as holding nothing because its tags
	 * list is 404; every blob the database does not know is asked for (HEAD). */
	bool after_crash;
	/* Called (one call at a time) for each image that failed; ref is
	 * "repo:tag" (or "repo" when its tags could not be listed). */
	void (*on_failure)(void *ctx, const char *ref, int rc, const char *message);
	void *on_failure_ctx;
	volatile sig_atomic_t *stop; /* set: stop after the current tag */
	/* NULL, or called (one call at a time) before requests about repo go
	 * to the source (dst false: before its tags list and each tag's HEAD) or
	 * the destination (dst true: before a tag is copied there, never for a
	 * tag skipped as unchanged), e.g. to fetch or renew credentials and make
	 * sure the destination repository exists (ECR). refresh true: requests
	 * were just refused (401/403), renew credentials whatever their expiry.
	 * Returns 1 when it renewed credentials (the refused step is then retried
	 * once), 0, or a negative errno with err set (the image fails). */
	int (*prepare)(void *ctx, bool dst, const char *repo, bool refresh, struct dth_err *err);
	void *prepare_ctx;
	/* NULL, or (all) lists the source's repositories instead of its catalog
	 * (e.g. ECR DescribeRepositories): fn once per name, a non-zero return
	 * from fn stops the listing and is returned. */
	int (*list_repos)(void *ctx, int (*fn)(void *fn_ctx, const char *name), void *fn_ctx,
			  struct dth_err *err);
	void *list_repos_ctx;
	/* NULL, or live counters (zeroed by the caller) the run updates while it
	 * goes on, for a progress display. */
	struct image_progress *progress;
	/* NULL, or the task's share of the agent's worker slots (fairshare.h):
	 * each blob copy holds a slot while it transfers (not while it waits for
	 * another thread's copy of the same blob). */
	struct fairshare_client *fair;
};

/* Live counters of a run, updated by its threads with __atomic builtins
 * (relaxed); another thread reads each with __atomic_load_n. Tags done so far:
 * copied + skipped + failed + filtered. */
struct image_progress {
	uint64_t tags; /* tags known so far (queued), and tag-less images that failed */
	uint64_t copied;
	uint64_t skipped;
	uint64_t failed;
	uint64_t filtered;
	uint64_t blobs;	   /* blobs uploaded or mounted */
	uint64_t bytes;	   /* blob bytes read from the source so far, failed copies included */
	bool listing_done; /* every tag is known: tags is the total */
};

struct image_sync_result {
	uint64_t images;	/* tags considered */
	uint64_t copied;	/* tags copied */
	uint64_t skipped;	/* tags unchanged since their last copy */
	uint64_t failed;	/* tags (or tag-less repos) that failed */
	uint64_t filtered;	/* tags skipped: no platform matched (--platform) */
	uint64_t blobs;		/* blobs uploaded or mounted */
	uint64_t blobs_mounted; /* of which by cross-repository mount */
	uint64_t blobs_present; /* found at the destination (db or HEAD) */
	uint64_t bytes;		/* blob bytes uploaded */
	double seconds;
	bool unreachable; /* nothing done and a registry could not be reached or refused us,
			     or (all) the catalog could not be read for that reason */
};

/* Run once. 0 when the run went through (res->failed says whether some
 * images failed), or a negative errno for a run-level failure (bad options,
 * manifest writer failure, interrupted: -EINTR) with err set. */
int image_sync_run(const struct image_sync_opts *o, struct image_sync_result *res,
		   struct dth_err *err) WUR;

#endif
