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
/* The token's 64 hex characters (for the client's Authorization header).
 * Borrowed, in secret memory, valid while t lives. */
const char *token_value(const struct token *t);
/* The file the token came from. Borrowed while t lives. */
const char *token_path(const struct token *t);

#endif
