/* Percent-encoding as AWS SigV4 and S3 define it: unreserved characters
 * A-Z a-z 0-9 - . _ ~ stay, everything else becomes %XX (uppercase hex). */
#ifndef DTH_URI_H
#define DTH_URI_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"

/* Append the encoding of s[0..len) to out; '/' is kept when keep_slash. */
void uri_encode(struct buf *out, const char *s, size_t len, bool keep_slash);
/* Append the decoding of s[0..len) to out ('+' stays '+'). Returns 0 or -EINVAL
 * on a malformed escape. */
int uri_decode(struct buf *out, const char *s, size_t len);

#endif
