/* Growable byte buffer, always NUL-terminated after len bytes.
 * Embedded struct: buf_init()/buf_release(). The buffer owns data; buf_detach()
 * hands ownership to the caller (free() it). */
#ifndef DTH_BUF_H
#define DTH_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char *data; /* NULL-free after buf_init: points at a static "" until first growth */
	size_t len;
	size_t cap;
};

#define BUF_INIT                                                                                   \
	{                                                                                          \
		NULL, 0, 0                                                                         \
	}

void buf_init(struct buf *b);
void buf_release(struct buf *b);
/* Empty the buffer, keeping its memory. */
void buf_reset(struct buf *b);
/* Make room for at least extra more bytes; aborts on out-of-memory. */
void buf_grow(struct buf *b, size_t extra);
void buf_add(struct buf *b, const void *data, size_t len);
void buf_adds(struct buf *b, const char *s);
void buf_addch(struct buf *b, char c);
void buf_addf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vaddf(struct buf *b, const char *fmt, va_list ap);
/* Append len bytes of data (a key, say: any bytes) as one line of valid
 * UTF-8 for a message or a JSON string: a backslash becomes \\, and every
 * control byte, DEL and byte that is not part of a valid UTF-8 sequence
 * becomes \xNN. Printable UTF-8 is kept as it is. */
void buf_add_printable(struct buf *b, const void *data, size_t len);
/* Append len bytes of data (a key: any bytes) as text for JSON: as they are
 * when they are valid UTF-8 without a NUL, else as buf_add_printable does.
 * What is appended never holds a NUL. */
void buf_add_text(struct buf *b, const void *data, size_t len);
/* Truncate to len bytes (len <= b->len). */
void buf_setlen(struct buf *b, size_t len);
/* Return the data as a malloc'd NUL-terminated string (never NULL) and reset b. Caller frees. */
char *buf_detach(struct buf *b, size_t *len);
/* Always a valid NUL-terminated string, even for an empty, never-grown buffer. */
const char *buf_str(const struct buf *b);

#endif
