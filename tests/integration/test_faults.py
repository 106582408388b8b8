"""dth against bad servers: tests/harness/faultproxy.py between dth and the
real servers (radosgw A and B, the source and destination registries).

- test_proxy_*: the proxy itself (transparent when told nothing, each fault
  what it says, decisions reproducible).
- test_mixed_sync_under_faults: a mixed 5,000-object sync (small objects,
  multipart ones of 20-40 MiB in several layouts, metadata and content
  types, odd key characters) under 10 % 5xx (500, 503 SlowDown, 429 with
  Retry-After), 2 % connection resets (before the answer, after the headers,
  mid-body), 1 % truncated bodies and one stall past dth's 60 s stall
  timeout (not settable: http_engine_opts.stall_timeout_s has no config
  key); then a second run with --delete after source deletes, changes and
  additions. The destination must equal the source (boto3 straight against
  radosgw: keys, sizes, ETags, MD5 of every body, content types, user
  metadata), dth's --json counts must be exact, `dth manifest verify` must
  pass, and the proxies' counters must show every fault kind.
- test_image_sync_under_faults: the same for dth image sync between the
  registries; every manifest and blob is checked with skopeo and digests.
- test_small_lanes_narrow_when_throttled: 503 SlowDown on 25 % of small
  PUTs halves the small-object lanes dth lets in (it keeps all of them
  unthrottled, and the proxy sees them at once); every object arrives intact.
- test_*wrong_content_length: answers whose Content-Length lies (short with
  the body cut to match, or long): S3 objects and multipart answers, the
  source listing, registry blobs and manifests. A retry must repair them.
- test_hostile_*: one hostile listing (or lying part-size answer) each,
  with a destination where --delete would be tempting: dth must stop with
  an error naming the problem, radosgw must see ZERO deletes (its own
  access log, not dth's output), and the destination stays unchanged.

Figures for the README are printed as "# figures ..." lines.
"""

import hashlib
import json
import random
import re
import time

import lib

MiB = lib.MiB

# The mix: 10 % 5xx, 2 % resets, 1 % truncated bodies (rates per
# request; the body kinds per answer with a body).
MIXED_RATES = {
    "err500": 0.04, "err503": 0.03, "err429": 0.03,
    "reset_before": 0.007, "reset_headers": 0.007, "reset_body": 0.006,
    "truncate": 0.01,
}
# Wrong Content-Lengths (their own tests): a short one with the body cut to
# match (a complete-looking answer), a long one (the peer closes early).
CL_RATES = {"cl_short": 0.02, "cl_long": 0.02}
# every kind at least once per proxy, even where chance would not have it
ENSURE = {k: None for k in MIXED_RATES}
OBJECT_GET = r"^GET /[^/?]+/[^?]+$"
ALL_KINDS = ("err500", "err503", "err429", "reset_before", "reset_headers", "reset_body",
             "truncate", "cl_short", "cl_long", "stall")


def _figures(what, **kv):
    print("# figures %s %s" % (what, json.dumps(kv, sort_keys=True)), flush=True)


def _sum_injected(*proxies):
    tot = {k: 0 for k in ALL_KINDS}
    for p in proxies:
        for k, v in p.counters()["injected"].items():
            tot[k] = tot.get(k, 0) + v
    return tot


def _drop_buckets(*buckets):
    """Empty and remove (which, bucket) pairs straight at radosgw, to give
    memstore its RAM back (after a passing test; a failing one keeps them)."""
    for which, bucket in buckets:
        c = lib.s3(which)
        while True:
            keys = [{"Key": k} for k in list(lib.list_all(c, bucket))[:1000]]
            if not keys:
                break
            c.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
        for key, uid in lib.multipart_uploads(c, bucket):
            c.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=uid)
        c.delete_bucket(Bucket=bucket)


# --------------------------------------------------------------------------
# reading back a bucket completely, straight from radosgw


def _object_record(client, bucket, key):
    """(md5 of the body, content type, user metadata, size) from one GET."""
    r = client.get_object(Bucket=bucket, Key=key)
    h = hashlib.md5()
    n = 0
    for chunk in iter(lambda: r["Body"].read(MiB), b""):
        h.update(chunk)
        n += len(chunk)
    return h.hexdigest(), r.get("ContentType"), r.get("Metadata") or {}, n


def _snapshot(which, bucket, workers=24):
    """{key: (size, etag, md5, content type, metadata)} of a bucket."""
    client = lib.s3(which)
    listing = lib.list_all(client, bucket)

    def one(key):
        md5, ctype, meta, n = _object_record(client, bucket, key)
        return key, (listing[key]["size"], listing[key]["etag"], md5, ctype,
                     tuple(sorted(meta.items())), n)

    return dict(lib._pool_map(one, sorted(listing), workers))


def _assert_same_buckets(src, dst):
    s, d = _snapshot("a", src), _snapshot("b", dst)
    lib.assert_same_keys(d, s)
    bad = []
    for k in sorted(s):
        (ss, se, sm, sc, smeta, sn), (ds, de, dm, dc, dmeta, dn) = s[k], d[k]
        if ss != sn:
            bad.append("%r: the source answered %d bytes, listed %d" % (k, sn, ss))
        if (ds, dn) != (ss, ss):
            bad.append("%r: size %d (body %d), source %d" % (k, ds, dn, ss))
        if de != se:
            bad.append("%r: etag %s, source %s" % (k, de, se))
        if dm != sm:
            bad.append("%r: md5 %s, source %s" % (k, dm, sm))
        if dc != sc:
            bad.append("%r: content-type %r, source %r" % (k, dc, sc))
        if dmeta != smeta:
            bad.append("%r: metadata %r, source %r" % (k, dmeta, smeta))
    assert not bad, "%d of %d objects differ: %s" % (len(bad), len(s), "; ".join(bad[:10]))
    return len(s), sum(v[0] for v in s.values())


def _assert_mirror(src, dst, model, workers=32):
    """The destination equals the source: the listings agree (keys, sizes,
    ETags), and every destination body, content type and user metadata is
    what the source was given ({key: (md5, content type or None, metadata)});
    one source object in ten is read back too, to check the model. Cheaper
    than _assert_same_buckets (one GET per object)."""
    sl, dl = lib.list_all(lib.s3("a"), src), lib.list_all(lib.s3("b"), dst)
    lib.assert_same_keys(sl, model, "source")
    lib.assert_same_keys(dl, sl)
    bad = ["%r: size/etag %s/%s, source %s/%s" % (k, dl[k]["size"], dl[k]["etag"], sl[k]["size"],
                                                  sl[k]["etag"])
           for k in sorted(sl) if (dl[k]["size"], dl[k]["etag"]) != (sl[k]["size"], sl[k]["etag"])]
    default_ctype = [None]

    def check(which, bucket, key):
        md5, ctype, meta, n = _object_record(lib.s3(which), bucket, key)
        want_md5, want_ctype, want_meta = model[key]
        if want_ctype is None:
            want_ctype = default_ctype[0] or ctype
        out = []
        if (md5, n) != (want_md5, sl[key]["size"]):
            out.append("%s %r: md5 %s (%d bytes), expected %s" % (which, key, md5, n, want_md5))
        if ctype != want_ctype:
            out.append("%s %r: content-type %r, expected %r" % (which, key, ctype, want_ctype))
        if meta != want_meta:
            out.append("%s %r: metadata %r, expected %r" % (which, key, meta, want_meta))
        return out

    plain = sorted(k for k in sl if model[k][1] is None)
    if plain:  # what the source answers for objects put without a type
        default_ctype[0] = lib.head(lib.s3("a"), src, plain[0])["ContentType"]
    keys = sorted(sl)
    jobs = [("a", src, k) for k in keys[::10]] + [("b", dst, k) for k in keys]
    for out in lib._pool_map(lambda j: check(*j), jobs, workers):
        bad += out
    assert not bad, "%d differences: %s" % (len(bad), "; ".join(bad[:10]))
    return len(keys), sum(v["size"] for v in sl.values())


# --------------------------------------------------------------------------
# the proxy itself: transparent when told nothing, each fault what it says


def test_proxy_transparent_and_faults_as_described(ctx):
    import botocore.exceptions as bex
    bucket = ctx.bucket("a", "proxy-self")
    with lib.FaultProxy(ctx, lib.endpoint("a"), "proxy-self") as px:
        c = lib.boto3.client("s3", endpoint_url=px.url, aws_access_key_id=lib.RGW_KEY,
                             aws_secret_access_key=lib.RGW_SECRET, region_name="us-east-1",
                             config=lib._config(retries={"total_max_attempts": 1, "mode": "standard"},
                                                read_timeout=3))
        # SigV4 holds through it (Host kept), 16 MiB parts stream both ways
        data = lib.det_bytes("proxy-self", 40 * MiB + 1)
        etag = lib.put_multipart(c, bucket, "big", data, 16 * MiB)
        assert etag == lib.multipart_etag(data, 16 * MiB), etag
        assert c.get_object(Bucket=bucket, Key="big")["Body"].read() == data
        lib.put_objects(c, bucket, {"k%03d" % i: b"x" * i for i in range(1, 60)})
        assert len(lib.list_all(c, bucket)) == 60
        assert px.counters()["injected_total"] == 0
        assert px.peak_rss_mib() < 80, px.peak_rss_mib()

        want = {"err500": "InternalError", "err503": "SlowDown", "err429": "TooManyRequests",
                "reset_before": "closed before|reset", "reset_headers": "reset",
                "reset_body": "reset", "truncate": "IncompleteRead", "cl_long": "IncompleteRead",
                "stall": "timeout|timed out"}
        for kind, words in want.items():
            px.configure(rates={kind: 1.0}, stall_seconds=10)
            before = px.counters()["injected"][kind]
            try:
                got = c.get_object(Bucket=bucket, Key="k050")["Body"].read()
                raise AssertionError("%s: no error, %d bytes" % (kind, len(got)))
            except (bex.BotoCoreError, bex.ClientError) as e:
                assert re.search(words, str(e), re.I), (kind, str(e)[:200])
                if kind == "err503":
                    h = e.response["ResponseMetadata"]["HTTPHeaders"]
                    assert h.get("retry-after") == "1", h
            assert px.counters()["injected"][kind] > before, kind
        # a short Content-Length: a complete-looking answer, fewer bytes
        px.configure(rates={"cl_short": 1.0})
        got = c.get_object(Bucket=bucket, Key="k050")["Body"].read()
        assert len(got) < 50, len(got)
        # decisions are a function of (seed, request, occurrence): reproducible
        seen = []
        for _ in range(2):
            px.configure(seed=5, rates={"err500": 0.5})
            px.reset()
            outcome = []
            for i in range(1, 40):
                try:
                    c.head_object(Bucket=bucket, Key="k%03d" % i)
                    outcome.append(0)
                except bex.ClientError:
                    outcome.append(1)
            seen.append(outcome)
        assert seen[0] == seen[1] and 0 < sum(seen[0]) < len(seen[0]), seen
    _drop_buckets(("a", bucket))


# --------------------------------------------------------------------------
# a. a mixed 5,000-object sync under faults

N_OBJECTS = 5000
CTYPES = ("text/plain", "application/json", "image/png", "application/x-tar; charset=binary")
# (key, size, part sizes): multipart uploads with boto3, in several layouts
MULTIPART = (("big/even-20m", 20 * MiB, [5 * MiB] * 4),
             ("big/uneven-24m", 24 * MiB + 12345, [8 * MiB] * 3 + [12345]),
             ("big/16m-parts-33m", 33 * MiB + 7, [16 * MiB, 16 * MiB, MiB + 7]),
             ("big/irregular-40m", 40 * MiB, [15 * MiB, 10 * MiB, 15 * MiB]))
# the second run: one changed in another layout, one new, the rest as they were
MULTIPART_V2 = (("big/uneven-24m", 24 * MiB, [10 * MiB, 10 * MiB, 4 * MiB]),
                ("big/new-21m", 21 * MiB, [7 * MiB] * 3)) + MULTIPART[2:]
MEDIUM = (("medium/1m", MiB), ("medium/3m", 3 * MiB + 1), ("medium/6m", 6 * MiB),
          ("medium/9m", 9 * MiB - 3), ("medium/12m", 12 * MiB), ("medium/15m", 15 * MiB + 99))


def _small_key(i):
    r = i % 10
    if r == 7:
        return "odd chars/sp ace+plus=eq,%05d" % i
    if r == 8:
        return "unicode/\u00fcber-\u65e5\u672c-%05d" % i
    return "small/d%02d/obj-%05d" % (i % 37, i)


def _small_put(i, version=0):
    """(key, body, extra put arguments) of small object i."""
    rnd = random.Random("faults-mixed-%d-%d" % (i, version))
    size = 0 if i % 500 == 0 else rnd.randrange(1, 4000)
    body = rnd.randbytes(size)
    extra = {}
    if i % 10 in (1, 4):
        extra["ContentType"] = CTYPES[i % len(CTYPES)]
    if i % 10 in (4, 5):
        extra["Metadata"] = {"owner": "user-%d" % (i % 13), "seq": str(i), "v": str(version)}
    return _small_key(i), body, extra


def _put_multipart(client, bucket, key, seed, parts, **extra):
    data = lib.det_bytes(seed, sum(parts))
    up = client.create_multipart_upload(Bucket=bucket, Key=key, **extra)
    uid, off, done = up["UploadId"], 0, []
    for n, size in enumerate(parts, 1):
        r = client.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=n,
                               Body=data[off:off + size])
        done.append({"PartNumber": n, "ETag": r["ETag"]})
        off += size
    client.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=uid,
                                     MultipartUpload={"Parts": done})


def _model(body_md5, extra):
    return body_md5, extra.get("ContentType"), dict(extra.get("Metadata") or {})


def _seed_mixed(bucket, model):
    """Put the source objects; model gets {key: (md5, content type, metadata)}."""
    client = lib.s3("a")
    n_small = N_OBJECTS - len(MULTIPART) - len(MEDIUM)
    objs = {}
    for i in range(n_small):
        key, body, extra = _small_put(i)
        objs[key] = (body, extra)
        model[key] = _model(lib.md5hex(body), extra)
    lib.put_objects(client, bucket, objs, workers=32)
    for key, size in MEDIUM:
        extra = {"ContentType": "application/octet-stream", "Metadata": {"kind": "medium"}}
        body = lib.det_bytes(key, size)
        client.put_object(Bucket=bucket, Key=key, Body=body, **extra)
        model[key] = _model(lib.md5hex(body), extra)
    for key, size, parts in MULTIPART:
        assert sum(parts) == size
        extra = {"ContentType": "application/x-big",
                 "Metadata": {"kind": "multipart", "parts": str(len(parts))}}
        _put_multipart(client, bucket, key, key, parts, **extra)
        model[key] = _model(lib.md5hex(lib.det_bytes(key, size)), extra)
    return n_small


def _mutate_mixed(bucket, n_small, model):
    """Delete, change and add source objects (model follows); returns
    (changed+added, deleted)."""
    client = lib.s3("a")
    rnd = random.Random("faults-mutate")
    idx = list(range(1, n_small))
    rnd.shuffle(idx)
    gone, changed = idx[:250], idx[250:400]
    dels = [_small_key(i) for i in gone] + ["big/even-20m", "medium/6m"]
    lib._pool_map(lambda k: client.delete_object(Bucket=bucket, Key=k), dels, 16)
    for k in dels:
        del model[k]
    objs = {}
    for i in changed:
        key, body, extra = _small_put(i, version=1)
        objs[key] = (body, extra)
    for j in range(100):
        i = n_small + 1000 + j  # new keys
        key, body, extra = _small_put(i, version=2)
        objs[key] = (body, extra)
    lib.put_objects(client, bucket, objs, workers=32)
    for key, (body, extra) in objs.items():
        model[key] = _model(lib.md5hex(body), extra)
    # a changed multipart object, in another layout, and a new one
    for key, size, parts in MULTIPART_V2[:2]:
        extra = {"ContentType": "application/x-big2", "Metadata": {"kind": "changed or new"}}
        _put_multipart(client, bucket, key, "v2-" + key, parts, **extra)
        model[key] = _model(lib.md5hex(lib.det_bytes("v2-" + key, size)), extra)
    return len(objs) + 2, len(dels)


def _layouts(bucket, multipart):
    """Part layouts for the proxy to tell on HEAD ?partNumber=N, as AWS would
    (radosgw 16 ignores partNumber, so an irregular layout could not be
    repeated)."""
    return {"%s/%s" % (bucket, key): _layout(parts) for key, _, parts in multipart}


def _layout(sizes):
    """A faultproxy part_sizes rule: part N has sizes[N-1] bytes."""
    d = {str(i): s for i, s in enumerate(sizes, 1)}
    d["count"] = len(sizes)
    return d


def _s3_proxies(ctx, seed, src_bucket, dst_bucket):
    pa = lib.FaultProxy(ctx, lib.endpoint("a"), "proxy-src").start()
    try:
        pb = lib.FaultProxy(ctx, lib.endpoint("b"), "proxy-dst").start()
    except BaseException:
        pa.stop()
        raise
    for p in (pa, pb):
        p.configure(seed=seed, strip=[src_bucket, dst_bucket])
    ctx.write_config(lib.remote_section("src", "a", endpoint_url=pa.url)
                     + lib.remote_section("dst", "b", endpoint_url=pb.url))
    return pa, pb


def test_mixed_sync_under_faults(ctx):
    t0 = time.monotonic()
    src, dst = ctx.bucket("a", "mixsrc"), ctx.bucket("b", "mixdst")
    model = {}
    n_small = _seed_mixed(src, model)
    t_seeded = time.monotonic()
    t_verify = 0.0
    pa, pb = _s3_proxies(ctx, 8, src, dst)
    try:
        # The stall costs one worker dth's 60 s stall timeout (not settable):
        # once, at the source, on the first object GET.
        pa.configure(seed=8, strip=[src, dst], rates=MIXED_RATES, stall_seconds=120,
                     ensure=dict(ENSURE, stall=OBJECT_GET), part_sizes=_layouts(src, MULTIPART))
        pb.configure(seed=9, strip=[src, dst], rates=MIXED_RATES, ensure=ENSURE)
        res = ctx.sync("src:" + src, "dst:" + dst, timeout=900)
        assert (res["transferred"], res["failed"], res["deleted"]) == (N_OBJECTS, 0, 0), res
        t_run1 = time.monotonic()
        inj1 = _sum_injected(pa, pb)
        req1 = pa.counters()["requests"] + pb.counters()["requests"]
        n, nbytes = _assert_mirror(src, dst, model)
        t_verify += time.monotonic() - t_run1
        assert n == N_OBJECTS, n

        # second run: source deletes, changes and additions, with --delete
        copies, dels = _mutate_mixed(src, n_small, model)
        for p in (pa, pb):
            p.reset()
        pa.configure(seed=10, strip=[src, dst], rates=MIXED_RATES,
                     part_sizes=_layouts(src, MULTIPART_V2))
        pb.configure(seed=11, strip=[src, dst], rates=MIXED_RATES)
        t_run2s = time.monotonic()
        res2 = ctx.sync("src:" + src, "dst:" + dst, "--delete", timeout=900)
        t_run2 = time.monotonic()
        assert (res2["transferred"], res2["failed"], res2["deleted"]) == (copies, 0, dels), res2
        inj2 = _sum_injected(pa, pb)
        req2 = pa.counters()["requests"] + pb.counters()["requests"]
        n2, nbytes2 = _assert_mirror(src, dst, model)
        t_verify += time.monotonic() - t_run2
        assert n2 == N_OBJECTS - dels + 101, n2
        # the proxies streamed the 5-16 MiB parts, never held one whole
        rss = max(pa.peak_rss_mib(), pb.peak_rss_mib())
    finally:
        pa.stop()
        pb.stop()

    # the manifest agrees with the destination (HEAD of every done object),
    # asked straight of radosgw
    ctx.write_config()
    ctx.manifest("verify", "t", timeout=600)
    total = {k: inj1.get(k, 0) + inj2.get(k, 0) for k in ALL_KINDS}
    missing = [k for k in list(MIXED_RATES) + ["stall"] if total[k] == 0]
    assert not missing, "fault kinds never injected: %s (%s)" % (missing, total)
    assert rss < 80, "a proxy's peak RSS was %.0f MiB" % rss
    _drop_buckets(("a", src), ("b", dst))
    _figures("mixed_sync", proxy_peak_rss_mib=round(rss), objects=N_OBJECTS, bytes=nbytes, run1_requests=req1,
             run1_injected=inj1, run1_seconds=round(t_run1 - t_seeded, 1),
             run2_copied=copies, run2_deleted=dels, run2_requests=req2, run2_injected=inj2,
             run2_seconds=round(t_run2 - t_run2s, 1), seed_seconds=round(t_seeded - t0, 1),
             verify_seconds=round(t_verify, 1), objects_verified=n + n2,
             bytes_verified=nbytes + nbytes2, test_seconds=round(time.monotonic() - t0, 1))


# --------------------------------------------------------------------------
# b. an image sync under faults

N_IMAGES = 60


def _make_images():
    """N_IMAGES small images (two layers, one shared) and two with a 20 MiB
    layer on the source registry; returns their refs."""
    import test_image_sync as tis
    refs = []
    shared = lib.det_bytes("faults-shared-layer", 150 * 1024)
    for i in range(N_IMAGES):
        repo = "faults/img%02d" % i
        own = lib.det_bytes("faults-own-%d" % i, 2000 + 997 * i)
        cfg = json.dumps({"architecture": "amd64", "os": "linux", "n": i,
                          "rootfs": {"type": "layers"}}).encode()
        tis._push_blob(repo, shared)
        _push_image_layers(repo, "v1", [shared, own], cfg)
        refs.append(repo + ":v1")
    for i in range(2):
        repo = "faults/big%d" % i
        layer = lib.det_bytes("faults-big-%d" % i, 20 * MiB + 4321 * i)
        cfg = json.dumps({"architecture": "amd64", "os": "linux", "big": i,
                          "rootfs": {"type": "layers"}}).encode()
        _push_image_layers(repo, "v1", [layer], cfg)
        refs.append(repo + ":v1")
    return refs


def _push_image_layers(repo, tag, layers, config):
    import requests
    import test_image_sync as tis
    digests = [tis._push_blob(repo, layer) for layer in layers]
    cd = tis._push_blob(repo, config)
    man = json.dumps({"schemaVersion": 2, "mediaType": tis.OCI_MANIFEST,
                      "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                 "digest": cd, "size": len(config)},
                      "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                  "digest": d, "size": len(layer)}
                                 for d, layer in zip(digests, layers)]},
                     sort_keys=True).encode()
    r = requests.put("%s/v2/%s/manifests/%s" % (lib.registry_url("src"), repo, tag), data=man,
                     headers={"Content-Type": tis.OCI_MANIFEST}, timeout=60)
    assert r.status_code == 201, (r.status_code, r.text)


def test_image_sync_under_faults(ctx):
    import test_image_sync as tis
    import test_registry
    test_registry.images()
    t0 = time.monotonic()
    refs = _make_images() + list(tis.IMAGES)
    pre = "faults%d" % random.randrange(10 ** 9)
    ps = lib.FaultProxy(ctx, lib.registry_url("src"), "proxy-regsrc", flavor="registry").start()
    try:
        pd = lib.FaultProxy(ctx, lib.registry_url("dst"), "proxy-regdst", flavor="registry").start()
    except BaseException:
        ps.stop()
        raise
    try:
        ps.configure(seed=21, strip=[pre], rates=MIXED_RATES, ensure=ENSURE)
        pd.configure(seed=22, strip=[pre], rates=MIXED_RATES, ensure=ENSURE)
        ctx.write_config("[remote src]\ntype = registry\nurl = %s\ninsecure = true\n\n"
                         "[remote dst]\ntype = registry\nurl = %s\ninsecure = true\n"
                         "username = %s\npassword = %s\n\n"
                         % (ps.url, pd.url, lib.REG_USER, lib.REG_PASS))
        t1 = time.monotonic()
        res = tis._sync(ctx, refs, "dst:" + pre, check_exit=None)
        t2 = time.monotonic()
        inj = _sum_injected(ps, pd)
        reqs = ps.counters()["requests"] + pd.counters()["requests"]
        print("# image sync under faults: %s" % json.dumps(
            {k: res.get(k) for k in ("images", "copied", "failed", "blobs")}), flush=True)
        assert (res["images"], res["copied"], res["failed"]) == (len(refs), len(refs), 0), res
        # a rerun under faults: nothing to copy, nothing fails
        res2 = tis._sync(ctx, refs, "dst:" + pre)
        assert (res2["copied"], res2["skipped"], res2["failed"]) == (0, len(refs), 0), res2
    finally:
        ps.stop()
        pd.stop()
    manifests = 0
    for ref in refs:
        repo, tag = ref.split(":")
        manifests += tis._check_copied(repo, pre + "/" + repo, tag)
    missing = [k for k in MIXED_RATES if inj.get(k, 0) == 0]
    assert not missing, "fault kinds never injected: %s (%s)" % (missing, inj)
    _figures("image_sync", images=len(refs), manifests_verified=manifests, requests=reqs,
             injected=inj, sync_seconds=round(t2 - t1, 1),
             test_seconds=round(time.monotonic() - t0, 1))


# --------------------------------------------------------------------------
# wrong Content-Lengths: a short one with the body cut to match (an answer
# that looks complete), a long one (the server closes before the bytes it
# announced). Nothing may be stored short, and a retry must repair it.

CL_MULTIPART = (("big/cl-20m", 20 * MiB, [5 * MiB] * 4),
                ("big/cl-18m", 18 * MiB + 5, [8 * MiB, 8 * MiB, 2 * MiB + 5]))


def _cl_source(n):
    src = lib.create_bucket("a", "cl-src")
    objs = {}
    for i in range(n):
        key, body, extra = _small_put(i, version=7)
        objs[key] = (body, extra)
    lib.put_objects(lib.s3("a"), src, objs, workers=32)
    for key, _, parts in CL_MULTIPART:
        _put_multipart(lib.s3("a"), src, key, "cl-" + key, parts)
    return src


def _cl_sync(ctx, src, src_cfg, dst_cfg, n_objects, both=True):
    dst = ctx.bucket("b", "cl-dst")
    pa, pb = _s3_proxies(ctx, 1, src, dst)
    try:
        pa.configure(strip=[src, dst], part_sizes=_layouts(src, CL_MULTIPART), **src_cfg)
        pb.configure(strip=[src, dst], **dst_cfg)
        rc, out, err = ctx.sync("src:" + src, "dst:" + dst, check_exit=None, parse=False)
        inj = _sum_injected(pa, pb)
    finally:
        pa.stop()
        pb.stop()
    res = lib.parse_sync_json(out) if out.strip() else {}
    print("# %s: %s" % (ctx.name, json.dumps({
        "exit": rc, "injected": {k: inj[k] for k in CL_RATES},
        "json": {k: res.get(k) for k in ("transferred", "failed")},
        "error": [l for l in err.splitlines() if l.strip()][-3:]})), flush=True)
    assert inj["cl_short"] + inj["cl_long"], inj
    assert rc == 0 and (res["transferred"], res["failed"]) == (n_objects, 0), (
        "dth exited %s: %s" % (rc, {k: res.get(k) for k in ("transferred", "failed")}))
    _assert_same_buckets(src, dst)
    assert inj["cl_short"] and (inj["cl_long"] or not both), inj
    _drop_buckets(("a", src), ("b", dst))


def test_sync_wrong_content_length(ctx):
    """2 % short and 2 % long Content-Lengths on both sides (object GETs,
    CreateMultipartUpload and CompleteMultipartUpload answers, the
    destination's listing); the source's listing is spared (its own test)."""
    src = _cl_source(400)
    not_src_listing = r"^(?!GET /[^/?]+/?\?(.*&)?list-type=2)"
    _cl_sync(ctx, src,
             dict(seed=31, rates=CL_RATES, match=not_src_listing,
                  ensure={"cl_short": OBJECT_GET, "cl_long": OBJECT_GET}),
             dict(seed=32, rates=CL_RATES, ensure={"cl_short": r"^POST [^?]*\?uploads",
                                                   "cl_long": None}),
             400 + len(CL_MULTIPART))


def test_listing_wrong_content_length(ctx):
    """The first source listing page with a short Content-Length (the XML cut
    to match): asked for again, the sync completes. (The listing is one page,
    and the proxy injects one fault per request, so the long Content-Length
    is left to the object GETs of the test above.)"""
    src = _cl_source(30)
    _cl_sync(ctx, src, dict(seed=33, match=r"list-type=2",
                            ensure={"cl_short": None, "cl_long": None}),
             {}, 30 + len(CL_MULTIPART), both=False)


def test_image_sync_wrong_content_length(ctx):
    """Blob and manifest GETs with short and long Content-Lengths (2 % each,
    and at least one of each on a blob)."""
    import test_image_sync as tis
    import test_registry
    test_registry.images()
    refs = _make_images()[:20] + list(tis.IMAGES)
    pre = "faultscl%d" % random.randrange(10 ** 9)
    ps = lib.FaultProxy(ctx, lib.registry_url("src"), "proxy-regsrc", flavor="registry").start()
    try:
        pd = lib.FaultProxy(ctx, lib.registry_url("dst"), "proxy-regdst", flavor="registry").start()
    except BaseException:
        ps.stop()
        raise
    try:
        ps.configure(seed=41, strip=[pre], rates=CL_RATES,
                     ensure={"cl_short": "/blobs/", "cl_long": "/blobs/"})
        pd.configure(seed=42, strip=[pre], rates=CL_RATES)
        ctx.write_config("[remote src]\ntype = registry\nurl = %s\ninsecure = true\n\n"
                         "[remote dst]\ntype = registry\nurl = %s\ninsecure = true\n"
                         "username = %s\npassword = %s\n\n"
                         % (ps.url, pd.url, lib.REG_USER, lib.REG_PASS))
        res = tis._sync(ctx, refs, "dst:" + pre, check_exit=None)
        inj = _sum_injected(ps, pd)
    finally:
        ps.stop()
        pd.stop()
    print("# %s: %s" % (ctx.name, json.dumps({
        "injected": {k: inj[k] for k in CL_RATES},
        "json": {k: res.get(k) for k in ("images", "copied", "failed")},
        "failures": [f["error"][-160:] for f in res.get("failures", [])][:4]})), flush=True)
    assert inj["cl_short"] + inj["cl_long"], inj
    assert (res["images"], res["copied"], res["failed"]) == (len(refs), len(refs), 0), (
        {k: res.get(k) for k in ("images", "copied", "failed")}, res.get("failures"))
    assert inj["cl_short"] and inj["cl_long"], inj
    for ref in refs:
        repo, tag = ref.split(":")
        tis._check_copied(repo, pre + "/" + repo, tag)


def _lanes_sync(ctx, pb, src, dst, task, cfg):
    pb.configure(reset=True, strip=[src, dst], match=r"^PUT ", latency=0.05, **cfg)
    res = ctx.sync("src:" + src, "dst:" + dst, "--concurrency", "2",
                   "--small-concurrency", "48", "--retries", "10", task=task, timeout=240)
    c = pb.counters()
    keep = {k: res.get(k) for k in ("transferred", "failed", "small_lanes", "small_lanes_low")}
    _figures(task, json=keep, proxy_put_in_flight=c["max_in_flight"].get("PUT"),
             err503=c["injected"]["err503"])
    assert (res["transferred"], res["failed"]) == (300, 0), keep
    _assert_same_buckets(src, dst)
    return res, c


def test_small_lanes_narrow_when_throttled(ctx):
    """Small objects go up to --small-concurrency at once (48: 2 workers and
    46 lanes). The destination proxy delays each PUT by 50 ms so that they
    overlap. Unthrottled, the proxy sees far more than the 2 workers' PUTs at
    once and dth keeps every lane. With 25 % of PUTs answered 503 SlowDown,
    dth halves the lanes it lets in at least twice (AIMD), retries, and still
    copies all 300 objects intact (checked with boto3 at radosgw)."""
    src = lib.create_bucket("a", "lanes-src")
    rnd = random.Random(7)
    _put_many("a", src, {"s/%04d" % i: rnd.randbytes(1024 + i) for i in range(300)})
    calm, hot = ctx.bucket("b", "lanes-calm"), ctx.bucket("b", "lanes-hot")
    pa, pb = _s3_proxies(ctx, 3, src, calm)
    try:
        res, c = _lanes_sync(ctx, pb, src, calm, "calm", {})
        assert c["injected_total"] == 0, c["injected"]
        assert (res["small_lanes"], res["small_lanes_low"]) == (46, 46), res
        assert c["max_in_flight"]["PUT"] >= 24, c["max_in_flight"]
        res, c = _lanes_sync(ctx, pb, src, hot, "hot", {"seed": 4, "rates": {"err503": 0.25}})
        assert c["injected"]["err503"] >= 30, c["injected"]
        assert res["small_lanes"] == 46 and res["small_lanes_low"] <= 46 // 4, res
    finally:
        pa.stop()
        pb.stop()
    _drop_buckets(("a", src), ("b", calm), ("b", hot))


# --------------------------------------------------------------------------
# c. hostile listings and part sizes: an error, and zero deletes


def _put_many(which, bucket, objs):
    lib.put_objects(lib.s3(which), bucket, objs, workers=32)


CASE_KEYS = {"a": b"lower a", "B": b"upper B", "c": b"lower c", "D": b"upper D"}
BIG_N = 2100  # three pages of 1,000


def _big_source_objects():
    objs = dict(CASE_KEYS)
    for i in range(BIG_N):
        objs["p%05d" % i] = b"page object %d" % i
    return objs


# the destination's extra keys: legitimate deletes if the listing were sound,
# one in the range of each page and one after all
EXTRAS = {"p00100x": b"extra in page 1", "p01500x": b"extra in page 2", "p02050x": b"extra in page 3",
          "zz-extra": b"extra after the last page"}


@lib.module_fixture
def big_source():
    b = lib.create_bucket("a", "hostile-src")
    _put_many("a", b, _big_source_objects())
    return b


def _dst_snapshot(bucket):
    c = lib.s3("b")
    listing = lib.list_all(c, bucket)
    md5 = dict(lib._pool_map(lambda k: (k, lib.get_md5(c, bucket, k)), sorted(listing), 24))
    return {k: (v["size"], v["etag"], md5[k]) for k, v in listing.items()}


def _deletes_seen(offset, req_before, bucket):
    """DELETE requests (and DeleteObjects POSTs) radosgw B served for bucket
    since the log offset, by its access log (waited for until it holds every
    request its `req` counter counted)."""
    n = lib.rgw_req("b") - req_before
    reqs = lib.rgw_log_requests("b", offset, want=n, timeout=15)
    assert len(reqs) >= n, "radosgw B logged %d requests of %d" % (len(reqs), n)
    # An AbortMultipartUpload (DELETE ...?uploadId=) removes no object: dth
    # aborts what it will not complete.
    return [(m, p, s) for m, p, s, _ in reqs
            if ("/%s/" % bucket in p or p.rstrip("/").endswith("/" + bucket) or
                p.split("?")[0] == "/" + bucket)
            and ((m == "DELETE" and not re.search(r"[?&]uploadId=", p))
                 or (m == "POST" and re.search(r"[?&]delete(=|&|$)", p)))]


def _hostile_run(ctx, src, dst, proxy_cfg, which_proxy, words, timeout=120, drop=True):
    """Run dth sync --delete through the proxies with proxy_cfg on the source
    ('src') or destination ('dst') proxy; check the outcome. Returns a summary
    (also printed) of what dth did."""
    before = _dst_snapshot(dst)
    pa, pb = _s3_proxies(ctx, 1, src, dst)
    try:
        (pa if which_proxy == "src" else pb).configure(strip=[src, dst], **proxy_cfg)
        off, req0 = lib.rgw_log_size("b"), lib.rgw_req("b")
        timed_out = False
        try:
            rc, out, err = ctx.sync("src:" + src, "dst:" + dst, "--delete", check_exit=None,
                                    parse=False, timeout=timeout)
        except lib.DthError as e:
            if "timed out" not in str(e):
                raise
            timed_out, rc, out, err = True, None, "", ctx.last_stderr
        hostile = (pa if which_proxy == "src" else pb).counters()["hostile"]
        proxy_deletes = pb.counters()["deletes_forwarded"]
    finally:
        pa.stop()
        pb.stop()
    deletes = _deletes_seen(off, req0, dst)
    after = _dst_snapshot(dst)
    try:
        res = json.loads(out) if out.strip() else {}
    except ValueError:
        res = {}
    summary = {"exit": rc, "timed_out": timed_out, "deletes_at_radosgw": len(deletes),
               "deletes_forwarded": proxy_deletes, "hostile_rewrites": hostile,
               "json": {k: res.get(k) for k in ("transferred", "failed", "deleted")},
               "error": [l for l in err.splitlines() if l.strip()][-3:]}
    print("# hostile %s: %s" % (ctx.name, json.dumps(summary)), flush=True)
    assert hostile, "the proxy rewrote nothing (test set-up)"
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    problems = []
    if deletes:
        problems.append("radosgw B served %d deletes: %s" % (
            len(deletes), [p for _, p, _ in deletes[:5]]))
    if changed:
        problems.append("the destination changed at %d keys: %s" % (len(changed), changed[:8]))
    if timed_out:
        problems.append("dth did not finish within %ds (a listing loop?)" % timeout)
    elif rc == 0:
        problems.append("dth exited 0")
    elif rc < 0:
        problems.append("dth was killed by signal %d" % -rc)
    elif not re.search(words, err, re.I):
        problems.append("no error naming the problem (/%s/) in: %s" % (words, summary["error"]))
    assert not problems, "; ".join(problems)
    if drop:
        _drop_buckets(("b", dst))
    return summary


def _mirror_dst(src_objs, extras):
    dst = lib.create_bucket("b", "hostile-dst")
    objs = dict(src_objs)
    objs.update(extras)
    _put_many("b", dst, objs)
    return dst


ORDER_WORDS = r"order|sorted|unsorted|ascending"


def test_hostile_unsorted_page(ctx):
    """One page listing a, B, c, D (case-insensitive order); the destination
    holds the same four and an extra."""
    src = ctx.bucket("a", "unsorted-src")
    _put_many("a", src, CASE_KEYS)
    dst = _mirror_dst(CASE_KEYS, {"zz-extra": b"extra"})
    _hostile_run(ctx, src, dst, {"listing": {"mode": "unsorted", "bucket": src}}, "src",
                 ORDER_WORDS)


def test_hostile_unsorted_second_page(ctx):
    """Pages 1 and 3 sound, page 2 out of order (two entries swapped)."""
    src = big_source()
    dst = _mirror_dst(_big_source_objects(), EXTRAS)
    _hostile_run(ctx, src, dst, {"listing": {"mode": "unsorted", "bucket": src, "page": 2}},
                 "src", ORDER_WORDS)


def test_hostile_page_goes_back(ctx):
    """Page 2 starts with the last five keys of page 1."""
    src = big_source()
    dst = _mirror_dst(_big_source_objects(), EXTRAS)
    _hostile_run(ctx, src, dst, {"listing": {"mode": "backwards", "bucket": src, "page": 2}},
                 "src", ORDER_WORDS + r"|duplicate|repeat|before")


def test_hostile_duplicate_page(ctx):
    """Page 2 repeats page 1 (page 2's own keys are never listed)."""
    src = big_source()
    dst = _mirror_dst(_big_source_objects(), EXTRAS)
    _hostile_run(ctx, src, dst, {"listing": {"mode": "duplicate_page", "bucket": src, "page": 2}},
                 "src", ORDER_WORDS + r"|duplicate|repeat")


def test_hostile_missing_istruncated(ctx):
    """Page 1 without <IsTruncated> (and its continuation token dropped): the
    keys of pages 2 and 3 are never listed."""
    src = big_source()
    dst = _mirror_dst(_big_source_objects(), EXTRAS)
    _hostile_run(ctx, src, dst, {"listing": {"mode": "no_truncated", "bucket": src, "page": 1}},
                 "src", r"IsTruncated|truncat")


def test_hostile_repeated_token(ctx):
    """Page 2 gives as next token the one it was asked with (for ever)."""
    src = big_source()
    dst = _mirror_dst(_big_source_objects(), EXTRAS)
    _hostile_run(ctx, src, dst, {"listing": {"mode": "repeat_token", "bucket": src, "page": 2}},
                 "src", r"token|repeat|loop", timeout=90)


NUL_REAL, NUL_SHOWN = "a-nul-b", "a%00b"
NUL_WORDS = r"nul|\\0|\\x00|%00|byte 0|zero byte|cannot be"


def test_hostile_nul_key_destination(ctx):
    """The destination lists a and a\\0b (url-encoded a%00b), the source only
    a (and B): a\\0b fails as one object and nothing is deleted."""
    src = ctx.bucket("a", "nul-src")
    _put_many("a", src, {"a": b"lower a", "B": b"upper B"})
    dst = _mirror_dst({"a": b"lower a", "B": b"upper B"}, {NUL_REAL: b"the a-NUL-b object"})
    _hostile_run(ctx, src, dst, {"rename_keys": {NUL_REAL: NUL_SHOWN}}, "dst", NUL_WORDS)


def test_hostile_nul_key_source(ctx):
    """The source lists a\\0b next to a: it fails as one object, the
    destination's a is not overwritten and nothing is deleted."""
    src = ctx.bucket("a", "nul-src")
    _put_many("a", src, {"a": b"lower a", "B": b"upper B", NUL_REAL: b"the a-NUL-b object"})
    dst = _mirror_dst({"a": b"lower a", "B": b"upper B"}, {})
    _hostile_run(ctx, src, dst, {"rename_keys": {NUL_REAL: NUL_SHOWN}}, "src", NUL_WORDS)


def test_hostile_key_too_long(ctx):
    """The source lists a key of 5,000 bytes (longer than the manifest
    records): it fails as that one object while planning, the others are
    copied, nothing is deleted (issue 8, defect 9: it used to end the whole
    run, every run, after copying it)."""
    src = ctx.bucket("a", "longkey-src")
    _put_many("a", src, {"a": b"lower a", "B": b"upper B", "k-long": b"the long one"})
    dst = _mirror_dst({"a": b"lower a", "B": b"upper B"}, {})
    _hostile_run(ctx, src, dst, {"rename_keys": {"k-long": "k" + "x" * 5000}}, "src",
                 r"longer than the manifest")


# HEAD ?partNumber=N answers for a 28 MiB object in parts of 8, 8, 8, 4 MiB
# (radosgw 16 ignores partNumber: the proxy answers as AWS would, with the
# part's size, its Content-Range and x-amz-mp-parts-count)
PARTS = [8 * MiB, 8 * MiB, 8 * MiB, 4 * MiB]


PART_LIES = {
    # a part of 0 bytes, the sum still right
    "zero": _layout([8 * MiB, 0, 8 * MiB, 12 * MiB]),
    # parts of exabytes whose 64-bit sum wraps round to the object's size
    "huge": _layout([8 * MiB, 0x6000000000000000, 0x6000000000000000,
                     0x4000000000000000 + 20 * MiB]),
    # a layout that does not add up to the object
    "nosum": _layout([8 * MiB, 7 * MiB, 8 * MiB, 6 * MiB]),
    # a layout that adds up but is not the object's: the copy's ETag differs
    "shifted": _layout([8 * MiB, 7 * MiB, 8 * MiB, 5 * MiB]),
}
PART_WORDS = r"part|layout|etag"


def _parts_source(ctx):
    src = ctx.bucket("a", "parts-src")
    _put_multipart(lib.s3("a"), src, "mp", "faults-parts", PARTS)
    _put_many("a", src, {"small": b"small object"})
    return src


def test_part_layout_honest(ctx):
    """The control case: the proxy tells the true layout, dth repeats it and
    the destination's ETag is the source's."""
    src = _parts_source(ctx)
    dst = ctx.bucket("b", "parts-dst")
    pa, pb = _s3_proxies(ctx, 1, src, dst)
    try:
        pa.configure(part_sizes={"%s/mp" % src: _layout(PARTS)})
        res = ctx.sync("src:" + src, "dst:" + dst)
        told = pa.counters()["hostile"].get("part_size", 0)
    finally:
        pa.stop()
        pb.stop()
    assert (res["transferred"], res["failed"]) == (2, 0), res
    assert told >= 1, "dth did not ask HEAD ?partNumber"
    s, d = lib.head(lib.s3("a"), src, "mp"), lib.head(lib.s3("b"), dst, "mp")
    assert d["ETag"] == s["ETag"], (d["ETag"], s["ETag"])
    assert lib.get_md5(lib.s3("b"), dst, "mp") == lib.get_md5(lib.s3("a"), src, "mp")
    _drop_buckets(("a", src), ("b", dst))


def _hostile_parts(ctx, lie):
    src = _parts_source(ctx)
    # the destination: an older version of mp, the small object
    dst = _mirror_dst({"small": b"small object", "mp": b"an older version of mp"}, {})
    want_md5 = lib.md5hex(lib.det_bytes("faults-parts", sum(PARTS)))
    try:
        _hostile_run(ctx, src, dst, {"part_sizes": {"%s/mp" % src: PART_LIES[lie]}}, "src",
                     PART_WORDS, timeout=180, drop=False)
        _drop_buckets(("a", src))
    finally:
        # whatever else, the destination never holds wrong bytes under mp
        got = lib.get_md5(lib.s3("b"), dst, "mp")
        if got not in (want_md5, lib.md5hex(b"an older version of mp")):
            h = lib.head(lib.s3("b"), dst, "mp")
            raise AssertionError("the destination's mp has wrong bytes: %d bytes (the source "
                                 "%d), md5 %s, etag %s" % (h["ContentLength"], sum(PARTS), got,
                                                          h["ETag"]))
    _drop_buckets(("b", dst))


def test_hostile_part_size_zero(ctx):
    _hostile_parts(ctx, "zero")


def test_hostile_part_size_huge(ctx):
    _hostile_parts(ctx, "huge")


def test_hostile_part_sizes_not_summing(ctx):
    _hostile_parts(ctx, "nosum")


def test_hostile_part_sizes_shifted(ctx):
    _hostile_parts(ctx, "shifted")
