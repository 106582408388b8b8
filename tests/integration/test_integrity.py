"""Copies that keep the source's ETag, and memory bounded by --memory-limit.

Every destination ETag and body is read back with boto3 from radosgw; peak
memory is the kernel's count for the dth process (wait4), not dth's own."""

import lib

MiB = lib.MiB


def test_single_part_sources_keep_their_etag(ctx):
    """Single-part sources of 16 MiB, 16 MiB + 1 and 40 MiB (the last larger
    than a worker's share of the default budget, so it is streamed) arrive as
    single parts with the source's MD5 ETag; they used to arrive as md5-2 and
    md5-3."""
    c = lib.s3("a")
    src = ctx.bucket("a", "single-src")
    objs = {"s/16m": lib.det_bytes("s16", 16 * MiB), "s/16m1": lib.det_bytes("s161", 16 * MiB + 1),
            "s/40m": lib.det_bytes("s40", 40 * MiB + 7), "s/small": b"x" * 100}
    md5 = lib.put_objects(c, src, objs, workers=4)
    dst = ctx.bucket("b", "single-dst")
    res = ctx.sync("src:" + src, "dst:" + dst)
    assert res["transferred"] == 4 and res["failed"] == 0, res
    assert res["bytes"] == sum(len(v) for v in objs.values()), res
    got = lib.list_all(lib.s3("b"), dst)
    for k, want in md5.items():
        assert got[k]["etag"] == want, "%s: etag %s, source md5 %s" % (k, got[k]["etag"], want)
    lib.assert_bytes(lib.s3("b"), dst, md5)
    # Streamed: the 40 MiB body never sat in memory whole.
    assert res["memory_peak"] < 40 * MiB, res["memory_peak"]


def test_parallel_parts_option(ctx):
    """--parallel-parts: a big single-part source goes in 8 MiB parts."""
    c = lib.s3("a")
    src = ctx.bucket("a", "pp-src")
    data = lib.det_bytes("pp", 20 * MiB + 3)
    md5 = lib.put_objects(c, src, {"big": data})
    dst = ctx.bucket("b", "pp-dst")
    res = ctx.sync("src:" + src, "dst:" + dst, "--parallel-parts")
    assert res["transferred"] == 1 and res["failed"] == 0, res
    got = lib.list_all(lib.s3("b"), dst)
    assert got["big"]["etag"] == lib.multipart_etag(data, 8 * MiB), got
    lib.assert_bytes(lib.s3("b"), dst, md5)


def test_memory_limit_with_huge_parts(ctx):
    """A source in 128 MiB parts copied with --memory-limit 64M: the parts are
    streamed, the ETag is kept, and the process's peak RSS stays under the
    limit plus a fixed overhead."""
    c = lib.s3("a")
    src = ctx.bucket("a", "huge-src")
    data = lib.det_bytes("huge", 2 * 128 * MiB + MiB)
    etag = lib.put_multipart(c, src, "huge", data, 128 * MiB, workers=2)
    want_md5 = lib.md5hex(data)
    del data
    dst = ctx.bucket("b", "huge-dst")
    out, err, rss = ctx.run_dth_rss(["sync", "--config", ctx.config, "--state", ctx.state,
                                     "--task", "t", "--json", "--memory-limit", "64M",
                                     "--concurrency", "4", "src:" + src, "dst:" + dst])
    res = lib.parse_sync_json(out)
    assert res["transferred"] == 1 and res["failed"] == 0, res
    assert res["bytes"] == 2 * 128 * MiB + MiB, res
    got = lib.list_all(lib.s3("b"), dst)
    assert got["huge"]["etag"] == etag, "etag %s, source %s" % (got["huge"]["etag"], etag)
    assert lib.get_md5(lib.s3("b"), dst, "huge") == want_md5
    assert res["memory_peak"] <= 64 * MiB, res["memory_peak"]
    overhead = 48 * MiB  # code, libraries, curl and TLS buffers, threads
    assert rss < 64 * MiB + overhead, "peak RSS %.1f MiB with --memory-limit 64M" % (rss / MiB)
