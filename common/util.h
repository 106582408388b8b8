/* Small helpers used everywhere: allocation that aborts on OOM, bounded string
 * copy, hex/base64, number parsing. */
#ifndef DTH_UTIL_H
#define DTH_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define WUR	      __attribute__((warn_unused_result))

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Copy exactly n bytes of p (which may hold NULs) and a NUL after them. */
char *xmemdup(const void *p, size_t n);

/* Copying a string into a fixed-size array. A copy that does not fit is
 * never cut silently: choose by what the string is.
 *
 * str_copy: data from outside (a remote's answer, a user's value). 0, or
 * -ENAMETOOLONG when it does not fit (dst then holds "", never a cut copy
 * that could be taken for the real one). */
int str_copy(char *dst, const char *src, size_t dstsz) WUR;
/* str_copy_fit: a string that fits by construction (an ETag from an array of
 * the same size, a constant). Not fitting is a bug in dth: it says so on
 * stderr and aborts, like an assertion that is never compiled out. */
void str_copy_fit(char *dst, const char *src, size_t dstsz);
/* str_copy_msg: a message for people (an error kept in a record). One too
 * long is cut at a UTF-8 boundary and ends with "..." to show it was. */
void str_copy_msg(char *dst, const char *src, size_t dstsz);
/* Formatting into a fixed array, the same two ways (tests/check-sources.sh
 * keeps bare snprintf out of dth's code):
 * xsnprintf: the result fits by construction (numbers, names checked
 * before); not fitting is a bug: it says so and aborts. Returns the length. */
int xsnprintf(char *dst, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* msg_snprintf: a message for people; one too long is cut and ends with "...". */
void msg_snprintf(char *dst, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void msg_vsnprintf(char *dst, size_t n, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* Lowercase hex of len bytes into out (2*len+1 bytes). */
void hex_encode(const unsigned char *in, size_t len, char *out);
/* Value of one hex digit (either case), or -1. */
int hex_digit(char c);
/* Decode hex (either case); returns bytes written or -EINVAL. */
int hex_decode(const char *in, size_t inlen, unsigned char *out, size_t outsz);
/* Standard base64 (with padding). out must hold 4*((len+2)/3)+1 bytes. */
void base64_encode(const unsigned char *in, size_t len, char *out);
/* Returns decoded length or -EINVAL. */
int base64_decode(const char *in, size_t inlen, unsigned char *out, size_t outsz);

/* Parse a size like "8M", "16MiB", "1G", "4096" into bytes. 0 or -EINVAL. */
int parse_size(const char *s, uint64_t *out) WUR;
/* Parse a non-negative integer (decimal). 0 or -EINVAL / -ERANGE. */
int parse_u64(const char *s, uint64_t *out) WUR;
/* Parse a boolean: true/false, yes/no, on/off, 1/0. 0 or -EINVAL. */
int parse_bool(const char *s, bool *out) WUR;

bool str_startswith(const char *s, const char *prefix);
bool str_endswith(const char *s, const char *suffix);
/* Case-insensitive ASCII comparison of the whole strings. */
bool str_ieq(const char *a, const char *b);

/* True when s (len bytes) is valid UTF-8. */
bool utf8_valid(const char *s, size_t len);
/* Length of the valid UTF-8 sequence at the start of s (len bytes available),
 * or 0 when it is not one (or len is 0). */
size_t utf8_seq_len(const char *s, size_t len);

/* *ts = now + ms on CLOCK_REALTIME, for pthread_cond_timedwait. */
struct timespec;
void deadline_in_ms(struct timespec *ts, unsigned ms);
/* Monotonic clock in seconds / milliseconds. */
double now_mono(void);
uint64_t now_mono_ms(void);

/* mkdir -p: dir and its missing parents, each made with mode 0700; an
 * existing directory is fine. 0, or the negative errno of the first mkdir
 * that failed. */
int mkdir_p(const char *dir) WUR;

/* Byte order of two byte strings (memcmp over the shorter, then the shorter
 * first): the order of S3 listings and of the manifest's keys. <0, 0, >0. */
int bytes_order(const void *a, size_t al, const void *b, size_t bl);

#endif
