#include "common/compat.h"

#include "common/uri.h"

#include <errno.h>

#include "common/util.h"

static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

void uri_encode(struct buf *out, const char *s, size_t len, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	buf_grow(out, len * 3);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (unreserved(c) || (keep_slash && c == '/')) {
			out->data[out->len++] = (char)c;
		} else {
			out->data[out->len++] = '%';
			out->data[out->len++] = hex[c >> 4];
			out->data[out->len++] = hex[c & 15];
		}
	}
	out->data[out->len] = '\0';
}

int uri_decode(struct buf *out, const char *s, size_t len)
{
	size_t start = out->len;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '%') {
			int h = i + 2 < len ? hex_digit(s[i + 1]) : -1;
			int l = i + 2 < len ? hex_digit(s[i + 2]) : -1;
			if (h < 0 || l < 0) {
				/* leave out as it was */
				buf_setlen(out, start);
				return -EINVAL;
			}
			buf_addch(out, (char)(h << 4 | l));
			i += 2;
		} else {
			buf_addch(out, s[i]);
		}
	}
	return 0;
}
