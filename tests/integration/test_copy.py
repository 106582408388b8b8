"""Bulk copies between the two radosgw endpoints: many small objects, objects
around the multipart threshold, a 100 MiB multipart object; a second run that
copies nothing (checked with radosgw's own request counters); kill -9 in the
middle of a run, then a rerun that completes."""

import os
import signal
import time

import lib
from lib import MiB

THRESHOLD = 16 * MiB  # dth's default --multipart-threshold
N_SMALL = 2000


@lib.module_fixture
def bulk():
    """Source bucket on A: 2,000 small objects, three around the threshold
    (single PUTs), and 100 MiB uploaded in 10 MiB parts. Read-only."""
    c = lib.s3("a")
    b = lib.create_bucket("a", "bulk-src")
    objs = lib.small_objects("small/", N_SMALL, "bulk")
    md5 = lib.put_objects(c, b, objs, workers=24)
    sizes = {k: len(v) for k, v in objs.items()}
    for key, size in (("thr/minus1", THRESHOLD - 1), ("thr/exact", THRESHOLD), ("thr/plus1", THRESHOLD + 1)):
        data = lib.det_bytes(key, size)
        c.put_object(Bucket=b, Key=key, Body=data)
        md5[key], sizes[key] = lib.md5hex(data), size
    data = lib.det_bytes("big", 100 * MiB)
    big_etag = lib.put_multipart(c, b, "big/100MiB", data, 10 * MiB)
    assert big_etag == lib.multipart_etag(data, 10 * MiB), "radosgw gave an unexpected multipart ETag"
    md5["big/100MiB"], sizes["big/100MiB"] = lib.md5hex(data), len(data)
    return {"bucket": b, "md5": md5, "sizes": sizes, "big_etag": big_etag,
            "large": ["thr/minus1", "thr/exact", "thr/plus1", "big/100MiB"]}


@lib.module_fixture
def bulk_synced():
    """bulk copied A -> B once (the result is checked by test_copy_everything)."""
    src = bulk()
    fctx = lib.fixture_context("test_copy.bulk_synced")
    dst = lib.create_bucket("b", "bulk-dst")
    rc, out, err = fctx.sync("src:" + src["bucket"], "dst:" + dst, task="bulk", check_exit=None,
                             parse=False, timeout=600)
    return {"src": src, "dst": dst, "rc": rc, "out": out, "err": err, "state": fctx.state,
            "config": fctx.config, "task": "bulk"}


def check_copy(src, dst_bucket):
    """Every source object is at dst with the same bytes."""
    dc = lib.s3("b")
    got = lib.list_all(dc, dst_bucket)
    lib.assert_same_keys(got, src["md5"])
    bad = [k for k, v in got.items() if v["size"] != src["sizes"][k]]
    assert not bad, "sizes differ for %s" % bad[:5]
    # Small objects were single PUTs at the destination: radosgw's ETag is
    # the MD5 of the bytes it received.
    bad = [k for k in got if k.startswith("small/") and got[k]["etag"] != src["md5"][k]]
    assert not bad, "%d small objects have wrong bytes (ETag != MD5), e.g. %s" % (len(bad), bad[:5])
    # Spot-check small bodies by GET too, and every large object in full.
    sample = {k: src["md5"][k] for k in sorted(src["md5"])[::40] if k.startswith("small/")}
    sample.update({k: src["md5"][k] for k in src["large"]})
    lib.assert_bytes(dc, dst_bucket, sample)
    assert got["big/100MiB"]["etag"] == src["big_etag"], (
        "destination ETag %s != source ETag %s (multipart layout not repeated)" % (
            got["big/100MiB"]["etag"], src["big_etag"]))


def test_copy_everything(ctx):
    f = bulk_synced()
    ctx.last_stderr, ctx.last_cmd = f["err"], ["dth sync (fixture bulk_synced)"]
    assert f["rc"] == 0, "dth sync exited %d" % f["rc"]
    res = lib.parse_sync_json(f["out"])
    src = f["src"]
    assert res["failed"] == 0, "failed = %s" % res["failed"]
    assert res["transferred"] == len(src["md5"]), "transferred %s, expected %d" % (
        res["transferred"], len(src["md5"]))
    assert res["bytes"] == sum(src["sizes"].values()), "bytes %s, expected %d" % (
        res["bytes"], sum(src["sizes"].values()))
    check_copy(src, f["dst"])
    assert lib.multipart_uploads(lib.s3("b"), f["dst"]) == [], "unfinished multipart uploads left"


def test_second_run_copies_nothing(ctx):
    f = bulk_synced()
    assert f["rc"] == 0, "the first sync failed (see test_copy_everything)"
    ctx.state, ctx.config = f["state"], f["config"]
    src = f["src"]
    a0, b0 = lib.rgw_counters("a"), lib.rgw_counters("b")
    log0 = lib.rgw_log_size("a")
    res = ctx.sync("src:" + src["bucket"], "dst:" + f["dst"], task=f["task"])
    da = lib.counters_delta(a0, lib.rgw_counters("a"))
    db = lib.counters_delta(b0, lib.rgw_counters("b"))
    assert res["transferred"] == 0, "second run transferred %s objects" % res["transferred"]
    assert res["failed"] == 0 and res["bytes"] == 0, res
    rq = res["requests"]
    for kind in ("get", "put", "copy", "multipart", "head"):
        assert rq[kind] == 0, "second run made %d %s requests: %s" % (rq[kind], kind, rq)
    lists = res.get("source_requests", rq)["list"]
    pages = -(-len(src["md5"]) // 1000)
    assert lists >= pages, "only %d LIST requests for %d keys" % (lists, len(src["md5"]))
    # radosgw's own count: the source saw exactly those LIST requests and
    # nothing else; the destination was not read or written.
    if da["req"] != lists or da["get"] or da["put"]:
        seen = lib.rgw_requests_since("a", log0)
        others = [r for r in seen if "list-type=2" not in r]
        raise AssertionError("source radosgw counted %d requests (get %d, put %d) but dth reported "
                             "%d LIST; non-LIST requests in its log: %s" % (
                                 da["req"], da["get"], da["put"], lists, others[:10]))
    assert db["get"] == 0 and db["put"] == 0, "destination saw get %d put %d" % (db["get"], db["put"])


def test_kill9_mid_run_then_resume(ctx):
    src = bulk()
    dst = ctx.bucket("b", "kill-dst")
    dc = lib.s3("b")
    p = ctx.popen_sync("src:" + src["bucket"], "dst:" + dst, "--concurrency", "4", task="kill")
    t0 = time.monotonic()
    killed_while_running = False
    state = "timer"
    try:
        # Kill once a multipart upload has parts at the destination (so the
        # rerun has an upload to resume or clean up), else once many small
        # objects are there, else after 8 s.
        while time.monotonic() - t0 < 8:
            if p.poll() is not None:
                break
            uploads = lib.multipart_uploads(dc, dst)
            if any(dc.list_parts(Bucket=dst, Key=k, UploadId=u).get("Parts") for k, u in uploads):
                state = "mid-multipart"
                break
            if dc.list_objects_v2(Bucket=dst, MaxKeys=300).get("KeyCount", 0) >= 300:
                state = "300 objects copied"
                break
            time.sleep(0.05)
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            killed_while_running = True
        p.wait(timeout=30)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    assert killed_while_running, "dth exited (%s) before it could be killed" % p.returncode
    at_kill = len(lib.list_all(dc, dst))
    assert at_kill < len(src["md5"]), "everything was already copied when dth was killed"

    try:
        res = ctx.sync("src:" + src["bucket"], "dst:" + dst, task="kill", timeout=600)
        assert res["failed"] == 0, "failed = %s" % res["failed"]
        check_copy(src, dst)
        left = lib.multipart_uploads(dc, dst)
        assert left == [], "unfinished multipart uploads left at the destination: %s" % left
        # And a third run has nothing left to do.
        res = ctx.sync("src:" + src["bucket"], "dst:" + dst, task="kill")
        assert res["transferred"] == 0 and res["failed"] == 0, res
    except AssertionError as e:
        raise AssertionError("%s (dth was killed at: %s, %d objects copied)" % (e, state, at_kill)) from e


def test_kill9_resumes_recorded_parts(ctx):
    """A multipart copy killed half-way resumes from its recorded parts: the
    rerun uploads only the missing parts (no new CreateMultipartUpload), the
    destination ETag equals the source's, and nothing is left unfinished."""
    c = lib.s3("a")
    src = ctx.bucket("a", "resume-src")
    part = 5 * MiB
    nparts = 24
    data = lib.det_bytes("resume", part * nparts - 12345)
    etag = lib.put_multipart(c, src, "r/big", data, part)
    dst = ctx.bucket("b", "resume-dst")
    dc = lib.s3("b")
    p = ctx.popen_sync("src:" + src, "dst:" + dst, "--concurrency", "2", task="resume")
    done_at_kill = 0
    try:
        t0 = time.monotonic()
        while time.monotonic() - t0 < 30 and p.poll() is None:
            ups = lib.multipart_uploads(dc, dst)
            if ups:
                k, u = ups[0]
                done_at_kill = len(dc.list_parts(Bucket=dst, Key=k, UploadId=u).get("Parts", []))
                if done_at_kill >= 6:
                    break
            time.sleep(0.02)
        assert p.poll() is None, "dth finished before it could be killed"
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(timeout=30)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    assert 6 <= done_at_kill < nparts, "killed with %d of %d parts uploaded" % (done_at_kill, nparts)
    ups = lib.multipart_uploads(dc, dst)
    assert len(ups) == 1, "expected the interrupted upload at the destination: %s" % ups
    done_now = len(dc.list_parts(Bucket=dst, Key=ups[0][0], UploadId=ups[0][1]).get("Parts", []))

    res = ctx.sync("src:" + src, "dst:" + dst, task="resume")
    assert res["failed"] == 0 and res["transferred"] == 1, res
    # UploadPart for the missing parts and one Complete; no new Create.
    mp = res["destination_requests"]["multipart"]
    assert mp <= nparts - done_now + 1, (
        "%d multipart requests on the rerun, but only %d of %d parts were missing"
        % (mp, nparts - done_now, nparts))
    # Each 5 MiB part is read in ranges under the ceph preset's get_range_max
    # (test_ceph_reads_in_ranges), plus one more GET: the object's tags.
    per_part = -(-part // CEPH_GET_RANGE_MAX)
    assert res["source_requests"]["get"] <= (nparts - done_now) * per_part + 1, (
        "the rerun made %d GETs at the source, for %d missing parts (%d GETs each)"
        % (res["source_requests"]["get"], nparts - done_now, per_part))
    got = lib.head(dc, dst, "r/big")["ETag"].strip('"')
    assert got == etag.strip('"'), "destination ETag %s != source %s" % (got, etag)
    assert lib.get_md5(dc, dst, "r/big") == lib.md5hex(data), "wrong bytes after the resume"
    assert lib.multipart_uploads(dc, dst) == [], "unfinished uploads left behind"


# The ceph preset's get_range_max (dth.conf(5)): ranges under radosgw's 4 MiB
# stripe, in whole 64 KiB blocks.
CEPH_GET_RANGE_MAX = 4 * MiB - 64 * 1024


def _source_gets(ctx, src, key, task, env=None):
    """Copy src to a new bucket; return (destination, object GETs radosgw 'a'
    served for key, bytes it sent), from its own counters and access log."""
    dst = ctx.bucket("b", "ranges-dst")
    c0, log0 = lib.rgw_counters("a"), lib.rgw_log_size("a")
    res = ctx.sync("src:" + src, "dst:" + dst, task=task, env=env)
    assert res["failed"] == 0 and res["transferred"] == 1, res
    d = lib.counters_delta(c0, lib.rgw_counters("a"))
    reqs = lib.rgw_log_requests("a", log0, want=d["req"])
    gets = [r for r in reqs if r[0] == "GET" and r[1].split("?")[0] == "/%s/%s" % (src, key)
            and "?" not in r[1]]
    assert len(reqs) == d["req"], "radosgw counted %d requests, its log has %d" % (d["req"], len(reqs))
    return dst, len(gets), d["get_b"]


def test_ceph_reads_in_ranges(ctx):
    """From a ceph remote, a part longer than get_range_max is read in the
    fewest equal ranges under it (radosgw's own counters and log), the copy
    is byte-exact with the source's ETag, and get_range_max = 0 in the
    environment brings back one GET per part."""
    c = lib.s3("a")
    src = ctx.bucket("a", "ranges-src")
    part, nparts = 8 * MiB, 3
    data = lib.det_bytes("ranges", part * nparts - 4321)
    etag = lib.put_multipart(c, src, "obj", data, part).strip('"')
    dc = lib.s3("b")
    per_part = -(-part // CEPH_GET_RANGE_MAX)
    assert per_part == 3
    for env, want in ((None, nparts * per_part), ({"DTH_REMOTE_SRC_GET_RANGE_MAX": "0"}, nparts)):
        dst, gets, sent = _source_gets(ctx, src, "obj", "ranges%d" % want, env)
        assert gets == want, "radosgw served %d GETs of the object, expected %d (%s)" % (
            gets, want, env or "ceph preset")
        # radosgw's get_b counts a ranged GET's bytes one short (end - start)
        assert sent == len(data) - gets, "radosgw sent %d bytes in %d ranged GETs of a %d-byte object" % (
            sent, gets, len(data))
        assert lib.head(dc, dst, "obj")["ETag"].strip('"') == etag, "destination ETag differs"
        assert lib.get_md5(dc, dst, "obj") == lib.md5hex(data), "wrong bytes at the destination"


def _in_flight_run(ctx, px, src, dst, objs, *opts):
    """Copy src (holding objs and a multipart object) to dst through px (in
    front of B, every request delayed), then delete half of the small objects
    at the source and run again with --delete, and put them back; the most
    PUTs and DELETEs the proxy served at once, and the keys deleted."""
    px.configure(reset=True, strip=[src, dst], latency=0.3)
    res = ctx.sync("src:" + src, "dst:" + dst, *opts, task=dst)
    assert res["failed"] == 0 and res["transferred"] == 34, res
    gone = ["small/%03d" % i for i in range(0, 32, 2)]
    lib.s3("a").delete_objects(Bucket=src, Delete={"Objects": [{"Key": k} for k in gone]})
    res = ctx.sync("src:" + src, "dst:" + dst, "--delete", *opts, task=dst)
    assert res["failed"] == 0 and res["deleted"] == len(gone), res
    top = px.counters()["max_in_flight"]
    lib.put_objects(lib.s3("a"), src, {k: objs[k] for k in gone})
    return top, gone


def test_small_objects_overlap_more(ctx):
    """Objects under 1 MiB and deletes go up to --small-concurrency at once
    (default sixteen times --concurrency), larger ones and parts up to
    --concurrency; counted by a proxy in front of the destination that holds
    every request 0.3 s, so requests overlap as they would over a long path.
    Every object arrives whole, the deleted ones are gone."""
    c = lib.s3("a")
    src = ctx.bucket("a", "lanes-src")
    objs = {"small/%03d" % i: lib.det_bytes("lane%d" % i, 1000 + i) for i in range(32)}
    objs["big/2m"] = lib.det_bytes("lane-2m", 2 * MiB + 5)
    md5 = lib.put_objects(c, src, objs, workers=8)
    big = lib.det_bytes("lane-mp", 11 * MiB)
    lib.put_multipart(c, src, "big/mp", big, 5 * MiB)
    md5["big/mp"] = lib.md5hex(big)
    with lib.FaultProxy(ctx, lib.endpoint("b"), "proxy-dst") as px:
        ctx.write_config(lib.remote_section("src", "a")
                         + lib.remote_section("dst", "b", endpoint_url=px.url))
        dst = ctx.bucket("b", "lanes-dst")
        top, gone = _in_flight_run(ctx, px, src, dst, objs, "--concurrency", "2",
                                   "--small-concurrency", "8")
        assert 5 <= top["PUT"] <= 8, top
        assert 5 <= top["DELETE"] <= 8, top
        left = {k: v for k, v in md5.items() if k not in gone}
        assert sorted(lib.list_all(lib.s3("b"), dst)) == sorted(left)
        lib.assert_bytes(lib.s3("b"), dst, left)
        # the default: sixteen times --concurrency (32 in all: the 32 small
        # objects at once, and the 2 workers' PUTs of the big ones)
        dst2 = ctx.bucket("b", "lanes-dst2")
        top, _ = _in_flight_run(ctx, px, src, dst2, objs, "--concurrency", "2")
        assert 17 <= top["PUT"] <= 34, top
        # --small-concurrency below --concurrency: --concurrency
        dst3 = ctx.bucket("b", "lanes-dst3")
        top, _ = _in_flight_run(ctx, px, src, dst3, objs, "--concurrency", "2",
                                "--small-concurrency", "1")
        assert top["PUT"] <= 2 and top["DELETE"] <= 2, top
