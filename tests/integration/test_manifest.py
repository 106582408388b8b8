"""dth manifest: tasks, ls, stat, stats, export, diff and verify, on the
manifest a real sync wrote. Output formats beyond the contract are read
loosely: keys must appear, counts must be right."""

import json

import lib
from lib import MiB

TASK = "mtask"


@lib.module_fixture
def synced():
    """61 objects (30 under m/a/, 30 under m/b/, one 6 MiB multipart copy)
    synced A -> B as task mtask. Read-only for the tests."""
    c = lib.s3("a")
    src = lib.create_bucket("a", "mf-src")
    objs = lib.small_objects("m/a/", 30, "mf-a")
    objs.update(lib.small_objects("m/b/", 30, "mf-b"))
    objs["m/big"] = lib.det_bytes("mf-big", 6 * MiB)
    md5 = lib.put_objects(c, src, objs)
    sizes = {k: len(v) for k, v in objs.items()}
    dst = lib.create_bucket("b", "mf-dst")
    fctx = lib.fixture_context("test_manifest.synced")
    rc, out, err = fctx.sync("src:" + src, "dst:" + dst, "--multipart-threshold", "5M", task=TASK,
                             check_exit=None, json_out=False)
    return {"src": src, "dst": dst, "md5": md5, "sizes": sizes, "state": fctx.state,
            "config": fctx.config, "rc": rc, "err": err}


def _use(ctx):
    f = synced()
    ctx.state, ctx.config = f["state"], f["config"]
    if f["rc"] != 0:
        ctx.last_stderr = f["err"]
        raise AssertionError("the fixture's dth sync exited %d" % f["rc"])
    return f


def _leaves(v, path=()):
    """(path, number) for every number in a JSON value."""
    if isinstance(v, dict):
        for k, x in v.items():
            yield from _leaves(x, path + (str(k),))
    elif isinstance(v, list):
        for i, x in enumerate(v):
            yield from _leaves(x, path + (str(i),))
    elif isinstance(v, (int, float)) and not isinstance(v, bool):
        yield path, v


def _key_of(rec):
    if isinstance(rec, dict):
        for k in ("key", "Key", "name"):
            if k in rec:
                return rec[k]
    return None


def test_manifest_tasks(ctx):
    _use(ctx)
    rc, out, err = ctx.manifest("tasks")
    assert TASK in out, "task %s not listed: %r" % (TASK, out[:300])
    rc, out, err = ctx.manifest("tasks", json_out=True)
    recs = lib.parse_json_records(out)
    assert any(TASK in json.dumps(r) for r in recs), "task %s not in --json: %r" % (TASK, out[:300])


def test_manifest_stats(ctx):
    f = _use(ctx)
    n, total = len(f["md5"]), sum(f["sizes"].values())
    rc, out, err = ctx.manifest("stats", TASK, json_out=True)
    stats = json.loads(out)
    leaves = list(_leaves(stats))
    done = [v for p, v in leaves if "done" in p]
    assert n in done, "no 'done' count of %d in %s" % (n, out[:500])
    assert total in done, "no 'done' byte total of %d in %s" % (total, out[:500])
    failed = [v for p, v in leaves if "failed" in p]
    assert failed and all(v == 0 for v in failed), "failed counters: %s" % out[:500]
    rc, out, err = ctx.manifest("stats", TASK)
    assert "done" in out and str(n) in out, "text stats lack the done count: %r" % out[:500]


def test_manifest_ls(ctx):
    f = _use(ctx)
    rc, out, err = ctx.manifest("ls", TASK, "--status", "done", json_out=True)
    keys = [_key_of(r) for r in lib.parse_json_records(out)]
    lib.assert_same_keys(keys, f["md5"], "ls --status done")
    assert len(keys) == len(f["md5"]), "duplicates in ls"
    rc, out, err = ctx.manifest("ls", TASK, "m/a/", json_out=True)
    keys = [_key_of(r) for r in lib.parse_json_records(out)]
    lib.assert_same_keys(keys, [k for k in f["md5"] if k.startswith("m/a/")], "ls with a prefix")
    rc, out, err = ctx.manifest("ls", TASK, "--status", "failed", json_out=True)
    assert lib.parse_json_records(out) == [], "ls --status failed lists %r" % out[:300]
    rc, out, err = ctx.manifest("ls", TASK, "--status", "done")
    lines = [l for l in out.splitlines() if l.strip()]
    assert len(lines) == len(f["md5"]), "text ls: %d lines for %d objects" % (len(lines), len(f["md5"]))
    rc, out, err = ctx.manifest("ls", TASK, "m/b/", "--long")
    for k in (k for k in f["md5"] if k.startswith("m/b/")):
        line = [l for l in out.splitlines() if k in l]
        assert line and f["md5"][k] in line[0], "ls --long line of %s lacks its ETag: %r" % (k, line)


def test_manifest_stat(ctx):
    f = _use(ctx)
    for key in ("m/a/00003", "m/big"):
        rc, out, err = ctx.manifest("stat", TASK, key, json_out=True)
        rec = json.loads(out)
        text = json.dumps(rec)
        assert _key_of(rec) == key or key in text, "stat %s: key missing: %s" % (key, text)
        nums = [v for p, v in _leaves(rec) if "size" in p[-1]]
        assert f["sizes"][key] in nums, "stat %s: size %d missing: %s" % (key, f["sizes"][key], text)
        assert '"done"' in text, "stat %s: status done missing: %s" % (key, text)
        src_etag = lib.head(lib.s3("a"), f["src"], key)["ETag"].strip('"')
        assert src_etag in text, "stat %s: ETag %s missing: %s" % (key, src_etag, text)
    rc, out, err = ctx.manifest("stat", TASK, "m/no-such-key", check_exit=None)
    assert rc != 0, "stat of a missing key exited 0"


def test_manifest_export(ctx):
    f = _use(ctx)
    rc, out, err = ctx.manifest("export", TASK)
    lines = [l for l in out.splitlines() if l.strip()]
    assert len(lines) == len(f["md5"]), "export: %d lines for %d objects" % (len(lines), len(f["md5"]))
    keys = [_key_of(json.loads(l)) for l in lines]
    lib.assert_same_keys(keys, f["md5"], "export")


def _small_task(ctx, tag, n):
    c = lib.s3("a")
    src = ctx.bucket("a", tag + "-src")
    md5 = lib.put_objects(c, src, lib.small_objects("k/", n, tag))
    dst = ctx.bucket("b", tag + "-dst")
    res = ctx.sync("src:" + src, "dst:" + dst, task=tag)
    assert res["transferred"] == n and res["failed"] == 0, res
    return src, dst, md5


def test_manifest_diff_shows_changes(ctx):
    src, dst, md5 = _small_task(ctx, "mdiff", 20)
    changed = ["k/00004", "k/00015"]
    lib.put_objects(lib.s3("a"), src, {k: b"changed " + k.encode() for k in changed})
    rc, out, err = ctx.manifest("diff", "mdiff", check_exit=(0, 1))
    for k in changed:
        assert k in out, "diff does not show %s: %r" % (k, out[:500])
    others = [k for k in md5 if k not in changed and k in out]
    assert not others, "diff shows unchanged objects %s" % others[:5]
    rc, out, err = ctx.manifest("diff", "mdiff", json_out=True, check_exit=(0, 1))
    recs = lib.parse_json_records(out)
    keys = sorted(_key_of(r) for r in recs)
    assert keys == changed, "diff --json: %s, expected %s" % (keys, changed)
    # diff only looks: a sync still copies exactly those two.
    res = ctx.sync("src:" + src, "dst:" + dst, task="mdiff")
    assert res["transferred"] == 2, res


def test_manifest_verify(ctx):
    src, dst, md5 = _small_task(ctx, "mverify", 15)
    rc, out, err = ctx.manifest("verify", "mverify")
    gone = "k/00007"
    lib.s3("b").delete_object(Bucket=dst, Key=gone)
    rc, out, err = ctx.manifest("verify", "mverify", check_exit=None)
    assert rc != 0, "verify exited 0 with an object missing at the destination"
    assert gone in out + err, "verify does not name %s: %r" % (gone, (out + err)[:500])
    others = [k for k in md5 if k != gone and k in out + err]
    assert not others, "verify reports intact objects %s" % others[:5]
