/* Unit tests for remote/s3_xml.c: every S3 document type fed in small random
 * chunks, url-encoded keys, and hostile input. */
#include "common/compat.h"

#include <errno.h>
#include <stdint.h>

#include "common/buf.h"
#include "remote/s3_xml.h"
#include "tests/unit/tap.h"

static uint64_t rng_state = 88172645463325252ull;

static unsigned rnd(unsigned n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (unsigned)(rng_state % n);
}

/* Feed doc in random chunks of 1..maxchunk bytes; returns the first error. */
static int parse_chunked(const char *doc, size_t len, unsigned maxchunk, struct s3_xml_doc *out,
			 char *msg, size_t msgsz)
{
	struct s3_xml *x = s3_xml_new();
	int rc = 0;
	size_t off = 0;
	while (off < len && rc == 0) {
		size_t n = 1 + rnd(maxchunk);
		if (n > len - off)
			n = len - off;
		rc = s3_xml_feed(x, doc + off, n);
		off += n;
	}
	if (rc == 0)
		rc = s3_xml_finish(x);
	memset(out, 0, sizeof(*out));
	if (rc == 0)
		s3_xml_take(x, out);
	if (msg)
		snprintf(msg, msgsz, "%s", s3_xml_message(x));
	s3_xml_free(x);
	return rc;
}

static const char list_doc[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
    "<Name>bucket</Name><Prefix>run+books%2F</Prefix><KeyCount>4</KeyCount>"
    "<MaxKeys>4</MaxKeys><Delimiter>%2F</Delimiter><EncodingType>url</EncodingType>"
    "<IsTruncated>true</IsTruncated>"
    "<Contents><Key>a+b%2Bc.txt</Key>"
    "<LastModified>2009-10-12T17:50:30.000Z</LastModified>"
    "<ETag>&quot;fba9dede5f27731c9771645a39863328&quot;</ETag>"
    "<Size>434234</Size><Owner><ID>x</ID><DisplayName>Key</DisplayName></Owner>"
    "<StorageClass>STANDARD</StorageClass></Contents>\n"
    "  <Contents><Key>%E2%9C%93%20check/%25%26%3D%3F%23%3B%2C/</Key>"
    "<LastModified>2023-01-02T03:04:05Z</LastModified>"
    "<ETag>\"3858f62230ac3c915f300c664312c11f-9\"</ETag><Size>0</Size>"
    "<StorageClass>GLACIER</StorageClass></Contents>"
    "<CommonPrefixes><Prefix>dir+one/</Prefix></CommonPrefixes>"
    "<CommonPrefixes><Prefix>z%00z/</Prefix></CommonPrefixes>"
    "<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=+x</NextContinuationToken>"
    "<StartAfter>a%20</StartAfter>"
    "</ListBucketResult>";

static void check_list(const struct s3_xml_doc *d, const char *what)
{
	ok(d->root == S3_XML_LIST_BUCKET, "%s: root", what);
	ok(d->is_truncated, "%s: truncated", what);
	ok(d->url_encoded, "%s: url encoded", what);
	is_str(d->next_marker, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=+x",
	       "%s: continuation token kept verbatim", what);
	is_int(d->n_items, 2, "%s: 2 contents", what);
	is_int(d->n_prefixes, 2, "%s: 2 prefixes", what);
	if (d->n_items != 2 || d->n_prefixes != 2)
		return;
	is_str(d->items[0].key, "a b+c.txt", "%s: '+' is a space, %%2B a plus", what);
	is_int(d->items[0].key_len, 9, "%s: key length", what);
	is_int(d->items[0].size, 434234, "%s: size", what);
	is_str(d->items[0].etag, "fba9dede5f27731c9771645a39863328", "%s: etag unquoted", what);
	is_int(d->items[0].time, 1255369830, "%s: last modified", what);
	is_str(d->items[0].storage_class, "STANDARD", "%s: storage class", what);
	ok(!d->items[0].is_prefix, "%s: content is not a prefix", what);
	is_str(d->items[1].key, "\xe2\x9c\x93 check/%&=?#;,/", "%s: unicode and specials decoded",
	       what);
	is_str(d->items[1].etag, "3858f62230ac3c915f300c664312c11f-9", "%s: multipart etag", what);
	is_int(d->items[1].time, 1672628645, "%s: date without fraction", what);
	is_int(d->items[1].size, 0, "%s: zero size", what);
	is_str(d->items[1].storage_class, "GLACIER", "%s: storage class 2", what);
	is_str(d->prefixes[0].key, "dir one/", "%s: prefix decoded", what);
	ok(d->prefixes[0].is_prefix, "%s: prefix flag", what);
	is_int(d->prefixes[1].key_len, 4, "%s: prefix with a NUL keeps its length", what);
	ok(memcmp(d->prefixes[1].key, "z\0z/", 4) == 0, "%s: NUL byte decoded", what);
}

static void test_list_buckets(void)
{
	struct s3_xml_doc d;
	const char *s = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
			"<ListAllMyBucketsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
			"<Owner><ID>o</ID><DisplayName>Owner</DisplayName></Owner><Buckets>"
			"<Bucket><Name>alpha</Name><CreationDate>2026-01-01T00:00:00.000Z"
			"</CreationDate></Bucket><Bucket><Name>b&amp;c</Name></Bucket>"
			"</Buckets></ListAllMyBucketsResult>";
	int rc = parse_chunked(s, strlen(s), 7, &d, NULL, 0);
	ok(rc == 0 && d.root == S3_XML_LIST_BUCKETS, "ListAllMyBucketsResult parses");
	is_int(d.n_items, 2, "two buckets");
	if (d.n_items == 2) {
		is_str(d.items[0].key, "alpha", "bucket 1");
		is_str(d.items[1].key, "b&c", "bucket 2, unescaped");
	}
	s3_xml_doc_release(&d);

	s = "<ListAllMyBucketsResult><Buckets><Bucket><CreationDate/></Bucket></Buckets>"
	    "</ListAllMyBucketsResult>";
	char msg[128] = "";
	rc = s3_xml_parse(s, strlen(s), &d, msg, sizeof(msg));
	is_int(rc, -EPROTO, "a Bucket without a Name is refused");
	s3_xml_doc_release(&d);

	s = "<ListAllMyBucketsResult><Bucket><Name>x</Name></Bucket></ListAllMyBucketsResult>";
	rc = s3_xml_parse(s, strlen(s), &d, NULL, 0);
	ok(rc == 0 && d.n_items == 0, "a Bucket outside Buckets is not a bucket");
	s3_xml_doc_release(&d);
}

static void expect_fail(const char *doc, size_t len, const char *what, const char *needle);

static void test_list(void)
{
	struct s3_xml_doc d;
	char msg[256];
	int rc = s3_xml_parse(list_doc, strlen(list_doc), &d, msg, sizeof(msg));
	is_int(rc, 0, "list: one-shot parse (%s)", msg);
	check_list(&d, "one-shot");
	s3_xml_doc_release(&d);

	/* The same document in random small chunks, many times. */
	bool all_ok = true;
	for (int round = 0; round < 200; round++) {
		rc =
		    parse_chunked(list_doc, strlen(list_doc), 1 + round % 13, &d, msg, sizeof(msg));
		if (rc != 0 || d.n_items != 2 || d.n_prefixes != 2 ||
		    strcmp(d.items[1].key, "\xe2\x9c\x93 check/%&=?#;,/") != 0 ||
		    strcmp(d.items[0].etag, "fba9dede5f27731c9771645a39863328") != 0 ||
		    strcmp(d.next_marker, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=+x") != 0 ||
		    d.items[0].size != 434234)
			all_ok = false;
		if (round == 199)
			check_list(&d, "chunked");
		s3_xml_doc_release(&d);
	}
	ok(all_ok, "list: 200 chunked parses give the same result");

	/* Byte by byte. */
	rc = parse_chunked(list_doc, strlen(list_doc), 1, &d, msg, sizeof(msg));
	is_int(rc, 0, "list: byte by byte");
	check_list(&d, "bytewise");
	s3_xml_doc_release(&d);

	/* Without EncodingType nothing is decoded. */
	const char *raw = "<ListBucketResult><IsTruncated>false</IsTruncated>"
			  "<Contents><Key>a+b%41 </Key><Size>1</Size></Contents>"
			  "<Contents><Key> lead</Key><Size>2</Size></Contents>"
			  "</ListBucketResult>";
	rc = s3_xml_parse(raw, strlen(raw), &d, msg, sizeof(msg));
	is_int(rc, 0, "raw list parses");
	ok(!d.url_encoded && !d.is_truncated, "raw list: not encoded, not truncated");
	ok(d.next_marker == NULL, "raw list: no continuation token");
	is_str(d.n_items > 0 ? d.items[0].key : NULL, "a+b%41 ", "raw key kept with its spaces");
	is_str(d.n_items > 1 ? d.items[1].key : NULL, " lead", "leading space kept");
	s3_xml_doc_release(&d);

	/* A 1024-byte key and a 60 KiB key are fine. */
	struct buf b = BUF_INIT;
	buf_adds(&b, "<ListBucketResult><EncodingType>url</EncodingType><Contents><Key>");
	for (int i = 0; i < 1024; i++)
		buf_adds(&b, i % 2 ? "%C3%A9" : "k");
	buf_adds(&b, "</Key><Size>5</Size></Contents><Contents><Key>");
	for (int i = 0; i < 60 * 1024; i++)
		buf_addch(&b, 'x');
	buf_adds(&b, "</Key></Contents></ListBucketResult>");
	rc = parse_chunked(b.data, b.len, 4096, &d, msg, sizeof(msg));
	is_int(rc, 0, "long keys parse (%s)", msg);
	is_int(d.n_items == 2 ? d.items[0].key_len : 0, 512 + 512 * 2, "1024-char key decoded");
	is_int(d.n_items == 2 ? d.items[1].key_len : 0, 60 * 1024, "60 KiB key kept");
	s3_xml_doc_release(&d);
	buf_release(&b);

	/* An empty page. */
	const char *empty = "<ListBucketResult><Name>b</Name><KeyCount>0</KeyCount>"
			    "<IsTruncated>false</IsTruncated></ListBucketResult>";
	rc = s3_xml_parse(empty, strlen(empty), &d, NULL, 0);
	ok(rc == 0 && d.n_items == 0 && d.n_prefixes == 0 && d.items == NULL, "empty page");
	ok(d.has_truncated, "empty page: IsTruncated seen");
	s3_xml_doc_release(&d);

	/* A page without IsTruncated parses, and says so: the lister refuses it. */
	const char *no_trunc = "<ListBucketResult><Contents><Key>a</Key></Contents>"
			       "<NextContinuationToken>t</NextContinuationToken>"
			       "</ListBucketResult>";
	rc = s3_xml_parse(no_trunc, strlen(no_trunc), &d, NULL, 0);
	ok(rc == 0 && !d.has_truncated && !d.is_truncated, "no IsTruncated: has_truncated false");
	s3_xml_doc_release(&d);
	const char *twice = "<ListBucketResult><IsTruncated>false</IsTruncated>"
			    "<IsTruncated>true</IsTruncated></ListBucketResult>";
	expect_fail(twice, strlen(twice), "IsTruncated twice", "twice");
}

static void test_error_docs(void)
{
	struct s3_xml_doc d;
	const char *e = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>"
			"<Code>SignatureDoesNotMatch</Code><Message>The request signature we "
			"calculated does not match &lt;the&gt; signature you provided.</Message>"
			"<StringToSign>AWS4-HMAC-SHA256...</StringToSign>"
			"<RequestId>4442587FB7D0A2F9</RequestId><HostId>h</HostId></Error>";
	int rc = parse_chunked(e, strlen(e), 7, &d, NULL, 0);
	is_int(rc, 0, "error doc parses");
	ok(d.root == S3_XML_ERROR, "error root");
	is_str(d.code, "SignatureDoesNotMatch", "error code");
	is_str(d.message,
	       "The request signature we calculated does not match <the> signature you provided.",
	       "error message with entities");
	is_str(d.request_id, "4442587FB7D0A2F9", "request id");
	s3_xml_doc_release(&d);

	/* CompleteMultipartUpload can answer 200 with an Error after white space. */
	const char *e200 = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\n           \n"
			   "<Error><Code>InternalError</Code><Message>We encountered an internal "
			   "error. Please try again.</Message><RequestId>656c76696e67</RequestId>"
			   "</Error>";
	rc = parse_chunked(e200, strlen(e200), 3, &d, NULL, 0);
	ok(rc == 0 && d.root == S3_XML_ERROR, "error inside a 200 body recognised");
	is_str(d.code, "InternalError", "error code InternalError");
	s3_xml_doc_release(&d);

	/* Minimal error without message: message is "" not NULL. */
	const char *e2 = "<Error><Code>NoSuchKey</Code></Error>";
	rc = s3_xml_parse(e2, strlen(e2), &d, NULL, 0);
	ok(rc == 0 && d.message && d.message[0] == '\0', "missing message is empty");
	is_str(d.request_id, "", "missing request id is empty");
	s3_xml_doc_release(&d);

	/* A namespace prefix on the elements. */
	const char *e3 = "<s3:Error xmlns:s3=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
			 "<s3:Code>AccessDenied</s3:Code></s3:Error>";
	rc = s3_xml_parse(e3, strlen(e3), &d, NULL, 0);
	ok(rc == 0 && d.root == S3_XML_ERROR, "prefixed error root");
	is_str(d.code, "AccessDenied", "prefixed code");
	s3_xml_doc_release(&d);

	/* A very long code is truncated, not an error. */
	struct buf b = BUF_INIT;
	buf_adds(&b, "<Error><Code>");
	for (int i = 0; i < 500; i++)
		buf_addch(&b, 'C');
	buf_adds(&b, "</Code></Error>");
	rc = s3_xml_parse(b.data, b.len, &d, NULL, 0);
	ok(rc == 0 && strlen(d.code) == sizeof(d.code) - 1, "long code truncated");
	s3_xml_doc_release(&d);
	buf_release(&b);
}

static void test_multipart_docs(void)
{
	struct s3_xml_doc d;
	const char *init =
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
	    "<InitiateMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/"
	    "2006-03-01/\"><Bucket>b</Bucket><Key>k</Key><UploadId>VXBsb2FkIElEIGZvciA2"
	    "aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA</UploadId>"
	    "</InitiateMultipartUploadResult>";
	int rc = parse_chunked(init, strlen(init), 5, &d, NULL, 0);
	ok(rc == 0 && d.root == S3_XML_INITIATE_MPU, "initiate parses");
	is_str(d.upload_id, "VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA",
	       "upload id");
	s3_xml_doc_release(&d);

	const char *comp = "<CompleteMultipartUploadResult><Location>http://x/b/k</Location>"
			   "<Bucket>b</Bucket><Key>k</Key>"
			   "<ETag>\"3858f62230ac3c915f300c664312c11f-9\"</ETag>"
			   "</CompleteMultipartUploadResult>";
	rc = parse_chunked(comp, strlen(comp), 4, &d, NULL, 0);
	ok(rc == 0 && d.root == S3_XML_COMPLETE_MPU, "complete parses");
	is_str(d.etag, "3858f62230ac3c915f300c664312c11f-9", "complete etag");
	s3_xml_doc_release(&d);

	const char *copy = "<CopyObjectResult><LastModified>2009-10-28T22:32:00.123Z</LastModified>"
			   "<ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag>"
			   "</CopyObjectResult>";
	rc = parse_chunked(copy, strlen(copy), 4, &d, NULL, 0);
	ok(rc == 0 && d.root == S3_XML_COPY_OBJECT, "copy object parses");
	is_str(d.etag, "9b2cf535f27731c974343645a3985328", "copy etag");
	is_int(d.last_modified, 1256769120, "copy last modified");
	s3_xml_doc_release(&d);

	const char *cpart = "<CopyPartResult><LastModified>2011-04-11T20:34:56.000Z</LastModified>"
			    "<ETag>\"9b2cf535f27731c974343645a3985328\"</ETag></CopyPartResult>";
	rc = parse_chunked(cpart, strlen(cpart), 4, &d, NULL, 0);
	ok(rc == 0 && d.root == S3_XML_COPY_PART, "copy part parses");
	is_str(d.etag, "9b2cf535f27731c974343645a3985328", "copy part etag");
	s3_xml_doc_release(&d);

	const char *parts =
	    "<ListPartsResult><Bucket>b</Bucket><Key>k</Key><UploadId>u</UploadId>"
	    "<PartNumberMarker>1</PartNumberMarker><NextPartNumberMarker>3</NextPartNumberMarker>"
	    "<MaxParts>2</MaxParts><IsTruncated>true</IsTruncated>"
	    "<Part><PartNumber>2</PartNumber><LastModified>2010-11-10T20:48:34.000Z</LastModified>"
	    "<ETag>\"7778aef83f66abc1fa1e8477f296d394\"</ETag><Size>10485760</Size></Part>"
	    "<Part><PartNumber>3</PartNumber><LastModified>2010-11-10T20:48:33.000Z</LastModified>"
	    "<ETag>\"aaaa18db4cc2f85cedef654fccc4a4x8\"</ETag><Size>10485759</Size></Part>"
	    "</ListPartsResult>";
	rc = parse_chunked(parts, strlen(parts), 6, &d, NULL, 0);
	ok(rc == 0 && d.root == S3_XML_LIST_PARTS, "list parts parses");
	ok(d.is_truncated, "list parts truncated");
	is_str(d.next_marker, "3", "next part number marker");
	is_int(d.n_items, 2, "two parts");
	if (d.n_items == 2) {
		is_int(d.items[0].part_number, 2, "part 2");
		is_str(d.items[0].etag, "7778aef83f66abc1fa1e8477f296d394", "part 2 etag");
		is_int(d.items[0].size, 10485760, "part 2 size");
		is_int(d.items[1].part_number, 3, "part 3");
		is_int(d.items[1].size, 10485759, "part 3 size");
		is_int(d.items[1].time, 1289422113, "part 3 date");
	}
	s3_xml_doc_release(&d);

	const char *ups =
	    "<ListMultipartUploadsResult><Bucket>b</Bucket><KeyMarker></KeyMarker>"
	    "<UploadIdMarker></UploadIdMarker><NextKeyMarker>my+movie%2B.m2ts</NextKeyMarker>"
	    "<NextUploadIdMarker>YW55IGlkZWEgd2h5IGVsdmluZydzIHVwbG9hZCBmYWlsZWQ</"
	    "NextUploadIdMarker>"
	    "<EncodingType>url</EncodingType><MaxUploads>3</MaxUploads>"
	    "<IsTruncated>true</IsTruncated>"
	    "<Upload><Key>my+divisor</"
	    "Key><UploadId>XMgbGlrZSBlbHZpbmcncyBub3QgaGF2aW5nIG11Y2ggbHVjaw"
	    "</UploadId><Initiator><ID>i</ID></Initiator><Owner><ID>o</ID></Owner>"
	    "<StorageClass>STANDARD</StorageClass><Initiated>2010-11-10T20:48:33.000Z</Initiated>"
	    "</Upload>"
	    "<Upload><Key>my%2Bmovie.m2ts</"
	    "Key><UploadId>VXBsb2FkIElEIGZvciBlbHZpbmcncyBteS1tb3ZpZS5"
	    "tMnRzIHVwbG9hZA</UploadId><Initiated>2010-11-10T20:48:33.000+01:00</Initiated>"
	    "</Upload></ListMultipartUploadsResult>";
	rc = parse_chunked(ups, strlen(ups), 9, &d, NULL, 0);
	ok(rc == 0 && d.root == S3_XML_LIST_UPLOADS, "list uploads parses");
	ok(d.is_truncated && d.url_encoded, "list uploads truncated, encoded");
	is_str(d.next_marker, "my movie+.m2ts", "next key marker decoded");
	is_str(d.next_upload_id_marker, "YW55IGlkZWEgd2h5IGVsdmluZydzIHVwbG9hZCBmYWlsZWQ",
	       "next upload id marker");
	is_int(d.n_items, 2, "two uploads");
	if (d.n_items == 2) {
		is_str(d.items[0].key, "my divisor", "upload key decoded");
		is_str(d.items[0].value, "XMgbGlrZSBlbHZpbmcncyBub3QgaGF2aW5nIG11Y2ggbHVjaw",
		       "upload id");
		is_int(d.items[0].time, 1289422113, "initiated");
		is_str(d.items[1].key, "my+movie.m2ts", "upload key with plus");
		is_int(d.items[1].time, 1289422113 - 3600, "initiated with an offset");
	}
	s3_xml_doc_release(&d);

	/* found by fuzz_s3_xml: a NextKeyMarker of "a%00b" came back as "a" (a C
	 * string), so the next page would have started after the wrong key */
	const char *nul_marker =
	    "<ListMultipartUploadsResult><Bucket>b</Bucket><NextKeyMarker>a%00b</NextKeyMarker>"
	    "<NextUploadIdMarker>u</NextUploadIdMarker><EncodingType>url</EncodingType>"
	    "<IsTruncated>true</IsTruncated><Upload><Key>a%00b</Key><UploadId>u</UploadId>"
	    "</Upload></ListMultipartUploadsResult>";
	char msg[256];
	rc = parse_chunked(nul_marker, strlen(nul_marker), 7, &d, msg, sizeof(msg));
	is_int(rc, -EPROTO, "a NextKeyMarker holding a NUL is refused");
	ok(strstr(msg, "NUL") != NULL, "the message says why (%s)", msg);
	ok(d.n_items == 0 && !d.next_marker, "nothing handed out");
	s3_xml_doc_release(&d);
}

static void test_tagging(void)
{
	struct s3_xml_doc d;
	struct buf b = BUF_INIT;
	const char *v2 = "a&b<c>\"d'e\r\nf";
	buf_adds(&b, "<Tagging xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><TagSet>"
		     "<Tag><Key>project</Key><Value>dth</Value></Tag><Tag><Key>");
	s3_xml_escape(&b, "k&y", 3);
	buf_adds(&b, "</Key><Value>");
	s3_xml_escape(&b, v2, strlen(v2));
	buf_adds(&b, "</Value></Tag><Tag><Key>empty</Key><Value></Value></Tag>"
		     "<Tag><Key>novalue</Key></Tag></TagSet></Tagging>");
	int rc = parse_chunked(b.data, b.len, 5, &d, NULL, 0);
	ok(rc == 0 && d.root == S3_XML_TAGGING, "tagging parses");
	is_int(d.n_items, 4, "four tags");
	if (d.n_items == 4) {
		is_str(d.items[0].key, "project", "tag 1 key");
		is_str(d.items[0].value, "dth", "tag 1 value");
		is_str(d.items[1].key, "k&y", "tag 2 key escaped and back");
		is_str(d.items[1].value, v2, "tag 2 value escaped and back (CR kept)");
		is_str(d.items[2].value, "", "empty value");
		is_str(d.items[3].value, "", "missing value is empty");
	}
	s3_xml_doc_release(&d);
	buf_release(&b);

	/* A Tag outside TagSet is not a tag. */
	const char *odd = "<Tagging><Tag><Key>x</Key></Tag><TagSet></TagSet></Tagging>";
	rc = s3_xml_parse(odd, strlen(odd), &d, NULL, 0);
	ok(rc == 0 && d.n_items == 0, "tag outside TagSet ignored");
	s3_xml_doc_release(&d);
}

static void expect_fail(const char *doc, size_t len, const char *what, const char *needle)
{
	struct s3_xml_doc d;
	char msg[256] = "";
	int rc = parse_chunked(doc, len, 16, &d, msg, sizeof(msg));
	is_int(rc, -EPROTO, "%s: -EPROTO", what);
	ok(d.root == S3_XML_UNKNOWN && d.items == NULL, "%s: nothing returned", what);
	if (needle)
		ok(strstr(msg, needle) != NULL, "%s: message '%s' mentions '%s'", what, msg,
		   needle);
	else
		ok(msg[0] != '\0', "%s: has a message (%s)", what, msg);
	s3_xml_doc_release(&d);
}

static void test_hostile(void)
{
	const char *s;
	s = "<ListBucketResult><Contents></ListBucketResult>";
	expect_fail(s, strlen(s), "mismatched tag", "mismatched");
	s = "hello, world";
	expect_fail(s, strlen(s), "not xml", NULL);
	expect_fail("", 0, "empty body", "no element");
	s = "<a/><b/>";
	expect_fail(s, strlen(s), "two roots", "junk");
	s = "<ListBucketResult><Contents><Key>&foo;</Key></Contents></ListBucketResult>";
	expect_fail(s, strlen(s), "undefined entity", "undefined entity");

	/* Truncated documents: every prefix of a valid one fails cleanly. */
	bool all = true;
	size_t len = strlen(list_doc);
	for (size_t cut = 0; cut < len - 1; cut += 7) {
		struct s3_xml_doc d;
		int rc = parse_chunked(list_doc, cut, 11, &d, NULL, 0);
		if (rc != -EPROTO)
			all = false;
		s3_xml_doc_release(&d);
	}
	ok(all, "every truncation of a listing is -EPROTO");

	const char *bomb =
	    "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n"
	    " <!ENTITY lol \"lol\">\n"
	    " <!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n"
	    " <!ENTITY lol2 \"&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;\">\n"
	    " <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">\n"
	    "]>\n<Error><Code>&lol3;</Code></Error>";
	expect_fail(bomb, strlen(bomb), "billion laughs", "document type");
	const char *ext = "<?xml version=\"1.0\"?><!DOCTYPE Error SYSTEM \"file:///etc/passwd\">"
			  "<Error><Code>x</Code></Error>";
	expect_fail(ext, strlen(ext), "external DTD", "document type");
	const char *ext2 = "<!DOCTYPE Error [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
			   "<Error><Code>&x;</Code></Error>";
	expect_fail(ext2, strlen(ext2), "external entity", "document type");

	/* Huge element text. */
	struct buf b = BUF_INIT;
	buf_adds(&b, "<ListBucketResult><Contents><Key>");
	for (int i = 0; i < 70 * 1024; i++)
		buf_addch(&b, 'k');
	buf_adds(&b, "</Key></Contents></ListBucketResult>");
	expect_fail(b.data, b.len, "70 KiB key", "longer than");
	buf_reset(&b);

	/* Huge text in an element we ignore is fine. */
	buf_adds(&b, "<ListBucketResult><Name>");
	for (int i = 0; i < 200 * 1024; i++)
		buf_addch(&b, 'n');
	buf_adds(&b, "</Name></ListBucketResult>");
	struct s3_xml_doc d;
	int rc = parse_chunked(b.data, b.len, 8192, &d, NULL, 0);
	is_int(rc, 0, "huge text in an ignored element is skipped");
	s3_xml_doc_release(&d);
	buf_reset(&b);

	/* Deep nesting. */
	for (int i = 0; i < 200; i++)
		buf_adds(&b, "<a>");
	for (int i = 0; i < 200; i++)
		buf_adds(&b, "</a>");
	expect_fail(b.data, b.len, "deep nesting", "nested");
	buf_reset(&b);

	/* Too many entries. */
	buf_adds(&b, "<ListBucketResult>");
	for (int i = 0; i <= S3_XML_ITEMS_MAX; i++)
		buf_addf(&b, "<Contents><Key>k%d</Key></Contents>", i);
	buf_adds(&b, "</ListBucketResult>");
	expect_fail(b.data, b.len, "too many entries", "entries");
	buf_release(&b);

	s = "<ListBucketResult><Contents><Key>k</Key><Size>12x</Size></Contents>"
	    "</ListBucketResult>";
	expect_fail(s, strlen(s), "bad size", "Size");
	s = "<ListBucketResult><Contents><Key>k</Key><Size>-1</Size></Contents>"
	    "</ListBucketResult>";
	expect_fail(s, strlen(s), "negative size", "Size");
	s = "<ListBucketResult><Contents><Key>k</Key><Size>99999999999999999999999</Size>"
	    "</Contents></ListBucketResult>";
	expect_fail(s, strlen(s), "overflowing size", "Size");
	s = "<ListBucketResult><Contents><Key>k</Key><LastModified>yesterday</LastModified>"
	    "</Contents></ListBucketResult>";
	expect_fail(s, strlen(s), "bad date", "date");
	s = "<ListBucketResult><IsTruncated>maybe</IsTruncated></ListBucketResult>";
	expect_fail(s, strlen(s), "bad IsTruncated", "IsTruncated");
	s = "<ListBucketResult><EncodingType>url</EncodingType><Contents><Key>a%zz</Key>"
	    "</Contents></ListBucketResult>";
	expect_fail(s, strlen(s), "bad escape", "percent");
	s = "<ListBucketResult><EncodingType>url</EncodingType><Contents><Key>a%2</Key>"
	    "</Contents></ListBucketResult>";
	expect_fail(s, strlen(s), "short escape", "percent");
	s = "<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>";
	expect_fail(s, strlen(s), "contents without key", "Key");
	s = "<ListPartsResult><Part><PartNumber>0</PartNumber></Part></ListPartsResult>";
	expect_fail(s, strlen(s), "part number 0", "PartNumber");
	s = "<ListPartsResult><Part><ETag>x</ETag></Part></ListPartsResult>";
	expect_fail(s, strlen(s), "part without number", "PartNumber");
	s = "<ListMultipartUploadsResult><Upload><Key>k</Key></Upload>"
	    "</ListMultipartUploadsResult>";
	expect_fail(s, strlen(s), "upload without id", "UploadId");
	b = (struct buf)BUF_INIT;
	buf_adds(&b, "<CompleteMultipartUploadResult><ETag>");
	for (int i = 0; i < 300; i++)
		buf_addch(&b, 'e');
	buf_adds(&b, "</ETag></CompleteMultipartUploadResult>");
	expect_fail(b.data, b.len, "etag too long", "ETag");
	buf_release(&b);

	/* Invalid UTF-8 is malformed XML. */
	s = "<Error><Code>\xff\xfe</Code></Error>";
	expect_fail(s, strlen(s), "invalid utf-8", NULL);

	/* Errors are sticky and feeding after finish is refused. */
	struct s3_xml *x = s3_xml_new();
	ok(s3_xml_feed(x, "<a><b></a>", 10) == -EPROTO, "sticky: first error");
	ok(s3_xml_feed(x, "<c/>", 4) == -EPROTO, "sticky: later feed fails too");
	ok(s3_xml_finish(x) == -EPROTO, "sticky: finish fails");
	s3_xml_free(x);
	x = s3_xml_new();
	rc = s3_xml_feed(x, "<Error/>", 8);
	if (rc == 0)
		rc = s3_xml_finish(x);
	is_int(rc, 0, "tiny doc");
	ok(s3_xml_get(x)->root == S3_XML_ERROR, "tiny doc root");
	ok(s3_xml_feed(x, "<x/>", 4) == -EPROTO, "feed after finish refused");
	s3_xml_free(x);

	/* An unknown root is not an error. */
	s = "<ListAllMyBucketsResultX><Buckets/></ListAllMyBucketsResultX>";
	rc = s3_xml_parse(s, strlen(s), &d, NULL, 0);
	ok(rc == 0 && d.root == S3_XML_UNKNOWN, "unknown root accepted as unknown");
	s3_xml_doc_release(&d);

	/* Markup nested inside a field is ignored, text around it kept. */
	s = "<Error><Code>No<b>x</b>SuchKey</Code></Error>";
	rc = s3_xml_parse(s, strlen(s), &d, NULL, 0);
	ok(rc == 0, "nested markup in a field");
	is_str(d.code, "NoSuchKey", "nested markup text skipped");
	s3_xml_doc_release(&d);

	/* The sink adapter. */
	x = s3_xml_new();
	rc = s3_xml_sink(x, "<Error><Code>A</Code>", 21);
	if (rc == 0)
		rc = s3_xml_sink(x, "</Error>", 8);
	is_int(rc, 0, "sink adapter feeds");
	rc = s3_xml_finish(x);
	ok(rc == 0 && strcmp(s3_xml_get(x)->code, "A") == 0, "sink adapter result");
	s3_xml_free(x);
}

static void test_helpers(void)
{
	int64_t t = 0;
	ok(s3_xml_parse_time("1970-01-01T00:00:00Z", &t) == 0 && t == 0, "epoch");
	ok(s3_xml_parse_time("2009-10-12T17:50:30.000Z", &t) == 0 && t == 1255369830, "aws date");
	ok(s3_xml_parse_time("2009-10-12T17:50:30.123456Z", &t) == 0 && t == 1255369830,
	   "microseconds");
	ok(s3_xml_parse_time("2009-10-12T17:50:30", &t) == 0 && t == 1255369830, "no zone is UTC");
	ok(s3_xml_parse_time("2009-10-12T19:50:30+02:00", &t) == 0 && t == 1255369830,
	   "positive offset");
	ok(s3_xml_parse_time("2009-10-12T15:50:30-0200", &t) == 0 && t == 1255369830,
	   "negative offset without colon");
	ok(s3_xml_parse_time("2024-02-29T12:00:00Z", &t) == 0 && t == 1709208000, "leap day");
	ok(s3_xml_parse_time("2009-13-12T17:50:30Z", &t) == -EINVAL, "month 13");
	ok(s3_xml_parse_time("2009-10-12T25:50:30Z", &t) == -EINVAL, "hour 25");
	ok(s3_xml_parse_time("2009-10-12", &t) == -EINVAL, "date only");
	ok(s3_xml_parse_time("2009-10-12T17:50:30.Z", &t) == -EINVAL, "empty fraction");
	ok(s3_xml_parse_time("2009-10-12T17:50:30Zjunk", &t) == -EINVAL, "trailing junk");
	ok(s3_xml_parse_time("", &t) == -EINVAL, "empty");

	char e[S3_ETAG_MAX];
	ok(s3_xml_etag("\"abc\"", 5, e) == 0 && strcmp(e, "abc") == 0, "etag quotes");
	ok(s3_xml_etag("abc", 3, e) == 0 && strcmp(e, "abc") == 0, "etag without quotes");
	ok(s3_xml_etag("&quot;abc&quot;", 15, e) == 0 && strcmp(e, "abc") == 0, "etag &quot;");
	ok(s3_xml_etag("  \"abc-2\" \n", 11, e) == 0 && strcmp(e, "abc-2") == 0,
	   "etag with white space");
	ok(s3_xml_etag("\"\"", 2, e) == 0 && strcmp(e, "") == 0, "empty etag");
	char longe[200];
	memset(longe, 'a', sizeof(longe));
	ok(s3_xml_etag(longe, sizeof(longe), e) == -EINVAL && e[0] == '\0', "etag too long");

	struct buf b = BUF_INIT;
	int rc = s3_xml_url_decode(&b, "a+b%2Bc%20d%2F", 14);
	is_int(rc, 0, "url decode ok");
	is_str(b.data, "a b+c d/", "url decode result");
	buf_reset(&b);
	rc = s3_xml_url_decode(&b, "%", 1);
	is_int(rc, -EINVAL, "lone percent");
	buf_reset(&b);
	rc = s3_xml_url_decode(&b, "%g0", 3);
	is_int(rc, -EINVAL, "bad hex");
	buf_reset(&b);
	rc = s3_xml_url_decode(&b, "", 0);
	ok(rc == 0 && b.len == 0, "empty decode");
	buf_reset(&b);
	s3_xml_escape(&b, "<a & 'b' \"c\">", 13);
	is_str(b.data, "&lt;a &amp; &apos;b&apos; &quot;c&quot;&gt;", "escape");
	buf_release(&b);
}

int main(void)
{
	test_list();
	test_error_docs();
	test_multipart_docs();
	test_tagging();
	test_list_buckets();
	test_hostile();
	test_helpers();
	return tap_done();
}
