"""dth image sync between real registries (tests/harness/registry.sh: src
without auth, dst with htpasswd basic auth; images from make-images.sh):
manifests copied byte for byte (index children included), blobs present with
their digests, a no-change rerun at the floor (one manifest HEAD per tag at
the source, nothing at the destination: --json counters and the registries'
access logs agree), a missing source repository failing alone, and a large
layer going up in chunks with a new tag copying only its new blob."""

import hashlib
import json
import os
import random
import time

import requests

import lib
import test_registry

IMAGES = ("test/tiny:v1", "test/tiny:multi", "test/docker:v2s2")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _config(ctx):
    ctx.write_config(lib.registry_section("src", "src")
                     + lib.registry_section("dst", "dst", lib.REG_USER, lib.REG_PASS))


def _prefix(tag):
    return "%s%d" % (tag, random.randrange(10 ** 9))


def _sync(ctx, images, dst, *opts, check_exit=0, task="img"):
    args = ["image", "sync", "--config", ctx.config, "--state", ctx.state, "--task", task,
            "--json", "--images", ",".join(images)] + list(opts) + ["src:", dst]
    rc, out, _ = ctx.run_dth(args, check_exit=check_exit)
    return json.loads(out.strip().splitlines()[-1])


def _log(which):
    d = os.environ.get("DTH_TEST_REG_DIR")
    if not d:
        lib.skip("DTH_TEST_REG_DIR not set: cannot read the registries' access logs")
    return os.path.join(d, "logs", which + ".log")


def _log_size(which):
    return os.path.getsize(_log(which))


def _dth_requests(which, offset):
    """(method, path) of the requests dth sent to registry which since offset."""
    time.sleep(0.3)  # the registry writes its access line once the response is sent
    with open(_log(which), "rb") as f:
        f.seek(offset)
        text = f.read().decode("utf-8", "replace")
    reqs = []
    for line in text.splitlines():
        if '"dth/' not in line or '"' not in line:
            continue
        method, path = line.split('"')[1].split()[:2]
        reqs.append((method, path))
    return reqs


def _blob_digests(raw):
    doc = json.loads(raw)
    return [doc["config"]["digest"]] + [l["digest"] for l in doc["layers"]]


def _dst_blob(repo, digest):
    url = "%s/v2/%s/blobs/%s" % (lib.registry_url("dst"), repo, digest)
    return requests.get(url, auth=(lib.REG_USER, lib.REG_PASS), timeout=60)


def _check_copied(src_repo, dst_repo, ref):
    """Manifest bytes (and children, blobs) of src_repo:ref equal at dst_repo."""
    sep = "@" if ref.startswith("sha256:") else ":"
    want = lib.skopeo_raw("src", src_repo + sep + ref)
    got = lib.skopeo_raw("dst", dst_repo + sep + ref)
    assert got == want, "%s%s%s: manifest bytes differ" % (dst_repo, sep, ref)
    doc = json.loads(want)
    if "manifests" in doc:
        assert len(doc["manifests"]) == 2, doc
        for child in doc["manifests"]:
            _check_copied(src_repo, dst_repo, child["digest"])
        return 1 + len(doc["manifests"])
    for d in _blob_digests(want):
        r = _dst_blob(dst_repo, d)
        assert r.status_code == 200, (dst_repo, d, r.status_code)
        assert "sha256:" + hashlib.sha256(r.content).hexdigest() == d, (dst_repo, d)
    return 1


def test_copy_and_rerun_floor(ctx):
    test_registry.images()
    _config(ctx)
    pre = _prefix("isync")
    res = _sync(ctx, IMAGES, "dst:" + pre)
    assert (res["images"], res["copied"], res["skipped"], res["failed"]) == (3, 3, 0, 0), res
    assert res["blobs"] > 0 and res["bytes"] > 0, res
    manifests = 0
    for img in IMAGES:
        repo, tag = img.split(":")
        manifests += _check_copied(repo, pre + "/" + repo, tag)
    assert manifests == 5, manifests  # v1, v2s2, the index and its two children

    # the manifest remembers each tag's source digest
    _, out, _ = ctx.run_dth(["manifest", "images", "--state", ctx.state, "img"])
    lines = sorted(out.strip().splitlines())
    assert len(lines) == 3, lines
    for img, line in zip(sorted(IMAGES), lines):
        ref, status, digest = line.split()
        want = "sha256:" + hashlib.sha256(lib.skopeo_raw("src", img)).hexdigest()
        assert (ref, status, digest) == (img, "done", want), line

    # no change: one manifest HEAD per tag at the source, nothing at the destination
    off_src, off_dst = _log_size("src"), _log_size("dst")
    res = _sync(ctx, IMAGES, "dst:" + pre)
    assert (res["images"], res["copied"], res["skipped"], res["failed"]) == (3, 0, 3, 0), res
    assert (res["blobs"], res["bytes"]) == (0, 0), res
    assert res["requests"]["destination"]["total"] == 0, res["requests"]
    assert res["requests"]["source"]["total"] == 3, res["requests"]
    assert res["requests"]["source"]["head"] == 3, res["requests"]
    assert _dth_requests("dst", off_dst) == []
    got = sorted(_dth_requests("src", off_src))
    want = sorted(("HEAD", "/v2/%s/manifests/%s" % tuple(i.split(":"))) for i in IMAGES)
    assert got == want, got

    # a repository without a tag means each of its tags (one tags list more)
    off_src = _log_size("src")
    res = _sync(ctx, ["test/tiny"], "dst:" + pre)
    assert (res["copied"], res["failed"]) == (0, 0) and res["skipped"] >= 2, res
    assert res["requests"]["destination"]["total"] == 0, res["requests"]
    got = _dth_requests("src", off_src)
    assert ("GET", "/v2/test/tiny/tags/list") in got, got
    assert all(m == "HEAD" for m, p in got if p != "/v2/test/tiny/tags/list"), got


def test_missing_repo_fails_alone(ctx):
    test_registry.images()
    _config(ctx)
    pre = _prefix("imiss")
    res = _sync(ctx, ["test/nosuchrepo:v1", "test/tiny:v1", "test/nosuchrepo2"],
                "dst:" + pre, check_exit=1)
    assert (res["copied"], res["failed"]) == (1, 2), res
    failed = sorted(f["image"] for f in res["failures"])
    assert failed == ["test/nosuchrepo2", "test/nosuchrepo:v1"], res["failures"]
    for f in res["failures"]:
        assert "not found" in f["error"] or "unknown" in f["error"].lower(), f
    assert "not found" in ctx.last_stderr or "unknown" in ctx.last_stderr.lower()
    _check_copied("test/tiny", pre + "/test/tiny", "v1")
    _, out, _ = ctx.run_dth(["manifest", "images", "--state", ctx.state, "img"])
    recs = dict((l.split()[0], l.split()[1]) for l in out.strip().splitlines())
    assert recs == {"test/nosuchrepo:v1": "failed", "test/tiny:v1": "done"}, recs
    # a rerun retries the failed one only (the done one is skipped)
    res = _sync(ctx, ["test/nosuchrepo:v1", "test/tiny:v1"], "dst:" + pre, check_exit=1)
    assert (res["copied"], res["skipped"], res["failed"]) == (0, 1, 1), res


def _push_blob(repo, data):
    base = lib.registry_url("src")
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    if requests.head("%s/v2/%s/blobs/%s" % (base, repo, digest), timeout=60).status_code == 200:
        return digest
    r = requests.post("%s/v2/%s/blobs/uploads/" % (base, repo), timeout=60)
    assert r.status_code == 202, r.status_code
    loc = r.headers["Location"]
    if loc.startswith("/"):
        loc = base + loc
    r = requests.put(loc + ("&" if "?" in loc else "?") + "digest=" + digest, data=data,
                     headers={"Content-Type": "application/octet-stream"}, timeout=120)
    assert r.status_code == 201, (r.status_code, r.text)
    return digest


def _push_image(repo, tag, layer, config):
    ld, cd = _push_blob(repo, layer), _push_blob(repo, config)
    man = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                      "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                 "digest": cd, "size": len(config)},
                      "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                  "digest": ld, "size": len(layer)}]},
                     sort_keys=True).encode()
    r = requests.put("%s/v2/%s/manifests/%s" % (lib.registry_url("src"), repo, tag), data=man,
                     headers={"Content-Type": OCI_MANIFEST}, timeout=60)
    assert r.status_code == 201, (r.status_code, r.text)


def test_large_layer_chunked_then_new_tag(ctx):
    lib.registry_url("src")
    _config(ctx)
    repo = "test/big"
    layer = lib.det_bytes("dth-image-big", 20 * lib.MiB + 12345)
    cfg1 = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers"},"n":1}'
    cfg2 = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers"},"n":2}'
    _push_image(repo, "v1", layer, cfg1)
    pre = _prefix("ibig")
    res = _sync(ctx, [repo + ":v1"], "dst:" + pre, "--concurrency", "2")
    assert (res["copied"], res["failed"], res["blobs"]) == (1, 0, 2), res
    assert res["bytes"] == len(layer) + len(cfg1), res
    assert res["requests"]["destination"]["patch"] >= 2, res["requests"]  # ~8 MiB chunks
    _check_copied(repo, pre + "/" + repo, "v1")

    # a new tag sharing the layer: only its config goes up
    _push_image(repo, "v2", layer, cfg2)
    res = _sync(ctx, [repo], "dst:" + pre)
    assert (res["copied"], res["skipped"], res["failed"]) == (1, 1, 0), res
    assert (res["blobs"], res["bytes"]) == (1, len(cfg2)), res
    assert res["requests"]["destination"]["patch"] == 0, res["requests"]
    assert res["requests"]["source"]["get"] == 3, res["requests"]  # tags list, manifest, config
    _check_copied(repo, pre + "/" + repo, "v2")


def test_cross_repo_mount(ctx):
    test_registry.images()
    _config(ctx)
    a, b = _prefix("imnta"), _prefix("imntb")
    res = _sync(ctx, ["test/tiny:v1"], "dst:" + a, task="a")
    n = len(_blob_digests(lib.skopeo_raw("src", "test/tiny:v1")))
    assert (res["copied"], res["blobs"], res["blobs_mounted"]) == (1, n, 0), res
    # another task to another prefix, same state: blobs known in a are mounted
    off_src, off_dst = _log_size("src"), _log_size("dst")
    res = _sync(ctx, ["test/tiny:v1"], "dst:" + b, task="b")
    assert (res["copied"], res["blobs"], res["blobs_mounted"], res["bytes"]) == (1, n, n, 0), res
    assert not any("/blobs/" in p for _, p in _dth_requests("src", off_src))
    mounts = [p for m, p in _dth_requests("dst", off_dst) if m == "POST"]
    assert len(mounts) == n and all("from=%s/test/tiny" % a in p for p in mounts), mounts
    _check_copied("test/tiny", b + "/test/tiny", "v1")
