/* Unit tests of remote/exec.c, the request executor: its status table, and
 * the three clients that use it (S3, registry, ECR) driven through the same
 * faults against the scripted peer (tests/unit/peer.h). For every fault each
 * client must end with the same errno after the same number of attempts
 * (counted at the peer) and the same waits: backoffs are recorded through
 * retry_set_pause_fn, never slept, and the retry policy's small base keeps
 * them short. Then clock-skew learning and credential renewal, and last: no
 * copy of a secret (session token, passwords, tokens) is left anywhere in
 * the process's writable memory outside secret pages after signed and
 * authenticated requests. That scan is sharpest under AddressSanitizer,
 * whose quarantine keeps freed blocks as they were: there it finds one
 * unwiped temporary (basic_value's user:password) or the missing wiping
 * free of libcurl; in a plain build, reuse of freed memory can hide a
 * leftover before the scan. */
#include "common/compat.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/secret.h"
#include "common/util.h"
#include "remote/creds.h"
#include "remote/ecr.h"
#include "remote/exec.h"
#include "remote/http.h"
#include "remote/registry.h"
#include "remote/retry.h"
#include "remote/s3.h"
#include "tests/unit/peer.h"
#include "tests/unit/tap.h"

#define AKID	      "AKIDEXECTEST0000"
#define SECRET_KEY    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYexecTESTKEY"
#define SESSION_TOKEN "IQoJb3JpZ2luX2VjEXECtestSESSIONtoken0123456789abcdefZZ"
#define REG_USER      "dthuser"
#define REG_PASS      "reg-Pa55w0rd-exec-7c1d9e"
#define REG_TOKEN     "bearer-TOKEN-exec-5f3a8b2c1d"
#define ECR_PASS      "ecr-PASSWORD-exec-0a9b8c7d6e"

static struct http_engine *http;
static struct peer *peer;

/* ---- recorded waits ---- */

#define WAITS_MAX 64
static unsigned waits[WAITS_MAX];
static size_t n_waits;

static void record_wait(unsigned ms)
{
	if (n_waits < WAITS_MAX)
		waits[n_waits] = ms;
	n_waits++;
}

/* ---- the status table ---- */

static void test_table(void)
{
	static const struct {
		long status;
		const char *code;
		int err;
		bool retry;
	} cases[] = {
	    {500, NULL, -EIO, true},
	    {502, "", -EIO, true},
	    {504, NULL, -EIO, true},
	    {503, NULL, -EBUSY, true},
	    {503, "SlowDown", -EBUSY, true},
	    {503, "ServiceUnavailable", -EBUSY, true},
	    {429, NULL, -EBUSY, true},
	    {429, "TOOMANYREQUESTS", -EBUSY, true},
	    {400, "ThrottlingException", -EBUSY, true},
	    {400, "Throttling", -EBUSY, true},
	    {400, "RequestLimitExceeded", -EBUSY, true},
	    {408, NULL, -ETIMEDOUT, true},
	    {400, "RequestTimeout", -ETIMEDOUT, true},
	    {500, "InternalError", -EIO, true},
	    {200, "InternalError", -EIO, true},
	    {200, "SlowDown", -EBUSY, true},
	    {200, "SomethingElse", -EPROTO, false},
	    {409, "OperationAborted", -EEXIST, true},
	    {403, "RequestTimeTooSkewed", -EACCES, false},
	    {400, "ExpiredToken", -EACCES, false},
	    {400, NULL, -EINVAL, false},
	    {400, "InvalidArgument", -EINVAL, false},
	    {401, NULL, -EACCES, false},
	    {403, NULL, -EACCES, false},
	    {403, "AccessDenied", -EACCES, false},
	    {403, "SignatureDoesNotMatch", -EACCES, false},
	    {400, "UnrecognizedClientException", -EACCES, false},
	    {404, "NoSuchKey", -ENOENT, false},
	    {404, NULL, -ENOENT, false},
	    {400, "RepositoryNotFoundException", -ENOENT, false},
	    {400, "RepositoryAlreadyExistsException", -EEXIST, false},
	    {409, "BucketAlreadyOwnedByYou", -EEXIST, false},
	    {412, "PreconditionFailed", -ESTALE, false},
	    {416, "InvalidRange", -ERANGE, false},
	    {413, NULL, -EFBIG, false},
	    {405, NULL, -ENOTSUP, false},
	    {501, "NotImplemented", -ENOTSUP, false},
	    {400, "LimitExceededException", -ENOSPC, false},
	    {400, "DIGEST_INVALID", -EBADMSG, false},
	    {400, "InvalidParameterException", -EINVAL, false},
	    {418, NULL, -EPROTO, false},
	    {301, NULL, -EPROTO, false},
	    {304, "NotModified", -EPROTO, false},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct exec_verdict v;
		exec_classify(cases[i].status, cases[i].code, &v);
		ok(v.err == cases[i].err && v.retry == cases[i].retry,
		   "table: %ld %s -> %d%s (%d%s)", cases[i].status,
		   cases[i].code ? cases[i].code : "-", cases[i].err,
		   cases[i].retry ? ", retried" : "", v.err, v.retry ? ", retried" : "");
	}
	struct exec_verdict v;
	exec_classify(403, "RequestTimeTooSkewed", &v);
	ok(v.skew && !v.expired, "table: RequestTimeTooSkewed is a clock skew");
	exec_classify(400, "ExpiredTokenException", &v);
	ok(v.expired && !v.skew, "table: ExpiredTokenException is expired credentials");
	ok(exec_is_skew("InvalidSignatureException", "Signature expired: 20240101T000000Z"),
	   "skew: InvalidSignatureException saying expired");
	ok(!exec_is_skew("InvalidSignatureException", "The signature does not match"),
	   "skew: other InvalidSignatureException is not");
	ok(exec_is_skew("SignatureExpired", NULL) && !exec_is_skew(NULL, NULL),
	   "skew: SignatureExpired; nothing without a code");
}

/* ---- the three clients against the peer ---- */

enum client { C_S3 = 0, C_REG, C_ECR, C__N };
static const char *const cname[C__N] = {"s3", "registry", "ecr"};

static const char s3_body[] = "hello from the scripted peer\n";
static const char reg_body[] =
    "{\"schemaVersion\":2,\"mediaType\":\"" REGISTRY_MT_OCI_INDEX "\",\"manifests\":[]}";
static const char ecr_body[] = "{\"repositories\":[{\"repositoryName\":\"r1\"}]}";

struct clients {
	struct creds_provider *cp;
	struct s3_client *s3;
	struct registry_client *reg;
	struct ecr_client *ecr;
};

static void clients_open(struct clients *k, unsigned attempts, struct creds_provider *cp)
{
	struct retry_policy rp = {attempts, 1, 60000};
	k->cp = cp;
	struct s3_config sc = {.name = "peer",
			       .endpoint = peer_url(peer),
			       .region = "us-east-1",
			       .path_style = true,
			       .creds = cp,
			       .http = http,
			       .retry = rp};
	k->s3 = s3_client_new(&sc);
	struct registry_config rc = {
	    .name = "peer", .url = peer_url(peer), .insecure = true, .http = http, .retry = rp};
	struct dth_err e;
	k->reg = registry_client_new(&rc, &e);
	struct ecr_config ec = {.name = "peer",
				.region = "us-east-1",
				.endpoint = peer_url(peer),
				.creds = cp,
				.http = http,
				.retry = rp};
	k->ecr = ecr_client_new(&ec);
}

static void clients_close(struct clients *k)
{
	s3_client_free(k->s3);
	registry_client_free(k->reg);
	ecr_client_free(k->ecr);
	memset(k, 0, sizeof(*k));
}

static struct creds_provider *static_creds(const char *token)
{
	struct dth_err e;
	struct creds_spec spec = {.mode = CREDS_STATIC,
				  .access_key_id = AKID,
				  .secret_access_key = SECRET_KEY,
				  .session_token = token};
	return creds_provider_new(&spec, &e);
}

static int count_repo(void *ctx, const struct ecr_repo *r)
{
	(void)r;
	(*(int *)ctx)++;
	return 0;
}

/* One call of client c; -EILSEQ when it "succeeds" with other bytes. */
static int run_call(struct clients *k, enum client c, struct dth_err *err)
{
	int rc = -EINVAL;
	err_clear(err);
	if (c == C_S3) {
		struct buf out = BUF_INIT;
		rc = s3_get_object(k->s3, "bucket", "key", 0, 0, NULL, &out, NULL, err);
		if (rc == 0 && strcmp(buf_str(&out), s3_body) != 0)
			rc = -EILSEQ;
		buf_release(&out);
	} else if (c == C_REG) {
		struct registry_manifest m;
		registry_manifest_init(&m);
		rc = registry_manifest_get(k->reg, "repo", "v1", &m, err);
		if (rc == 0 && (m.body.len != strlen(reg_body) ||
				memcmp(m.body.data, reg_body, m.body.len) != 0))
			rc = -EILSEQ;
		registry_manifest_release(&m);
	} else {
		int n = 0;
		rc = ecr_describe_repositories(k->ecr, 0, count_repo, &n, err);
		if (rc == 0 && n != 1)
			rc = -EILSEQ;
	}
	return rc;
}

/* One step of a scenario: an error answer (status >= 300, with code in the
 * client's own dialect when given) or the success answer, either sent with
 * a fault. */
struct step {
	int status;
	const char *code;
	const char *headers;
	enum peer_fault fault;
	unsigned stall_ms;
};

#define BODY_STORE 512

static void make_answer(enum client c, const struct step *s, char *store, struct peer_answer *a)
{
	memset(a, 0, sizeof(*a));
	a->status = s->status;
	a->headers = s->headers;
	a->fault = s->fault;
	a->stall_ms = s->stall_ms;
	if (s->status == 200) {
		static const char *const ok_headers[C__N] = {
		    "ETag: \"0123456789abcdef0123456789abcdef\"\r\nContent-Type: text/plain\r\n",
		    "Content-Type: " REGISTRY_MT_OCI_INDEX "\r\n",
		    "Content-Type: application/x-amz-json-1.1\r\n"};
		static const char *const ok_bodies[C__N] = {s3_body, reg_body, ecr_body};
		a->headers = ok_headers[c];
		a->body = ok_bodies[c];
		return;
	}
	if (!s->code)
		return;
	if (c == C_S3)
		snprintf(store, BODY_STORE,
			 "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code>"
			 "<Message>the peer says %s</Message><RequestId>r1</RequestId></Error>",
			 s->code, s->code);
	else if (c == C_REG)
		snprintf(store, BODY_STORE,
			 "{\"errors\":[{\"code\":\"%s\",\"message\":\"the peer says %s\"}]}",
			 s->code, s->code);
	else
		snprintf(store, BODY_STORE, "{\"__type\":\"%s\",\"message\":\"the peer says %s\"}",
			 s->code, s->code);
	a->body = store;
}

struct scenario {
	const char *name;
	unsigned attempts;
	struct step steps[4];
	size_t n_steps;
	int want;		 /* errno, 0 for success */
	size_t want_requests;	 /* counted at the peer */
	unsigned retry_after_ms; /* every wait equals it (0: short backoffs only) */
};

#define OKS                                                                                        \
	{                                                                                          \
		200, NULL, NULL, PEER_NORMAL, 0                                                    \
	}
#define RA1 "Retry-After: 1\r\n"
#define RA2 "Retry-After: 2\r\n"

static const struct scenario scenarios[] = {
    {"500, then success", 3, {{500, "InternalError", NULL, 0, 0}, OKS}, 2, 0, 2, 0},
    {"503 SlowDown with Retry-After, then success",
     3,
     {{503, "SlowDown", RA1, 0, 0}, OKS},
     2,
     0,
     2,
     1000},
    {"429 with Retry-After until the retries run out",
     3,
     {{429, NULL, RA2, 0, 0}, {429, NULL, RA2, 0, 0}, {429, NULL, RA2, 0, 0}, OKS},
     4,
     -EBUSY,
     3,
     2000},
    {"503 SlowDown until the retries run out",
     3,
     {{503, "SlowDown", NULL, 0, 0}, {503, "SlowDown", NULL, 0, 0}, {503, "SlowDown", NULL, 0, 0}},
     3,
     -EBUSY,
     3,
     0},
    {"500 until the retries run out",
     3,
     {{500, NULL, NULL, 0, 0}, {500, NULL, NULL, 0, 0}, {500, NULL, NULL, 0, 0}, OKS},
     4,
     -EIO,
     3,
     0},
    {"reset before the answer, then success",
     3,
     {{200, NULL, NULL, PEER_RESET_BEFORE, 0}, OKS},
     2,
     0,
     2,
     0},
    {"reset after the headers, then success",
     3,
     {{200, NULL, NULL, PEER_RESET_HEADERS, 0}, OKS},
     2,
     0,
     2,
     0},
    {"reset mid-body, then success",
     3,
     {{200, NULL, NULL, PEER_RESET_MID_BODY, 0}, OKS},
     2,
     0,
     2,
     0},
    {"resets until the retries run out",
     3,
     {{200, NULL, NULL, PEER_RESET_BEFORE, 0},
      {200, NULL, NULL, PEER_RESET_BEFORE, 0},
      {200, NULL, NULL, PEER_RESET_BEFORE, 0},
      OKS},
     4,
     -ECONNRESET,
     3,
     0},
    {"a stall past the timeout, then success",
     3,
     {{200, NULL, NULL, PEER_STALL, 0}, OKS},
     2,
     0,
     2,
     0},
    {"a stall before the answer with no retry left",
     1,
     {{200, NULL, NULL, PEER_STALL, 0}},
     1,
     -ETIMEDOUT,
     1,
     0},
    {"a stall mid-body with no retry left",
     1,
     {{200, NULL, NULL, PEER_STALL_MID_BODY, 0}},
     1,
     -ETIMEDOUT,
     1,
     0},
    {"a truncated (chunked) body, then success",
     3,
     {{200, NULL, NULL, PEER_TRUNCATE, 0}, OKS},
     2,
     0,
     2,
     0},
    {"a body closed mid-way, then success",
     3,
     {{200, NULL, NULL, PEER_CUT_MID_BODY, 0}, OKS},
     2,
     0,
     2,
     0},
    {"a wrong Content-Length until the retries run out",
     3,
     {{200, NULL, NULL, PEER_BAD_LENGTH, 0},
      {200, NULL, NULL, PEER_BAD_LENGTH, 0},
      {200, NULL, NULL, PEER_BAD_LENGTH, 0},
      OKS},
     4,
     -EIO,
     3,
     0},
    {"404, not retried", 3, {{404, NULL, NULL, 0, 0}, OKS}, 2, -ENOENT, 1, 0},
    {"403, not retried", 3, {{403, "AccessDenied", NULL, 0, 0}, OKS}, 2, -EACCES, 1, 0},
    {"400, not retried", 3, {{400, NULL, NULL, 0, 0}, OKS}, 2, -EINVAL, 1, 0},
};

static void run_scenario(const struct scenario *sc, struct creds_provider *cp)
{
	struct clients k;
	clients_open(&k, sc->attempts, cp);
	int rcs[C__N];
	size_t reqs[C__N];
	for (int c = 0; c < C__N; c++) {
		char store[4][BODY_STORE];
		struct peer_answer a[4];
		for (size_t i = 0; i < sc->n_steps; i++)
			make_answer((enum client)c, &sc->steps[i], store[i], &a[i]);
		peer_script(peer, a, sc->n_steps);
		n_waits = 0;
		struct dth_err err;
		rcs[c] = run_call(&k, (enum client)c, &err);
		reqs[c] = peer_count(peer);
		ok(rcs[c] == sc->want && reqs[c] == sc->want_requests,
		   "%s: %s ends %d after %zu request(s) (%s)", cname[c], sc->name, rcs[c], reqs[c],
		   rcs[c] ? err.message : "ok");
		bool waits_ok = n_waits == sc->want_requests - 1;
		for (size_t i = 0; i < n_waits && i < WAITS_MAX; i++)
			waits_ok = waits_ok && (sc->retry_after_ms ? waits[i] == sc->retry_after_ms
								   : waits[i] <= 8);
		ok(waits_ok, "%s: %s: %zu wait(s) of %s", cname[c], sc->name, n_waits,
		   sc->retry_after_ms ? "Retry-After" : "a short backoff");
		if (rcs[c] != 0 && sc->want != 0)
			ok(err.code == rcs[c] &&
			       strstr(err.message, c == C_S3	? "GetObject"
						   : c == C_REG ? "manifest get"
								: "DescribeRepositories"),
			   "%s: %s: err names the call: %s", cname[c], sc->name, err.message);
	}
	ok(rcs[C_S3] == rcs[C_REG] && rcs[C_REG] == rcs[C_ECR] && reqs[C_S3] == reqs[C_REG] &&
	       reqs[C_REG] == reqs[C_ECR],
	   "%s: the same errno (%d %d %d) and attempts (%zu %zu %zu) for every client", sc->name,
	   rcs[0], rcs[1], rcs[2], reqs[0], reqs[1], reqs[2]);
	clients_close(&k);
}

static void test_faults(void)
{
	struct creds_provider *cp = static_creds(SESSION_TOKEN);
	for (size_t i = 0; i < ARRAY_SIZE(scenarios); i++)
		run_scenario(&scenarios[i], cp);
	creds_provider_free(cp);
}

/* ---- clock skew and expired credentials (the SigV4 clients) ---- */

static int64_t amz_date_of(const struct peer_request *rq)
{
	char d[32];
	struct tm tm = {0};
	if (!rq || !peer_req_header(rq, "x-amz-date", d, sizeof(d)) ||
	    !strptime(d, "%Y%m%dT%H%M%SZ", &tm))
		return 0;
	return (int64_t)timegm(&tm);
}

static void test_skew(void)
{
	struct creds_provider *cp = static_creds(NULL);
	struct clients k;
	clients_open(&k, 3, cp);
	time_t ahead = time(NULL) + 7200;
	struct tm tm;
	gmtime_r(&ahead, &tm);
	char date[96];
	strftime(date, sizeof(date), "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
	enum client sig[2] = {C_S3, C_ECR};
	for (int i = 0; i < 2; i++) {
		enum client c = sig[i];
		struct step steps[2] = {{403, "RequestTimeTooSkewed", date, 0, 0}, OKS};
		char store[2][BODY_STORE];
		struct peer_answer a[2];
		for (int j = 0; j < 2; j++)
			make_answer(c, &steps[j], store[j], &a[j]);
		peer_script(peer, a, 2);
		n_waits = 0;
		struct dth_err err;
		int rc = run_call(&k, c, &err);
		int64_t d0 = amz_date_of(peer_request(peer, 0));
		int64_t d1 = amz_date_of(peer_request(peer, 1));
		ok(rc == 0 && peer_count(peer) == 2 && n_waits == 0,
		   "%s: RequestTimeTooSkewed: clock learnt, sent again at once (%s)", cname[c],
		   rc ? err.message : "ok");
		ok(d1 - d0 > 7000 && d1 - d0 < 7400,
		   "%s: the second request is signed 2 h ahead (%lld s)", cname[c],
		   (long long)(d1 - d0));
		/* a server whose clock stays off: learnt once, then refused */
		struct step again[3] = {{403, "RequestTimeTooSkewed", date, 0, 0},
					{403, "RequestTimeTooSkewed", date, 0, 0},
					OKS};
		char store3[3][BODY_STORE];
		struct peer_answer a3[3];
		for (int j = 0; j < 3; j++)
			make_answer(c, &again[j], store3[j], &a3[j]);
		peer_script(peer, a3, 3);
		rc = run_call(&k, c, &err);
		ok(rc == -EACCES && peer_count(peer) == 1,
		   "%s: a refusal with the clock already learnt is not retried (%d, %zu)", cname[c],
		   rc, peer_count(peer));
	}
	/* the registry signs nothing: the same answer is a plain refusal */
	struct step steps[2] = {{403, "RequestTimeTooSkewed", date, 0, 0}, OKS};
	char store[2][BODY_STORE];
	struct peer_answer a[2];
	for (int j = 0; j < 2; j++)
		make_answer(C_REG, &steps[j], store[j], &a[j]);
	peer_script(peer, a, 2);
	struct dth_err err;
	int rc = run_call(&k, C_REG, &err);
	ok(rc == -EACCES && peer_count(peer) == 1, "registry: RequestTimeTooSkewed -> -EACCES (%s)",
	   err.message);
	clients_close(&k);
	creds_provider_free(cp);
}

static void test_expired(void)
{
	/* credentials from the environment can be fetched again (not the
	 * secrets of the memory scan: the environment is never wiped) */
	setenv("AWS_ACCESS_KEY_ID", "AKIDFROMTHEENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "secret-key-from-the-environment", 1);
	struct dth_err e;
	struct creds_spec spec = {.mode = CREDS_ENV};
	struct creds_provider *fixed = static_creds("old-session-token");
	enum client sig[2] = {C_S3, C_ECR};
	for (int i = 0; i < 2; i++) {
		enum client c = sig[i];
		struct clients k;
		setenv("AWS_SESSION_TOKEN", "old-session-token", 1);
		struct creds_provider *env = creds_provider_new(&spec, &e);
		clients_open(&k, 3, env);
		struct dth_err err;
		struct step warm[1] = {OKS};
		char store[2][BODY_STORE];
		struct peer_answer a[2];
		make_answer(c, &warm[0], store[0], &a[0]);
		peer_script(peer, a, 1);
		ok(run_call(&k, c, &err) == 0, "%s: credentials cached", cname[c]);
		setenv("AWS_SESSION_TOKEN", "new-session-token", 1);
		struct step steps[2] = {{400, "ExpiredToken", NULL, 0, 0}, OKS};
		for (int j = 0; j < 2; j++)
			make_answer(c, &steps[j], store[j], &a[j]);
		peer_script(peer, a, 2);
		int rc = run_call(&k, c, &err);
		char t0[64] = "", t1[64] = "";
		if (peer_count(peer) == 2) {
			peer_req_header(peer_request(peer, 0), "x-amz-security-token", t0,
					sizeof(t0));
			peer_req_header(peer_request(peer, 1), "x-amz-security-token", t1,
					sizeof(t1));
		}
		ok(rc == 0 && peer_count(peer) == 2 && !strcmp(t0, "old-session-token") &&
		       !strcmp(t1, "new-session-token"),
		   "%s: ExpiredToken: credentials fetched again, sent again (%s -> %s)", cname[c],
		   t0, t1);
		clients_close(&k);
		creds_provider_free(env);

		clients_open(&k, 3, fixed);
		peer_script(peer, a, 2);
		rc = run_call(&k, c, &err);
		ok(rc == -EACCES && peer_count(peer) == 1,
		   "%s: ExpiredToken with explicit keys: nothing to renew, -EACCES (%s)", cname[c],
		   err.message);
		clients_close(&k);
	}
	creds_provider_free(fixed);
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("AWS_SESSION_TOKEN");
}

/* ---- no secret left behind ---- */

/* Scanned: every writable private mapping not marked dd (secret pages) and
 * not larger than 256 MiB (sanitizer shadows), read through /proc/self/mem
 * into secret pages of our own (so the copy is not scanned). needles are in
 * secret pages too. */
struct needle {
	char *s; /* secret memory */
	size_t len;
	const char *what;
};

static int scan_memory(const struct needle *nd, size_t n, struct buf *report)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	int mem = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
	if (!f || mem < 0) {
		if (f)
			fclose(f);
		if (mem >= 0)
			close(mem);
		return -1;
	}
	/* first pass: the mappings to scan */
	struct region {
		unsigned long lo, hi;
		char name[80];
	} *regs = NULL;
	size_t nregs = 0, cap = 0;
	char line[512];
	unsigned long lo = 0, hi = 0;
	char perms[8] = "", name[80] = "";
	bool have = false;
	while (fgets(line, sizeof(line), f)) {
		unsigned long a, b;
		char p[8];
		if (sscanf(line, "%lx-%lx %7s", &a, &b, p) == 3 && strchr(line, '-') &&
		    line[strspn(line, "0123456789abcdef")] == '-') {
			lo = a;
			hi = b;
			snprintf(perms, sizeof(perms), "%s", p);
			name[0] = '\0';
			const char *sl = strchr(line, '/');
			const char *br = strchr(line, '[');
			const char *nm = sl ? sl : br;
			if (nm)
				snprintf(name, sizeof(name), "%.*s", (int)strcspn(nm, "\n"), nm);
			have = true;
			continue;
		}
		if (have && strncmp(line, "VmFlags:", 8) == 0) {
			have = false;
			bool dd = strstr(line, " dd") != NULL;
			bool rw = perms[0] == 'r' && perms[1] == 'w' && perms[3] == 'p';
			if (!rw || dd || hi - lo > (256ul << 20) || strstr(name, "[vvar") ||
			    strstr(name, "[vsyscall"))
				continue;
			if (nregs == cap) {
				cap = cap ? 2 * cap : 64;
				regs = xrealloc(regs, cap * sizeof(*regs));
			}
			regs[nregs].lo = lo;
			regs[nregs].hi = hi;
			snprintf(regs[nregs].name, sizeof(regs[nregs].name), "%s", name);
			nregs++;
		}
	}
	fclose(f);
	size_t chunk = 1 << 20;
	char *tmp = secret_alloc(chunk + 256);
	int hits = 0;
	for (size_t r = 0; r < nregs; r++) {
		for (unsigned long at = regs[r].lo; at < regs[r].hi; at += chunk) {
			size_t len = regs[r].hi - at < chunk + 128 ? regs[r].hi - at : chunk + 128;
			ssize_t got = pread(mem, tmp, len, (off_t)at);
			if (got <= 0)
				continue;
			for (size_t i = 0; i < n; i++) {
				const char *hit = memmem(tmp, (size_t)got, nd[i].s, nd[i].len);
				if (hit) {
					hits++;
					buf_addf(report, "%s at %#lx in %s; ", nd[i].what,
						 at + (unsigned long)(hit - tmp),
						 regs[r].name[0] ? regs[r].name : "[anon]");
				}
			}
		}
	}
	secret_free(tmp);
	free(regs);
	close(mem);
	return hits;
}

/* The registry scenario: a Bearer challenge, a token request with the
 * password, the manifest with the token. */
struct reg_auth {
	char *token_answer; /* secret memory */
};

static void reg_auth_handle(void *ctx, const struct peer_request *rq, struct peer_answer *a)
{
	struct reg_auth *ra = ctx;
	char auth[256] = "";
	peer_req_header(rq, "Authorization", auth, sizeof(auth));
	if (str_startswith(rq->target, "/token")) {
		a->status = auth[0] ? 200 : 401;
		a->headers = "Content-Type: application/json\r\n";
		a->body = auth[0] ? ra->token_answer : "{}";
		return;
	}
	if (strcmp(auth, "Bearer " REG_TOKEN) != 0) {
		a->status = 401;
		peer_add_header(a,
				"WWW-Authenticate: Bearer realm=\"%s/token\",service=\"peer\","
				"scope=\"repository:repo:pull\"",
				peer_url(peer));
		return;
	}
	a->headers = "Content-Type: " REGISTRY_MT_OCI_INDEX "\r\n";
	a->body = reg_body;
}

static void add_needle(struct needle *nd, size_t *n, const char *s, const char *what)
{
	nd[*n].s = secret_strdup(s);
	nd[*n].len = strlen(s);
	nd[*n].what = what;
	(*n)++;
}

static void add_b64_needle(struct needle *nd, size_t *n, const char *a, const char *b,
			   const char *what)
{
	size_t al = strlen(a), bl = strlen(b);
	char *plain = secret_alloc(al + bl + 2);
	memcpy(plain, a, al);
	plain[al] = ':';
	memcpy(plain + al + 1, b, bl);
	char *enc = secret_alloc(4 * ((al + bl + 3) / 3) + 1);
	base64_encode((const unsigned char *)plain, al + 1 + bl, enc);
	nd[*n].s = enc;
	nd[*n].len = strlen(enc);
	nd[*n].what = what;
	(*n)++;
	secret_free(plain);
}

static void test_no_secret_left(void)
{
	struct creds_provider *cp = static_creds(SESSION_TOKEN);
	struct clients k;
	clients_open(&k, 3, cp);
	struct dth_err err;

	/* S3: a signed GET with a session token */
	struct step okstep[1] = {OKS};
	char store[1][BODY_STORE];
	struct peer_answer a[1];
	make_answer(C_S3, &okstep[0], store[0], &a[0]);
	peer_script(peer, a, 1);
	int rc = run_call(&k, C_S3, &err);
	ok(rc == 0, "scan: S3 GET signed with a session token (%s)", rc ? err.message : "ok");

	/* ECR: GetAuthorizationToken answers "AWS:password" in base64 */
	char *ans = secret_alloc(512);
	char *b64 = secret_alloc(128);
	char *up = secret_alloc(64);
	snprintf(up, 64, "AWS:%s", ECR_PASS);
	base64_encode((const unsigned char *)up, strlen(up), b64);
	snprintf(ans, 512,
		 "{\"authorizationData\":[{\"authorizationToken\":\"%s\",\"expiresAt\":1.7E9,"
		 "\"proxyEndpoint\":\"https://x\"}]}",
		 b64);
	struct peer_answer ea = {.status = 200, .body = ans};
	peer_script(peer, &ea, 1);
	struct ecr_auth auth;
	rc = ecr_get_authorization_token(k.ecr, &auth, &err);
	ok(rc == 0 && auth.password && !strcmp(auth.password, ECR_PASS),
	   "scan: ECR authorization token decoded (%s)", rc ? err.message : "ok");

	/* registry: 401 Bearer challenge, token with basic auth, then the manifest */
	struct registry_config rc_cfg = {.name = "peer",
					 .url = peer_url(peer),
					 .username = REG_USER,
					 .password = REG_PASS,
					 .insecure = true,
					 .http = http,
					 .retry = {3, 1, 60000}};
	struct registry_client *reg = registry_client_new(&rc_cfg, &err);
	struct reg_auth ra = {secret_alloc(256)};
	snprintf(ra.token_answer, 256, "{\"token\":\"%s\",\"expires_in\":300}", REG_TOKEN);
	peer_set_handler(peer, reg_auth_handle, &ra);
	peer_clear(peer);
	struct registry_manifest m;
	registry_manifest_init(&m);
	rc = registry_manifest_get(reg, "repo", "v1", &m, &err);
	ok(rc == 0 && peer_count(peer) == 3,
	   "scan: registry manifest through a bearer challenge with basic credentials (%s, %zu "
	   "requests)",
	   rc ? err.message : "ok", peer_count(peer));
	registry_manifest_release(&m);
	peer_set_handler(peer, NULL, NULL);
	peer_script(peer, NULL, 0); /* wipes what the peer captured and was to send */

	struct needle nd[16];
	size_t n = 0;
	add_needle(nd, &n, SESSION_TOKEN, "the session token");
	add_needle(nd, &n, SECRET_KEY, "the secret access key");
	add_needle(nd, &n, REG_PASS, "the registry password");
	add_b64_needle(nd, &n, REG_USER, REG_PASS, "the basic credentials");
	add_needle(nd, &n, REG_TOKEN, "the bearer token");
	add_needle(nd, &n, ECR_PASS, "the ecr password");
	add_needle(nd, &n, b64, "the ecr authorization token");
	/* Control: a copy on the ordinary heap is found (the scan can fail). */
	add_needle(nd, &n, "canary-for-the-memory-scan-31d7", "the canary");
	char *canary = malloc(64);
	memcpy(canary, nd[n - 1].s, nd[n - 1].len);
	struct buf report = BUF_INIT;
	int found = scan_memory(&nd[n - 1], 1, &report);
	ok(found >= 1, "scan: control: a copy on the heap is found (%d: %s)", found,
	   buf_str(&report));
	secret_wipe(canary, 64);
	free(canary);
	buf_reset(&report);
	n--;
	secret_free(nd[n].s);
	/* The clients still hold their secrets: in secret pages, which the
	 * scan leaves out. */
	int hits = scan_memory(nd, n, &report);
	ok(hits == 0,
	   "scan: no copy of any secret in writable memory outside secret pages "
	   "(%d found%s%s)",
	   hits, report.len ? ": " : "", buf_str(&report));
	buf_release(&report);

	for (size_t i = 0; i < n; i++)
		secret_free(nd[i].s);
	ecr_auth_release(&auth);
	registry_client_free(reg);
	secret_free(ra.token_answer);
	secret_free(ans);
	secret_free(b64);
	secret_free(up);
	clients_close(&k);
	creds_provider_free(cp);
}

/* ---- http_engine_abort: a request waiting on a stalled answer ends ---- */

struct abort_call {
	struct http_engine *e;
	int rc;
	struct dth_err err;
};

static void *abort_call_main(void *arg)
{
	struct abort_call *c = arg;
	struct http_req req = {
	    .method = "POST", .url = peer_url(peer), .body = "{}", .body_len = 2};
	struct http_resp resp;
	http_resp_init(&resp);
	c->rc = http_perform(c->e, &req, &resp, &c->err);
	http_resp_release(&resp);
	return NULL;
}

static void test_abort(void)
{
	/* stall_timeout_s 60: only the abort can end the stalled request early */
	struct http_engine_opts ho = {.connect_timeout_ms = 5000, .stall_timeout_s = 60};
	struct abort_call c = {http_engine_new(&ho), 0, {0}};
	struct peer_answer a = {.status = 200, .fault = PEER_STALL, .stall_ms = 4000};
	peer_script(peer, &a, 1);
	pthread_t th;
	ok(pthread_create(&th, NULL, abort_call_main, &c) == 0, "abort: a request in flight");
	for (int i = 0; i < 200 && peer_count(peer) == 0; i++)
		usleep(10000);
	is_int((int)peer_count(peer), 1, "abort: the peer has it");
	http_engine_abort(c.e);
	pthread_join(th, NULL);
	is_int(c.rc, -ECANCELED, "abort: the stalled request ends canceled (%s)", c.err.message);
	ok(strstr(c.err.message, "canceled") != NULL, "abort: says so");
	peer_clear(peer);
	abort_call_main(&c);
	is_int(c.rc, -ECANCELED, "abort: a later request fails at once");
	is_int((int)peer_count(peer), 0, "abort: and is not sent");
	http_engine_free(c.e);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	if (http_global_init() != 0)
		return 1;
	struct http_engine_opts ho = {.connect_timeout_ms = 5000, .stall_timeout_s = 1};
	http = http_engine_new(&ho);
	peer = peer_start();
	if (!http || !peer) {
		printf("Bail out! no http engine or peer\n");
		return 1;
	}
	retry_set_pause_fn(record_wait);
	test_table();
	test_faults();
	test_skew();
	test_expired();
	test_no_secret_left();
	test_abort();
	peer_stop(peer);
	http_engine_free(http);
	return tap_done();
}
