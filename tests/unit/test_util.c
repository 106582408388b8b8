/* Unit tests of common/buf.c, common/util.c, common/uri.c and common/err.c. */
#include "common/compat.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"
#include "common/uri.h"
#include "common/util.h"
#include "tests/unit/tap.h"

static void test_buf(void)
{
	struct buf b;
	buf_init(&b);
	ok(b.data != NULL, "buf_init: data is not NULL");
	is_str(b.data, "", "buf_init: data is the empty string");
	is_str(buf_str(&b), "", "buf_str of a fresh buffer");
	buf_reset(&b);
	buf_setlen(&b, 0);
	is_int(b.len, 0, "reset/setlen of a fresh buffer");

	struct buf z = BUF_INIT;
	is_str(buf_str(&z), "", "buf_str of BUF_INIT");
	size_t zl = 99;
	char *zd = buf_detach(&z, &zl);
	is_str(zd, "", "detach of BUF_INIT gives an empty string");
	is_int(zl, 0, "detach of BUF_INIT gives length 0");
	free(zd);
	buf_release(&z);

	buf_adds(&b, "hello");
	buf_addch(&b, ' ');
	buf_add(&b, "world!!", 5);
	is_str(buf_str(&b), "hello world", "add/adds/addch");
	is_int(b.len, 11, "length after adds");
	buf_addf(&b, " %d-%s", 42, "x");
	is_str(buf_str(&b), "hello world 42-x", "addf");
	buf_setlen(&b, 5);
	is_str(buf_str(&b), "hello", "setlen truncates");
	buf_setlen(&b, 100);
	is_int(b.len, 5, "setlen beyond len is ignored");
	buf_reset(&b);
	is_int(b.len, 0, "reset empties");
	is_str(buf_str(&b), "", "reset leaves an empty string");

	/* binary content and growth across many reallocations */
	for (int i = 0; i < 10000; i++)
		buf_addch(&b, (char)(i & 0xff));
	is_int(b.len, 10000, "10000 bytes added");
	int good = 1;
	for (int i = 0; i < 10000; i++)
		if ((unsigned char)b.data[i] != (unsigned char)(i & 0xff))
			good = 0;
	ok(good, "binary bytes (including NUL) kept");
	ok(b.data[b.len] == '\0', "NUL-terminated after len");
	ok(b.cap > b.len, "capacity exceeds length");

	/* adding a buffer to itself, across a reallocation */
	buf_reset(&b);
	buf_adds(&b, "abc");
	while (b.len < b.cap - 1)
		buf_addch(&b, 'x');
	size_t before = b.len;
	buf_add(&b, b.data, b.len);
	is_int(b.len, 2 * before, "self-append doubles the length");
	ok(memcmp(b.data, b.data + before, before) == 0 && memcmp(b.data, "abc", 3) == 0,
	   "self-append copies the old content");

	size_t len = 0;
	char *d = buf_detach(&b, &len);
	is_int(len, 2 * before, "detach returns the length");
	ok(d && memcmp(d, "abc", 3) == 0, "detach returns the data");
	is_int(b.len, 0, "detach resets the buffer");
	is_str(buf_str(&b), "", "detached buffer is empty");
	free(d);

	/* a long formatted string */
	char big[3000];
	memset(big, 'q', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	buf_addf(&b, "<%s>", big);
	is_int(b.len, sizeof(big) + 1, "addf of a long string");
	ok(b.data[0] == '<' && b.data[b.len - 1] == '>', "addf long string delimiters");
	buf_release(&b);
	is_int(b.len, 0, "release empties");
	is_str(buf_str(&b), "", "released buffer reads as empty");
	buf_release(&b); /* double release is harmless */
}

static void test_strings(void)
{
	char dst[8];
	str_copy_fit(dst, "abcdefg", sizeof(dst));
	is_str(dst, "abcdefg", "str_copy_fit: exactly the room");
	str_copy_msg(dst, "abc", sizeof(dst));
	is_str(dst, "abc", "str_copy_msg: a message that fits");
	str_copy_msg(dst, "abcdefghijkl", sizeof(dst));
	is_str(dst, "abcd...", "str_copy_msg: cut with a mark");
	str_copy_msg(dst, "ab\xc3\xa9\xc3\xa9zz", sizeof(dst));
	is_str(dst, "ab\xc3\xa9...", "str_copy_msg: cut between UTF-8 sequences");
	dst[0] = 'Z';
	is_int(str_copy(dst, "abc", 0), -ENAMETOOLONG, "str_copy with size 0");
	ok(dst[0] == 'Z', "str_copy with size 0 writes nothing");

	ok(str_startswith("foobar", "foo"), "startswith yes");
	ok(!str_startswith("fo", "foo"), "startswith shorter");
	ok(str_startswith("foo", ""), "startswith empty prefix");
	ok(str_endswith("foobar", "bar"), "endswith yes");
	ok(!str_endswith("ar", "bar"), "endswith shorter");
	ok(!str_endswith("foobaz", "bar"), "endswith no");
	ok(str_ieq("Content-Type", "content-TYPE"), "ieq");
	ok(!str_ieq("abc", "abcd"), "ieq different lengths");

	char *s = xstrndup("abcdef", 3);
	is_str(s, "abc", "xstrndup");
	free(s);
	s = xstrdup(NULL);
	is_str(s, "", "xstrdup(NULL) gives an empty string");
	free(s);
}

static void test_hex(void)
{
	const unsigned char in[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
	char hex[2 * sizeof(in) + 1];
	hex_encode(in, sizeof(in), hex);
	is_str(hex, "00017f80abff", "hex_encode lowercase");
	unsigned char out[16];
	is_int(hex_decode(hex, strlen(hex), out, sizeof(out)), (int)sizeof(in),
	       "hex_decode length");
	ok(memcmp(out, in, sizeof(in)) == 0, "hex round trip");
	is_int(hex_decode("ABcd", 4, out, sizeof(out)), 2, "hex_decode mixed case");
	ok(out[0] == 0xab && out[1] == 0xcd, "hex_decode mixed case value");
	is_int(hex_decode("abc", 3, out, sizeof(out)), -EINVAL, "hex_decode odd length");
	is_int(hex_decode("zz", 2, out, sizeof(out)), -EINVAL, "hex_decode bad digit");
	is_int(hex_decode("0011", 4, out, 1), -EINVAL, "hex_decode output too small");
	is_int(hex_decode("", 0, out, 0), 0, "hex_decode empty");
	hex_encode(in, 0, hex);
	is_str(hex, "", "hex_encode empty");

	/* every byte value round-trips */
	unsigned char all[256], back[256];
	char allhex[513];
	for (int i = 0; i < 256; i++)
		all[i] = (unsigned char)i;
	hex_encode(all, 256, allhex);
	is_int(hex_decode(allhex, 512, back, sizeof(back)), 256, "hex all bytes length");
	ok(memcmp(all, back, 256) == 0, "hex all bytes round trip");
}

static void test_base64(void)
{
	/* RFC 4648 section 10 vectors */
	static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
	static const char *const enc[] = {"",	      "Zg==",	  "Zm8=",    "Zm9v",
					  "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
	for (size_t i = 0; i < ARRAY_SIZE(plain); i++) {
		char out[16];
		unsigned char dec[16];
		base64_encode((const unsigned char *)plain[i], strlen(plain[i]), out);
		is_str(out, enc[i], "base64_encode(\"%s\")", plain[i]);
		int n = base64_decode(enc[i], strlen(enc[i]), dec, sizeof(dec));
		is_int(n, (int)strlen(plain[i]), "base64_decode(\"%s\") length", enc[i]);
		ok(n >= 0 && memcmp(dec, plain[i], (size_t)n) == 0, "base64_decode(\"%s\") value",
		   enc[i]);
	}
	/* a Content-MD5 sized value round-trips, all byte values */
	unsigned char md[16], back[16];
	for (int i = 0; i < 16; i++)
		md[i] = (unsigned char)(i * 17 + 3);
	char b[25];
	base64_encode(md, 16, b);
	is_int(strlen(b), 24, "base64 of 16 bytes is 24 chars");
	is_int(base64_decode(b, 24, back, sizeof(back)), 16, "base64 16 bytes decode");
	ok(memcmp(md, back, 16) == 0, "base64 16 bytes round trip");
	unsigned char all[256], allback[256];
	char allb[345];
	for (int i = 0; i < 256; i++)
		all[i] = (unsigned char)(255 - i);
	base64_encode(all, 256, allb);
	is_int(base64_decode(allb, strlen(allb), allback, sizeof(allback)), 256,
	       "base64 256 bytes decode");
	ok(memcmp(all, allback, 256) == 0, "base64 256 bytes round trip");

	unsigned char d[16];
	is_int(base64_decode("Zm9v", 4, d, 2), -EINVAL, "base64_decode output too small");
	is_int(base64_decode("Zm9*", 4, d, sizeof(d)), -EINVAL, "base64_decode bad character");
	is_int(base64_decode("Zg==Zg==", 8, d, sizeof(d)), -EINVAL, "base64 data after padding");
	is_int(base64_decode("Z", 1, d, sizeof(d)), -EINVAL, "base64 lone character");
	is_int(base64_decode("Zg=", 3, d, sizeof(d)), -EINVAL, "base64 short padding");
	is_int(base64_decode("Zg===", 5, d, sizeof(d)), -EINVAL, "base64 too much padding");
	is_int(base64_decode("Zg", 2, d, sizeof(d)), 1, "base64 without padding accepted");
	ok(d[0] == 'f', "base64 without padding value");
}

static void test_parse(void)
{
	uint64_t v = 0;
	is_int(parse_size("8M", &v), 0, "parse_size 8M");
	is_int(v, 8ULL << 20, "8M = 8 MiB");
	is_int(parse_size("16MiB", &v), 0, "parse_size 16MiB");
	is_int(v, 16ULL << 20, "16MiB");
	is_int(parse_size("1G", &v), 0, "parse_size 1G");
	is_int(v, 1ULL << 30, "1G = 1 GiB");
	is_int(parse_size("4096", &v), 0, "parse_size 4096");
	is_int(v, 4096, "4096 bytes");
	is_int(parse_size("5k", &v), 0, "parse_size 5k");
	is_int(v, 5120, "5k");
	is_int(parse_size("2TB", &v), 0, "parse_size 2TB");
	is_int(v, 2ULL << 40, "2TB");
	is_int(parse_size("100B", &v), 0, "parse_size 100B");
	is_int(v, 100, "100B");
	is_int(parse_size("0", &v), 0, "parse_size 0");
	is_int(v, 0, "0 bytes");
	v = 7;
	is_int(parse_size("abc", &v), -EINVAL, "parse_size abc");
	is_int(parse_size("-1", &v), -EINVAL, "parse_size -1");
	is_int(parse_size(" -1", &v), -EINVAL, "parse_size ' -1'");
	is_int(parse_size("+1", &v), -EINVAL, "parse_size +1");
	is_int(parse_size("", &v), -EINVAL, "parse_size empty");
	is_int(parse_size(NULL, &v), -EINVAL, "parse_size NULL");
	is_int(parse_size("1X", &v), -EINVAL, "parse_size unknown unit");
	is_int(parse_size("1Mx", &v), -EINVAL, "parse_size trailing junk");
	is_int(parse_size("1.5G", &v), -EINVAL, "parse_size fraction");
	is_int(parse_size("1Bib", &v), -EINVAL, "parse_size 1Bib");
	is_int(parse_size("8 M", &v), -EINVAL, "parse_size inner space");
	is_int(parse_size("99999999999999999999", &v), -ERANGE, "parse_size overflow");
	is_int(parse_size("17179869184G", &v), -ERANGE, "parse_size unit overflow");
	is_int(v, 7, "failed parse_size leaves the output alone");

	is_int(parse_u64("18446744073709551615", &v), 0, "parse_u64 max");
	ok(v == UINT64_MAX, "parse_u64 max value");
	is_int(parse_u64("18446744073709551616", &v), -ERANGE, "parse_u64 overflow");
	is_int(parse_u64("-1", &v), -EINVAL, "parse_u64 -1");
	is_int(parse_u64(" 1", &v), -EINVAL, "parse_u64 leading space");
	is_int(parse_u64(" -1", &v), -EINVAL, "parse_u64 ' -1'");
	is_int(parse_u64("12a", &v), -EINVAL, "parse_u64 trailing junk");
	is_int(parse_u64("", &v), -EINVAL, "parse_u64 empty");
	is_int(parse_u64("0042", &v), 0, "parse_u64 leading zeros");
	is_int(v, 42, "parse_u64 leading zeros value");

	static const char *const yes[] = {"true", "TRUE", "yes", "Yes", "on", "1"};
	static const char *const no[] = {"false", "False", "no", "NO", "off", "0"};
	static const char *const bad[] = {"", "2", "y", "truex", "nope", " true"};
	for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
		bool b = false;
		ok(parse_bool(yes[i], &b) == 0 && b, "parse_bool(\"%s\") is true", yes[i]);
	}
	for (size_t i = 0; i < ARRAY_SIZE(no); i++) {
		bool b = true;
		ok(parse_bool(no[i], &b) == 0 && !b, "parse_bool(\"%s\") is false", no[i]);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		bool b = false;
		is_int(parse_bool(bad[i], &b), -EINVAL, "parse_bool(\"%s\") is rejected", bad[i]);
	}
	bool b;
	is_int(parse_bool(NULL, &b), -EINVAL, "parse_bool(NULL) is rejected");
}

struct utf8_case {
	const char *s;
	size_t len;
	bool valid;
	const char *what;
};

#define U(lit, v, w)                                                                               \
	{                                                                                          \
		lit, sizeof(lit) - 1, v, w                                                         \
	}

static void test_utf8(void)
{
	static const struct utf8_case cases[] = {
	    U("", true, "empty"),
	    U("plain ascii/key.txt", true, "ascii"),
	    U("caf\xc3\xa9", true, "2-byte"),
	    U("\xe2\x82\xac", true, "3-byte euro"),
	    U("\xf0\x9f\x98\x80", true, "4-byte emoji"),
	    U("\xf4\x8f\xbf\xbf", true, "U+10FFFF"),
	    U("\xed\x9f\xbf", true, "U+D7FF"),
	    U("\xee\x80\x80", true, "U+E000"),
	    U("a\0b", true, "embedded NUL"),
	    U("\x80", false, "lone continuation"),
	    U("\xbf", false, "lone continuation bf"),
	    U("\xc3", false, "truncated 2-byte"),
	    U("\xe2\x82", false, "truncated 3-byte"),
	    U("\xf0\x9f\x98", false, "truncated 4-byte"),
	    U("abc\xe2", false, "truncated at end"),
	    U("\xc3\x28", false, "bad continuation"),
	    U("\xe2\x28\xa1", false, "bad second byte"),
	    U("\xc0\xaf", false, "overlong '/' (2-byte)"),
	    U("\xc1\xbf", false, "overlong c1"),
	    U("\xe0\x80\xaf", false, "overlong '/' (3-byte)"),
	    U("\xe0\x9f\xbf", false, "overlong 3-byte max"),
	    U("\xf0\x80\x80\xaf", false, "overlong '/' (4-byte)"),
	    U("\xf0\x8f\xbf\xbf", false, "overlong 4-byte max"),
	    U("\xed\xa0\x80", false, "surrogate U+D800"),
	    U("\xed\xbf\xbf", false, "surrogate U+DFFF"),
	    U("\xf4\x90\x80\x80", false, "above U+10FFFF"),
	    U("\xf5\x80\x80\x80", false, "lead f5"),
	    U("\xf8\x88\x80\x80\x80", false, "5-byte form"),
	    U("\xfe", false, "byte fe"),
	    U("\xff", false, "byte ff"),
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		ok(utf8_valid(cases[i].s, cases[i].len) == cases[i].valid, "utf8_valid %s: %s",
		   cases[i].what, cases[i].valid ? "valid" : "invalid");
	/* the length bounds the check: a valid prefix of an invalid string */
	ok(utf8_valid("ab\xff", 2), "utf8_valid stops at len");
	ok(!utf8_valid("\xe2\x82\xac", 2), "utf8_valid length cuts a sequence");
}

static void test_uri(void)
{
	struct buf b = BUF_INIT;
	const char *unres = "ABCXYZabcxyz0189-._~";
	uri_encode(&b, unres, strlen(unres), false);
	is_str(buf_str(&b), unres, "uri_encode keeps unreserved characters");

	/* every other byte is encoded, uppercase hex */
	int good = 1;
	for (int c = 0; c < 256; c++) {
		char ch = (char)c;
		buf_reset(&b);
		uri_encode(&b, &ch, 1, false);
		bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
				  (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
				  c == '~';
		char want[4];
		if (unreserved)
			snprintf(want, sizeof(want), "%c", c);
		else
			snprintf(want, sizeof(want), "%%%02X", c);
		if (strcmp(buf_str(&b), want) != 0) {
			good = 0;
			printf("# byte %d encoded as '%s'\n", c, buf_str(&b));
		}
	}
	ok(good, "uri_encode of every byte value");

	buf_reset(&b);
	const char *key = "dir/a b+c=d&e/\xc3\xa9*!'()";
	uri_encode(&b, key, strlen(key), true);
	is_str(buf_str(&b), "dir/a%20b%2Bc%3Dd%26e/%C3%A9%2A%21%27%28%29", "uri_encode keep_slash");
	buf_reset(&b);
	uri_encode(&b, key, strlen(key), false);
	is_str(buf_str(&b), "dir%2Fa%20b%2Bc%3Dd%26e%2F%C3%A9%2A%21%27%28%29",
	       "uri_encode without keep_slash");

	/* appends rather than replaces */
	buf_reset(&b);
	buf_adds(&b, "x=");
	uri_encode(&b, "a b", 3, false);
	is_str(buf_str(&b), "x=a%20b", "uri_encode appends");

	buf_reset(&b);
	is_int(uri_decode(&b, "%2B%20", 6), 0, "uri_decode %%2B%%20");
	is_str(buf_str(&b), "+ ", "uri_decode %%2B%%20 value");
	buf_reset(&b);
	is_int(uri_decode(&b, "a+b%2fc%C3%A9", 13), 0, "uri_decode mixed");
	is_str(buf_str(&b), "a+b/c\xc3\xa9", "uri_decode keeps '+', either hex case");
	buf_reset(&b);
	is_int(uri_decode(&b, "%00x", 4), 0, "uri_decode %%00");
	ok(b.len == 2 && b.data[0] == '\0' && b.data[1] == 'x', "uri_decode %%00 gives a NUL byte");

	buf_reset(&b);
	buf_adds(&b, "keep");
	is_int(uri_decode(&b, "ab%G1", 5), -EINVAL, "uri_decode %%G1 is malformed");
	is_str(buf_str(&b), "keep", "failed uri_decode leaves the buffer as it was");
	is_int(uri_decode(&b, "%4", 2), -EINVAL, "uri_decode truncated %%4");
	is_int(uri_decode(&b, "abc%", 4), -EINVAL, "uri_decode trailing %%");
	is_int(uri_decode(&b, "%1G", 3), -EINVAL, "uri_decode %%1G");
	is_str(buf_str(&b), "keep", "buffer still unchanged");

	/* round trip of arbitrary bytes */
	char all[256];
	for (int i = 0; i < 256; i++)
		all[i] = (char)i;
	struct buf e = BUF_INIT, d = BUF_INIT;
	uri_encode(&e, all, sizeof(all), false);
	is_int(uri_decode(&d, e.data, e.len), 0, "uri round trip decodes");
	ok(d.len == 256 && memcmp(d.data, all, 256) == 0, "uri round trip of all bytes");
	buf_release(&e);
	buf_release(&d);
	buf_release(&b);
}

static void test_err(void)
{
	struct dth_err e;
	err_clear(&e);
	is_int(e.code, 0, "err_clear code");
	is_str(e.message, "", "err_clear message");
	is_int(err_set(&e, -ENOENT, "no such key %s", "a/b"), -ENOENT, "err_set returns code");
	is_int(e.code, -ENOENT, "err_set stores code");
	is_str(e.message, "no such key a/b", "err_set message");
	err_prefix(&e, "get %s", "bucket");
	is_str(e.message, "get bucket: no such key a/b", "err_prefix");
	is_int(err_set(NULL, -EIO, "x"), -EIO, "err_set with NULL");
	err_prefix(NULL, "x");
	err_clear(NULL);

	/* long messages are truncated, not overflowed */
	char longmsg[1000];
	memset(longmsg, 'm', sizeof(longmsg) - 1);
	longmsg[sizeof(longmsg) - 1] = '\0';
	err_set(&e, -EIO, "%s", longmsg);
	is_int(strlen(e.message), sizeof(e.message) - 1, "long message truncated");
	err_prefix(&e, "ctx");
	is_int(strlen(e.message), sizeof(e.message) - 1, "long prefixed message truncated");
	ok(str_startswith(e.message, "ctx: mmm"), "prefix kept on a long message");
	char longctx[700];
	memset(longctx, 'c', sizeof(longctx) - 1);
	longctx[sizeof(longctx) - 1] = '\0';
	err_set(&e, -EIO, "tail");
	err_prefix(&e, "%s", longctx);
	is_int(strlen(e.message), sizeof(e.message) - 1, "long prefix truncated");
}

static void test_log(void)
{
	is_int(log_parse_level("error"), LOG_ERROR, "log level error");
	is_int(log_parse_level("warn"), LOG_WARN, "log level warn");
	is_int(log_parse_level("warning"), LOG_WARN, "log level warning");
	is_int(log_parse_level("info"), LOG_INFO, "log level info");
	is_int(log_parse_level("debug"), LOG_DEBUG, "log level debug");
	is_int(log_parse_level("loud"), -1, "log level unknown");
	is_int(log_parse_level(NULL), -1, "log level NULL");
	int old = log_threshold;
	log_set_level(LOG_DEBUG);
	is_int(log_threshold, LOG_DEBUG, "log_set_level");
	log_set_level(old);
}

static void test_bytes_and_copies(void)
{
	/* buf_add_printable: one line of valid UTF-8 whatever the bytes. */
	struct buf b = BUF_INIT;
	buf_add_printable(&b, "a\0b", 3);
	is_str(buf_str(&b), "a\\x00b", "printable: a NUL byte is shown, not a cut");
	buf_reset(&b);
	buf_add_printable(&b, "caf\xc3\xa9 \\ \x7f\n\xff\xc3", 12);
	is_str(buf_str(&b), "caf\xc3\xa9 \\\\ \\x7f\\x0a\\xff\\xc3",
	       "printable: UTF-8 kept; backslash, DEL, newline, bad bytes escaped");
	ok(utf8_valid(b.data, b.len), "printable: the result is valid UTF-8");
	buf_reset(&b);
	buf_add_text(&b, "caf\xc3\xa9 \\ \n", 9);
	ok(b.len == 9 && !memcmp(b.data, "caf\xc3\xa9 \\ \n", 9),
	   "text: valid UTF-8 kept as it is");
	buf_reset(&b);
	buf_add_text(&b, "a\0b", 3);
	is_str(buf_str(&b), "a\\x00b", "text: with a NUL, the printable form");
	buf_reset(&b);
	buf_add_text(&b, "\\\xff", 2);
	is_str(buf_str(&b), "\\\\\\xff", "text: not UTF-8, the printable form");
	buf_release(&b);

	is_int(utf8_seq_len("\xe2\x82\xac", 3), 3, "utf8_seq_len: euro sign");
	is_int(utf8_seq_len("\xe2\x82", 2), 0, "utf8_seq_len: cut sequence");
	is_int(utf8_seq_len("\xc0\x80", 2), 0, "utf8_seq_len: overlong NUL");
	is_int(utf8_seq_len("", 0), 0, "utf8_seq_len: nothing");

	/* str_copy: never a cut copy. */
	char small[4];
	is_int(str_copy(small, "abc", sizeof(small)), 0, "str_copy: fits exactly");
	is_str(small, "abc", "str_copy: copied");
	is_int(str_copy(small, "abcd", sizeof(small)), -ENAMETOOLONG, "str_copy: too long");
	is_str(small, "", "str_copy: empty after refusing, not \"abc\"");

	char *d = xmemdup("x\0y", 3);
	ok(d[0] == 'x' && d[1] == '\0' && d[2] == 'y' && d[3] == '\0',
	   "xmemdup: all bytes, NUL included, and a terminator");
	free(d);
}

int main(void)
{
	test_buf();
	test_bytes_and_copies();
	test_strings();
	test_hex();
	test_base64();
	test_parse();
	test_utf8();
	test_uri();
	test_err();
	test_log();
	return tap_done();
}
