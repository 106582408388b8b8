/* Error detail carried from where an error happens to the user. Functions return
 * 0 or a negative errno; when they also take a struct dth_err *, it is filled
 * with a human-readable message (never containing a secret) and, for remote
 * errors, the HTTP status and the service's error code. */
#ifndef DTH_ERR_H
#define DTH_ERR_H

struct dth_err {
	int code;	      /* negative errno, 0 when no error */
	int http_status;      /* 0 when not an HTTP error */
	char remote_code[64]; /* e.g. "NoSuchKey", "SignatureDoesNotMatch"; "" if none */
	char message[512];    /* lowercase, no full stop */
};

void err_clear(struct dth_err *e);
/* Sets code and formats message; returns code so callers can `return err_set(...)`.
 * e may be NULL. */
int err_set(struct dth_err *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prepend context: "ctx: old message". */
void err_prefix(struct dth_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
