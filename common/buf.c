#include "common/compat.h"

#include "common/buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

/* While cap is 0 the buffer owns no memory: data is NULL (BUF_INIT) or points
 * at this shared empty string (buf_init), which is never written to. */
static char buf_empty[1];

void buf_init(struct buf *b)
{
	b->data = buf_empty;
	b->len = 0;
	b->cap = 0;
}

void buf_release(struct buf *b)
{
	if (b->cap)
		free(b->data);
	buf_init(b);
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->cap)
		b->data[0] = '\0';
}

void buf_grow(struct buf *b, size_t extra)
{
	if (extra > SIZE_MAX - 1 - b->len) {
		fputs("dth: buffer size overflow\n", stderr);
		abort();
	}
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap < (SIZE_MAX / 2) ? cap * 2 : need;
	b->data = xrealloc(b->cap ? b->data : NULL, cap);
	b->cap = cap;
	b->data[b->len] = '\0';
}

void buf_add(struct buf *b, const void *data, size_t len)
{
	if (!len) {
		buf_grow(b, 0);
		return;
	}
	/* data may point into b itself; growing would move it */
	const char *d = data;
	uintptr_t off = (uintptr_t)d - (uintptr_t)b->data;
	if (b->cap && off < b->cap) {
		buf_grow(b, len);
		d = b->data + off;
	} else {
		buf_grow(b, len);
	}
	memmove(b->data + b->len, d, len);
	b->len += len;
	b->data[b->len] = '\0';
}

void buf_adds(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

void buf_addch(struct buf *b, char c)
{
	buf_add(b, &c, 1);
}

void buf_vaddf(struct buf *b, const char *fmt, va_list ap)
{
	/* Formatted into a separate buffer first, so arguments may point into b. */
	char small[256];
	va_list cp;
	va_copy(cp, ap);
	int n = vsnprintf(small, sizeof(small), fmt, cp);
	va_end(cp);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(small)) {
		buf_add(b, small, (size_t)n);
		return;
	}
	char *big = xmalloc((size_t)n + 1);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	buf_add(b, big, (size_t)n);
	free(big);
}

void buf_addf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	buf_vaddf(b, fmt, ap);
	va_end(ap);
}

void buf_setlen(struct buf *b, size_t len)
{
	if (len > b->len)
		return;
	b->len = len;
	if (b->cap)
		b->data[len] = '\0';
}

char *buf_detach(struct buf *b, size_t *len)
{
	char *d = b->cap ? b->data : xstrdup("");
	if (len)
		*len = b->len;
	buf_init(b);
	return d;
}

const char *buf_str(const struct buf *b)
{
	return b->cap ? b->data : buf_empty;
}

void buf_add_printable(struct buf *b, const void *data, size_t len)
{
	const char *s = data;
	size_t i = 0;
	while (i < len) {
		unsigned char ch = (unsigned char)s[i];
		size_t n = utf8_seq_len(s + i, len - i);
		if (ch == '\\') {
			buf_adds(b, "\\\\");
			i++;
		} else if (n == 0 || ch < 0x20 || ch == 0x7f) {
			buf_addf(b, "\\x%02x", ch);
			i++;
		} else {
			buf_add(b, s + i, n);
			i += n;
		}
	}
}

void buf_add_text(struct buf *b, const void *data, size_t len)
{
	if (utf8_valid(data, len) && !memchr(data, 0, len))
		buf_add(b, data, len);
	else
		buf_add_printable(b, data, len);
}
