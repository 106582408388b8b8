#include "common/compat.h"

#include "common/util.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

static void oom(void)
{
	fputs("dth: out of memory\n", stderr);
	abort();
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		oom();
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		oom();
	return p;
}

void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		oom();
	return q;
}

char *xstrdup(const char *s)
{
	char *p = strdup(s ? s : "");
	if (!p)
		oom();
	return p;
}

char *xmemdup(const void *p, size_t n)
{
	char *d = xmalloc(n + 1);
	if (n)
		memcpy(d, p, n);
	d[n] = '\0';
	return d;
}

char *xstrndup(const char *s, size_t n)
{
	char *p = strndup(s, n);
	if (!p)
		oom();
	return p;
}

int str_copy(char *dst, const char *src, size_t dstsz)
{
	size_t n = strlen(src);
	if (n >= dstsz) {
		if (dstsz)
			dst[0] = '\0';
		return -ENAMETOOLONG;
	}
	memcpy(dst, src, n + 1);
	return 0;
}

int xsnprintf(char *dst, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int w = vsnprintf(dst, n, fmt, ap);
	va_end(ap);
	if (w < 0 || (size_t)w >= n) {
		fprintf(stderr, "dth: BUG: \"%s\" formatted into %zu bytes does not fit\n", fmt, n);
		abort();
	}
	return w;
}

void msg_snprintf(char *dst, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	msg_vsnprintf(dst, n, fmt, ap);
	va_end(ap);
}

void msg_vsnprintf(char *dst, size_t n, const char *fmt, va_list ap)
{
	int w = vsnprintf(dst, n, fmt, ap);
	if (w >= 0 && (size_t)w >= n && n > 4) {
		/* cut at a UTF-8 boundary, then the mark */
		size_t end = n - 4;
		while (end > 0 && ((unsigned char)dst[end] & 0xC0) == 0x80)
			end--;
		memcpy(dst + end, "...", 4);
	}
}

void str_copy_fit(char *dst, const char *src, size_t dstsz)
{
	if (str_copy(dst, src, dstsz) == 0)
		return;
	fprintf(stderr, "dth: BUG: a string of %zu bytes copied into %zu\n", strlen(src), dstsz);
	abort();
}

void str_copy_msg(char *dst, const char *src, size_t dstsz)
{
	if (dstsz == 0 || str_copy(dst, src, dstsz) == 0)
		return;
	if (dstsz < 4) {
		dst[0] = '\0';
		return;
	}
	/* Keep whole UTF-8 sequences before the mark. */
	size_t n = 0, room = dstsz - 4, len = strlen(src);
	while (n < len) {
		size_t k = utf8_seq_len(src + n, len - n);
		if (!k)
			k = 1;
		if (n + k > room)
			break;
		n += k;
	}
	memcpy(dst, src, n);
	memcpy(dst + n, "...", 4);
}

void hex_encode(const unsigned char *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int hex_decode(const char *in, size_t inlen, unsigned char *out, size_t outsz)
{
	if (inlen % 2 || inlen / 2 > outsz || inlen / 2 > INT_MAX)
		return -EINVAL;
	for (size_t i = 0; i < inlen / 2; i++) {
		int h = hex_digit(in[2 * i]), l = hex_digit(in[2 * i + 1]);
		if (h < 0 || l < 0)
			return -EINVAL;
		out[i] = (unsigned char)(h << 4 | l);
	}
	return (int)(inlen / 2);
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void base64_encode(const unsigned char *in, size_t len, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)in[i] << 16;
		if (i + 1 < len)
			v |= (unsigned)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		out[o++] = b64[(v >> 18) & 63];
		out[o++] = b64[(v >> 12) & 63];
		out[o++] = i + 1 < len ? b64[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < len ? b64[v & 63] : '=';
	}
	out[o] = '\0';
}

static int b64val(char c)
{
	const char *p = strchr(b64, c);
	return (c && p) ? (int)(p - b64) : -1;
}

/* Padding is optional, but when present it must complete the last group and
 * nothing may follow it. A lone character in the last group is an error. */
int base64_decode(const char *in, size_t inlen, unsigned char *out, size_t outsz)
{
	size_t o = 0, i = 0, nchars = 0;
	unsigned v = 0;
	int bits = 0;
	if (inlen / 4 * 3 > INT_MAX)
		return -EINVAL;
	for (; i < inlen && in[i] != '='; i++) {
		int d = b64val(in[i]);
		if (d < 0)
			return -EINVAL;
		nchars++;
		v = ((v << 6) | (unsigned)d) & 0xFFFFFF;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o >= outsz)
				return -EINVAL;
			out[o++] = (unsigned char)(v >> bits);
		}
	}
	if (nchars % 4 == 1)
		return -EINVAL;
	size_t pad = inlen - i;
	for (; i < inlen; i++)
		if (in[i] != '=')
			return -EINVAL;
	if (pad && (nchars + pad) % 4 != 0)
		return -EINVAL;
	if (pad > 2)
		return -EINVAL;
	return (int)o;
}

int parse_u64(const char *s, uint64_t *out)
{
	/* strtoull would accept leading blanks and a sign (and wrap "-1") */
	if (!s || !(*s >= '0' && *s <= '9'))
		return -EINVAL;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	if (*end)
		return -EINVAL;
	*out = v;
	return 0;
}

int parse_size(const char *s, uint64_t *out)
{
	if (!s || !(*s >= '0' && *s <= '9'))
		return -EINVAL;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	if (end == s)
		return -EINVAL;
	uint64_t mul = 1;
	if (*end) {
		switch (*end) {
		case 'k':
		case 'K':
			mul = 1ULL << 10;
			break;
		case 'm':
		case 'M':
			mul = 1ULL << 20;
			break;
		case 'g':
		case 'G':
			mul = 1ULL << 30;
			break;
		case 't':
		case 'T':
			mul = 1ULL << 40;
			break;
		case 'b':
		case 'B':
			mul = 1;
			break;
		default:
			return -EINVAL;
		}
		bool bytes = mul == 1;
		end++;
		if (*end && (bytes || (strcasecmp(end, "ib") && strcasecmp(end, "b"))))
			return -EINVAL;
	}
	if (v && mul > UINT64_MAX / v)
		return -ERANGE;
	*out = v * mul;
	return 0;
}

int parse_bool(const char *s, bool *out)
{
	if (!s)
		return -EINVAL;
	if (!strcasecmp(s, "true") || !strcasecmp(s, "yes") || !strcasecmp(s, "on") ||
	    !strcmp(s, "1")) {
		*out = true;
		return 0;
	}
	if (!strcasecmp(s, "false") || !strcasecmp(s, "no") || !strcasecmp(s, "off") ||
	    !strcmp(s, "0")) {
		*out = false;
		return 0;
	}
	return -EINVAL;
}

bool str_startswith(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool str_endswith(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

bool str_ieq(const char *a, const char *b)
{
	return strcasecmp(a, b) == 0;
}

size_t utf8_seq_len(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	if (len == 0)
		return 0;
	unsigned c = s[0];
	size_t n;
	unsigned min;
	if (c < 0x80)
		return 1;
	if ((c & 0xE0) == 0xC0) {
		n = 1;
		c &= 0x1F;
		min = 0x80;
	} else if ((c & 0xF0) == 0xE0) {
		n = 2;
		c &= 0x0F;
		min = 0x800;
	} else if ((c & 0xF8) == 0xF0) {
		n = 3;
		c &= 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	if (n >= len)
		return 0;
	for (size_t k = 1; k <= n; k++) {
		if ((s[k] & 0xC0) != 0x80)
			return 0;
		c = (c << 6) | (s[k] & 0x3F);
	}
	if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		return 0;
	return n + 1;
}

bool utf8_valid(const char *str, size_t len)
{
	size_t i = 0;
	while (i < len) {
		size_t n = utf8_seq_len(str + i, len - i);
		if (!n)
			return false;
		i += n;
	}
	return true;
}

void deadline_in_ms(struct timespec *ts, unsigned ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

double now_mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

uint64_t now_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int mkdir_p(const char *dir)
{
	char *p = xstrdup(dir);
	int rc = 0;
	for (char *s = p + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(p, 0700) != 0 && errno != EEXIST) {
			rc = -errno;
			break;
		}
		*s = c;
		if (!c)
			break;
	}
	free(p);
	return rc;
}

int bytes_order(const void *a, size_t al, const void *b, size_t bl)
{
	size_t n = al < bl ? al : bl;
	int c = n ? memcmp(a, b, n) : 0;
	if (c)
		return c;
	return al < bl ? -1 : al > bl;
}
