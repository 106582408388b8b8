/* Making a shard plan (see shardplan.h). */
#include "common/compat.h"

#include "agent/shardplan.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "agent/ends.h"
#include "agent/keysample.h"
#include "agent/shard.h"
#include "agent/taskdef.h"
#include "common/buf.h"
#include "manifest/manifest.h"
#include "remote/s3.h"

/* The sample of task name's last complete listing, or NULL. */
static struct keysample *task_sample(struct manifest *m, const char *name)
{
	uint32_t id;
	struct buf note = BUF_INIT;
	struct keysample *ks = NULL;
	if (m && name && manifest_task_find(m, name, &id, NULL) == 0 &&
	    manifest_task_note_get(m, id, "sample", &note) == 0 &&
	    keysample_decode(note.data, note.len, &ks) != 0)
		ks = NULL;
	buf_release(&note);
	return ks;
}

/* One listing of the source under its prefix, sampled. */
static int list_sample(const struct taskdef *def, const struct config *cfg, struct keysample **out,
		       uint64_t *lists, struct dth_err *err)
{
	struct s3_ends e;
	*out = NULL;
	int rc =
	    ends_s3_open(&e, cfg, def->source, NULL, (int)def->retries, def->requester_pays, err);
	if (rc) {
		ends_s3_close(&e);
		return rc;
	}
	struct s3_list_opts lo;
	memset(&lo, 0, sizeof(lo));
	lo.prefix = e.src_prefix[0] ? e.src_prefix : NULL;
	struct s3_lister *l = s3_lister_new(e.src, e.src_bucket, &lo);
	struct keysample *ks = keysample_new();
	size_t plen = strlen(e.src_prefix);
	const struct s3_list_entry *le;
	while ((rc = s3_lister_next(l, &le, err)) == 1) {
		if (le->is_prefix || le->key_len < plen)
			continue;
		keysample_add(ks, le->key + plen, le->key_len - plen, le->page_last);
	}
	uint64_t c[S3_REQ__COUNT];
	s3_client_counts(e.src, c);
	*lists = c[S3_REQ_LIST];
	s3_lister_free(l);
	ends_s3_close(&e);
	if (rc < 0) {
		err_prefix(err, "listing %s", def->source);
		keysample_free(ks);
		return rc;
	}
	*out = ks;
	return 0;
}

/* The plan from a sample's cuts; cuts it lacks (fewer keys than shards)
 * follow the last one: last + 0x7f + two base-95 digits. */
static struct shard_plan *plan_from_sample(const struct keysample *ks, unsigned n,
					   struct dth_err *err)
{
	if (n < 2 || keysample_total(ks) == 0)
		return shard_plan_even(n);
	struct buf cuts = BUF_INIT;
	unsigned got = keysample_cuts(ks, n, false, &cuts);
	const char **keys = xcalloc(n, sizeof(*keys));
	size_t *lens = xcalloc(n, sizeof(*lens));
	char **extra = xcalloc(n, sizeof(*extra));
	size_t off = 0;
	for (unsigned i = 0; i < got; i++) {
		keys[i] = cuts.data + off;
		lens[i] = strlen(keys[i]);
		off += lens[i] + 1;
	}
	const char *last = got ? keys[got - 1] : "";
	for (unsigned i = got, j = 0; i + 1 < n; i++, j++) {
		struct buf k = BUF_INIT;
		buf_adds(&k, last);
		buf_addch(&k, '\x7f');
		buf_addch(&k, (char)(0x20 + j / 95));
		buf_addch(&k, (char)(0x20 + j % 95));
		lens[i] = k.len;
		keys[i] = extra[i] = buf_detach(&k, NULL);
	}
	struct shard_plan *p = shard_plan_from_cuts(n, keys, lens, err);
	for (unsigned i = 0; i < n; i++)
		free(extra[i]);
	free(extra);
	free(keys);
	free(lens);
	buf_release(&cuts);
	return p;
}

int shardplan_make(const struct taskdef *def, const struct config *cfg, struct manifest *m,
		   unsigned n, const char *path, struct shardplan_info *info, struct dth_err *err)
{
	memset(info, 0, sizeof(*info));
	if (n == 0 || n > SHARD_COUNT_MAX)
		return err_set(err, -EINVAL, "--make-shard-plan: N is 1 to %d", SHARD_COUNT_MAX);
	struct keysample *ks = task_sample(m, def->name);
	/* enough when it gives every cut (or has fewer keys than shards) */
	struct buf probe = BUF_INIT;
	bool enough =
	    ks && (keysample_total(ks) < n || keysample_cuts(ks, n, false, &probe) + 1 >= n);
	buf_release(&probe);
	if (enough) {
		info->from = "sample";
	} else {
		keysample_free(ks);
		int rc = list_sample(def, cfg, &ks, &info->lists, err);
		if (rc)
			return rc;
		info->from = "listing";
	}
	info->keys = keysample_total(ks);
	struct shard_plan *p = plan_from_sample(ks, n, err);
	keysample_free(ks);
	if (!p)
		return err->code ? err->code : -EINVAL;
	int rc = shard_plan_save(p, path, err);
	shard_plan_free(p);
	return rc;
}

int shard_task_bounds(struct manifest *m, uint32_t task, struct buf *lo_buf, struct buf *hi_buf,
		      const char **lo, const char **hi)
{
	struct buf note = BUF_INIT;
	bool has_lo = false, has_hi = false;
	*lo = *hi = NULL;
	int rc = manifest_task_note_get(m, task, "bounds", &note);
	if (rc == 0)
		rc = shard_bounds_parse(note.data, note.len, lo_buf, &has_lo, hi_buf, &has_hi);
	buf_release(&note);
	if (rc == -ENOENT)
		return 0;
	if (rc)
		return rc;
	*lo = has_lo ? buf_str(lo_buf) : NULL;
	*hi = has_hi ? buf_str(hi_buf) : NULL;
	return 0;
}
