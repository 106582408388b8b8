#include "common/compat.h"

/* The request executor (see exec.h). One loop: send an attempt through the
 * client's hook, judge the answer with the status table, renew credentials
 * or learn the clock when the answer asks for it, wait as the retry policy
 * says, and stop with one errno. The loop keeps no state between calls; the
 * clients keep theirs (clock skew, tokens) behind their own locks. */
#include "remote/exec.h"
#include "remote/reqstats.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

enum rule_retry { BY_STATUS = 0, RETRY, NO_RETRY };
enum rule_kind { PLAIN = 0, SKEW, EXPIRED };

struct code_rule {
	const char *code; /* exact; a trailing '*' matches a prefix */
	int err;	  /* 0: the status decides */
	enum rule_retry retry;
	enum rule_kind kind;
};

static const struct code_rule code_rules[] = {
    /* throttling: the service is busy */
    {"SlowDown", -EBUSY, RETRY, PLAIN},
    {"ServiceUnavailable", -EBUSY, RETRY, PLAIN},
    {"ServiceUnavailableException", -EBUSY, RETRY, PLAIN},
    {"Throttling*", -EBUSY, RETRY, PLAIN},
    {"ThrottledException", -EBUSY, RETRY, PLAIN},
    {"TooManyRequestsException", -EBUSY, RETRY, PLAIN},
    {"RequestLimitExceeded", -EBUSY, RETRY, PLAIN},
    {"BandwidthLimitExceeded", -EBUSY, RETRY, PLAIN},
    {"TOOMANYREQUESTS", -EBUSY, RETRY, PLAIN},
    /* transient failures of the service */
    {"RequestTimeout", -ETIMEDOUT, RETRY, PLAIN},
    {"InternalError", -EIO, RETRY, PLAIN},
    {"InternalFailure", -EIO, RETRY, PLAIN},
    {"ServerException", -EIO, RETRY, PLAIN},
    {"OperationAborted", 0, RETRY, PLAIN},
    /* our clock is off: retried once, after learn_skew */
    {"RequestTimeTooSkewed", -EACCES, NO_RETRY, SKEW},
    {"SignatureExpired", -EACCES, NO_RETRY, SKEW},
    {"RequestExpired", -EACCES, NO_RETRY, SKEW},
    /* expired credentials: retried once, after refresh_auth */
    {"ExpiredToken", -EACCES, NO_RETRY, EXPIRED},
    {"ExpiredTokenException", -EACCES, NO_RETRY, EXPIRED},
    {"TokenRefreshRequired", -EACCES, NO_RETRY, EXPIRED},
    /* refused credentials */
    {"AccessDenied", -EACCES, NO_RETRY, PLAIN},
    {"AccessDeniedException", -EACCES, NO_RETRY, PLAIN},
    {"SignatureDoesNotMatch", -EACCES, NO_RETRY, PLAIN},
    {"InvalidAccessKeyId", -EACCES, NO_RETRY, PLAIN},
    {"InvalidClientTokenId", -EACCES, NO_RETRY, PLAIN},
    {"UnrecognizedClientException", -EACCES, NO_RETRY, PLAIN},
    {"InvalidSignatureException", -EACCES, NO_RETRY, PLAIN},
    {"IncompleteSignature", -EACCES, NO_RETRY, PLAIN},
    {"IncompleteSignatureException", -EACCES, NO_RETRY, PLAIN},
    {"MissingAuthenticationToken", -EACCES, NO_RETRY, PLAIN},
    {"MissingAuthenticationTokenException", -EACCES, NO_RETRY, PLAIN},
    {"NotAuthorized", -EACCES, NO_RETRY, PLAIN},
    {"AuthFailure", -EACCES, NO_RETRY, PLAIN},
    {"UNAUTHORIZED", -EACCES, NO_RETRY, PLAIN},
    {"DENIED", -EACCES, NO_RETRY, PLAIN},
    /* ECR's answers carry the meaning in the code (most come as 400) */
    {"RepositoryNotFoundException", -ENOENT, NO_RETRY, PLAIN},
    {"ImageNotFoundException", -ENOENT, NO_RETRY, PLAIN},
    {"RepositoryPolicyNotFoundException", -ENOENT, NO_RETRY, PLAIN},
    {"RegistryPolicyNotFoundException", -ENOENT, NO_RETRY, PLAIN},
    {"LifecyclePolicyNotFoundException", -ENOENT, NO_RETRY, PLAIN},
    {"RepositoryAlreadyExistsException", -EEXIST, NO_RETRY, PLAIN},
    {"InvalidParameterException", -EINVAL, NO_RETRY, PLAIN},
    {"ValidationException", -EINVAL, NO_RETRY, PLAIN},
    {"InvalidTagParameterException", -EINVAL, NO_RETRY, PLAIN},
    {"SerializationException", -EINVAL, NO_RETRY, PLAIN},
    {"LimitExceededException", -ENOSPC, NO_RETRY, PLAIN},
    /* the registry's */
    {"DIGEST_INVALID", -EBADMSG, NO_RETRY, PLAIN},
};

static const struct code_rule *find_rule(const char *code)
{
	if (!code || !*code)
		return NULL;
	for (size_t i = 0; i < ARRAY_SIZE(code_rules); i++) {
		const char *r = code_rules[i].code;
		size_t n = strlen(r);
		if (r[n - 1] == '*' ? strncmp(code, r, n - 1) == 0 : strcmp(code, r) == 0)
			return &code_rules[i];
	}
	return NULL;
}

/* The status part of the table. */
static void classify_status(long st, struct exec_verdict *v)
{
	v->retry = false;
	switch (st) {
	case 400:
		v->err = -EINVAL;
		return;
	case 401:
	case 403:
		v->err = -EACCES;
		return;
	case 404:
		v->err = -ENOENT;
		return;
	case 405:
	case 501:
		v->err = -ENOTSUP;
		return;
	case 408:
		v->err = -ETIMEDOUT;
		v->retry = true;
		return;
	case 409:
		v->err = -EEXIST;
		return;
	case 412:
		v->err = -ESTALE;
		return;
	case 413:
		v->err = -EFBIG;
		return;
	case 416:
		v->err = -ERANGE;
		return;
	case 429:
	case 503:
		v->err = -EBUSY;
		v->retry = true;
		return;
	default:
		break;
	}
	if (st >= 500 && st <= 599) {
		v->err = -EIO;
		v->retry = true;
		return;
	}
	v->err = -EPROTO;
}

void exec_classify(long status, const char *code, struct exec_verdict *v)
{
	memset(v, 0, sizeof(*v));
	classify_status(status, v);
	const struct code_rule *r = find_rule(code);
	if (!r)
		return;
	if (r->err)
		v->err = r->err;
	if (r->retry != BY_STATUS)
		v->retry = r->retry == RETRY;
	v->skew = r->kind == SKEW;
	v->expired = r->kind == EXPIRED;
}

bool exec_unreachable(int rc)
{
	switch (rc) {
	case -EACCES:
	case -EPERM:
	case -ETIMEDOUT:
	case -ECONNREFUSED:
	case -ECONNRESET:
	case -EHOSTUNREACH:
	case -ENETUNREACH:
	case -EHOSTDOWN:
	case -EPROTO:
		return true;
	default:
		return false;
	}
}

bool exec_is_skew(const char *code, const char *message)
{
	const struct code_rule *r = find_rule(code);
	if (r && r->kind == SKEW)
		return true;
	return code && strcmp(code, "InvalidSignatureException") == 0 && message &&
	       strstr(message, "expired") != NULL;
}

static void wait_and_log(const struct exec_call *x, unsigned attempt, const char *retry_after,
			 const struct dth_err *e)
{
	unsigned wait = retry_wait_ms(x->retry, attempt, retry_after);
	log_debug("%s %s: %s; retry %u in %u ms", x->client, x->name, e->message, attempt, wait);
	retry_pause(x->retry, wait);
}

/* An answer arrived: judge it. 0 to accept it, 1 to send again (err says
 * why), or the call's final negative errno with err set. */
static int judge(const struct exec_call *x, struct http_resp *resp, unsigned attempt,
		 unsigned *auth_rounds, bool *skew_retried, struct dth_err *e)
{
	const struct exec_hooks *h = x->hooks;
	long st = resp->status;
	char code[EXEC_CODE_MAX] = "";
	char *message = NULL;
	bool last = attempt >= x->retry->max_attempts;

	if (h->observe)
		h->observe(x->ctx, resp);
	if (st >= 200 && st <= 299) {
		int ck = h->check_ok ? h->check_ok(x->ctx, resp, code, &message, e) : 0;
		if (ck == 2) {
			/* Garbled: as a broken transfer, sent again while attempts last. */
			free(message);
			e->http_status = (int)st;
			if (last)
				return e->code ? e->code : -EPROTO;
			e->http_status = 0;
			wait_and_log(x, attempt, NULL, e);
			return 1;
		}
		if (ck <= 0) {
			if (ck < 0)
				e->http_status = (int)st;
			return ck;
		}
	} else if (h->parse_error) {
		h->parse_error(x->ctx, resp, code, &message);
	}
	int rc = h->fast_fail ? h->fast_fail(x->ctx, resp, code, e) : 0;
	if (rc < 0)
		goto out;
	struct exec_verdict v;
	exec_classify(st, code, &v);
	if (h->refresh_auth && *auth_rounds < EXEC_AUTH_ROUNDS &&
	    h->refresh_auth(x->ctx, resp, &v, *auth_rounds)) {
		++*auth_rounds;
		rc = 2; /* again, at once, not counted */
		goto out;
	}
	bool retry = v.retry && !last;
	bool now = false;
	if (!retry && !last && !*skew_retried && h->learn_skew && exec_is_skew(code, message) &&
	    h->learn_skew(x->ctx, resp)) {
		*skew_retried = true;
		retry = now = true;
	}
	const char *hint = h->hint ? h->hint(x->ctx, st) : NULL;
	err_set(e, v.err, "%s %s: %ld%s%s%s%s%s", x->op, x->what, st, code[0] ? " " : "", code,
		message && *message ? ": " : "", message ? message : "", hint ? hint : "");
	e->http_status = (int)st;
	str_copy_msg(e->remote_code, code, sizeof(e->remote_code));
	if (!retry) {
		rc = v.err;
		goto out;
	}
	if (now) {
		log_debug("%s %s: %s; retry %u at once", x->client, x->name, e->message, attempt);
	} else {
		struct buf ra = BUF_INIT;
		bool has_ra = http_resp_header(resp, "Retry-After", &ra) == 0;
		wait_and_log(x, attempt, has_ra ? buf_str(&ra) : NULL, e);
		buf_release(&ra);
	}
	rc = 1;
out:
	free(message);
	return rc;
}

/* Count an answered attempt: judged rc (0 taken, 1 or 2 sent again, < 0 the
 * end) with e saying why it was not taken. */
static void count_answer(const struct exec_call *x, const struct http_resp *resp,
			 const struct dth_err *e, int rc)
{
	long st = resp->status;
	int kind = -1;
	if (st >= 200 && st <= 299)
		kind = rc == 0 ? -1 : REQERR_GARBLED;
	else if (e->code == -EBUSY || st == 429)
		kind = REQERR_THROTTLED;
	else if (st >= 500)
		kind = REQERR_SERVER;
	else if (st >= 400)
		kind = REQERR_CLIENT;
	reqstats_count(x->name, x->op, kind, rc > 0);
}

int exec_run(const struct exec_call *x, struct http_resp *resp, struct dth_err *err)
{
	struct dth_err local;
	struct dth_err *e = err ? err : &local;
	const struct exec_hooks *h = x->hooks;
	unsigned auth_rounds = 0;
	bool skew_retried = false;

	for (unsigned attempt = 1;;) {
		err_clear(e);
		if (h->reset)
			h->reset(x->ctx);
		bool fatal = false;
		int rc = h->send(x->ctx, resp, &fatal, e);
		if (rc != 0) {
			/* Transport failures, also those after the status line
			 * arrived (a connection dropped mid-body). */
			bool again =
			    !fatal && attempt < x->retry->max_attempts &&
			    retry_transport_retryable(rc) &&
			    (!h->transport_retryable || h->transport_retryable(x->ctx, rc));
			err_prefix(e, "%s %s", x->op, x->what);
			reqstats_count(x->name, x->op,
				       resp->status ? REQERR_GARBLED : REQERR_TRANSPORT, again);
			if (!again)
				return rc;
			wait_and_log(x, attempt, NULL, e);
			attempt++;
			continue;
		}
		rc = judge(x, resp, attempt, &auth_rounds, &skew_retried, e);
		count_answer(x, resp, e, rc);
		if (rc <= 0)
			return rc;
		if (rc == 1)
			attempt++;
	}
}
