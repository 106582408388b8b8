"""deploy/slurm/dth-array.sbatch, the very file, run as a 4-task Slurm array
job on a one-node Slurm cluster (tests/harness/slurm.sh, started and stopped
here) against radosgw: 20,000 objects copied from A to B by 4 shards
(`dth sync --shard auto`, with a plan made once by --make-shard-plan).
Checked with the servers' own records, not dth's report:
  - boto3: every source key is at the destination with the source's ETag and
    size, and a sample of them byte for byte;
  - radosgw B's access log: each key was PUT exactly once, by the 4 tasks
    together;
  - radosgw A's access log: the source was listed about once in all,
    ceil(20000/1000) pages plus at most one more per shard;
  - each task's manifest (`dth manifest export` of its state dir) holds only
    keys of its range of the plan, and the four hold every key once.
Skipped when Slurm is not installed, unless DTH_TEST_REQUIRE_SLURM is set
(tests/run-all.sh sets it: install-deps.sh installs Slurm)."""

import json
import math
import os
import random
import shutil
import subprocess
import tempfile
import time
import urllib.parse

import lib

SBATCH = os.path.join(lib.REPO, "deploy", "slurm", "dth-array.sbatch")
HARNESS = os.path.join(lib.REPO, "tests", "harness", "slurm.sh")
N_OBJECTS = 20000
SHARDS = 4
PAGE = 1000  # keys per ListObjects page (radosgw's and S3's maximum)


def _need_slurm():
    missing = [b for b in ("sbatch", "squeue", "slurmctld", "slurmd", "munged")
               if not shutil.which(b)]
    if missing:
        why = "%s not found (apt-get install --no-install-recommends slurmctld slurmd " \
              "slurm-client munge)" % ", ".join(missing)
        if os.environ.get("DTH_TEST_REQUIRE_SLURM"):
            raise AssertionError("%s, and DTH_TEST_REQUIRE_SLURM is set" % why)
        lib.skip(why)
    if os.geteuid() != 0:
        lib.skip("the Slurm harness runs its daemons as root")


class Slurm:
    """tests/harness/slurm.sh start/stop around a block; its directory is
    short (a munge socket path must fit in 108 bytes), under /tmp."""

    def __init__(self, cpus):
        self.dir = tempfile.mkdtemp(prefix="dth-slurm.", dir="/tmp")
        self.env = dict(os.environ, SLURM_CPUS=str(cpus))

    def __enter__(self):
        p = subprocess.run(["bash", HARNESS, "start", self.dir], env=self.env,
                           capture_output=True, text=True, timeout=120)
        if p.returncode != 0:
            self.__exit__()
            raise AssertionError("slurm.sh start failed: %s" % p.stderr[-2000:])
        self.conf = os.path.join(self.dir, "slurm.conf")
        return self

    def __exit__(self, *exc):
        subprocess.run(["bash", HARNESS, "stop", self.dir], env=self.env,
                       capture_output=True, timeout=120)

    def jobcomp(self):
        try:
            with open(os.path.join(self.dir, "log", "jobcomp.txt")) as f:
                return f.read()
        except OSError:
            return ""


def _seed(ctx):
    """20,000 small objects on A, under a few common prefixes (so an even cut
    of the key alphabet would be lopsided and the plan matters). Uploaded by
    `dth sync` from a local directory: several times faster here than boto3,
    whose threads are held by the GIL; what arrived is checked by boto3 at
    the end (every ETag against the MD5 of the file written here)."""
    r = random.Random(13)
    top = os.path.join(ctx.dir, "seed")
    md5 = {}
    for i in range(N_OBJECTS):
        key = "%s/%04d/obj-%05d" % (r.choice(["logs", "photos", "data"]), i % 97, i)
        data = lib.det_bytes("slurm-%d" % i, 1 + i % 700)
        path = os.path.join(top, key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        md5[key] = lib.md5hex(data)
    src = ctx.bucket("a", "slurm-src")
    ctx.run_dth(["sync", "--config", ctx.config, "--state", os.path.join(ctx.dir, "seed-state"),
                 "--task", "seed", "--concurrency", "64", "--no-progress", top, "src:" + src],
                timeout=600)
    return src, md5


def _load_plan(path):
    """The cut keys of a plan file: a header 'dth-shard-plan 1 N', then N-1
    percent-encoded keys, one a line."""
    with open(path) as f:
        lines = f.read().splitlines()
    head = lines[0].split()
    assert head[:2] == ["dth-shard-plan", "1"], "plan header %r" % lines[0]
    n = int(head[2])
    cuts = [urllib.parse.unquote_to_bytes(ln) for ln in lines[1:] if ln]
    assert len(cuts) == n - 1 and cuts == sorted(cuts), "plan of %d shards has cuts %r" % (n, cuts)
    return cuts


def _shard_of(key, cuts):
    """Shard 0 holds k <= c1, shard i c(i) < k <= c(i+1), the last k > c(N-1)."""
    k = key.encode()
    for i, c in enumerate(cuts):
        if k <= c:
            return i
    return len(cuts)


def _manifest_keys(ctx, state, task):
    _, out, _ = ctx.run_dth(["manifest", "--state", state, "export", task], timeout=120)
    return [json.loads(ln)["key"] for ln in out.splitlines() if ln.strip()]


def _submit(ctx, slurm, env):
    """sbatch --wait the array job from the test dir; returns its job id."""
    full = dict(ctx.base_env(env), SLURM_CONF=slurm.conf)
    p = subprocess.run(["sbatch", "--wait", "--parsable", "--chdir", ctx.dir, SBATCH],
                       env=full, capture_output=True, text=True, timeout=900)
    outs = ""
    for fn in sorted(os.listdir(ctx.dir)):
        if fn.startswith("dth-sync-"):
            with open(os.path.join(ctx.dir, fn)) as f:
                text = f.read()
            ctx._outputs.append(text)
            if fn.endswith(".err"):
                outs += "--- %s\n%s\n" % (fn, text[-1500:])
    assert p.returncode == 0, "sbatch --wait exited %d: %s\n%s\njobcomp:\n%s" % (
        p.returncode, p.stderr, outs, slurm.jobcomp())
    return p.stdout.strip().split(";")[0]


def test_array_job_four_shards(ctx):
    _need_slurm()
    t0 = time.monotonic()
    src, md5 = _seed(ctx)
    t_seed = time.monotonic() - t0
    dst = ctx.bucket("b", "slurm-dst")
    plan = os.path.join(ctx.dir, "shard.plan")
    ctx.run_dth(["sync", "--config", ctx.config, "--state", os.path.join(ctx.dir, "plan-state"),
                 "--task", "plan", "--make-shard-plan", str(SHARDS), "--shard-plan", plan,
                 "src:" + src, "dst:" + dst], timeout=180)
    cuts = _load_plan(plan)
    assert len(cuts) == SHARDS - 1
    env = {"DTH_CONFIG": ctx.config, "DTH_SOURCE": "src:" + src, "DTH_DESTINATION": "dst:" + dst,
           "DTH_STATE_ROOT": os.path.join(ctx.dir, "shards"), "DTH_SHARD_PLAN": plan,
           "DTH_TASK": "array-copy", "DTH": os.path.abspath(lib.dth_bin()),
           "DTH_SYNC_OPTIONS": "--concurrency 16"}
    off_a, off_b = lib.rgw_log_size("a"), lib.rgw_log_size("b")
    req_a, req_b = lib.rgw_req("a"), lib.rgw_req("b")
    # all 4 tasks at once: tell Slurm the node has 4 CPUs (it has 2 here)
    with Slurm(cpus=SHARDS) as slurm:
        t1 = time.monotonic()
        job = _submit(ctx, slurm, env)
        t_job = time.monotonic() - t1
    for i in range(SHARDS):
        with open(os.path.join(ctx.dir, "dth-sync-%s_%d.out" % (job, i))) as f:
            res = lib.parse_sync_json(f.read())
        assert res["failed"] == 0, "task %d: %s" % (i, res)

    # the destination, by boto3: every key, same ETag and size; a sample by bytes
    got = lib.list_all(lib.s3("b"), dst)
    lib.assert_same_keys(got, md5)
    bad = [k for k, m in md5.items() if got[k]["etag"] != m]
    assert not bad, "%d keys with another ETag: %s" % (len(bad), bad[:5])
    sample = dict(random.Random(5).sample(sorted(md5.items()), 200))
    lib.assert_bytes(lib.s3("b"), dst, sample)

    # radosgw B: one PUT per key, all tasks together
    reqs_b = lib.rgw_log_requests("b", off_b, want=lib.rgw_req("b") - req_b)
    puts = {}
    for method, path, status, _ua in reqs_b:
        p = path.partition("?")[0]
        if method == "PUT" and p.startswith("/%s/" % dst) and status == 200:
            k = urllib.parse.unquote(p[len(dst) + 2:])
            puts[k] = puts.get(k, 0) + 1
    lib.assert_same_keys(puts, md5, "keys PUT at B")
    twice = [k for k, c in puts.items() if c != 1]
    assert not twice, "%d keys PUT more than once: %s" % (len(twice), twice[:5])

    # radosgw A: the source listed about once in all
    reqs_a = lib.rgw_log_requests("a", off_a, want=lib.rgw_req("a") - req_a)
    lists = [r for r in reqs_a if lib.is_list_request(r[0], r[1]) and
             r[1].partition("?")[0].strip("/") == src]
    pages = math.ceil(N_OBJECTS / PAGE)
    assert pages <= len(lists) <= pages + SHARDS, "%d LIST requests on the source, expected %d..%d" % (
        len(lists), pages, pages + SHARDS)

    # each task's manifest: only its range of the plan, all four every key once
    seen = {}
    for i in range(SHARDS):
        keys = _manifest_keys(ctx, os.path.join(ctx.dir, "shards", "shard-%d" % i), "array-copy")
        assert keys, "shard %d's manifest is empty" % i
        stray = [k for k in keys if _shard_of(k, cuts) != i]
        assert not stray, "shard %d recorded %d keys of other ranges: %s" % (i, len(stray), stray[:5])
        for k in keys:
            assert k not in seen, "key %s in the manifests of shards %d and %d" % (k, seen[k], i)
            seen[k] = i
    lib.assert_same_keys(seen, md5, "keys of the 4 manifests")
    sizes = sorted(sum(1 for s in seen.values() if s == i) for i in range(SHARDS))
    print("  shards hold %s keys; %d LIST requests on the source; %d PUTs at B; seeding %.0f s, "
          "the array job %.0f s (sbatch --wait), all %.0f s" % (
              sizes, len(lists), sum(puts.values()), t_seed, t_job, time.monotonic() - t0))
    ctx.check_no_secrets()
