"""dth sync --shard I/N against radosgw: N shards, run one after another or
side by side, copy every source key exactly once (radosgw's own log counts
the PUTs), each shard's manifest holds only its range, the shards' LISTs add
up to about one full listing, --delete stays inside a shard's range, --shard
auto reads the schedulers' variables, bad specs are refused; a rescan
split into parallel ranges asks for exactly the pages of one full listing
(radosgw's counters against a boto3 paging of the same bucket); and agent
tasks with a shard (I/N, a plan file, auto from the agent's environment)
copy and record only their range, from scheduled runs and from events."""

import json
import os
import random
import subprocess
import urllib.parse

import lib
from test_agent import Agent, _dst_md5, _task_section

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


# ---- agent tasks with a shard ----

class _AgentEnv:
    """ctx as an agent started with it sees it: every environment it gives
    also holds env (the variables a scheduler sets for its shard)."""

    def __init__(self, ctx, env):
        self._ctx, self._env = ctx, env

    def __getattr__(self, name):
        return getattr(self._ctx, name)

    def base_env(self, extra=None):
        return self._ctx.base_env(dict(self._env, **(extra or {})))


def _in_shard(keys, cuts, index):
    """The keys (relative to the task's source) in shard index, sorted; some
    must be outside it too, or the test could not tell a shard from the whole."""
    mine = sorted(k for k in keys if shard_of(k, cuts) == index)
    assert mine and len(mine) < len(keys), "the keys do not straddle shard %d: %s" % (index, keys)
    return mine


def _events_done(ag, task, seq):
    """Whether an event run after run seq has ended and nothing is pending."""
    runs = ag.api("GET", "/api/v1/tasks/%s/runs" % task, expect=200).json()["runs"]
    t = ag.task(task)
    return (any(x["seq"] > seq and x["trigger"] == "events" and x["ended"] for x in runs)
            and not t["events"]["pending"] and t["state"] == "idle")


def _manifest_all(ctx, task):
    """Every key the task's manifest records, whatever its status."""
    _, out, _ = ctx.manifest("ls", task, json_out=True)
    return sorted(r["key"] for r in lib.parse_json_records(out))


def _no_failures(ag, task):
    """The agent counts no failed object for task: its runs, its failures
    list and /metrics."""
    runs = ag.api("GET", "/api/v1/tasks/%s/runs?limit=50" % task, expect=200).json()["runs"]
    assert runs and all(r["failed"] == 0 and r["result"] == "ok" for r in runs), runs
    assert ag.api("GET", "/api/v1/tasks/%s/failures" % task, expect=200).json()["objects"] == []
    metrics = ag.api("GET", "/metrics", expect=200).text
    line = [m for m in metrics.splitlines()
            if m.startswith("dth_task_objects_failed_total{") and 'task="%s"' % task in m]
    assert line and line[0].endswith(" 0"), line or metrics[:2000]
    return runs


def _event(bucket, key, md5=None, size=None):
    """An S3 event record for key (URL-encoded as S3 sends it), with the
    object's size and ETag when given (radosgw's records carry them)."""
    obj = {"key": urllib.parse.quote_plus(key, safe="/"), "sequencer": "00"}
    if md5:
        obj.update({"size": size, "eTag": md5})
    return {"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": bucket}, "object": obj}}


# Keys (relative to the prefix) on both sides of the even cut of 2 ("OO")
# and of the plan's cut ("m"), equal to them, and at the ends of the byte
# order; the events overwrite them all and add NEW_KEYS.
AGENT_KEYS = ["00", "7g", "OO", "OO0", "O~", "Zz", "a1", "m", "m0", "zz", "~x", "sp ace",
              "caf\u00e9"]
NEW_KEYS = ["ON~", "OO-", "l", "m-"]


def test_agent_shard_events(ctx):
    """Two agent tasks over one source with webhook events: `lo` has
    shard = 0/2 (the even cut), `hi` shard = 1/2 with a shard_plan file.
    Their first scheduled runs and then events for keys on both sides of
    each cut copy only their own range (the destination through boto3, an
    independent computation of the ranges); the other keys are neither
    copied nor recorded in the manifest, and neither the runs, the
    failures list nor /metrics count them as failed."""
    a, b = lib.s3("a"), lib.s3("b")
    src, dst = ctx.bucket("a", "shev-src"), ctx.bucket("b", "shev-dst")
    first = {k: ("first " + k).encode() for k in AGENT_KEYS}
    later = {k: ("later, longer " + k).encode() for k in AGENT_KEYS + NEW_KEYS}
    lib.put_objects(a, src, {"in/" + k: v for k, v in first.items()})
    plan = os.path.join(ctx.dir, "plan.txt")
    with open(plan, "w") as f:
        f.write("dth-shard-plan 1 2\nm\n")
    cuts = {"lo": (even_cuts(2), 0), "hi": ([b"m"], 1)}
    ctx.write_config(extra=_task_section("lo", "src:%s/in/" % src, "dst:%s/lo/" % dst,
                                         schedule="every 1h", events="webhook", shard="0/2")
                     + _task_section("hi", "src:%s/in/" % src, "dst:%s/hi/" % dst,
                                     schedule="every 1h", events="webhook", shard="1/2",
                                     shard_plan=plan))
    with Agent(ctx) as ag:
        for task, (c, i) in cuts.items():
            ag.wait_runs(task, 1)
            mine = _in_shard(first, c, i)
            want = {"%s/%s" % (task, k): lib.md5hex(first[k]) for k in mine}
            assert _dst_md5(b, dst, task + "/") == want, "%s: the first run copied %s" % (
                task, sorted(_dst_md5(b, dst, task + "/")))
        lib.put_objects(a, src, {"in/" + k: v for k, v in later.items()})
        for task, (c, i) in cuts.items():
            seq = ag.task(task)["last_run"]["seq"]
            recs = [_event(src, "in/" + k, lib.md5hex(v) if n % 2 else None, len(v))
                    for n, (k, v) in enumerate(sorted(later.items()))]
            r = ag.api("POST", "/api/v1/tasks/%s/events" % task, body={"Records": recs},
                       expect=202).json()
            # the other shard's keys are ignored as they come, and say why
            assert r["accepted"] == len(_in_shard(later, c, i)), r
            assert r["ignored"] == len(later) - r["accepted"], r
            assert lib.wait_for(lambda: _events_done(ag, task, seq), 30), ag.task(task)
        for task, (c, i) in cuts.items():
            mine = _in_shard(later, c, i)
            want = {"%s/%s" % (task, k): lib.md5hex(later[k]) for k in mine}
            got = _dst_md5(b, dst, task + "/")
            assert got == want, "%s: copied %s, its range holds %s" % (
                task, sorted(got), sorted(want))
            assert _manifest_all(ctx, task) == mine, "%s: the manifest records %s" % (
                task, _manifest_all(ctx, task))
            runs = _no_failures(ag, task)
            ev = [x for x in runs if x["trigger"] == "events"]
            assert sum(x["transferred"] for x in ev) == len(mine), ev
            assert ag.task(task)["events"]["backlog"] == 0, ag.task(task)["events"]
            _, out, _ = ctx.manifest("ls", task, "--status", "failed", json_out=True)
            assert lib.parse_json_records(out) == [], out


def test_agent_shard_auto(ctx):
    """An agent whose environment carries a Kubernetes Indexed Job's index
    (JOB_COMPLETION_INDEX=1) and DTH_SHARD_COUNT=3: its task with
    shard = auto copies shard 1 of 3 in its scheduled full run, one with
    shard = auto/4 shard 1 of 4, each no key outside it (destination and
    manifest against an independent computation of the even cut). Without
    an index in the environment, the run fails with the reason and copies
    nothing."""
    a, b = lib.s3("a"), lib.s3("b")
    src, dst = ctx.bucket("a", "shauto-src"), ctx.bucket("b", "shauto-dst")
    objs = {"%s%02d" % (ch, i): ("%s%d" % (ch, i)).encode() for ch in "09AOPZaz" for i in range(3)}
    lib.put_objects(a, src, objs)
    tasks = {"ka": ("auto", 3), "kb": ("auto/4", 4)}
    ctx.write_config(extra="".join(_task_section(t, "src:" + src, "dst:%s/%s/" % (dst, t),
                                                 schedule="every 1h", shard=spec)
                                   for t, (spec, _) in tasks.items()))
    env = {"JOB_COMPLETION_INDEX": "1", "DTH_SHARD_COUNT": "3"}
    with Agent(_AgentEnv(ctx, env)) as ag:
        for t, (_, n) in tasks.items():
            ag.wait_runs(t, 1)
            mine = _in_shard(objs, even_cuts(n), 1)
            got = _dst_md5(b, dst, t + "/")
            want = {"%s/%s" % (t, k): lib.md5hex(objs[k]) for k in mine}
            assert got == want, "%s: copied %s, shard 1/%d holds %s" % (
                t, sorted(got), n, sorted(want))
            assert _manifest_all(ctx, t) == mine, (t, _manifest_all(ctx, t))
            runs = _no_failures(ag, t)
            assert runs[0]["transferred"] == len(mine), runs
    # the same tasks in an agent without the index: a clear error, no copy
    before = lib.list_all(b, dst)
    with Agent(ctx) as ag:
        ag.api("POST", "/api/v1/tasks/ka/actions/run", expect=202)
        t = ag.wait_runs("ka", 2)
        assert t["last_run"]["result"] != "ok", t
        assert "no shard index in the environment" in json.dumps(t), t
    assert lib.list_all(b, dst) == before
