"""Destination options (--storage-class, --acl, --sse), requester pays, and
server-side copy on one endpoint."""

import json
import urllib.error
import urllib.parse
import urllib.request

from botocore.exceptions import ClientError

import lib
from lib import MiB


def _seed(ctx, tag, n=6, which="a"):
    """n small objects and one 6 MiB object (copied as multipart with
    --multipart-threshold 5M)."""
    c = lib.s3(which)
    src = ctx.bucket(which, tag + "-src")
    objs = lib.small_objects("o/", n, tag)
    objs["o/big"] = lib.det_bytes(tag + "-big", 6 * MiB + 17)
    md5 = lib.put_objects(c, src, objs)
    return src, md5


MP = ("--multipart-threshold", "5M", "--part-size", "5M")


def test_storage_class(ctx):
    src, md5 = _seed(ctx, "sc")
    dst = ctx.bucket("b", "sc-dst")
    res = ctx.sync("src:" + src, "dst:" + dst, "--storage-class", "STANDARD_IA", *MP)
    assert res["failed"] == 0 and res["transferred"] == len(md5), res
    got = lib.list_all(lib.s3("b"), dst)
    lib.assert_same_keys(got, md5)
    bad = {k: v["storage_class"] for k, v in got.items() if v["storage_class"] != "STANDARD_IA"}
    assert not bad, "storage class not applied: %s" % bad
    lib.assert_bytes(lib.s3("b"), dst, md5)


def test_canned_acl(ctx):
    src, md5 = _seed(ctx, "acl", n=2)
    dst = ctx.bucket("b", "acl-dst")
    res = ctx.sync("src:" + src, "dst:" + dst, "--acl", "public-read", *MP)
    assert res["failed"] == 0 and res["transferred"] == len(md5), res
    dc = lib.s3("b")
    for k in md5:
        grants = dc.get_object_acl(Bucket=dst, Key=k)["Grants"]
        public = [g for g in grants if g["Grantee"].get("URI", "").endswith("/global/AllUsers")
                  and g["Permission"] == "READ"]
        assert public, "%s: no public READ grant: %s" % (k, grants)
    # Anonymous read works.
    url = "%s/%s/%s" % (lib.endpoint("b"), dst, urllib.parse.quote("o/00001"))
    with urllib.request.urlopen(url, timeout=30) as r:
        assert lib.md5hex(r.read()) == md5["o/00001"]


def test_sse_kms(ctx):
    src, md5 = _seed(ctx, "sse", n=2)
    dst = ctx.bucket("b", "sse-dst")
    res = ctx.sync("src:" + src, "dst:" + dst, "--sse", "aws:kms", "--sse-kms-key-id", "testkey-1", *MP)
    assert res["failed"] == 0 and res["transferred"] == len(md5), res
    dc = lib.s3("b")
    for k in md5:
        h = lib.head(dc, dst, k)
        assert h.get("ServerSideEncryption") == "aws:kms", "%s: not encrypted: %s" % (
            k, h.get("ServerSideEncryption"))
        assert h.get("SSEKMSKeyId") == "testkey-1", "%s: key %s" % (k, h.get("SSEKMSKeyId"))
    lib.assert_bytes(dc, dst, md5)


def test_requester_pays(ctx):
    """A bucket of user test with RequestPayment=Requester, readable by user
    rp. radosgw refuses rp's requests unless they carry
    x-amz-request-payer: requester, so dth as rp only succeeds when it sends
    the header."""
    src, md5 = _seed(ctx, "rp", n=8)
    c = lib.s3("a")
    c.put_bucket_policy(Bucket=src, Policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam:::user/rp"]},
                       "Action": ["s3:GetObject", "s3:ListBucket", "s3:GetObjectTagging"],
                       "Resource": ["arn:aws:s3:::%s" % src, "arn:aws:s3:::%s/*" % src]}]}))
    c.put_bucket_request_payment(Bucket=src, RequestPaymentConfiguration={"Payer": "Requester"})
    rp = lib.s3("a", key=lib.RP_KEY, secret=lib.RP_SECRET)
    # The server really enforces it: without the header rp is refused ...
    for call in (lambda **kw: rp.list_objects_v2(Bucket=src, **kw),
                 lambda **kw: rp.get_object(Bucket=src, Key="o/00001", **kw)):
        try:
            call()
            raise AssertionError("radosgw served a requester-pays bucket without the header")
        except ClientError as e:
            assert e.response["Error"]["Code"] in ("AccessDenied", "403"), e
        call(RequestPayer="requester")  # ... and with it, served.

    ctx.write_config(ctx.default_remotes()
                     + lib.remote_section("rpsrc", "a", key=lib.RP_KEY, secret=lib.RP_SECRET,
                                          extra={"requester_pays": "true"})
                     + lib.remote_section("rpnopay", "a", key=lib.RP_KEY, secret=lib.RP_SECRET))
    dst = ctx.bucket("b", "rp-dst")
    res = ctx.sync("rpsrc:" + src, "dst:" + dst, *MP, task="rp")
    assert res["failed"] == 0 and res["transferred"] == len(md5), res
    dc = lib.s3("b")
    lib.assert_same_keys(lib.list_all(dc, dst), md5)
    lib.assert_bytes(dc, dst, md5)

    # Control: the same user without requester_pays is refused.
    dst2 = ctx.bucket("b", "rp-dst2")
    rc, out, err = ctx.sync("rpnopay:" + src, "dst:" + dst2, *MP, task="nopay", check_exit=None,
                            json_out=False)
    assert rc != 0, "dth read a requester-pays bucket without requester_pays"
    assert lib.list_all(dc, dst2) == {}

    # The task's own requester_pays (--requester-pays; the console's wizard
    # sets it per task) on the remote that does not say it.
    res = ctx.sync("rpnopay:" + src, "dst:" + dst2, "--requester-pays", *MP, task="taskpays")
    assert res["failed"] == 0 and res["transferred"] == len(md5), res
    lib.assert_same_keys(lib.list_all(dc, dst2), md5)
    lib.assert_bytes(dc, dst2, md5)


def test_same_endpoint_uses_server_side_copy(ctx):
    c = lib.s3("a")
    src = ctx.bucket("a", "ssc-src")
    md5 = lib.put_objects(c, src, lib.small_objects("s/", 40, "ssc"))
    data = lib.det_bytes("ssc-big", 20 * MiB + 5)
    etag = lib.put_multipart(c, src, "s/big", data, 8 * MiB)
    md5["s/big"] = lib.md5hex(data)
    dst = ctx.bucket("a", "ssc-dst")  # same endpoint, another bucket
    res = ctx.sync("src:" + src, "src:" + dst)
    assert res["failed"] == 0 and res["transferred"] == 41, res
    rq = res["requests"]
    assert rq["copy"] > 0, "no CopyObject/UploadPartCopy requests: %s" % rq
    # The one GET allowed is GetObjectTagging for the multipart object (whose
    # tags UploadPartCopy does not carry); no object body is downloaded.
    assert rq["get"] <= 1, "objects were downloaded (%d GET) on a same-endpoint copy" % rq["get"]
    got = lib.list_all(c, dst)
    lib.assert_same_keys(got, md5)
    assert got["s/big"]["etag"] == etag, "ETag %s != source %s" % (got["s/big"]["etag"], etag)
    bad = [k for k in md5 if k != "s/big" and got[k]["etag"] != md5[k]]
    assert not bad, "wrong bytes for %s" % bad[:5]
    lib.assert_bytes(c, dst, {"s/big": md5["s/big"], "s/00001": md5["s/00001"]})
