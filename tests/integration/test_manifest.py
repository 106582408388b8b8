"""dth manifest: tasks, ls, stat, stats, export, diff and verify, on the
manifest a real sync wrote. Output formats beyond the contract are read
loosely: keys must appear, counts must be right."""

import json
import os
import subprocess
import time

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


# ---- several state directories: the shards of one task read as one ----

SHARDS = ("s/a/", "s/b/", "s/c/")


def _multi(ctx, dirs, *args, check_exit=0, json_out=False):
    """dth manifest --state D1 --state D2 ... ARGS [--json]."""
    a = ["manifest"]
    for d in dirs:
        a += ["--state", d]
    a += list(args)
    if json_out:
        a.append("--json")
    return ctx.run_dth(a, env={"DTH_CONFIG": ctx.config}, check_exit=check_exit)


def _export_keys(ctx, dirs, task):
    rc, out, err = _multi(ctx, dirs, "export", task)
    return [_key_of(json.loads(l)) for l in out.splitlines() if l.strip()]


def _sharded(ctx, tag, per=350):
    """A bucket of three prefixes synced as task TAG by three shards (one
    --include and one state directory each), then by one run of the whole
    bucket into a fourth state directory (which adopts what the shards
    copied). Returns (src, dst, md5, shard dirs, whole dir)."""
    c = lib.s3("a")
    src = ctx.bucket("a", tag + "-src")
    objs = {}
    for i, p in enumerate(SHARDS):
        objs.update(lib.small_objects(p, per, "%s-%d" % (tag, i)))
    md5 = lib.put_objects(c, src, objs)
    dst = ctx.bucket("b", tag + "-dst")
    dirs = [os.path.join(ctx.dir, "shard%d" % i) for i in range(len(SHARDS))]
    for p, d in zip(SHARDS, dirs):
        res = ctx.sync("src:" + src, "dst:" + dst, "--include", "/" + p, task=tag, state=d)
        assert res["transferred"] == per and res["failed"] == 0, (p, res)
    whole = os.path.join(ctx.dir, "whole")
    res = ctx.sync("src:" + src, "dst:" + dst, task=tag, state=whole)
    assert res["transferred"] == 0 and res["failed"] == 0, res
    return src, dst, md5, dirs, whole


def _files_of(dirs):
    """Name, size and mtime of every file in dirs: what a read must not change."""
    out = {}
    for d in dirs:
        for n in sorted(os.listdir(d)):
            if n.endswith(".mdb"):
                st = os.stat(os.path.join(d, n))
                out[(d, n)] = (n == "lock.mdb" or st.st_size, n == "lock.mdb" or st.st_mtime_ns)
            else:
                out[(d, n)] = True
    return out


def _stats(ctx, dirs, task):
    rc, out, err = _multi(ctx, dirs, "stats", task, json_out=True)
    return json.loads(out)


def test_manifest_shards_as_one(ctx):
    """stats, ls, export, verify and diff over three shards' state
    directories (1,050 keys) equal those of one run of the whole bucket; the
    diff sends one listing of the source (2 pages); a key deleted at the
    destination is found by the three-directory verify."""
    tag = "mshard"
    src, dst, md5, dirs, whole = _sharded(ctx, tag)
    before = _files_of(dirs)
    # each shard recorded only its prefix: the three are disjoint
    for p, d in zip(SHARDS, dirs):
        keys = _export_keys(ctx, [d], tag)
        assert keys and all(k.startswith(p) for k in keys), (d, keys[:3])
    st3, st1 = _stats(ctx, dirs, tag), _stats(ctx, [whole], tag)
    for k in ("count", "bytes", "total_count", "total_bytes"):
        assert st3[k] == st1[k], "stats %s: 3 dirs %s, whole %s" % (k, st3[k], st1[k])
    assert st3["total_count"] == len(md5) and st3["count"]["done"] == len(md5), st3
    assert st3["state_dirs"] == dirs and "state_dirs" not in st1, (st3, st1)
    # tasks: each directory's task, named by its directory
    rc, out, err = _multi(ctx, dirs, "tasks", json_out=True)
    ts = json.loads(out)["tasks"]
    assert [(t["state_dir"], t["name"]) for t in ts] == [(d, tag) for d in dirs], ts
    assert sum(t["done"] for t in ts) == len(md5) and [t["done"] for t in ts] == [
        len(_export_keys(ctx, [d], tag)) for d in dirs], ts
    rc, out, err = _multi(ctx, dirs, "tasks")
    heads = [ln for ln in out.splitlines() if ln.endswith(":")]
    assert heads == [d + ":" for d in dirs] and out.count(tag + " ") == 3, out
    keys3 = _export_keys(ctx, dirs, tag)
    assert keys3 == sorted(md5, key=lambda k: k.encode()), "merged export not the sorted keys"
    assert keys3 == _export_keys(ctx, [whole], tag)
    rc, out, err = _multi(ctx, dirs, "ls", tag, "s/b/", "--status", "done")
    assert out.split() == [k for k in keys3 if k.startswith("s/b/")], out[:300]
    rc, out, err = _multi(ctx, dirs, "stat", tag, "s/c/00007", json_out=True)
    assert json.loads(out)["etag"] == md5["s/c/00007"], out
    # verify: all there, then one key deleted at the destination (shard 1's)
    rc, out, err = _multi(ctx, dirs, "verify", tag, json_out=True)
    v = json.loads(out)
    assert (v["checked"], v["ok"], v["mismatches"]) == (len(md5), len(md5), 0), v
    gone = "s/b/00011"
    lib.s3("b").delete_object(Bucket=dst, Key=gone)
    for d in (dirs, [whole]):
        rc, out, err = _multi(ctx, d, "verify", tag, json_out=True, check_exit=1)
        v = json.loads(out)
        assert v["mismatches"] == 1 and v["ok"] == len(md5) - 1, v
        assert [p["key"] for p in v["problems"]] == [gone], v["problems"]
    # diff: two changed at the source, one new, one gone from the source
    c = lib.s3("a")
    lib.put_objects(c, src, {"s/a/00003": b"changed", "s/c/00020": b"changed too",
                             "s/b/new": b"new one", "t/new": b"outside every shard"})
    c.delete_object(Bucket=src, Key="s/c/00001")
    # one listing of the source for the three directories, as for one
    # (radosgw's own request counters; the destination is not listed: every
    # shard's first run did)
    reqs, outs = [], []
    for d in (dirs, [whole]):
        a0, b0 = lib.rgw_counters("a"), lib.rgw_counters("b")
        rc, out, err = _multi(ctx, d, "diff", tag, json_out=True)
        reqs.append((lib.counters_delta(a0, lib.rgw_counters("a"))["req"],
                     lib.counters_delta(b0, lib.rgw_counters("b"))["req"]))
        outs.append(out)
    pages = (len(md5) + 2 + 999) // 1000
    assert reqs == [(pages, 0), (pages, 0)], "requests (source, destination): %s" % reqs
    d3, d1 = json.loads(outs[0]), json.loads(outs[1])
    assert d3["items"] == d1["items"] and d3["planned"] == d1["planned"], (d3, d1)
    acts = {i["key"]: i["action"] for i in d3["items"]}
    assert acts == {"s/a/00003": "changed", "s/c/00020": "changed", "s/b/new": "new",
                    "t/new": "new", "s/c/00001": "gone"}, acts
    assert d3["planned"]["skip"] == len(md5) - 3, d3["planned"]
    rc, text, err = _multi(ctx, dirs, "diff", tag)
    assert "4 to copy" in text and "gone from the source" in text, text[-300:]
    # merge into one manifest: the same stats, and its verify finds the gap
    merged = os.path.join(ctx.dir, "merged")
    rc, out, err = _multi(ctx, dirs, "merge", tag, "--into", merged, json_out=True)
    assert json.loads(out)["records"] == len(md5), out
    stm = _stats(ctx, [merged], tag)
    assert (stm["count"], stm["bytes"]) == (st3["count"], st3["bytes"]), (stm, st3)
    rc, out, err = _multi(ctx, [merged], "verify", tag, json_out=True, check_exit=1)
    assert [p["key"] for p in json.loads(out)["problems"]] == [gone], out
    rc, out, err = _multi(ctx, dirs, "merge", tag, "--into", merged, check_exit=2)
    assert "already holds a manifest" in err, err
    # the shards' directories were only read: no file made, data.mdb untouched
    assert _files_of(dirs) == before, (_files_of(dirs), before)


def test_manifest_shards_overlap(ctx):
    """A key recorded in two state directories is an error naming both."""
    tag = "moverlap"
    c = lib.s3("a")
    src = ctx.bucket("a", tag + "-src")
    md5 = lib.put_objects(c, src, lib.small_objects("o/", 12, tag))
    dst = ctx.bucket("b", tag + "-dst")
    d1, d2 = os.path.join(ctx.dir, "one"), os.path.join(ctx.dir, "two")
    ctx.sync("src:" + src, "dst:" + dst, "--include", "/o/0000?", task=tag, state=d1)
    # the second shard's range wrongly takes o/00009 too
    ctx.sync("src:" + src, "dst:" + dst, "--include", "/o/00009", "--include", "/o/0001?",
             task=tag, state=d2)
    for cmd in (["export", tag], ["verify", tag], ["diff", tag], ["ls", tag],
                ["stat", tag, "o/00009"], ["merge", tag, "--into", os.path.join(ctx.dir, "m")]):
        rc, out, err = _multi(ctx, [d1, d2], *cmd, check_exit=1)
        assert "o/00009" in err and d1 in err and d2 in err and "two shards" in err, (cmd, err)
    # the keys before the overlap came in order, and nothing after it
    rc, out, err = _multi(ctx, [d1, d2], "ls", tag, check_exit=1)
    assert out.split() == ["o/0000%d" % i for i in range(9)], out


def test_manifest_shards_bad_dirs(ctx):
    """A directory that does not exist, is not a manifest, lacks the task or
    is given twice is named, and nothing is created in it."""
    src, dst, md5 = _small_task(ctx, "mbad", 3)
    missing = os.path.join(ctx.dir, "nope")
    empty = os.path.join(ctx.dir, "empty")
    os.mkdir(empty)
    other = os.path.join(ctx.dir, "other")
    ctx.sync("src:" + src, "dst:" + dst, task="another", state=other)
    for dirs, words in (([ctx.state, missing], [missing, "No such file"]),
                        ([ctx.state, empty], [empty, "not a dth manifest"]),
                        ([ctx.state, other], [other, "no task called 'mbad'"]),
                        ([ctx.state, ctx.state], ["given twice"])):
        for cmd in ("stats", "verify", "export"):
            rc, out, err = _multi(ctx, dirs, cmd, "mbad", check_exit=2)
            assert all(w in err for w in words), (cmd, dirs, err)
    # tasks lists each directory's own, and names one that holds no manifest
    rc, out, err = _multi(ctx, [ctx.state, other], "tasks", json_out=True)
    assert [(t["state_dir"], t["name"]) for t in json.loads(out)["tasks"]] == [
        (ctx.state, "mbad"), (other, "another")], out
    for bad in (missing, empty):
        rc, out, err = _multi(ctx, [ctx.state, bad], "tasks", check_exit=2)
        assert bad in err, err
    assert not os.path.exists(missing) and os.listdir(empty) == [], os.listdir(empty)


def _anon_peak(ctx, args):
    """Run dth ARGS (exit 0); the peak of its RssAnon (heap and stacks, not
    the mapped manifest), sampled from /proc every 5 ms: a rough figure."""
    exe = lib.dth_bin()
    p = subprocess.Popen([exe] + args, env=ctx.base_env({"DTH_CONFIG": ctx.config}),
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while p.poll() is None:
        try:
            with open("/proc/%d/status" % p.pid) as f:
                for line in f:
                    if line.startswith("RssAnon:"):
                        peak = max(peak, int(line.split()[1]) * 1024)
        except (FileNotFoundError, ProcessLookupError, ValueError):
            pass
        time.sleep(0.005)
    err = p.stderr.read().decode("utf-8", "replace")
    p.stderr.close()
    ctx.last_stderr = err
    assert p.returncode == 0, "dth %s exited %d: %s" % (args[:2], p.returncode, err[-500:])
    return peak


def test_manifest_shards_memory(ctx):
    """verify and export over three state directories hold a bounded number
    of keys: from 900 to 6,000 keys of 770 bytes (holding them all would add
    about 3.7 MiB of key bytes alone), their peak anonymous memory grows by
    less than 1.5 MiB."""
    long = "/".join(c * 250 for c in "xyz")  # a 752-byte directory path
    peaks = {}
    for n in (300, 2000):
        root = os.path.join(ctx.dir, "src%d" % n)
        for p in SHARDS:
            d = os.path.join(root, p, long)
            os.makedirs(d)
            for i in range(n):
                with open(os.path.join(d, "%05d" % i), "wb") as f:
                    f.write(b"%d" % i)
        dst = ctx.bucket("b", "mmem%d" % n)
        task = "mmem%d" % n
        dirs = [os.path.join(ctx.dir, "m%d-%d" % (n, i)) for i in range(len(SHARDS))]
        for p, d in zip(SHARDS, dirs):
            res = ctx.sync(root, "dst:" + dst, "--include", "/" + p, task=task, state=d,
                           timeout=600)
            assert res["transferred"] == n and res["failed"] == 0, res
        args = ["manifest"]
        for d in dirs:
            args += ["--state", d]
        rc, out, err = ctx.run_dth(args + ["verify", task], env={"DTH_CONFIG": ctx.config})
        assert "%d checked, %d ok, 0 mismatched" % (3 * n, 3 * n) in out, out
        peaks[n] = (_anon_peak(ctx, args + ["verify", task]),
                    _anon_peak(ctx, args + ["export", task]))
    print("# peak RssAnon (verify, export) at 900 keys: %s; at 6,000 keys: %s" % (
        peaks[300], peaks[2000]))
    for i, what in enumerate(("verify", "export")):
        grow = peaks[2000][i] - peaks[300][i]
        assert grow < 1.5 * MiB, "%s: RssAnon grew by %d bytes with 6.7x the keys" % (what, grow)
