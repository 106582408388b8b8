"""dth sync --shard I/N against radosgw: N shards, run one after another or
side by side, copy every source key exactly once (radosgw's own log counts
the PUTs), each shard's manifest holds only its range, the shards' LISTs add
up to about one full listing, --delete stays inside a shard's range, --shard
auto reads the schedulers' variables, bad specs are refused; and a rescan
split into parallel ranges asks for exactly the pages of one full listing
(radosgw's counters against a boto3 paging of the same bucket)."""

import json
import os
import random
import subprocess
import urllib.parse

import lib

N_OBJECTS = 6000
PREFIX = "p/"
# Keys (relative to PREFIX) that probe the cuts: equal to the even cut's keys
# of 4 shards ("7g", "OO", "g7"), just around them, at the ends of the byte
# order, with spaces, percent signs and UTF-8.
ODD_KEYS = ["7g", "7g ", "7f~", "OO", "OO/x", "g7", "g6\u00ff", " lead", "!", "~~~",
            "\u00e9t\u00e9/caf\u00e9", "\U0001F600", "100%", "a b+c", "zz/zz"]


def _keys():
    r = random.Random(13)
    alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_"
    keys = set(ODD_KEYS)
    while len(keys) < N_OBJECTS:
        keys.add("".join(r.choice(alphabet) for _ in range(2)) + "/" + "%06d" % len(keys))
    return sorted(keys, key=lambda k: k.encode())


@lib.module_fixture
def source():
    c = lib.s3("a")
    bucket = lib.create_bucket("a", "shard-src")
    objs = {PREFIX + k: ("%s" % k).encode() for k in _keys()}
    md5 = lib.put_objects(c, bucket, objs, workers=32)
    return {"bucket": bucket, "md5": md5}


# ---- an independent computation of the ranges ----

def even_cuts(n):
    """The even cut of shard.h: floor(i * 95^2 / n) as two base-95 digits
    over 0x20..0x7e."""
    out = []
    for i in range(1, n):
        v = i * 95 * 95 // n
        out.append(bytes([0x20 + v // 95, 0x20 + v % 95]))
    return out


def plan_cuts(path):
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    head = lines[0].split()
    assert head[:2] == [b"dth-shard-plan", b"1"], "plan header %r" % lines[0]
    n = int(head[2])
    cuts = [urllib.parse.unquote_to_bytes(x.decode()) for x in lines[1:] if x]
    assert len(cuts) == n - 1, "%d cut keys for %d shards" % (len(cuts), n)
    return cuts


def shard_of(key, cuts):
    """Shard i holds (cut[i-1], cut[i]]."""
    kb = key.encode() if isinstance(key, str) else key
    for i, c in enumerate(cuts):
        if kb <= c:
            return i
    return len(cuts)


def manifest_keys(ctx, task):
    rc, out, err = ctx.manifest("export", task)
    return [json.loads(line)["key"] for line in out.splitlines() if line.strip()]


def puts_per_key(which, offset, want, bucket):
    """{key: number of PUTs} radosgw logged for bucket after offset."""
    counts = {}
    for method, path, status, _ua in lib.rgw_log_requests(which, offset, want=want):
        p, _, q = path.partition("?")
        parts = p.lstrip("/").split("/", 1)
        if method != "PUT" or len(parts) < 2 or parts[0] != bucket or q:
            continue
        k = urllib.parse.unquote(parts[1])
        counts[k] = counts.get(k, 0) + 1
    return counts


def full_listing_pages(bucket, prefix=""):
    """LIST requests of one full listing, as boto3 pages it."""
    c = lib.s3("a")
    kw = {"Bucket": bucket, "MaxKeys": 1000}
    if prefix:
        kw["Prefix"] = prefix
    pages = 0
    while True:
        r = c.list_objects_v2(**kw)
        pages += 1
        if not r["IsTruncated"]:
            return pages
        kw["ContinuationToken"] = r["NextContinuationToken"]


def _check_union(ctx, src, dst, tasks, cuts, b_log0, b_req0):
    want = {k[len(PREFIX):]: v for k, v in src["md5"].items()}
    got = lib.list_all(lib.s3("b"), dst)
    lib.assert_same_keys(got, want)
    bad = [k for k in want if got[k]["etag"] != want[k]]
    assert not bad, "wrong bytes for %s" % bad[:5]
    puts = puts_per_key("b", b_log0, lib.rgw_req("b") - b_req0, dst)
    twice = {k: n for k, n in puts.items() if n != 1}
    assert not twice, "keys PUT more than once: %s" % list(twice.items())[:5]
    assert len(puts) == len(want), "radosgw logged PUTs of %d keys, the source has %d" % (
        len(puts), len(want))
    for i, task in enumerate(tasks):
        keys = manifest_keys(ctx, task)
        outside = [k for k in keys if shard_of(k, cuts) != i]
        assert not outside, "shard %d's manifest holds keys of other shards: %s" % (i, outside[:5])
        mine = [k for k in want if shard_of(k, cuts) == i]
        assert len(keys) == len(mine), "shard %d recorded %d keys, its range has %d" % (
            i, len(keys), len(mine))


def test_plan_shards_one_after_another(ctx):
    src = source()
    dst = ctx.bucket("b", "shard-seq")
    plan = os.path.join(ctx.dir, "plan.txt")
    rc, out, err = ctx.run_dth(["sync", "--config", ctx.config, "--state", ctx.state, "--json",
                                "--make-shard-plan", "4", "--shard-plan", plan,
                                "src:%s/%s" % (src["bucket"], PREFIX), "dst:" + dst])
    info = json.loads(out)
    assert info["from"] == "listing" and info["keys"] == N_OBJECTS, info
    cuts = plan_cuts(plan)
    sizes = [0] * 4
    for k in src["md5"]:
        sizes[shard_of(k[len(PREFIX):], cuts)] += 1
    assert min(sizes) >= N_OBJECTS // 4 - 1000, "unbalanced plan: %s" % sizes
    b_log0, b_req0 = lib.rgw_log_size("b"), lib.rgw_req("b")
    a0 = lib.rgw_counters("a")
    tasks, lists, copied = [], 0, 0
    for i in range(4):
        t = "seq%d" % i
        res = ctx.sync("src:%s/%s" % (src["bucket"], PREFIX), "dst:" + dst, "--shard", "%d/4" % i,
                       "--shard-plan", plan, task=t)
        assert res["failed"] == 0, res
        copied += res["transferred"]
        lists += res["source_requests"]["list"]
        tasks.append(t)
    assert copied == N_OBJECTS, "the shards copied %d of %d" % (copied, N_OBJECTS)
    src_req = lib.counters_delta(a0, lib.rgw_counters("a"))["req"]
    pages = full_listing_pages(src["bucket"], PREFIX)
    # the source saw the LISTs and one GET per object, nothing else
    assert src_req == lists + N_OBJECTS, "source radosgw counted %d requests, dth %d LIST + %d" % (
        src_req, lists, N_OBJECTS)
    assert pages <= lists <= pages + 4, "%d LISTs for 4 shards, one listing is %d" % (lists, pages)
    _check_union(ctx, src, dst, tasks, cuts, b_log0, b_req0)
    # a rescan of the 4 shards: one listing's pages exactly (cuts at page ends)
    a0 = lib.rgw_counters("a")
    lists = 0
    for i in range(4):
        res = ctx.sync("src:%s/%s" % (src["bucket"], PREFIX), "dst:" + dst, "--shard", "%d/4" % i,
                       "--shard-plan", plan, task="seq%d" % i)
        assert res["transferred"] == 0, res
        lists += res["source_requests"]["list"]
    da = lib.counters_delta(a0, lib.rgw_counters("a"))
    assert da["req"] == lists == pages, "rescan of 4 shards: radosgw %d, dth %d LISTs, one listing %d" % (
        da["req"], lists, pages)


def test_even_cut_two_at_once(ctx):
    src = source()
    dst = ctx.bucket("b", "shard-par")
    cuts = even_cuts(4)
    b_log0, b_req0 = lib.rgw_log_size("b"), lib.rgw_req("b")
    tasks = []
    for pair in ((0, 1), (2, 3)):
        procs = []
        for i in pair:
            state = os.path.join(ctx.dir, "state%d" % i)
            cmd = [lib.dth_bin(), "sync", "--config", ctx.config, "--state", state, "--json",
                   "--shard", "%d/4" % i, "src:%s/%s" % (src["bucket"], PREFIX), "dst:" + dst]
            procs.append(subprocess.Popen(cmd, env=ctx.base_env(), stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE))
        for i, p in zip(pair, procs):
            out, err = p.communicate(timeout=300)
            ctx.last_stderr = err.decode()
            assert p.returncode == 0, "shard %d exited %d: %s" % (i, p.returncode, err.decode()[-500:])
            res = lib.parse_sync_json(out.decode())
            assert res["task"].endswith("[shard %d/4]" % i), res["task"]
            tasks.append(res["task"])
    # each shard in its own state directory: check its manifest there
    want = {k[len(PREFIX):]: v for k, v in src["md5"].items()}
    got = lib.list_all(lib.s3("b"), dst)
    lib.assert_same_keys(got, want)
    puts = puts_per_key("b", b_log0, lib.rgw_req("b") - b_req0, dst)
    assert all(n == 1 for n in puts.values()) and len(puts) == len(want), (
        "PUTs per key: %d keys, %d not once" % (len(puts), sum(1 for n in puts.values() if n != 1)))
    for i in range(4):
        ctx.state = os.path.join(ctx.dir, "state%d" % i)
        keys = manifest_keys(ctx, tasks[i])
        assert all(shard_of(k, cuts) == i for k in keys), "shard %d recorded others' keys" % i
        assert len(keys) == sum(1 for k in want if shard_of(k, cuts) == i), "shard %d count" % i
    # the odd keys landed where an independent computation puts them
    assert shard_of("7g", cuts) == 0 and shard_of("7g ", cuts) == 1 and shard_of("g7", cuts) == 2


def test_delete_stays_in_range(ctx):
    c = lib.s3("a")
    src = ctx.bucket("a", "shard-del")
    keys = ["%s/%03d" % (ch, i) for ch in "0AMaz" for i in range(20)]
    lib.put_objects(c, src, {k: k.encode() for k in keys})
    dst = ctx.bucket("b", "shard-deldst")
    cuts = even_cuts(3)
    for i in range(3):
        ctx.sync("src:" + src, "dst:" + dst, "--shard", "%d/3" % i, task="d%d" % i)
    # `dth manifest diff` of a shard's task looks at its range only
    rc, out, err = ctx.manifest("diff", "d0")
    assert out.startswith("0 to copy, 0 to delete"), out
    gone = [k for k in keys if k.endswith("/007")]  # in every shard
    for k in gone:
        c.delete_object(Bucket=src, Key=k)
    res = ctx.sync("src:" + src, "dst:" + dst, "--shard", "1/3", "--delete", task="d1")
    mine = [k for k in gone if shard_of(k, cuts) == 1]
    assert mine and res["deleted"] == len(mine), "shard 1 deleted %s, its range lost %d" % (
        res["deleted"], len(mine))
    left = lib.list_all(lib.s3("b"), dst)
    for k in gone:
        assert (k in left) == (shard_of(k, cuts) != 1), "%s: %s at the destination" % (
            k, "still" if k in left else "not")
    # a task of one shard refuses to run as another, or as the whole
    rc, out, err = ctx.sync("src:" + src, "dst:" + dst, "--shard", "2/3", "--delete", task="d1",
                            check_exit=2, json_out=False)
    assert "copies shard 1/3 even, not 2/3 even" in err, err
    rc, out, err = ctx.sync("src:" + src, "dst:" + dst, "--delete", task="d1", check_exit=2,
                            json_out=False)
    assert "the whole key space" in err, err
    assert len(lib.list_all(lib.s3("b"), dst)) == len(left), "a refused run changed the destination"


def test_shard_auto_from_environment(ctx):
    c = lib.s3("a")
    src = ctx.bucket("a", "shard-auto")
    keys = ["%s%02d" % (ch, i) for ch in "09AZaz" for i in range(5)]
    lib.put_objects(c, src, {k: b"x" for k in keys})
    dst = ctx.bucket("b", "shard-autodst")
    cuts = even_cuts(4)
    envs = [({"SLURM_ARRAY_TASK_ID": "11", "SLURM_ARRAY_TASK_MIN": "10",
              "SLURM_ARRAY_TASK_COUNT": "4"}, "auto", 1),
            ({"JOB_COMPLETION_INDEX": "2"}, "auto/4", 2),
            ({"AWS_BATCH_JOB_ARRAY_INDEX": "3", "DTH_SHARD_COUNT": "4"}, "auto", 3),
            ({"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "4"}, "auto", 0)]
    total = 0
    for env, spec, want in envs:
        rc, out, err = ctx.run_dth(["sync", "--config", ctx.config, "--state", ctx.state, "--json",
                                    "--shard", spec, "src:" + src, "dst:" + dst], env=env)
        res = lib.parse_sync_json(out)
        assert res["task"].endswith("[shard %d/4]" % want), (env, res["task"])
        n = sum(1 for k in keys if shard_of(k, cuts) == want)
        assert res["transferred"] == n, "%s: copied %d, shard %d has %d" % (env, res["transferred"], want, n)
        total += res["transferred"]
    assert total == len(keys)
    lib.assert_same_keys(lib.list_all(lib.s3("b"), dst), {k: None for k in keys})
    # no index in the environment, or no count: a clear error, nothing copied
    for env, spec, msg in (({}, "auto", "no shard index in the environment"),
                           ({"JOB_COMPLETION_INDEX": "1"}, "auto", "use --shard auto/N"),
                           ({"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "4"}, "auto/8",
                            "the scheduler runs 4 shards")):
        rc, out, err = ctx.run_dth(["sync", "--config", ctx.config, "--state", ctx.state,
                                    "--shard", spec, "src:" + src, "dst:" + dst], env=env,
                                   check_exit=2)
        assert msg in err, (env, err)


def test_bad_specs_refused(ctx):
    c = lib.s3("a")
    src = ctx.bucket("a", "shard-bad")
    lib.put_objects(c, src, {"k": b"x"})
    dst = ctx.bucket("b", "shard-baddst")
    plan3 = os.path.join(ctx.dir, "plan3.txt")
    with open(plan3, "w") as f:
        f.write("dth-shard-plan 1 3\nb\na\n")
    plan2 = os.path.join(ctx.dir, "plan2.txt")
    with open(plan2, "w") as f:
        f.write("dth-shard-plan 1 2\nm\n")
    cases = [(["--shard", "4/4"], "not below the count"),
             (["--shard", "1/0"], "count N is 1 to 4096"),
             (["--shard", "1/5000"], "count N is 1 to 4096"),
             (["--shard", "x"], "expected I/N"),
             (["--shard-plan", plan2], "needs --shard"),
             (["--shard", "0/3", "--shard-plan", plan3], "not after the one before it"),
             (["--shard", "0/3", "--shard-plan", plan2], "cuts 2 shards"),
             (["--shard", "0/2", "--shard-plan", os.path.join(ctx.dir, "none")], "No such file"),
             (["--make-shard-plan", "0", "--shard-plan", plan2], "N is 1 to 4096"),
             (["--make-shard-plan", "2"], "takes --shard-plan FILE")]
    for opts, msg in cases:
        rc, out, err = ctx.sync("src:" + src, "dst:" + dst, *opts, check_exit=2, json_out=False)
        assert msg in err, (opts, err)
    assert lib.list_all(lib.s3("b"), dst) == {}, "a refused run copied something"


def test_rescan_in_ranges_lists_one_listing(ctx):
    """Parallel ranges of a rescan start at the source's own page ends, so an
    unchanged source costs the pages of one full listing, even when the
    manifest's order differs from the source's (a filter)."""
    src = source()
    pages = full_listing_pages(src["bucket"])
    for opts in ([], ["--exclude", "*1"]):
        dst = ctx.bucket("b", "shard-rescan")
        t = ctx.task()
        ctx.sync("src:" + src["bucket"], "dst:" + dst, "--concurrency", "8", *opts, task=t)
        for _ in range(2):
            a0 = lib.rgw_counters("a")
            res = ctx.sync("src:" + src["bucket"], "dst:" + dst, "--concurrency", "8", *opts, task=t)
            da = lib.counters_delta(a0, lib.rgw_counters("a"))
            assert res["transferred"] == 0, res
            assert da["req"] == res["source_requests"]["list"] == pages, (
                "rescan %s: radosgw counted %d requests, dth %d LISTs; one full listing is %d" % (
                    opts, da["req"], res["source_requests"]["list"], pages))
