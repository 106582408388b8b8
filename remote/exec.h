/* Request executor: the one retry loop of the remote clients (S3, registry,
 * ECR). http.c makes one attempt; retry.c says how long to wait; this module
 * runs the attempts of one call, decides from one status table what every
 * answer means, and calls the client's hooks for what differs between them
 * (building and signing an attempt, reading an error body, learning the
 * server's clock, refreshing credentials, a client's own fast failure).
 *
 * The status table (exec_classify). Every client ends the same way on the
 * same answer:
 *
 *   answer                                   errno        retried
 *   400                                      -EINVAL      no
 *   401, 403                                 -EACCES      no (see refresh)
 *   404                                      -ENOENT      no
 *   405, 501                                 -ENOTSUP     no
 *   408                                      -ETIMEDOUT   yes
 *   409                                      -EEXIST      no
 *   412                                      -ESTALE      no
 *   413                                      -EFBIG       no
 *   416                                      -ERANGE      no
 *   429, 503                                 -EBUSY       yes
 *   other 5xx                                -EIO         yes
 *   1xx, 3xx (not followed), other 4xx       -EPROTO      no
 *
 * A remote error code, where the answer has one, goes before the status:
 *   throttling: SlowDown, ServiceUnavailable(Exception), Throttling*,
 *     ThrottledException, TooManyRequestsException, RequestLimitExceeded,
 *     BandwidthLimitExceeded, TOOMANYREQUESTS          -EBUSY     yes
 *   RequestTimeout                                     -ETIMEDOUT yes
 *   InternalError, InternalFailure, ServerException    -EIO       yes
 *   OperationAborted                                   by status  yes
 *   clock skew: RequestTimeTooSkewed, SignatureExpired, RequestExpired (and
 *     InvalidSignatureException saying "expired")     -EACCES    once, after
 *                                                      learn_skew moved the clock
 *   expired credentials: ExpiredToken(Exception), TokenRefreshRequired
 *                                                      -EACCES    once, after
 *                                                      refresh_auth renewed them
 *   refused credentials: AccessDenied(Exception), SignatureDoesNotMatch,
 *     InvalidAccessKeyId, InvalidClientTokenId, UnrecognizedClientException,
 *     InvalidSignatureException, IncompleteSignature(Exception),
 *     MissingAuthenticationToken(Exception), NotAuthorized, AuthFailure,
 *     UNAUTHORIZED, DENIED                             -EACCES    no
 *   not found: RepositoryNotFoundException, ImageNotFoundException, the
 *     *PolicyNotFoundException of ECR                  -ENOENT    no
 *   RepositoryAlreadyExistsException                   -EEXIST    no
 *   InvalidParameterException, ValidationException, InvalidTagParameterException,
 *     SerializationException                           -EINVAL    no
 *   LimitExceededException                             -ENOSPC    no
 *   DIGEST_INVALID                                     -EBADMSG   no
 * A 2xx answer that a client reads as an error (S3's <Error> inside a 200)
 * goes by its code; an unknown code there is -EPROTO, not retried.
 *
 * Transport failures (no complete answer) keep http.c's errno and are retried
 * as retry_transport_retryable says: after the last attempt a stall or
 * timeout is -ETIMEDOUT, a reset before any answer -ECONNRESET, a body cut
 * short (a close mid-body, a Content-Length the body does not reach)
 * -EIO or -ECONNRESET (a reset mid-body), a refused connection -ECONNREFUSED.
 *
 * Why -EBUSY for throttling, not -EAGAIN: "the server is busy, try later" is
 * what EBUSY says, and -EAGAIN is already spoken inside dth with another
 * meaning (agent/transfer.c: "copy it as a multipart upload instead", "the
 * source part layout cannot be repeated"; a failed pthread_create): a
 * throttled HeadObject or GetObject there must not turn into a change of
 * plan. -EBUSY is used by no caller, so cli_exit_for_remote, sync.c's
 * unreachable_errno and image.c's unreachable_rc all take it as "some
 * objects failed" (exit 1), whichever client was throttled. Answers that
 * say the endpoint refuses us (-EACCES) or is not there (-ENOENT,
 * transport errnos) stay what the callers count as unreachable.
 *
 * Retry-After (delta seconds) raises the backoff before the next attempt, up
 * to the policy's max_ms. Thread-safe: one exec_run per call, on the
 * caller's thread. */
#ifndef DTH_EXEC_H
#define DTH_EXEC_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"
#include "common/util.h"
#include "remote/http.h"
#include "remote/retry.h"

#define EXEC_CODE_MAX 64 /* a remote error code, NUL included */

/* The status table: the errno an answer ends as, whether another attempt may
 * help, and whether it is a clock-skew or an expired-credentials refusal.
 * code may be NULL or "". */
struct exec_verdict {
	int err;
	bool retry;
	bool skew;    /* learn the clock, then once more */
	bool expired; /* renew the credentials, then once more */
};

/* What a client does in the loop. Only send is required; every hook gets
 * the ctx of the call. */
struct exec_hooks {
	/* Build, sign and send one attempt into resp (the registry follows
	 * redirects in here). 0 when an answer arrived, whatever its status;
	 * else a negative errno with err set. *fatal = true (it starts false)
	 * for a failure that no other attempt can mend: credentials that cannot
	 * be had, a request that cannot be signed, a token server that refused
	 * us after its own retries, a redirect loop. */
	int (*send)(void *ctx, struct http_resp *resp, bool *fatal, struct dth_err *err);
	/* Before every attempt (a streaming sink starts over). */
	void (*reset)(void *ctx);
	/* A 2xx answer: 0 to take it; 1 when it carries an error after all
	 * (code and *message set, message malloc'd or NULL); 2 when it is
	 * garbled (a body cut short under a Content-Length that matches it,
	 * XML that does not parse): err set, and it is sent again as after a
	 * broken transfer; or a negative errno with err set for an answer that
	 * cannot be read (not retried). */
	int (*check_ok)(void *ctx, const struct http_resp *resp, char code[EXEC_CODE_MAX],
			char **message, struct dth_err *err);
	/* An error answer: the service's error code (or "") and a message
	 * (malloc'd, or NULL), printable and short. */
	void (*parse_error)(void *ctx, const struct http_resp *resp, char code[EXEC_CODE_MAX],
			    char **message);
	/* Every answer, before it is judged (rate-limit headers). */
	void (*observe)(void *ctx, const struct http_resp *resp);
	/* Fail at once, without retries: a negative errno with err set, or 0
	 * (Docker Hub's spent pull limit). */
	int (*fast_fail)(void *ctx, const struct http_resp *resp, const char *code,
			 struct dth_err *err);
	/* An error answer that may mean stale credentials (a 401 challenge;
	 * v->expired: an expired session token): renew them and return true to
	 * send again at once, without counting an attempt. round counts the
	 * renewals of this call so far (at most EXEC_AUTH_ROUNDS). */
	bool (*refresh_auth)(void *ctx, const struct http_resp *resp, const struct exec_verdict *v,
			     unsigned round);
	/* A clock-skew refusal: learn the server's clock from resp; true when
	 * the correction moved (then one more attempt, at once). */
	bool (*learn_skew)(void *ctx, const struct http_resp *resp);
	/* May this transport failure be retried? (false: a body consumer's own
	 * error, or a caller that resumes by itself). NULL: yes, as far as
	 * retry_transport_retryable goes. */
	bool (*transport_retryable)(void *ctx, int err);
	/* Words appended to the error message for this status ("" or NULL). */
	const char *(*hint)(void *ctx, long status);
};

#define EXEC_AUTH_ROUNDS 3

struct exec_call {
	const char *client; /* "s3", "registry", "ecr": log lines start with it */
	const char *name;   /* the remote's name */
	const char *op;	    /* "GetObject", "manifest get", ... */
	const char *what;   /* "s3://bucket/key", "repo:tag", ... (no secret) */
	const struct retry_policy *retry;
	const struct exec_hooks *hooks;
	void *ctx;
};

/* Run the call. 0 on a 2xx answer that check_ok took (resp holds it); else
 * the negative errno of the status table (or of the transport, or of a hook)
 * with err filled: "OP WHAT: STATUS CODE: MESSAGE HINT", http_status and
 * remote_code set for an answer. err may be NULL. */
int exec_run(const struct exec_call *x, struct http_resp *resp, struct dth_err *err) WUR;

/* See struct exec_verdict. */
void exec_classify(long status, const char *code, struct exec_verdict *v);
/* Whether a call's errno says the endpoint cannot be used at all: it cannot
 * be reached (refused, unreachable, down, timed out, reset, a TLS or protocol
 * failure) or it refuses the credentials. What every command reports as exit
 * status 3 (callers add what means "not there" in their context, such as a
 * missing bucket). Throttling (-EBUSY) and server errors (-EIO) are not: the
 * endpoint answers, some objects failed. */
bool exec_unreachable(int rc);
/* A clock-skew refusal (some services say it only in the message). */
bool exec_is_skew(const char *code, const char *message);

#endif
