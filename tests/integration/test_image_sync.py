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


def test_lost_blob_copied_again(ctx):
    """A layer recorded as present in the blobs database but gone from the
    destination (deleted through the API, as garbage collection would): the
    manifest PUT that needs it fails with MANIFEST_BLOB_UNKNOWN, dth drops
    the image's blob records, copies its blobs again and retries once."""
    lib.registry_url("src")
    _config(ctx)
    repo = "test/lost%d" % random.randrange(10 ** 9)
    layer = lib.det_bytes("dth-image-lost-" + repo, 300 * 1024 + 7)
    cfg1 = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers"},"lost":1}'
    cfg2 = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers"},"lost":2}'
    ld = "sha256:" + hashlib.sha256(layer).hexdigest()
    _push_image(repo, "v1", layer, cfg1)
    pre = _prefix("ilost")
    dst_repo = pre + "/" + repo
    res = _sync(ctx, [repo + ":v1"], "dst:" + pre)
    assert (res["copied"], res["failed"], res["blobs"]) == (1, 0, 2), res
    _check_copied(repo, dst_repo, "v1")

    # the destination loses the layer (storage delete is enabled in the harness)
    r = requests.delete("%s/v2/%s/blobs/%s" % (lib.registry_url("dst"), dst_repo, ld),
                        auth=(lib.REG_USER, lib.REG_PASS), timeout=60)
    assert r.status_code == 202, (r.status_code, r.text)
    assert not _dst_has_blob(dst_repo, ld)

    # a new tag needing that layer: the layer goes up again, the tag is complete
    _push_image(repo, "v2", layer, cfg2)
    off_dst = _log_size("dst")
    res = _sync(ctx, [repo + ":v2"], "dst:" + pre)
    assert (res["copied"], res["failed"]) == (1, 0), res
    assert (res["blobs"], res["bytes"]) == (2, len(layer) + len(cfg2)), res
    _check_copied(repo, dst_repo, "v2")
    assert _dst_has_blob(dst_repo, ld)
    puts = [p for m, p in _dth_requests("dst", off_dst) if m == "PUT" and "/manifests/" in p]
    assert puts == ["/v2/%s/manifests/v2" % dst_repo] * 2, puts  # refused once, then stored
    # the first tag is whole again too, and a rerun of both is at the floor
    _check_copied(repo, dst_repo, "v1")
    res = _sync(ctx, [repo + ":v1", repo + ":v2"], "dst:" + pre)
    assert (res["copied"], res["skipped"], res["failed"]) == (0, 2, 0), res
    assert res["requests"]["destination"]["total"] == 0, res["requests"]


def _put_src_manifest(repo, tag, doc, mt):
    body = json.dumps(doc, sort_keys=True).encode()
    r = requests.put("%s/v2/%s/manifests/%s" % (lib.registry_url("src"), repo, tag), data=body,
                     headers={"Content-Type": mt}, timeout=60)
    assert r.status_code == 201, (r.status_code, r.text)  # the registry checks no size
    return "sha256:" + hashlib.sha256(body).hexdigest()


def test_lying_sizes_refused(ctx):
    """Each descriptor must carry its blob's exact size: size 0 (allowed only
    for the empty blob), a negative size, one a byte short or
    long, a config of size 0, an index child of the wrong size. Each such tag
    fails alone with a message naming the manifest and the descriptor, and
    nothing of it reaches the destination; the honest tag is copied."""
    lib.registry_url("src")
    _config(ctx)
    repo = "test/lies%d" % random.randrange(10 ** 9)
    layer = lib.det_bytes("dth-image-lies-" + repo, 3 * lib.MiB + 11)
    cfg = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers"},"lies":1}'
    ld, cd = _push_blob(repo, layer), _push_blob(repo, cfg)

    def image(layer_size, cfg_size=len(cfg)):
        return {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": cd, "size": cfg_size},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                            "digest": ld, "size": layer_size}]}

    good = _put_src_manifest(repo, "good", image(len(layer)), OCI_MANIFEST)
    index_mt = "application/vnd.oci.image.index.v1+json"
    lies = {  # tag: (manifest, words the error must hold)
        "zero": (image(0), ["layers[0]", ld, "size 0"]),
        "negative": (image(-1), ["layers[0]", ld, "-1"]),
        "short": (image(len(layer) - 1), [ld, "announces %d bytes" % len(layer)]),
        "long": (image(len(layer) + 1), [ld, "announces %d bytes" % len(layer)]),
        "cfgzero": (image(len(layer), 0), ["config", cd, "size 0"]),
        "child": ({"schemaVersion": 2, "mediaType": index_mt,
                   "manifests": [{"mediaType": OCI_MANIFEST, "digest": good,
                                  "size": len(lib.skopeo_raw("src", repo + ":good")) + 1,
                                  "platform": {"os": "linux", "architecture": "amd64"}}]},
                  [good, "its index says"]),
    }
    digests = {}
    try:
        for tag, (doc, _) in lies.items():
            digests[tag] = _put_src_manifest(repo, tag, doc, doc["mediaType"])
        _check_lies(ctx, repo, lies, digests, ld, len(cfg))
    finally:  # --all of a later test must not meet them
        for d in digests.values():
            r = requests.delete("%s/v2/%s/manifests/%s" % (lib.registry_url("src"), repo, d),
                                timeout=60)
            assert r.status_code == 202, (r.status_code, r.text)


def _check_lies(ctx, repo, lies, digests, ld, cfg_len):
    pre = _prefix("ilies")
    dst_repo = pre + "/" + repo
    res = _sync(ctx, ["%s:%s" % (repo, t) for t in lies], "dst:" + pre, check_exit=1)
    assert (res["images"], res["copied"], res["failed"]) == (len(lies), 0, len(lies)), res
    errors = dict((f["image"].split(":")[1], f["error"]) for f in res["failures"])
    for tag, (_, words) in lies.items():
        msg = errors[tag]
        kind = "index" if tag == "child" else "manifest"
        assert "%s %s@%s" % (kind, repo, digests[tag]) in msg, (tag, msg)
        for w in words:
            assert w in msg, (tag, w, msg)
    assert res["bytes"] <= cfg_len, res  # no byte of the layer went up
    assert _dst_tags(dst_repo) is None
    assert not _dst_has_blob(dst_repo, ld)
    # the same blobs under an honest manifest: copied
    res = _sync(ctx, [repo + ":good"], "dst:" + pre)
    assert (res["copied"], res["failed"]) == (1, 0), res
    _check_copied(repo, dst_repo, "good")


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


# ---- --all, --tags, --platform ----

MANIFEST_ACCEPT = ", ".join((OCI_MANIFEST, "application/vnd.oci.image.index.v1+json",
                             "application/vnd.docker.distribution.manifest.v2+json",
                             "application/vnd.docker.distribution.manifest.list.v2+json"))


def _sync_opts(ctx, opts, dst, check_exit=0, task="img"):
    """dth image sync with opts as given (no --images added); the --json result."""
    args = ["image", "sync", "--config", ctx.config, "--state", ctx.state, "--task", task,
            "--json"] + list(opts) + ["src:", dst]
    rc, out, _ = ctx.run_dth(args, check_exit=check_exit)
    return json.loads(out.strip().splitlines()[-1])


def _src_get(path):
    r = requests.get(lib.registry_url("src") + path, timeout=60)
    assert r.status_code == 200, (path, r.status_code)
    return r.json()


def _dst_tags(repo):
    """Tags of repo at dst (None when the repository does not exist)."""
    r = requests.get("%s/v2/%s/tags/list" % (lib.registry_url("dst"), repo),
                     auth=(lib.REG_USER, lib.REG_PASS), timeout=60)
    if r.status_code == 404:
        return None
    assert r.status_code == 200, (repo, r.status_code)
    return sorted(r.json().get("tags") or [])


def _dst_has_blob(repo, digest):
    r = requests.head("%s/v2/%s/blobs/%s" % (lib.registry_url("dst"), repo, digest),
                      auth=(lib.REG_USER, lib.REG_PASS), timeout=60)
    assert r.status_code in (200, 404), r.status_code
    return r.status_code == 200


def _is_schema1(repo, tag):
    r = requests.get("%s/v2/%s/manifests/%s" % (lib.registry_url("src"), repo, tag),
                     headers={"Accept": MANIFEST_ACCEPT}, timeout=60)
    assert r.status_code == 200, (repo, tag, r.status_code)
    return json.loads(r.content).get("schemaVersion") == 1


def _images_json(ctx, task="img"):
    _, out, _ = ctx.run_dth(["manifest", "images", "--json", "--state", ctx.state, task])
    return dict((d["ref"], d) for d in map(json.loads, out.strip().splitlines()))


def _check_tree(src_repo, dst_repo, ref):
    """Like _check_copied, for an index of any number of children."""
    sep = "@" if ref.startswith("sha256:") else ":"
    want = lib.skopeo_raw("src", src_repo + sep + ref)
    doc = json.loads(want)
    if "manifests" not in doc:
        return _check_copied(src_repo, dst_repo, ref)
    assert lib.skopeo_raw("dst", dst_repo + sep + ref) == want, (dst_repo, ref)
    for child in doc["manifests"]:
        _check_tree(src_repo, dst_repo, child["digest"])


def test_all_copies_every_repo_and_tag(ctx):
    test_registry.images()
    _config(ctx)
    want, schema1 = [], []
    for repo in _src_get("/v2/_catalog?n=1000")["repositories"]:
        for tag in _src_get("/v2/%s/tags/list" % repo).get("tags") or []:
            (schema1 if _is_schema1(repo, tag) else want).append((repo, tag))
    assert ("test/tiny", "multi") in want and ("test/docker", "v2s2") in want, want
    pre = _prefix("iall")
    res = _sync_opts(ctx, ["--all"], "dst:" + pre, check_exit=1 if schema1 else 0)
    assert res["images"] == len(want) + len(schema1), (res, want, schema1)
    assert (res["copied"], res["failed"]) == (len(want), len(schema1)), res
    assert sorted(f["image"] for f in res["failures"]) == sorted("%s:%s" % t for t in schema1)
    for repo, tag in want:
        _check_tree(repo, pre + "/" + repo, tag)
    for repo in set(r for r, _ in want):
        assert _dst_tags(pre + "/" + repo) == sorted(t for r, t in want if r == repo), repo
    # a rerun is at the floor for every copied tag: nothing at the destination
    res = _sync_opts(ctx, ["--all"], "dst:" + pre, check_exit=1 if schema1 else 0)
    assert (res["copied"], res["skipped"]) == (0, len(want)), res
    assert res["requests"]["destination"]["total"] == 0, res["requests"]


def test_all_refused_catalog_exits_3(ctx):
    test_registry.images()
    ctx.write_config(lib.registry_section("anon", "token")
                     + lib.registry_section("dst", "dst", lib.REG_USER, lib.REG_PASS))
    args = ["image", "sync", "--config", ctx.config, "--state", ctx.state, "--task", "anon",
            "--all", "anon:", "dst:" + _prefix("ianon")]
    _, _, err = ctx.run_dth(args, check_exit=3)
    assert "--all" in err and "catalog" in err and "401" in err, err


def test_tags_filter(ctx):
    test_registry.images()
    _config(ctx)
    pre = _prefix("itags")
    res = _sync(ctx, ["test/tiny", "test/docker"], "dst:" + pre, "--tags", "v[0-9]+")
    assert (res["images"], res["copied"], res["failed"]) == (1, 1, 0), res
    assert _dst_tags(pre + "/test/tiny") == ["v1"]
    assert _dst_tags(pre + "/test/docker") is None
    _check_copied("test/tiny", pre + "/test/tiny", "v1")
    # the match is of the whole tag: "v" and "1" match no tag, "v2s" neither
    for rx in ("v", "1", "v2s", "ulti"):
        res = _sync(ctx, ["test/tiny", "test/docker"], "dst:" + pre, "--tags", rx)
        assert (res["images"], res["copied"]) == (0, 0), (rx, res)
    assert _dst_tags(pre + "/test/docker") is None
    # alternation, with --all; explicit tags are not filtered
    res = _sync_opts(ctx, ["--all", "--tags", "mul.*|v2s2"], "dst:" + pre)
    assert (res["copied"], res["failed"]) == (2, 0), res
    assert _dst_tags(pre + "/test/tiny") == ["multi", "v1"]
    assert _dst_tags(pre + "/test/docker") == ["v2s2"]
    _check_copied("test/tiny", pre + "/test/tiny", "multi")
    res = _sync(ctx, ["test/tiny:v1"], "dst:" + pre, "--tags", "nomatch")
    assert (res["images"], res["skipped"]) == (1, 1), res


def test_bad_options_exit_2(ctx):
    _config(ctx)
    for opts, words in ((["--tags", "v[0-9"], ["v[0-9", "regex"]),
                        (["--tags", "(a"], ["(a", "regex"]),
                        (["--platform", "linux"], ["linux", "platform"]),
                        (["--platform", "linux/amd64,"], ["platform"]),
                        (["--platform", "a/b/c/d"], ["a/b/c/d"]),
                        (["--all", "--images", "test/tiny"], ["--all"])):
        args = ["image", "sync", "--config", ctx.config, "--state", ctx.state] + opts
        if "--all" not in opts:
            args += ["--images", "test/tiny"]
        _, out, err = ctx.run_dth(args + ["src:", "dst:x"], check_exit=2)
        for w in words:
            assert w in err, (opts, err)


def test_platform_single_child(ctx):
    test_registry.images()
    _config(ctx)
    pre = _prefix("iplat")
    index = lib.skopeo_raw("src", "test/tiny:multi")
    children = json.loads(index)["manifests"]
    amd = [c for c in children if c["platform"]["architecture"] == "amd64"][0]
    arm = [c for c in children if c["platform"]["architecture"] == "arm64"][0]
    amd_raw = lib.skopeo_raw("src", "test/tiny@" + amd["digest"])
    arm_raw = lib.skopeo_raw("src", "test/tiny@" + arm["digest"])
    amd_blobs, arm_blobs = set(_blob_digests(amd_raw)), set(_blob_digests(arm_raw))
    assert arm_blobs - amd_blobs, "the test images share every blob"

    res = _sync(ctx, ["test/tiny:multi"], "dst:" + pre, "--platform", "linux/amd64")
    assert (res["copied"], res["failed"], res["filtered"]) == (1, 0, 0), res
    # the destination tag is the amd64 manifest itself, byte for byte
    assert lib.skopeo_raw("dst", pre + "/test/tiny:multi") == amd_raw
    _check_copied("test/tiny", pre + "/test/tiny", amd["digest"])
    for d in amd_blobs:
        assert _dst_has_blob(pre + "/test/tiny", d), d
    for d in arm_blobs - amd_blobs:
        assert not _dst_has_blob(pre + "/test/tiny", d), d
    r = requests.head("%s/v2/%s/test/tiny/manifests/%s" % (lib.registry_url("dst"), pre,
                                                         arm["digest"]),
                      auth=(lib.REG_USER, lib.REG_PASS), timeout=60)
    assert r.status_code == 404, r.status_code
    assert res["blobs"] == len(amd_blobs), res
    rec = _images_json(ctx)["test/tiny:multi"]
    assert rec["status"] == "done", rec
    assert rec["src_digest"] == "sha256:" + hashlib.sha256(index).hexdigest(), rec
    assert rec["dst_digest"] == amd["digest"], rec

    # rerun with the same selection: one HEAD at the source, nothing at the destination
    off_src, off_dst = _log_size("src"), _log_size("dst")
    res = _sync(ctx, ["test/tiny:multi"], "dst:" + pre, "--platform", "linux/amd64")
    assert (res["copied"], res["skipped"], res["failed"]) == (0, 1, 0), res
    assert res["requests"]["destination"]["total"] == 0, res["requests"]
    assert res["requests"]["source"] == dict(res["requests"]["source"], head=1, total=1)
    assert _dth_requests("dst", off_dst) == []
    assert _dth_requests("src", off_src) == [("HEAD", "/v2/test/tiny/manifests/multi")]

    # the same task with another selection: copied again although the source
    # is unchanged, the tag now the arm64 manifest
    res = _sync(ctx, ["test/tiny:multi"], "dst:" + pre, "--platform", "linux/arm64")
    assert (res["copied"], res["skipped"]) == (1, 0), res
    assert lib.skopeo_raw("dst", pre + "/test/tiny:multi") == arm_raw
    assert _images_json(ctx)["test/tiny:multi"]["dst_digest"] == arm["digest"]
    # the same selection in another order and spelling is the same selection
    res = _sync(ctx, ["test/tiny:multi"], "dst:" + pre, "--platform", "linux/arm64,linux/arm64")
    assert (res["copied"], res["skipped"]) == (0, 1), res

    # the same task without --platform: the whole index goes over, digest kept
    res = _sync(ctx, ["test/tiny:multi"], "dst:" + pre)
    assert (res["copied"], res["skipped"]) == (1, 0), res
    _check_copied("test/tiny", pre + "/test/tiny", "multi")


def test_platform_all_children_and_image_skip(ctx):
    test_registry.images()
    _config(ctx)
    pre = _prefix("iplat2")
    # every child selected: the index is copied whole, its digest kept
    res = _sync(ctx, ["test/tiny:multi"], "dst:" + pre, "--platform",
                "linux/arm64,linux/amd64")
    assert (res["copied"], res["filtered"]) == (1, 0), res
    _check_copied("test/tiny", pre + "/test/tiny", "multi")
    # an image manifest for another platform is skipped with a note
    res = _sync(ctx, ["test/tiny:v1", "test/docker:v2s2"], "dst:" + pre, "--platform",
                "linux/arm64", task="img2")
    assert (res["images"], res["copied"], res["filtered"], res["failed"]) == (2, 0, 2, 0), res
    assert sorted(n["image"] for n in res["notes"]) == ["test/docker:v2s2", "test/tiny:v1"]
    assert all("linux/amd64" in n["note"] for n in res["notes"]), res["notes"]
    assert "note" in ctx.last_stderr and "linux/arm64" in ctx.last_stderr, ctx.last_stderr
    assert _dst_tags(pre + "/test/docker") is None
    assert _dst_tags(pre + "/test/tiny") == ["multi"]
    recs = _images_json(ctx, "img2")
    assert recs["test/tiny:v1"]["status"] == "skipped", recs
    # rerun: at the floor too
    res = _sync(ctx, ["test/tiny:v1", "test/docker:v2s2"], "dst:" + pre, "--platform",
                "linux/arm64", task="img2")
    assert (res["skipped"], res["filtered"], res["copied"]) == (2, 0, 0), res
    assert res["requests"]["destination"]["total"] == 0, res["requests"]
    assert res["requests"]["source"]["total"] == 2, res["requests"]
    # the matching platform (no variant given matches any) copies it
    res = _sync(ctx, ["test/tiny:v1"], "dst:" + pre, "--platform", "linux/amd64", task="img3")
    assert (res["copied"], res["filtered"]) == (1, 0), res
    _check_copied("test/tiny", pre + "/test/tiny", "v1")


def _push_tri_index():
    """test/tri:tri on src: an OCI index of the amd64 and arm64 children of
    test/tiny:multi plus a linux/s390x entry (pointing at the amd64 child)."""
    base = lib.registry_url("src")
    index = json.loads(lib.skopeo_raw("src", "test/tiny:multi"))
    for c in index["manifests"]:
        raw = lib.skopeo_raw("src", "test/tiny@" + c["digest"])
        for d in _blob_digests(raw):
            r = requests.post("%s/v2/test/tri/blobs/uploads/?mount=%s&from=test/tiny" % (base, d),
                              timeout=60)
            assert r.status_code == 201, (d, r.status_code)
        r = requests.put("%s/v2/test/tri/manifests/%s" % (base, c["digest"]), data=raw,
                         headers={"Content-Type": c["mediaType"]}, timeout=60)
        assert r.status_code == 201, (r.status_code, r.text)
    extra = dict(index["manifests"][0], platform={"architecture": "s390x", "os": "linux"})
    index["manifests"].append(extra)
    body = json.dumps(index, separators=(",", ":")).encode()
    r = requests.put("%s/v2/test/tri/manifests/tri" % base, data=body,
                     headers={"Content-Type": index["mediaType"]}, timeout=60)
    assert r.status_code == 201, (r.status_code, r.text)
    return body


def test_platform_several_children_new_index(ctx):
    test_registry.images()
    _config(ctx)
    src = _push_tri_index()
    sdoc = json.loads(src)
    pre = _prefix("iplat3")
    res = _sync(ctx, ["test/tri:tri"], "dst:" + pre, "--platform", "linux/arm64,linux/amd64")
    assert (res["copied"], res["failed"]) == (1, 0), res
    got = lib.skopeo_raw("dst", pre + "/test/tri:tri")
    doc = json.loads(got)
    # a new index: the same document with only the selected children, in order
    want = dict(sdoc, manifests=[c for c in sdoc["manifests"]
                                 if c["platform"]["architecture"] in ("amd64", "arm64")])
    assert doc == want, doc
    assert len(doc["manifests"]) == 2
    for c in doc["manifests"]:
        _check_copied("test/tri", pre + "/test/tri", c["digest"])
    rec = _images_json(ctx)["test/tri:tri"]
    assert rec["src_digest"] == "sha256:" + hashlib.sha256(src).hexdigest(), rec
    assert rec["dst_digest"] == "sha256:" + hashlib.sha256(got).hexdigest(), rec
    assert rec["dst_digest"] != rec["src_digest"], rec
    assert rec["media_type"] == sdoc["mediaType"], rec
    res = _sync(ctx, ["test/tri:tri"], "dst:" + pre, "--platform", "linux/arm64,linux/amd64")
    assert (res["skipped"], res["copied"]) == (1, 0), res
    assert res["requests"]["destination"]["total"] == 0, res["requests"]


# --------------------------------------------------------------------------
# ECR: the API is moto's (python3 -m moto.server, SigV4 checked: keys of an
# IAM user made at moto), the registry a docker-registry standing in for
# ACCOUNT.dkr.ecr.REGION.amazonaws.com whose htpasswd holds the user and
# password of moto's authorization token.

ECR_ACCOUNT = "123456789012"


def _free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port, proc, what, log):
    import socket
    for _ in range(600):
        if proc.poll() is not None:
            raise AssertionError("%s died; see %s" % (what, log))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("%s on port %d did not answer; see %s" % (what, port, log))


def _stop(proc):
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except Exception:  # noqa: BLE001
        proc.kill()
        proc.wait()


class _Ecr:
    """moto (ECR API) and a stand-in registry, started by PID, stopped by stop()."""

    def __init__(self, ctx):
        import subprocess
        self.moto = self.reg = None
        if subprocess.run(["python3", "-c", "import moto.server, boto3"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode:
            lib.skip("python3 on PATH has no moto")
        import boto3
        self.boto3 = boto3
        d = os.path.join(ctx.dir, "ecr")
        os.makedirs(os.path.join(d, "data"))
        self.moto_log = os.path.join(d, "moto.log")
        self.moto_port = _free_port()
        env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="3")
        with open(self.moto_log, "wb") as log:
            self.moto = subprocess.Popen(
                ["python3", "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.moto_port)],
                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.endpoint = "http://127.0.0.1:%d" % self.moto_port
        _wait_port(self.moto_port, self.moto, "moto", self.moto_log)
        # three unauthenticated actions make a user and its key; then SigV4 is checked
        iam = boto3.client("iam", endpoint_url=self.endpoint, region_name="us-east-1",
                           aws_access_key_id="x", aws_secret_access_key="y")
        iam.create_user(UserName="dth")
        iam.put_user_policy(UserName="dth", PolicyName="all", PolicyDocument=json.dumps(
            {"Version": "2012-10-17",
             "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        k = iam.create_access_key(UserName="dth")["AccessKey"]
        self.key, self.secret = k["AccessKeyId"], k["SecretAccessKey"]

        # moto's token is deterministic: the stand-in registry accepts it
        import base64
        tok = self.client().get_authorization_token(registryIds=[ECR_ACCOUNT])
        user, _, self.password = base64.b64decode(
            tok["authorizationData"][0]["authorizationToken"]).decode().partition(":")
        assert (user, self.password) == ("AWS", ECR_ACCOUNT + "-auth-token"), (user,)
        self.user = user

        self.reg_port = _free_port()
        while self.reg_port in (5000, 5001, 5002, 5003, 5400, 5401):
            self.reg_port = _free_port()
        ht = subprocess.run(["htpasswd", "-Bbn", self.user, self.password], check=True,
                            stdout=subprocess.PIPE).stdout
        with open(os.path.join(d, "htpasswd"), "wb") as f:
            f.write(ht)
        yml = os.path.join(d, "ecr.yml")
        with open(yml, "w") as f:
            f.write("version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: false\n"
                    "storage:\n  filesystem:\n    rootdirectory: %s/data\n"
                    "  cache:\n    blobdescriptor: inmemory\n"
                    "http:\n  secret: dth-test-secret-ecr\n  addr: 127.0.0.1:%d\n"
                    "health:\n  storagedriver:\n    enabled: false\n"
                    "auth:\n  htpasswd:\n    realm: dth-test-ecr\n    path: %s/htpasswd\n"
                    % (d, self.reg_port, d))
        self.reg_log = os.path.join(d, "registry.log")
        renv = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        with open(self.reg_log, "wb") as log:
            self.reg = subprocess.Popen(["docker-registry", "serve", yml], stdout=log,
                                        stderr=subprocess.STDOUT, env=renv,
                                        start_new_session=True)
        _wait_port(self.reg_port, self.reg, "the stand-in ecr registry", self.reg_log)
        self.url = "http://127.0.0.1:%d" % self.reg_port

    def client(self, region="us-east-1"):
        return self.boto3.client("ecr", endpoint_url=self.endpoint, region_name=region,
                                 aws_access_key_id=self.key, aws_secret_access_key=self.secret)

    def section(self, name, region="us-east-1", url=True):
        text = ("[remote %s]\ntype = ecr\naccount = %s\nregion = %s\nendpoint = %s\n"
                "access_key_id = %s\nsecret_access_key = %s\n"
                % (name, ECR_ACCOUNT, region, self.endpoint, self.key, self.secret))
        if url:
            text += "url = %s\ninsecure = true\n" % self.url
        return text + "\n"

    def raw(self, image):
        """skopeo inspect --raw of image at the stand-in registry, as AWS:token."""
        import subprocess
        env = dict(os.environ)
        env.pop("REGISTRY_AUTH_FILE", None)
        return subprocess.run(
            ["skopeo", "inspect", "--raw", "--tls-verify=false", "--creds",
             "%s:%s" % (self.user, self.password),
             "docker://127.0.0.1:%d/%s" % (self.reg_port, image)],
            check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
            timeout=120).stdout

    def moto_posts(self):
        with open(self.moto_log, "rb") as f:
            return f.read().decode("utf-8", "replace").count('"POST / HTTP')

    def reg_requests(self):
        with open(self.reg_log, "rb") as f:
            return sum(1 for line in f.read().decode("utf-8", "replace").splitlines()
                       if '"dth/' in line)

    def repos(self, region="us-east-1"):
        names = []
        for page in self.client(region).get_paginator("describe_repositories").paginate():
            names += [r["repositoryName"] for r in page["repositories"]]
        return sorted(names)

    def stop(self):
        _stop(self.reg)
        _stop(self.moto)


def _ecr_sync(ctx, args, task, check_exit=0):
    rc, out, err = ctx.run_dth(["-v", "image", "sync", "--config", ctx.config, "--state",
                                ctx.state, "--task", task, "--json"] + args,
                               check_exit=check_exit)
    return json.loads(out.strip().splitlines()[-1]), err


def test_ecr_destination_and_source(ctx):
    test_registry.images()
    ecr = None
    try:
        ecr = _Ecr(ctx)
        ctx.write_config(lib.registry_section("src", "src")
                         + lib.registry_section("dst", "dst", lib.REG_USER, lib.REG_PASS)
                         + ecr.section("ecr") + ecr.section("ecrcn", "cn-north-1", url=False))
        pre = _prefix("ecr")
        res, err = _ecr_sync(ctx, ["--images", ",".join(IMAGES), "src:", "ecr:" + pre],
                             "ecr1")
        assert (res["images"], res["copied"], res["failed"]) == (3, 3, 0), res
        e = res["requests"]["ecr_destination"]
        # one token, one listing, one repository created per source repository
        assert (e["auth"], e["repos"], e["create"], e["images"]) == (1, 1, 2, 0), e
        assert ecr.password not in err and ecr.password not in json.dumps(res)
        assert ecr.repos() == sorted([pre + "/test/tiny", pre + "/test/docker"]), ecr.repos()
        for img in IMAGES:
            want = lib.skopeo_raw("src", img)
            assert ecr.raw(pre + "/" + img) == want, img
            doc = json.loads(want)
            repo = img.split(":")[0]
            for child in doc.get("manifests", []):
                assert (ecr.raw("%s/%s@%s" % (pre, repo, child["digest"]))
                        == lib.skopeo_raw("src", repo + "@" + child["digest"])), child

        # rerun: nothing created, nothing sent to ECR's API or its registry
        posts, reqs = ecr.moto_posts(), ecr.reg_requests()
        res, _ = _ecr_sync(ctx, ["--images", ",".join(IMAGES), "src:", "ecr:" + pre], "ecr1")
        assert (res["images"], res["copied"], res["skipped"], res["failed"]) == (3, 0, 3, 0), res
        assert res["requests"]["destination"]["total"] == 0, res["requests"]
        assert not any(res["requests"]["ecr_destination"].values()), res["requests"]
        time.sleep(0.3)
        assert (ecr.moto_posts(), ecr.reg_requests()) == (posts, reqs)
        assert len(ecr.repos()) == 2

        # a new repository under the same prefix is created, the existing one is not
        res, _ = _ecr_sync(ctx, ["--images", "test/tiny:v1", "src:", "ecr:" + pre + "/again"],
                           "ecr2")
        assert (res["copied"], res["failed"]) == (1, 0), res
        e = res["requests"]["ecr_destination"]
        assert (e["auth"], e["repos"], e["create"]) == (1, 1, 1), e
        assert pre + "/again/test/tiny" in ecr.repos()

        # ECR as the source of --all: DescribeRepositories instead of the catalog
        pre2 = _prefix("fromecr")
        res, _ = _ecr_sync(ctx, ["--all", "ecr:", "dst:" + pre2], "ecr3")
        assert (res["copied"], res["failed"]) == (4, 0), res
        e = res["requests"]["ecr_source"]
        assert (e["repos"], e["auth"]) == (1, 1), e
        for img in IMAGES + ("again/test/tiny:v1",):
            name = pre + "/" + img
            assert lib.skopeo_raw("dst", pre2 + "/" + name) == ecr.raw(name), name

        # China: no url override -> the registry is ACCOUNT.dkr.ecr.REGION.amazonaws.com.cn
        # (moto refuses the aws-partition key there: the listing fails, exit 3)
        res, err = _ecr_sync(ctx, ["--all", "ecrcn:", "dst:" + pre2], "ecr4", check_exit=3)
        assert (res["images"], res["copied"]) == (0, 0), res
        assert "DescribeRepositories" in res["error"], res
        assert "registry https://%s.dkr.ecr.cn-north-1.amazonaws.com.cn" % ECR_ACCOUNT in err, err
        assert "ecr api %s" % ecr.endpoint in err, err
    finally:
        if ecr is not None:
            ecr.stop()
