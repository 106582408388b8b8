/* Pure helpers of the S3 client: ETag shapes and the x-amz-tagging value. */
#include "common/compat.h"

#include <string.h>

#include "remote/s3.h"
#include "tests/unit/tap.h"

static void test_etag_parse(void)
{
	unsigned n = 99;
	ok(s3_etag_parse("0123456789abcdef0123456789abcdef", &n) && n == 0, "plain md5");
	ok(s3_etag_parse("0123456789ABCDEF0123456789ABCDEF", &n) && n == 0, "upper-case md5");
	ok(s3_etag_parse("0123456789abcdef0123456789abcdef-128", &n) && n == 128,
	   "multipart etag with its part count");
	ok(s3_etag_parse("0123456789abcdef0123456789abcdef-1", &n) && n == 1, "one part");
	ok(!s3_etag_parse("0123456789abcdef0123456789abcde", &n), "31 digits is no md5");
	ok(!s3_etag_parse("0123456789abcdef0123456789abcdefa", &n), "33 digits is no md5");
	ok(!s3_etag_parse("0123456789abcdef0123456789abcdeg", &n), "a non-hex digit");
	ok(!s3_etag_parse("0123456789abcdef0123456789abcdef-", &n), "a dash without a count");
	ok(!s3_etag_parse("0123456789abcdef0123456789abcdef-x1", &n), "a count that is no number");
	ok(!s3_etag_parse("", &n), "empty");
	ok(!s3_etag_parse("W/\"abc\"", &n), "a weak etag");
}

static void test_tags_query(void)
{
	struct s3_kv kv[] = {{(char *)"project", (char *)"dth"},
			     {(char *)"stage", (char *)"two words"},
			     {(char *)"a&b=c", (char *)"ü/+%"}};
	struct s3_tags t = {kv, 3};
	struct buf b = BUF_INIT;
	s3_tags_to_query(&t, &b);
	is_str(b.data, "project=dth&stage=two%20words&a%26b%3Dc=%C3%BC%2F%2B%25",
	       "tags as a url-encoded x-amz-tagging value");
	buf_release(&b);
	struct s3_tags none = {NULL, 0};
	s3_tags_to_query(&none, &b);
	is_str(buf_str(&b), "", "no tags, empty value");
	buf_release(&b);
}

int main(void)
{
	test_etag_parse();
	test_tags_query();
	return tap_done();
}
