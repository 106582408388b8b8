/* The agent's bearer token: 32 random bytes written as 64 lowercase hex
 * characters and a newline in STATE_DIR/agent.token (mode 0600), made on the
 * agent's first start and read by the agent and by `dth task`. The token is
 * kept in secret memory (common/secret.h) and never logged. */
#ifndef DTH_TOKEN_H
#define DTH_TOKEN_H

#include <stdbool.h>

#include "common/err.h"
#include "common/util.h"

#define TOKEN_FILE    "agent.token"
#define TOKEN_HEX_LEN 64

struct token;

/* The token of STATE_DIR/agent.token, made when the file does not exist
 * (state_dir itself is created 0700 if missing): written to a temporary file
 * that is linked into place, so a crash never leaves a partial token file and
 * two agents starting at once end up with the same token. *created says
 * whether it was made now (may be NULL). Errors (err names the file): -EACCES
 * a file that group or others may read or write (the message gives its
 * mode), -EINVAL one that does not hold a token, or an errno. On success
 * *out is owned by the caller (token_free). */
int token_load_or_create(const char *state_dir, struct token **out, bool *created,
			 struct dth_err *err) WUR;
/* The token of an existing file (the client's side), with the same checks;
 * -ENOENT when it does not exist. */
int token_load(const char *path, struct token **out, struct dth_err *err) WUR;
void token_free(struct token *t);

/* True only for "Bearer <token>" (the scheme in any case, one or more spaces,
 * nothing after the token). The comparison takes the same time whatever the
 * candidate holds. authorization may be NULL (false). */
bool token_check(const struct token *t, const char *authorization);
/* A secret derived from the token for one purpose (e.g. "events:NAME", the
 * secret of a task's webhook URL): HMAC-SHA256(token, purpose) as 64 hex
 * characters in out (65 bytes with the NUL). It changes when the token does.
 * out holds a secret: wipe it (secret_wipe) when done. */
void token_derive(const struct token *t, const char *purpose, char out[TOKEN_HEX_LEN + 1]);
/* Whether candidate (may be NULL) equals the 64-hex secret, in a time that
 * does not depend on either's content. */
bool token_secret_equal(const char *secret, const char *candidate);
/* Whether signature (a header value "sha256=HEX", may be NULL) is the
 * HMAC-SHA256 of body under the 64-hex secret, in constant time; sig_out
 * (may be NULL) gets "sha256=HEX" of body (72 bytes), for signing. */
bool token_hmac_check(const char *secret, const void *body, size_t len, const char *signature);
void token_hmac_sign(const char *secret, const void *body, size_t len, char sig_out[72]);

/* The token's 64 hex characters (for the client's Authorization header).
 * Borrowed, in secret memory, valid while t lives. */
const char *token_value(const struct token *t);
/* The file the token came from. Borrowed while t lives. */
const char *token_path(const struct token *t);

#endif
