/* Failpoints: see failpoint.h. failpoint_armed and target are written once by
 * failpoint_init before any thread exists; hits is counted atomically. */
#include "common/compat.h"

#include "common/failpoint.h"

#include "common/util.h"

#include <errno.h>
#include <signal.h>
#include <unistd.h>

#define FAILPOINT_ENV "DTH_FAILPOINT"

int failpoint_armed = FAILPOINT_NONE;
static uint64_t target; /* die at this hit of the armed point */
static uint64_t hits;

static const char *const names[FAILPOINT__COUNT] = {
    [FAILPOINT_KEY_PLANNED] = "key-planned",
    [FAILPOINT_LIST_PAGE] = "list-page",
    [FAILPOINT_DELETE_SPOOLED] = "delete-spooled",
    [FAILPOINT_OBJECT_PUT] = "object-put",
    [FAILPOINT_UPLOAD_CREATED] = "upload-created",
    [FAILPOINT_PART_UPLOADED] = "part-uploaded",
    [FAILPOINT_UPLOAD_COMPLETED] = "upload-completed",
    [FAILPOINT_DELETE_ANSWERED] = "delete-answered",
    [FAILPOINT_COMMIT_BEFORE] = "commit-before",
    [FAILPOINT_COMMIT_AFTER] = "commit-after",
    [FAILPOINT_BLOB_UPLOADED] = "blob-uploaded",
    [FAILPOINT_MANIFEST_PUT] = "manifest-put",
};

const char *failpoint_name(enum failpoint fp)
{
	return fp > FAILPOINT_NONE && fp < FAILPOINT__COUNT ? names[fp] : NULL;
}

static int bad_spec(struct dth_err *err, const char *spec, const char *why)
{
	return err_set(err, -EINVAL, "%s=%.100s: %s (NAME or NAME:N, N >= 1)", FAILPOINT_ENV, spec,
		       why);
}

int failpoint_parse(const char *spec, enum failpoint *fp, uint64_t *n, struct dth_err *err)
{
	*fp = FAILPOINT_NONE;
	*n = 0;
	const char *colon = strchr(spec, ':');
	size_t len = colon ? (size_t)(colon - spec) : strlen(spec);
	uint64_t count = 1;
	if (colon && (parse_u64(colon + 1, &count) || count == 0 || count > INT64_MAX))
		return bad_spec(err, spec, "the hit count is not a number from 1");
	for (int i = FAILPOINT_NONE + 1; i < FAILPOINT__COUNT; i++) {
		if (strlen(names[i]) == len && !memcmp(names[i], spec, len)) {
			*fp = (enum failpoint)i;
			*n = count;
			return 0;
		}
	}
	return bad_spec(err, spec, "no failpoint of that name (see common/failpoint.h)");
}

int failpoint_init(struct dth_err *err)
{
	const char *spec = getenv(FAILPOINT_ENV);
	if (!spec || !*spec)
		return 0;
	enum failpoint fp;
	uint64_t n;
	int rc = failpoint_parse(spec, &fp, &n, err);
	if (rc)
		return rc;
	target = n;
	failpoint_armed = (int)fp;
	return 0;
}

void failpoint_reached(enum failpoint fp)
{
	uint64_t n = __atomic_add_fetch(&hits, 1, __ATOMIC_SEQ_CST);
	if (n != target)
		return;
	char msg[160];
	msg_snprintf(msg, sizeof(msg), "dth: failpoint %s: hit %llu, killing the process\n",
		     failpoint_name(fp), (unsigned long long)n);
	(void)!write(STDERR_FILENO, msg, strlen(msg));
	kill(getpid(), SIGKILL);
	_exit(137); /* not reached: SIGKILL cannot be caught */
}
