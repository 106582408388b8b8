"""The crash matrix (issue 8, "Prove the class is gone"): dth killed by
SIGKILL at random points of a sync and of an image sync, then run again to
completion. Nothing may be lost and little may be sent twice.

Kill points are (failpoint, N) pairs, "die at the N-th hit of this point"
(DTH_FAILPOINT, common/failpoint.h), drawn with a seeded random generator:
every point at least once, the rest at random, N uniform over the hits the
run will have. A few more runs are killed from outside (kill -9 of the
process group) at random times. The seed is printed; DTH_CRASH_SEED=N
replays a matrix (the default is fixed, so CI is reproducible).

The S3 matrix runs in cycles: a new destination filled by a run killed at a
failpoint (and its rerun); on that mirror, an incremental --delete run after
objects were deleted from the source and a few rewritten; then incremental
runs (without --delete) after a multipart object and 40 small ones were
rewritten, each killed at a failpoint; in the last cycle three more killed
from outside at random times. Every killed run is followed by its rerun to
completion, and then checked with independent clients:
  - the destination equals the source: keys, sizes and ETags of all objects
    (listing), MD5 of the body, content-type, user metadata, cache-control
    and tags of every object written since the last check (boto3 against
    radosgw; an object is only changed by a write, which changes its
    last-modified time), tags of every tagged object;
  - `dth manifest verify` finds every object intact, the manifest's records
    are exactly the source's objects (done) and the deleted ones (deleted),
    and no upload record is left; no multipart upload is left open at the
    destination;
  - what was sent twice is bounded by what was in flight at the kill (at
    most CONCURRENCY requests): radosgw's own count of PUT body bytes (perf
    counter rgw.put_b, see _put_b) over the killed run and the rerun, minus
    the bytes the copy needs, is at most CONCURRENCY bodies of the largest
    one a request carries (8 MiB), and its access log holds at most
    CONCURRENCY more PUT/UploadPart requests answered 200 than there are
    objects and parts to copy;
  - the rerun's --json "bytes" equals radosgw's count for that run.
The image matrix: images sharing layers (test_crash_matrix_image), a run
killed at a failpoint or at a random time into a new prefix, its rerun; every
tag byte for byte (skopeo), every blob's digest (GET), the image records
done, and each blob uploaded (or mounted) once per repository, plus at most
CONCURRENCY repeats, by the destination registry's access log.
"""

import hashlib
import json
import os
import random
import re
import signal
import subprocess
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import requests
from botocore.exceptions import ClientError

import lib
from lib import MiB

SEED = int(os.environ.get("DTH_CRASH_SEED", "20261204"))
CONCURRENCY = 2  # small, so the in-flight bound is tight
MAX_BODY = 8 * MiB  # the largest body one request carries: a part (objects are smaller)
SYNC_OPTS = ["--concurrency", str(CONCURRENCY), "--no-progress"]

# The source: small objects, two medium single-part ones, multipart objects
# in 5-8 MiB parts (uploaded with boto3, so their ETags are "md5-N"), and
# objects deleted from the source between runs. Ceph 16 ignores HEAD
# ?partNumber=N, so dth guesses a source's part size from its size and part
# count (agent/layout.c); the sizes here are ones whose first guess is right.
# A wrong guess is corrected after the copy by copying the object onto itself
# in the right parts (UploadPartCopy), which radosgw's put_b counts too.
N_SMALL = 240
N_DOOMED = 20
MEDIUM = (("medium/three", 3 * MiB + 17), ("medium/six", 6 * MiB))
MULTIPART = (("big/a twenty", 20 * MiB + 1, 5 * MiB), ("big/b", 26 * MiB, 6 * MiB),
             ("big/c+31.bin", 31 * MiB, 7 * MiB), ("big/d/forty", 40 * MiB - 3, 8 * MiB))
MULTIPART_PART = {key: part for key, _, part in MULTIPART}
CTYPES = ("text/plain", "application/json", "image/png", "application/x-dth-test")
N_CHANGED = 4  # small objects rewritten at the source before each delete run
N_CHANGED_MANY = 40  # and before each run with changes (with a multipart one)

# Failpoints of a full copy, of an incremental run with deletes, and of one
# with changed objects (a multipart one among them).
COPY_POINTS = ("key-planned", "list-page", "object-put", "upload-created", "part-uploaded",
               "upload-completed", "commit-before", "commit-after")
DELETE_POINTS = ("key-planned", "delete-spooled", "delete-answered", "commit-before",
                 "commit-after", "object-put")
CHANGE_POINTS = ("upload-created", "part-uploaded", "upload-completed", "object-put",
                 "commit-before", "commit-after", "key-planned")
N_CYCLES = 5  # destinations filled from scratch
N_CHANGE_KILLS = 10
N_TIMED_KILLS = 3


def _rng(what):
    return random.Random("%s/%s" % (SEED, what))


def _say(msg):
    print("  crash: " + msg, flush=True)


# --------------------------------------------------------------------------
# radosgw's own count of the bytes it received


def _put_b():
    """radosgw B's perf counter rgw.put_b: the body bytes of the PUT and
    UploadPart requests whose body it read whole. Measured on Ceph 16 with
    known requests: a 1,000-byte PUT adds 1,000 and a 5 MiB UploadPart
    5 MiB; a body refused for a bad Content-MD5 still counts; a body cut by
    a disconnect (a killed client) adds nothing; an UploadPartCopy adds the
    bytes it copies (dth uses it only to re-lay out a copy whose guessed part
    size was wrong, see MULTIPART); CreateMultipartUpload, Complete,
    CopyObject, PutObjectTagging and DELETE add nothing."""
    return lib.rgw_counters("b")["put_b"]


def _rgw_idle(timeout=30, quiet=2.0):
    """Wait until radosgw B is done with what the killed run sent, so that
    its counters are final: no request in progress, or (a request whose
    client died may stay counted as active: seen once after a kill in the
    middle of a CompleteMultipartUpload, "Broken pipe") no counter moving
    for `quiet` seconds. Gives up quietly after timeout seconds."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        c = lib.rgw_counters("b")
        if c.get("qactive", 0) == 0 and c.get("qlen", 0) == 0:
            return
        now = (c.get("qactive"), c.get("qlen"), c.get("put_b"), c.get("req"))
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        time.sleep(0.1)


def _gc():
    conf = os.environ.get("DTH_TEST_CEPH_CONF")
    if conf:
        subprocess.run(["radosgw-admin", "-c", conf, "gc", "process", "--include-all"],
                       capture_output=True, timeout=300)


# --------------------------------------------------------------------------
# the source, and what the destination must hold


class Source:
    """The source bucket on A and what each object must be at the
    destination: {key: {size, etag, md5, ctype, meta, cache, tags}}."""

    def __init__(self):
        self.c = lib.s3("a")
        self.bucket = lib.create_bucket("a", "crash-src")
        self.want = {}
        self.doomed = {}  # key -> (body, put kwargs) of the objects deleted between runs
        self.changes = 0

    def put(self, key, body, **kw):
        r = self.c.put_object(Bucket=self.bucket, Key=key, Body=body, **kw)
        self._want(key, len(body), r["ETag"].strip('"'), lib.md5hex(body), kw)
        return len(body)

    def _want(self, key, size, etag, md5, kw):
        tags = dict(p.split("=", 1) for p in kw["Tagging"].split("&")) if kw.get("Tagging") else {}
        self.want[key] = {"size": size, "etag": etag, "md5": md5,
                          "ctype": kw.get("ContentType", "binary/octet-stream"),
                          "meta": kw.get("Metadata", {}), "cache": kw.get("CacheControl"),
                          "tags": tags}

    @staticmethod
    def small_kw(i):
        kw = {"ContentType": CTYPES[i % len(CTYPES)]}
        if i % 3 == 0:
            kw["Metadata"] = {"origin": "crash-%d" % i, "note": "small object"}
        if i % 7 == 0:
            kw["CacheControl"] = "max-age=%d" % (60 + i)
        if i % 11 == 0:
            kw["Tagging"] = "kind=small&n=%d" % i
        return kw

    def fill(self):
        r = random.Random("crash-source")
        items = []
        for i in range(N_SMALL):
            key = "small/%02d/%s%03d" % (i % 9, ("é " if i % 13 == 0 else ""), i)
            items.append((key, r.randbytes(0 if i == 0 else r.randrange(1, 3000)), self.small_kw(i)))
        for i in range(N_DOOMED):
            key = "gone/%02d" % i
            body = r.randbytes(r.randrange(1, 2000))
            kw = self.small_kw(i + 1)
            self.doomed[key] = (body, kw)
            items.append((key, body, kw))
        for key, size in MEDIUM:
            items.append((key, lib.det_bytes(key, size),
                          {"ContentType": "application/octet-stream",
                           "Metadata": {"size": str(size)}}))
        with ThreadPoolExecutor(16) as ex:
            list(ex.map(lambda it: self.put(it[0], it[1], **it[2]), items))
        for n in range(len(MULTIPART)):
            self.put_big(n, "first")

    def put_big(self, n, version):
        """(Re)write multipart object n with boto3; returns its size."""
        key, size, part = MULTIPART[n]
        data = lib.det_bytes("%s/%s" % (key, version), size)
        kw = {"ContentType": "application/x-big-%d" % n,
              "Metadata": {"parts": str(part), "version": version}}
        if n == 1:
            kw["CacheControl"] = "no-cache"
        etag = lib.put_multipart(self.c, self.bucket, key, data, part, workers=4, **kw)
        assert etag == lib.multipart_etag(data, part), (key, etag)
        if n == 1:
            # Set apart: Ceph 16 answers GetObjectTagging of an object whose
            # CreateMultipartUpload carried x-amz-tagging with an empty body.
            kw["Tagging"] = "kind=big&n=1"
            self.c.put_object_tagging(Bucket=self.bucket, Key=key, Tagging={"TagSet": [
                {"Key": "kind", "Value": "big"}, {"Key": "n", "Value": "1"}]})
        self._want(key, size, etag, lib.md5hex(data), kw)
        return size

    def drop_doomed(self):
        for key in self.doomed:
            self.c.delete_object(Bucket=self.bucket, Key=key)
            del self.want[key]

    def restore_doomed(self):
        """Put the doomed objects back; returns the bytes a copy needs."""
        return sum(self.put(key, body, **kw) for key, (body, kw) in self.doomed.items())

    def change_small(self, n):
        """Rewrite n small objects; returns the bytes a copy needs."""
        self.changes += 1
        keys = sorted(k for k in self.want if k.startswith("small/"))
        picked = _rng("change%d" % self.changes).sample(keys, n)
        bodies = [b"changed %d %d " % (self.changes, j) + os.urandom(500 + 50 * j) for j in range(n)]
        with ThreadPoolExecutor(8) as ex:
            return sum(ex.map(lambda j: self.put(picked[j], bodies[j], **self.small_kw(j)), range(n)))

    def puts(self):
        """The PUT and UploadPart requests of a full copy."""
        return sum(-(-w["size"] // MULTIPART_PART[k]) if k in MULTIPART_PART else 1
                   for k, w in self.want.items())

    def total_bytes(self):
        return sum(w["size"] for w in self.want.values())

    def copy_hits(self):
        """How often each point is hit by a full copy into an empty
        destination (commit points: a lower bound, the two flushed commits of
        each multipart upload's creation)."""
        single = sum(1 for w in self.want.values() if "-" not in w["etag"])
        parts = sum(-(-size // part) for _, size, part in MULTIPART)
        return {"key-planned": len(self.want), "list-page": 1, "object-put": single,
                "upload-created": len(MULTIPART), "part-uploaded": parts,
                "upload-completed": len(MULTIPART), "commit-before": 2 * len(MULTIPART),
                "commit-after": 2 * len(MULTIPART)}


def _drop_bucket(bucket, which="b"):
    c = lib.s3(which)
    try:
        for key, uid in lib.multipart_uploads(c, bucket):
            c.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=uid)
        keys = list(lib.list_all(c, bucket))
        for i in range(0, len(keys), 1000):
            c.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[i:i + 1000]]})
        c.delete_bucket(Bucket=bucket)
    except ClientError:
        pass


# --------------------------------------------------------------------------
# checks


def _listing(c, bucket):
    """{key: (size, etag, last-modified)} of a bucket."""
    out = {}
    kw = {"Bucket": bucket}
    while True:
        r = c.list_objects_v2(**kw)
        for o in r.get("Contents", []):
            out[o["Key"]] = (o["Size"], o["ETag"].strip('"'), o["LastModified"])
        if not r.get("IsTruncated"):
            return out
        kw["ContinuationToken"] = r["NextContinuationToken"]


def _tags(c, bucket, key):
    """An object's tags as a dict. Ceph 16 answers GetObjectTagging of an
    object whose CreateMultipartUpload carried x-amz-tagging, and whose tags
    were not set again after the completion, with an empty body: that is
    "(no TagSet in the answer)"."""
    r = c.get_object_tagging(Bucket=bucket, Key=key)
    if "TagSet" not in r:
        return "(no TagSet in the answer)"
    return {x["Key"]: x["Value"] for x in r["TagSet"]}


def _check_destination(bucket, want, verified):
    """The destination bucket holds exactly want (boto3 against radosgw B):
    keys, sizes and ETags of all; body MD5, content-type, metadata,
    cache-control and tags of each object written since it was last checked
    (verified: {key: (size, etag, last-modified)} of the objects checked
    whole before, updated here; an object is only changed by a write, which
    gives it a new last-modified time)."""
    c = lib.s3("b")
    got = _listing(c, bucket)
    lib.assert_same_keys(got, want)
    bad = ["%r: size %d etag %s, want %d %s" % (k, v[0], v[1], want[k]["size"], want[k]["etag"])
           for k, v in got.items() if v[:2] != (want[k]["size"], want[k]["etag"])]
    assert not bad, "%d objects differ: %s" % (len(bad), bad[:5])

    def one(key):
        w = want[key]
        r = c.get_object(Bucket=bucket, Key=key)
        h = hashlib.md5()
        for chunk in iter(lambda: r["Body"].read(MiB), b""):
            h.update(chunk)
        problems = []
        if h.hexdigest() != w["md5"]:
            problems.append("body md5 %s, want %s" % (h.hexdigest(), w["md5"]))
        if r.get("ContentType") != w["ctype"]:
            problems.append("content-type %s, want %s" % (r.get("ContentType"), w["ctype"]))
        if r.get("Metadata", {}) != w["meta"]:
            problems.append("metadata %s, want %s" % (r.get("Metadata"), w["meta"]))
        if r.get("CacheControl") != w["cache"]:
            problems.append("cache-control %s, want %s" % (r.get("CacheControl"), w["cache"]))
        if w["tags"] or r.get("TagCount") or "-" in w["etag"]:
            tags = _tags(c, bucket, key)
            if tags != w["tags"]:
                problems.append("tags %s, want %s" % (tags, w["tags"]))
        return "%r: %s" % (key, "; ".join(problems)) if problems else None

    def tags_only(key):
        tags = _tags(c, bucket, key)
        return None if tags == want[key]["tags"] else "%r: tags %s, want %s" % (
            key, tags, want[key]["tags"])

    todo = sorted(k for k in want if verified.get(k) != got[k])
    tagged = sorted(k for k in want if k not in set(todo) and (want[k]["tags"] or "-" in want[k]["etag"]))
    with ThreadPoolExecutor(16) as ex:
        bad = [m for m in ex.map(one, todo) if m] + [m for m in ex.map(tags_only, tagged) if m]
    assert not bad, "%d objects differ: %s" % (len(bad), " | ".join(bad[:5]))
    verified.clear()
    verified.update(got)
    left = lib.multipart_uploads(c, bucket)
    assert not left, "multipart uploads left open at the destination: %s" % left
    return len(todo)


def _check_manifest(ctx, task, want, deleted):
    """dth manifest verify finds all intact, the records are the source's
    objects (done) and deleted ones (deleted), and no upload record is left."""
    rc, out, _ = ctx.manifest("verify", task, json_out=True, check_exit=None)
    v = json.loads(out)
    assert rc == 0 and v["mismatches"] == 0 and v["checked"] == v["ok"] == len(want), (
        "manifest verify (exit %d): %d checked, %d ok, %d mismatches for %d objects: %s" % (
            rc, v["checked"], v["ok"], v["mismatches"], len(want), v["problems"][:5]))
    _, out, _ = ctx.manifest("ls", task, "--long", json_out=True)
    recs = lib.parse_json_records(out)
    done = {r["key"]: r for r in recs if r["status"] == "done"}
    lib.assert_same_keys(done, want, "manifest records done")
    bad = [k for k, r in done.items() if (r["size"], r["etag"]) != (want[k]["size"], want[k]["etag"])]
    assert not bad, "manifest records differ from the source: %s" % bad[:5]
    other = [(r["key"], r["status"]) for r in recs
             if r["status"] != "done" and not (r["status"] == "deleted" and r["key"] in deleted)]
    assert not other, "unexpected manifest records: %s" % other[:5]
    for key, _, _ in MULTIPART:
        _, out, _ = ctx.manifest("stat", task, key, json_out=True)
        assert "upload" not in json.loads(out), "upload record of %r left: %s" % (key, out)


# --------------------------------------------------------------------------
# running dth


def _run_killed(ctx, task, src, dst, opts, failpoint=None, kill_after=None, timeout=600):
    """Run dth sync, to be killed by failpoint ("name:N") or by kill -9 of
    its process group after kill_after seconds. Returns (exit status,
    stderr, seconds)."""
    cmd = [lib.dth_bin(), "sync", "--config", ctx.config, "--state", ctx.state, "--task", task,
           "--json"] + opts + [src, dst]
    return _popen_killed(ctx, cmd, failpoint, kill_after, timeout)


def _popen_killed(ctx, cmd, failpoint, kill_after, timeout):
    env = ctx.base_env({"DTH_FAILPOINT": failpoint} if failpoint else None)
    ctx.last_cmd = cmd
    err_path = os.path.join(ctx.dir, "killed-stderr.txt")
    ctx._bg_err = err_path
    t0 = time.monotonic()
    with open(err_path, "wb") as errf:
        p = subprocess.Popen(cmd, env=env, cwd=lib.REPO, stdout=subprocess.DEVNULL, stderr=errf,
                             start_new_session=True)
    try:
        if kill_after is not None:
            try:
                p.wait(timeout=kill_after)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        p.wait(timeout=timeout)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    with open(err_path, "rb") as f:
        err = f.read().decode("utf-8", "replace")
    for m in lib.SANITIZER_MARKERS:
        assert m not in err, "sanitizer report in the killed run's stderr (%s)" % m
    return p.returncode, err, time.monotonic() - t0


def _puts(bucket, offset, n_requests):
    """{(key, part number or 0): n} of the PUT and UploadPart requests to
    bucket that radosgw B answered 200, from its access log after offset
    (waiting until it holds n_requests lines)."""
    out = {}
    for method, path, status, _ in lib.rgw_log_requests("b", offset, want=n_requests, timeout=30):
        p, _, q = path.partition("?")
        if method != "PUT" or status != 200 or not p.startswith("/%s/" % bucket):
            continue
        qs = urllib.parse.parse_qs(q, keep_blank_values=True)
        if "tagging" in qs or "acl" in qs:
            continue
        unit = (urllib.parse.unquote(p[len(bucket) + 2:]), int(qs.get("partNumber", ["0"])[0]))
        out[unit] = out.get(unit, 0) + 1
    return out


class Matrix:
    """The S3 runs. Each cycle copies the source into a new destination (a
    run killed at a failpoint, then its rerun), then runs incremental syncs
    on that mirror: with deletes, with changed objects, killed at a
    failpoint or at a random time, each followed by its rerun."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.src = Source()
        self.src.fill()
        self.n = 0
        self.rows = []  # (label, killed, bytes sent again)
        self.run_seconds = []  # of incremental runs (reruns that did nearly all of one)
        self.last_rerun = 0.0
        self.verified = {}  # of the current destination, see _check_destination
        self.bodies = 0  # objects read back whole

    def fresh(self):
        self.verified = {}
        self.n += 1
        self.ctx.state = os.path.join(self.ctx.dir, "state-%02d" % self.n)
        dst = lib.create_bucket("b", "crash-%02d" % self.n)
        return dst, "crash%02d" % self.n

    def crash_and_rerun(self, label, *args, **kw):
        """Kill one run, rerun it to completion and check everything (see
        _crash_and_rerun). A failure names the run and the seed."""
        try:
            return self._crash_and_rerun(label, *args, **kw)
        except Exception as e:  # noqa: B902 - any failure names its run
            raise AssertionError("%s (seed %d, destination %d): %s" % (label, SEED, self.n, e)) from e

    def _crash_and_rerun(self, label, task, dst, need, need_puts, failpoint=None,
                         kill_after=None, delete=False, deleted=(), after_kill=None):
        """need: the body bytes the copy must send, need_puts: its PUT and
        UploadPart requests. Returns False when a timed kill came after the
        run had finished (nothing was killed)."""
        src, dstu = "src:" + self.src.bucket, "dst:" + dst
        opts = SYNC_OPTS + (["--delete"] if delete else [])
        pb0 = _put_b()
        log0, req0 = lib.rgw_log_size("b"), lib.rgw_req("b")
        rc, err, secs = _run_killed(self.ctx, task, src, dstu, opts, failpoint, kill_after)
        if kill_after is not None and rc == 0:
            _say("%-30s the run finished in %.1fs, before the kill" % (label, secs))
            return False
        assert rc == -signal.SIGKILL, "dth exited %s, not killed by SIGKILL: %s" % (rc, err[-500:])
        if failpoint:
            name, n = failpoint.split(":")
            assert "failpoint %s: hit %s," % (name, n) in err, (
                "killed, but not by its failpoint: %s" % err[-500:])
        if after_kill:
            after_kill()
        _rgw_idle()
        pb1 = _put_b()
        t0 = time.monotonic()
        res = self.ctx.sync(src, dstu, *opts, task=task, timeout=600)
        t1 = time.monotonic()
        self.last_rerun = t1 - t0
        pb2 = _put_b()
        puts = _puts(dst, log0, lib.rgw_req("b") - req0)
        assert res["failed"] == 0, "the rerun failed %d objects: %s" % (
            res["failed"], res.get("failures"))
        self.bodies += _check_destination(dst, self.src.want, self.verified)
        _check_manifest(self.ctx, task, self.src.want, deleted)
        rerun = pb2 - pb1
        assert res["bytes"] == rerun, (
            "the rerun's --json bytes is %d, radosgw counted %d body bytes" % (res["bytes"], rerun))
        resent = pb2 - pb0 - need
        bound = CONCURRENCY * MAX_BODY
        assert 0 <= resent <= bound, (
            "radosgw received %d body bytes over the killed run (%d) and the rerun (%d) for "
            "%d bytes of data: %d sent again, more than the %d that %d requests in flight carry" % (
                pb2 - pb0, pb1 - pb0, rerun, need, resent, bound, CONCURRENCY))
        again = sum(puts.values()) - need_puts
        assert 0 <= again <= CONCURRENCY, (
            "%d PUT/UploadPart requests answered for %d objects and parts to copy: %d sent "
            "again, more than the %d requests in flight: %s" % (
                sum(puts.values()), need_puts, again, CONCURRENCY,
                sorted((k, v) for k, v in puts.items() if v > 1)[:5]))
        self.rows.append((label, True, resent, again))
        _say("%-30s killed at %5.1fs; body bytes: killed run %9d, rerun %9d, sent again %d "
             "(%d requests) (rerun %.1fs, checks %.1fs)" % (
                 label, secs, pb1 - pb0, rerun, resent, again, t1 - t0, time.monotonic() - t1))
        return True

    def copy(self, failpoint):
        """A new destination, filled by a run killed at failpoint and its rerun."""
        dst, task = self.fresh()
        self.crash_and_rerun("copy " + failpoint, task, dst, self.src.total_bytes(),
                             self.src.puts(), failpoint=failpoint, delete=True)
        return dst, task

    def with_deletes(self, dst, task, failpoint):
        """The doomed objects deleted at the source and a few small ones
        rewritten; a --delete run killed at failpoint, and its rerun."""
        self.src.drop_doomed()
        try:
            need = self.src.change_small(N_CHANGED)
            after_kill = None
            if failpoint.split(":")[0] in ("key-planned", "delete-spooled"):
                def after_kill():
                    # killed before its listing was complete: nothing deleted yet
                    left = set(lib.list_all(lib.s3("b"), dst))
                    gone = sorted(k for k in self.src.doomed if k not in left)
                    assert not gone, "deleted before the listing was complete: %s" % gone[:5]
            self.crash_and_rerun("delete " + failpoint, task, dst, need, N_CHANGED,
                                 failpoint=failpoint, delete=True, deleted=set(self.src.doomed),
                                 after_kill=after_kill)
        finally:
            self.src.restore_doomed()
        # the doomed objects are back at the source: copied by the next run
        return sum(len(body) for body, _ in self.src.doomed.values())

    def with_changes(self, dst, task, pending, rng, failpoint=None, kill_after=None):
        """A multipart object and a few small ones rewritten at the source
        (plus pending bytes still to copy); a run killed at failpoint or
        after kill_after seconds, and its rerun. Returns whether it was
        killed."""
        n = rng.randrange(len(MULTIPART))
        need = (pending + self.src.put_big(n, "v%d" % self.src.changes)
                + self.src.change_small(N_CHANGED_MANY))
        need_puts = ((N_DOOMED if pending else 0) + -(-MULTIPART[n][1] // MULTIPART[n][2])
                     + N_CHANGED_MANY)
        label = "change " + (failpoint or "kill -9 at %.2fs" % kill_after)
        t0 = time.monotonic()
        killed = self.crash_and_rerun(label, task, dst, need, need_puts, failpoint=failpoint,
                                      kill_after=kill_after)
        if not killed:
            # finished before the kill: check it all the same
            self.run_seconds.append(time.monotonic() - t0)
            self.bodies += _check_destination(dst, self.src.want, self.verified)
            _check_manifest(self.ctx, task, self.src.want, ())
        elif failpoint and failpoint.startswith(("upload-created:", "key-planned:")):
            self.run_seconds.append(self.last_rerun)  # the rerun did (nearly) all of it
        return killed

    def change_hits(self, n_keys):
        """Hits of a run with one multipart object and N_CHANGED_MANY small ones
        to copy (commit points: the two flushed commits of the upload's
        creation), plus the doomed objects put back (object-put)."""
        parts = min(-(-size // part) for _, size, part in MULTIPART)
        return {"key-planned": n_keys, "object-put": N_CHANGED_MANY, "upload-created": 1,
                "part-uploaded": parts, "upload-completed": 1, "commit-before": 2,
                "commit-after": 2}


def test_crash_keeps_tags_of_completed_upload(ctx):
    """Killed between CompleteMultipartUpload and setting the copy's tags
    (failpoint upload-completed:1; Ceph 16 drops x-amz-tagging on
    CreateMultipartUpload, so dth sets the tags after the completion): the
    rerun finds the copy at the destination, but the killed run's upload
    record makes it finish the copy (set the tags) instead of adopting it;
    in a first run and in an incremental one (a new version of the object,
    an older copy at the destination)."""
    c = lib.s3("a")
    src = ctx.bucket("a", "tags-src")
    dst = ctx.bucket("b", "tags-dst")
    want = {"team": "crash", "n": "1"}
    for version, how in (("one", "a first run"), ("two", "an incremental run")):
        data = lib.det_bytes("crash-tags-" + version, 20 * MiB + 1)
        etag = lib.put_multipart(c, src, "big", data, 5 * MiB, ContentType="application/x-tagged")
        c.put_object_tagging(Bucket=src, Key="big", Tagging={"TagSet": [
            {"Key": k, "Value": v} for k, v in sorted(want.items())]})
        rc, err, _ = _run_killed(ctx, "tags", "src:" + src, "dst:" + dst, SYNC_OPTS,
                                 "upload-completed:1")
        assert rc == -signal.SIGKILL and "failpoint upload-completed: hit 1," in err, (rc, err)
        res = ctx.sync("src:" + src, "dst:" + dst, *SYNC_OPTS, task="tags")
        assert res["failed"] == 0 and res["bytes"] == 0, res
        h = lib.head(lib.s3("b"), dst, "big")
        assert (h["ETag"].strip('"'), h["ContentType"]) == (etag, "application/x-tagged"), h
        got = _tags(lib.s3("b"), dst, "big")
        assert got == want, "%s: tags at the destination %s, want %s" % (how, got, want)
        assert lib.multipart_uploads(lib.s3("b"), dst) == []


def test_crash_rerun_sends_no_copy_twice(ctx):
    """An incremental run (no --delete, so it does not list the destination)
    killed right after a PUT was answered (object-put:5): the rerun lists
    the destination, finds the copies the killed run made but did not record
    and sends none of them again (radosgw's access log: no key PUT twice)."""
    c = lib.s3("a")
    src = ctx.bucket("a", "twice-src")
    dst = ctx.bucket("b", "twice-dst")
    lib.put_objects(c, src, lib.small_objects("k/", 30, "twice"))
    res = ctx.sync("src:" + src, "dst:" + dst, *SYNC_OPTS, task="twice")
    assert (res["transferred"], res["failed"]) == (30, 0), res
    changed = {k: v for k, v in lib.small_objects("k/", 12, "twice-changed").items() if v}
    md5 = lib.put_objects(c, src, changed)
    off, req0 = lib.rgw_log_size("b"), lib.rgw_req("b")
    rc, err, _ = _run_killed(ctx, "twice", "src:" + src, "dst:" + dst, SYNC_OPTS, "object-put:5")
    assert rc == -signal.SIGKILL and "failpoint object-put: hit 5," in err, (rc, err)
    _rgw_idle()
    res = ctx.sync("src:" + src, "dst:" + dst, *SYNC_OPTS, task="twice")
    assert res["failed"] == 0, res
    puts = _puts(dst, off, lib.rgw_req("b") - req0)
    twice = sorted(k for k, n in puts.items() if n > 1)
    assert not twice, "PUT again by the rerun: %s" % twice
    lib.assert_same_keys([k for k, _ in puts], changed, "objects PUT")
    lib.assert_bytes(lib.s3("b"), dst, md5)


def _draw(rng, first, points, total):
    """The points of first once each, the rest drawn from points, shuffled."""
    picks = list(first) + [rng.choice(points) for _ in range(total - len(first))]
    rng.shuffle(picks)
    return picks


def test_crash_matrix_sync(ctx):
    t_start = time.monotonic()
    rng = _rng("sync")
    _say("seed %d (DTH_CRASH_SEED=%d replays this matrix)" % (SEED, SEED))
    m = Matrix(ctx)
    hits = m.src.copy_hits()
    _say("source: %d objects, %d bytes; hits of a full copy: %s" % (
        len(m.src.want), m.src.total_bytes(), hits))
    copies = _draw(rng, ("key-planned", "list-page", "object-put"), COPY_POINTS, N_CYCLES)
    deletes = _draw(rng, DELETE_POINTS[:5], DELETE_POINTS, N_CYCLES)
    changes = _draw(rng, CHANGE_POINTS, CHANGE_POINTS, N_CHANGE_KILLS)
    failpoint_kills = timed_kills = 0
    for cycle in range(N_CYCLES):
        fp = copies[cycle]
        dst, task = m.copy("%s:%d" % (fp, rng.randint(1, hits[fp])))
        dhits = {"key-planned": len(m.src.want), "delete-spooled": N_DOOMED,
                 "delete-answered": N_DOOMED, "object-put": N_CHANGED, "commit-before": 1,
                 "commit-after": 1}
        fp = deletes[cycle]
        pending = m.with_deletes(dst, task, "%s:%d" % (fp, rng.randint(1, dhits[fp])))
        failpoint_kills += 2
        for k in range(cycle, len(changes), N_CYCLES):
            chits = m.change_hits(len(m.src.want))
            fp = changes[k]
            m.with_changes(dst, task, pending, rng, failpoint="%s:%d" % (fp, rng.randint(1, chits[fp])))
            pending = 0
            failpoint_kills += 1
        if cycle == N_CYCLES - 1:
            # kill -9 of the process group at random times of such runs
            for _ in range(N_TIMED_KILLS):
                factor = rng.uniform(0.05, 0.9)
                full = sorted(m.run_seconds)[len(m.run_seconds) // 2] if m.run_seconds else 2.0
                for _ in range(3):
                    if m.with_changes(dst, task, 0, rng, kill_after=factor * full):
                        timed_kills += 1
                        break
                    factor /= 2  # the run ended before the kill: a shorter time
        _drop_bucket(dst)
        _gc()
    _drop_bucket(m.src.bucket, "a")
    _gc()
    resent = [r[2] for r in m.rows]
    again = [r[3] for r in m.rows]
    by_point = {}
    for label, _, _, _ in m.rows:
        point = label.split()[1].split(":")[0] if ":" in label.split()[1] else "kill -9"
        by_point[point] = by_point.get(point, 0) + 1
    _say("kills by point: %s" % ", ".join("%s %d" % kv for kv in sorted(by_point.items())))
    _say("%d kills (%d at failpoints, %d kill -9 at random times), every rerun complete and "
         "checked (%d objects read back whole); sent again: body bytes max %d, total %d; "
         "requests max %d, total %d; %.0fs" % (
             failpoint_kills + timed_kills, failpoint_kills, timed_kills, m.bodies, max(resent),
             sum(resent), max(again), sum(again), time.monotonic() - t_start))
    assert failpoint_kills >= 20, "only %d failpoint kills" % failpoint_kills


# --------------------------------------------------------------------------
# image sync

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
IMAGE_POINTS = ("blob-uploaded", "manifest-put", "commit-before", "commit-after")
N_IMAGE_KILLS = 12
N_IMAGE_TIMED_KILLS = 3


def _src_push_blob(repo, data):
    base = lib.registry_url("src")
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    if requests.head("%s/v2/%s/blobs/%s" % (base, repo, digest), timeout=60).status_code == 200:
        return digest
    r = requests.post("%s/v2/%s/blobs/uploads/" % (base, repo), timeout=60)
    assert r.status_code == 202, r.status_code
    loc = r.headers["Location"]
    loc = base + loc if loc.startswith("/") else loc
    r = requests.put(loc + ("&" if "?" in loc else "?") + "digest=" + digest, data=data,
                     headers={"Content-Type": "application/octet-stream"}, timeout=120)
    assert r.status_code == 201, (r.status_code, r.text)
    return digest


def _src_push_manifest(repo, ref, body, mt):
    r = requests.put("%s/v2/%s/manifests/%s" % (lib.registry_url("src"), repo, ref), data=body,
                     headers={"Content-Type": mt}, timeout=60)
    assert r.status_code == 201, (r.status_code, r.text)
    return "sha256:" + hashlib.sha256(body).hexdigest()


class Images:
    """Images in the source registry sharing layers: a 9 MiB base layer
    (uploaded in chunks) in all of them, a 3 MiB one in three, a top layer
    and a config of their own; crash/app3:multi is an index of two platforms.
    tags: {ref: manifest bytes}; children: {repo: [(digest, bytes)]};
    blobs: {repo: {digest: bytes}} (each needed at the destination)."""

    def __init__(self):
        rid = "%06d" % random.randrange(10 ** 6)
        self.repos = ["crash%s/app1" % rid, "crash%s/app2" % rid, "crash%s/app3" % rid]
        base = lib.det_bytes("crash-image-base", 9 * MiB + 333)
        mid = lib.det_bytes("crash-image-mid", 3 * MiB + 5)
        self.tags, self.children, self.blobs = {}, {}, {}
        plan = [(self.repos[0], "v1", [base, mid], "amd64"),
                (self.repos[0], "v2", [base, mid], "amd64"),
                (self.repos[1], "v1", [base, mid], "amd64")]
        for n, (repo, tag, layers, arch) in enumerate(plan):
            self.tags["%s:%s" % (repo, tag)] = self._image(repo, "%s-%d" % (tag, n), layers, arch,
                                                            tag)[1]
        repo = self.repos[2]
        kids = [self._image(repo, "multi-" + arch, [base], arch, None) for arch in ("amd64", "arm64")]
        index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": d, "size": len(b),
             "platform": {"os": "linux", "architecture": arch}}
            for (d, b), arch in zip(kids, ("amd64", "arm64"))]}, sort_keys=True).encode()
        _src_push_manifest(repo, "multi", index, OCI_INDEX)
        self.tags[repo + ":multi"] = index
        self.children[repo] = kids

    def _image(self, repo, name, layers, arch, tag):
        top = lib.det_bytes("crash-image-top-%s-%s" % (repo, name), 300 * 1024 + 97 * len(name))
        cfg = json.dumps({"architecture": arch, "os": "linux", "rootfs": {"type": "layers"},
                          "name": name}, sort_keys=True).encode()
        descs = []
        for data in list(layers) + [top]:
            descs.append({"mediaType": OCI_LAYER, "digest": _src_push_blob(repo, data),
                          "size": len(data)})
            self.blobs.setdefault(repo, {})[descs[-1]["digest"]] = data
        cd = _src_push_blob(repo, cfg)
        self.blobs[repo][cd] = cfg
        body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": OCI_CONFIG, "digest": cd, "size": len(cfg)},
                           "layers": descs}, sort_keys=True).encode()
        digest = _src_push_manifest(repo, tag or "sha256:" + hashlib.sha256(body).hexdigest(),
                                    body, OCI_MANIFEST)
        return digest, body

    def remove(self):
        """Delete the manifests from the source (--all of a later test must
        not meet them)."""
        digests = [(ref.split(":")[0], "sha256:" + hashlib.sha256(b).hexdigest())
                   for ref, b in self.tags.items()]
        digests += [(repo, d) for repo, kids in self.children.items() for d, _ in kids]
        for repo, d in digests:
            r = requests.delete("%s/v2/%s/manifests/%s" % (lib.registry_url("src"), repo, d),
                                timeout=60)
            assert r.status_code in (202, 404), (repo, d, r.status_code, r.text)

    def hits(self):
        return {"blob-uploaded": sum(len(b) for b in self.blobs.values()),
                "manifest-put": len(self.tags) + sum(len(k) for k in self.children.values()),
                "commit-before": 1, "commit-after": 1}


def _reg_log():
    d = os.environ.get("DTH_TEST_REG_DIR")
    if not d:
        lib.skip("DTH_TEST_REG_DIR not set: cannot read the registry's access log")
    return os.path.join(d, "logs", "dst.log")


def _blob_uploads(offset, prefix):
    """{(repo, digest): n} of the blob uploads (final PUT answered 201) and
    cross-repository mounts (POST answered 201) dth made at the destination
    registry under prefix, from its access log after offset."""
    text = ""
    for _ in range(50):  # the registry writes the line once the answer is sent
        time.sleep(0.1)
        with open(_reg_log(), "rb") as f:
            f.seek(offset)
            new = f.read().decode("utf-8", "replace")
        if new == text:
            break
        text = new
    out = {}
    for m in re.finditer(r'"(PUT|POST) (/v2/(\S+?)/blobs/uploads/\S*) HTTP/[0-9.]+" (\d+) .*"dth/', text):
        method, path, repo, status = m.groups()
        if status != "201" or not repo.startswith(prefix + "/"):
            continue
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
        digest = (q.get("digest") or q.get("mount") or [None])[0]
        if digest:
            out[(repo, digest)] = out.get((repo, digest), 0) + 1
    return out


def _check_images(ctx, task, imgs, prefix):
    """Every tag at the destination byte for byte (skopeo), every blob there
    with its digest (GET), and the manifest's image records done."""
    for ref, body in imgs.tags.items():
        got = lib.skopeo_raw("dst", "%s/%s" % (prefix, ref))
        assert got == body, "%s: the manifest differs at the destination" % ref
    for repo, kids in imgs.children.items():
        for digest, body in kids:
            got = lib.skopeo_raw("dst", "%s/%s@%s" % (prefix, repo, digest))
            assert got == body, "%s@%s: the manifest differs at the destination" % (repo, digest)
    for repo, blobs in imgs.blobs.items():
        for digest, data in blobs.items():
            r = requests.get("%s/v2/%s/%s/blobs/%s" % (lib.registry_url("dst"), prefix, repo, digest),
                             auth=(lib.REG_USER, lib.REG_PASS), timeout=120)
            assert r.status_code == 200, "%s@%s: %d at the destination" % (repo, digest, r.status_code)
            assert "sha256:" + hashlib.sha256(r.content).hexdigest() == digest == (
                "sha256:" + hashlib.sha256(data).hexdigest()), "%s@%s: wrong bytes" % (repo, digest)
    _, out, _ = ctx.run_dth(["manifest", "images", "--state", ctx.state, "--json", task])
    recs = {r["ref"]: r for r in lib.parse_json_records(out)}
    lib.assert_same_keys(recs, imgs.tags, "image records")
    for ref, body in imgs.tags.items():
        want = "sha256:" + hashlib.sha256(body).hexdigest()
        r = recs[ref]
        assert (r["status"], r["src_digest"]) == ("done", want), "%s: record %s" % (ref, r)
        assert r["dst_digest"] in ("", want), "%s: record %s" % (ref, r)


def test_crash_matrix_image(ctx):
    t_start = time.monotonic()
    lib.registry_url("dst")
    ctx.write_config(lib.registry_section("src", "src")
                     + lib.registry_section("dst", "dst", lib.REG_USER, lib.REG_PASS))
    rng = _rng("image")
    _say("seed %d (DTH_CRASH_SEED=%d replays this matrix)" % (SEED, SEED))
    imgs = Images()
    try:
        _image_matrix(ctx, rng, imgs, t_start)
    finally:
        imgs.remove()


def _image_matrix(ctx, rng, imgs, t_start):
    hits = imgs.hits()
    refs = ",".join(sorted(imgs.tags))
    points = _draw(rng, IMAGE_POINTS, ("blob-uploaded", "manifest-put"), N_IMAGE_KILLS)
    kills = [("%s:%d" % (p, rng.randint(1, hits[p])), None) for p in points]
    kills += [(None, rng.uniform(0.05, 0.8)) for _ in range(N_IMAGE_TIMED_KILLS)]
    runs, dups_total, killed, late = [], 0, 0, 0
    for n, (fp, timed) in enumerate(kills):
        prefix = "crash%d-%d" % (random.randrange(10 ** 6), n)
        ctx.state = os.path.join(ctx.dir, "istate-%02d" % n)
        task = "img%02d" % n
        cmd = [lib.dth_bin(), "image", "sync", "--config", ctx.config, "--state", ctx.state,
               "--task", task, "--json", "--no-progress", "--concurrency", str(CONCURRENCY),
               "--images", refs, "src:", "dst:" + prefix]
        after = timed * sorted(runs)[len(runs) // 2] if timed else None
        label = "image " + (fp or "kill -9 at %.2fs" % after)
        try:
            off = os.path.getsize(_reg_log())
            rc, err, secs = _popen_killed(ctx, cmd, fp, after, 600)
            if timed and rc == 0:
                _say("%-30s the run finished in %.1fs, before the kill" % (label, secs))
                late += 1
                if late <= 3:
                    kills.append((None, timed / 2))  # a shorter time instead
                continue
            assert rc == -signal.SIGKILL, "dth exited %s, not killed by SIGKILL: %s" % (rc, err[-500:])
            if fp:
                assert "failpoint %s: hit %s," % tuple(fp.split(":")) in err, err[-500:]
            killed += 1
            t0 = time.monotonic()
            _, out, _ = ctx.run_dth(cmd[1:], timeout=600)
            runs.append(time.monotonic() - t0)  # the rerun: about a whole run
            res = json.loads(out.strip().splitlines()[-1])
            assert res["failed"] == 0, "the rerun failed: %s" % res
            _check_images(ctx, task, imgs, prefix)
            ups = _blob_uploads(off, prefix)
            need = {("%s/%s" % (prefix, r), d) for r, b in imgs.blobs.items() for d in b}
            assert set(ups) == need, "blobs uploaded: %s, needed %s" % (
                sorted(set(ups) ^ need)[:5], len(need))
            dups = sum(v - 1 for v in ups.values())
            assert dups <= CONCURRENCY, (
                "%d blob uploads repeated (more than the %d in flight): %s" % (
                    dups, CONCURRENCY, sorted((k, v) for k, v in ups.items() if v > 1)))
            dups_total += dups
            _say("%-30s killed at %5.1fs; blob uploads %d for %d blobs, %d repeated" % (
                label, secs, sum(ups.values()), len(need), dups))
        except Exception as e:  # noqa: B902 - any failure names its run
            raise AssertionError("%s (seed %d, prefix %s): %s" % (label, SEED, prefix, e)) from e
    _say("image: %d kills, every rerun complete and checked; blob uploads repeated: %d; %.0fs" % (
        killed, dups_total, time.monotonic() - t_start))
    assert killed >= N_IMAGE_KILLS
