"""What a copied object keeps: awkward keys, headers, user metadata and tags,
and the multipart layout (so the destination ETag equals the source ETag)."""

import datetime

import lib
from lib import MiB

SPECIAL_KEYS = [
    "with space/a b  c.txt",
    "unicode/\u00fcn\u00efc\u00f8d\u00e9 \u65e5\u672c\u8a9e \u0416.txt",
    "plus+sign+",
    "percent%41%2F%zz%",
    "pct%20x",
    "punct&=?#;,.txt",
    "sub-delims!'()*~$@[]{}^`|",
    "dir/trailing/",
    "dir/trailing/child",
    "tab-free\\backslash",
    "long/" + "k" * (1024 - len("long/")),  # 1,024 bytes, the S3 maximum
]
assert len(SPECIAL_KEYS[-1].encode()) == 1024


def test_special_keys(ctx):
    c = lib.s3("a")
    src = ctx.bucket("a", "keys-src")
    objs = {k: (b"" if k.endswith("/") else ("body of %s" % k).encode()) for k in SPECIAL_KEYS}
    md5 = lib.put_objects(c, src, objs)
    # One awkward key copied as a multipart upload too (key in UploadPart
    # and CompleteMultipartUpload query strings).
    mp_key = "multi part/\u00fc+%&=?#.bin"
    data = lib.det_bytes("mp-key", 6 * MiB + 3)
    c.put_object(Bucket=src, Key=mp_key, Body=data)
    md5[mp_key] = lib.md5hex(data)
    assert lib.list_all(c, src).keys() == md5.keys(), "radosgw did not store the keys as given"

    dst = ctx.bucket("b", "keys-dst")
    res = ctx.sync("src:" + src, "dst:" + dst, "--multipart-threshold", "5M", "--part-size", "5M")
    assert res["failed"] == 0 and res["transferred"] == len(md5), res
    got = lib.list_all(lib.s3("b"), dst)
    lib.assert_same_keys(got, md5)
    lib.assert_bytes(lib.s3("b"), dst, md5)
    for k in SPECIAL_KEYS:
        assert got[k]["etag"] == md5[k], "ETag of %r: %s != %s" % (k, got[k]["etag"], md5[k])


META = {
    "ContentType": "text/x-dth-test; charset=utf-8",
    "ContentEncoding": "gzip",
    "ContentLanguage": "de-CH",
    "ContentDisposition": 'attachment; filename="a b.txt"',
    "CacheControl": "max-age=3600, public",
    "Expires": datetime.datetime(2031, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
    "Metadata": {"color": "blue", "mixed-case": "Some Value", "empty-ish": "-"},
}
TAGGING = "project=dth&stage=two%20words&n=1"
TAGS = {"project": "dth", "stage": "two words", "n": "1"}
HEADERS = {  # header -> expected value
    "content-type": "text/x-dth-test; charset=utf-8",
    "content-encoding": "gzip",
    "content-language": "de-CH",
    "content-disposition": 'attachment; filename="a b.txt"',
    "cache-control": "max-age=3600, public",
    "expires": "Thu, 02 Jan 2031 03:04:05 GMT",
}


def _tags(client, bucket, key):
    # radosgw answers an empty body (no TagSet) for objects whose tags were
    # given to CreateMultipartUpload: it has dropped them.
    r = client.get_object_tagging(Bucket=bucket, Key=key)
    return {t["Key"]: t["Value"] for t in r.get("TagSet", [])}


def _seed_meta(ctx):
    c = lib.s3("a")
    src = ctx.bucket("a", "meta-src")
    small = b"metadata test body"
    c.put_object(Bucket=src, Key="meta/small", Body=small, Tagging=TAGGING, **META)
    big = lib.det_bytes("meta-big", 11 * MiB)
    lib.put_multipart(c, src, "meta/multipart", big, 5 * MiB, **META)
    # radosgw 16 drops the Tagging header of CreateMultipartUpload (and then
    # answers GetObjectTagging with an empty body): tag the object afterwards.
    c.put_object_tagging(Bucket=src, Key="meta/multipart",
                         Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in TAGS.items()]})
    c.put_object(Bucket=src, Key="meta/plain", Body=b"no metadata")
    for k in ("meta/small", "meta/multipart"):
        assert _tags(c, src, k) == TAGS, "radosgw stored tags %r" % _tags(c, src, k)
        h = lib.head(c, src, k)["ResponseMetadata"]["HTTPHeaders"]
        for name, want in HEADERS.items():
            assert h.get(name) == want, "radosgw stored %s = %r" % (name, h.get(name))
    md5 = {"meta/small": lib.md5hex(small), "meta/multipart": lib.md5hex(big),
           "meta/plain": lib.md5hex(b"no metadata")}
    return src, md5


def test_metadata_and_tags_round_trip(ctx):
    src, md5 = _seed_meta(ctx)
    dst = ctx.bucket("b", "meta-dst")
    # A low threshold so the small objects go by PUT and the 11 MiB one by
    # multipart (metadata must be set at CreateMultipartUpload).
    res = ctx.sync("src:" + src, "dst:" + dst, "--multipart-threshold", "5M")
    assert res["failed"] == 0 and res["transferred"] == 3, res
    sc, dc = lib.s3("a"), lib.s3("b")
    lib.assert_bytes(dc, dst, md5)
    for k in ("meta/small", "meta/multipart"):
        sh, dh = lib.head(sc, src, k), lib.head(dc, dst, k)
        hdrs = dh["ResponseMetadata"]["HTTPHeaders"]
        for name, want in HEADERS.items():
            assert hdrs.get(name) == want, "%s: %s is %r, expected %r" % (k, name, hdrs.get(name), want)
        assert dh["Metadata"] == sh["Metadata"] == META["Metadata"], "%s: user metadata %r, expected %r" % (
            k, dh["Metadata"], META["Metadata"])
        assert _tags(dc, dst, k) == TAGS, "%s: tags %r, expected %r" % (k, _tags(dc, dst, k), TAGS)
    dh = lib.head(dc, dst, "meta/plain")
    assert dh["Metadata"] == {}, "meta/plain got metadata %r" % dh["Metadata"]
    assert _tags(dc, dst, "meta/plain") == {}, "meta/plain got tags"


def test_no_metadata(ctx):
    src, md5 = _seed_meta(ctx)
    dst = ctx.bucket("b", "nometa-dst")
    res = ctx.sync("src:" + src, "dst:" + dst, "--no-metadata", "--multipart-threshold", "5M")
    assert res["failed"] == 0 and res["transferred"] == 3, res
    dc = lib.s3("b")
    lib.assert_bytes(dc, dst, md5)
    for k in ("meta/small", "meta/multipart"):
        dh = lib.head(dc, dst, k)
        hdrs = dh["ResponseMetadata"]["HTTPHeaders"]
        assert dh["Metadata"] == {}, "%s: user metadata copied with --no-metadata: %r" % (k, dh["Metadata"])
        assert _tags(dc, dst, k) == {}, "%s: tags copied with --no-metadata" % k
        for name in ("content-encoding", "content-language", "content-disposition", "cache-control"):
            assert name not in hdrs, "%s: %s copied with --no-metadata" % (k, name)


@lib.module_fixture
def layouts():
    """Objects uploaded in 5, 8 and 16 MiB parts (3 parts each, a short
    last part), and a 20 MiB single PUT."""
    c = lib.s3("a")
    b = lib.create_bucket("a", "layout-src")
    out = {"bucket": b, "md5": {}, "etag": {}}
    for key, part, size in (("p5", 5 * MiB, 2 * 5 * MiB + MiB + 123),
                            ("p8", 8 * MiB, 2 * 8 * MiB + 2 * MiB + 7),
                            ("p16", 16 * MiB, 2 * 16 * MiB + 3 * MiB + 1)):
        data = lib.det_bytes(key, size)
        etag = lib.put_multipart(c, b, key, data, part)
        assert etag == lib.multipart_etag(data, part) and etag.endswith("-3"), etag
        out["md5"][key], out["etag"][key] = lib.md5hex(data), etag
    data = lib.det_bytes("single", 20 * MiB)
    c.put_object(Bucket=b, Key="single20", Body=data)
    out["md5"]["single20"] = lib.md5hex(data)
    return out


def test_multipart_layout_keeps_etag(ctx):
    src = layouts()
    dst = ctx.bucket("b", "layout-dst")
    # dth is not told the part sizes: it finds them from the source.
    res = ctx.sync("src:" + src["bucket"], "dst:" + dst)
    assert res["failed"] == 0 and res["transferred"] == 4, res
    dc = lib.s3("b")
    got = lib.list_all(dc, dst)
    lib.assert_same_keys(got, src["md5"])
    for key, etag in src["etag"].items():
        assert got[key]["etag"] == etag, "%s: destination ETag %s != source ETag %s" % (
            key, got[key]["etag"], etag)
    lib.assert_bytes(dc, dst, src["md5"])
    assert lib.multipart_uploads(dc, dst) == []
