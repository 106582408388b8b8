"""The synthetic S3 server (tests/harness/synth-s3.py) that bench/scale.sh
measures dth against: its listing must page exactly as S3 does, or the scale
figures mean nothing. Checked with boto3 (an independent client) against a
key list this test builds itself, and with dth: a dry run plans every key, a
first run against the mirror bucket adopts every key, a rescan sends exactly
ceil(N/1000) LISTs (the server's own counters), a real copy writes what the
server then lists."""

import hashlib
import json
import math
import os
import subprocess
import sys
import urllib.request

import boto3

import lib

N = 2345
SYNTH = os.path.join(lib.REPO, "tests", "harness", "synth-s3.py")


def key_of(i):
    """The harness's documented key scheme, written out again here."""
    return "d%04d/s%03d/obj-%010d.dat" % (i // 1000000, (i // 1000) % 1000, i)


class Synth:
    """synth-s3.py on a free port of the proxy range, stopped by PID."""

    def __init__(self, ctx, n, extra=()):
        self.port = lib._free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.pid_file = os.path.join(ctx.dir, "synth.pid")
        self.out = open(os.path.join(ctx.dir, "synth.out"), "ab")
        cmd = [sys.executable, SYNTH, "--port", str(self.port), "--keys", str(n), "--bucket", "src",
               "--mirror", "mirror", "--empty", "empty", "--pid-file", self.pid_file] + list(extra)
        self.proc = subprocess.Popen(cmd, stdout=self.out, stderr=self.out,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        if not lib.wait_for(lambda: self.proc.poll() is not None or self._up(), 30):
            self.stop()
            raise AssertionError("synth-s3 did not start")
        if self.proc.poll() is not None:
            self.stop()
            raise AssertionError("synth-s3 exited at start")

    def _up(self):
        try:
            self.stats()
            return True
        except OSError:
            return False

    def stats(self):
        with urllib.request.urlopen(self.url + "/__stats", timeout=10) as f:
            return json.loads(f.read())

    def reset(self):
        req = urllib.request.Request(self.url + "/__stats/reset", method="POST")
        urllib.request.urlopen(req, timeout=10).close()

    def lists(self):
        return self.stats()["requests"].get("LIST", 0)

    def client(self):
        # any credentials: the server checks no signature
        return boto3.client("s3", endpoint_url=self.url, aws_access_key_id="synth",
                            aws_secret_access_key="synth-any", region_name="us-east-1",
                            config=lib._config())

    def remote_env(self):
        p = "DTH_REMOTE_SYN_"
        return {p + "TYPE": "s3", p + "PROVIDER": "other", p + "ENDPOINT": self.url,
                p + "REGION": "us-east-1", p + "PATH_STYLE": "true",
                p + "ACCESS_KEY_ID": "synth", p + "SECRET_ACCESS_KEY": "synth-any"}

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()
        lib._release_port(self.port)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def paginate(c, **kw):
    keys, prefixes, pages = [], [], 0
    for page in c.get_paginator("list_objects_v2").paginate(Bucket="src", **kw):
        pages += 1
        assert page["KeyCount"] == len(page.get("Contents", [])) + len(page.get("CommonPrefixes", []))
        keys += [o["Key"] for o in page.get("Contents", [])]
        prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
    return keys, prefixes, pages


def test_synth_paging(ctx):
    want = sorted(key_of(i) for i in range(N))
    assert want == [key_of(i) for i in range(N)], "the key scheme does not sort as its indexes"
    with Synth(ctx, N) as s:
        c = s.client()
        keys, _, pages = paginate(c)  # boto3 asks encoding-type=url and decodes
        assert keys == want, "full listing: %d keys, first difference at %s" % (
            len(keys), next((i for i, (a, b) in enumerate(zip(keys, want)) if a != b), len(keys)))
        assert pages == math.ceil(N / 1000) and s.lists() == pages, (pages, s.stats())
        keys, _, pages = paginate(c, PaginationConfig={"PageSize": 7}, Prefix="d0000/s001/")
        assert keys == [k for k in want if k.startswith("d0000/s001/")] and pages == math.ceil(1000 / 7)
        keys, _, _ = paginate(c, StartAfter=want[1500], PaginationConfig={"PageSize": 333})
        assert keys == want[1501:]
        keys, _, _ = paginate(c, StartAfter="d0000/s001/obj-0000001234.dat5", Prefix="d0000/s001/")
        assert keys == [k for k in want if "d0000/s001/obj-0000001234.dat5" < k < "d0000/s002"]
        keys, prefixes, _ = paginate(c, Delimiter="/", Prefix="d0000/",
                                     PaginationConfig={"PageSize": 2})
        assert keys == [] and prefixes == ["d0000/s000/", "d0000/s001/", "d0000/s002/"], prefixes
        keys, prefixes, _ = paginate(c, Delimiter="/")
        assert keys == [] and prefixes == ["d0000/"], prefixes
        keys, _, _ = paginate(c, Prefix="d0000/s009/")
        assert keys == []
        r = c.list_objects_v2(Bucket="src", MaxKeys=N + 5000)
        assert r["KeyCount"] == 1000 and r["IsTruncated"], "max-keys is capped at 1000"
        r = c.list_objects_v2(Bucket="src", StartAfter=want[-1])
        assert r["KeyCount"] == 0 and not r["IsTruncated"]
        v1 = c.get_paginator("list_objects").paginate(Bucket="src", Delimiter="/", Prefix="d0000/")
        assert [p["Prefix"] for pg in v1 for p in pg.get("CommonPrefixes", [])] == [
            "d0000/s000/", "d0000/s001/", "d0000/s002/"]
        assert paginate_mirror(c) == want


def paginate_mirror(c):
    return [o["Key"] for page in c.get_paginator("list_objects_v2").paginate(Bucket="mirror")
            for o in page.get("Contents", [])]


def test_synth_objects(ctx):
    with Synth(ctx, N) as s:
        c = s.client()
        listed = {o["Key"]: o for o in c.list_objects_v2(Bucket="src", MaxKeys=50)["Contents"]}
        for k, o in list(listed.items())[:20]:
            body = c.get_object(Bucket="src", Key=k)["Body"].read()
            assert len(body) == o["Size"] and hashlib.md5(body).hexdigest() == o["ETag"].strip('"')
            h = c.head_object(Bucket="mirror", Key=k)
            assert h["ContentLength"] == o["Size"] and h["ETag"] == o["ETag"]
        k = max(listed, key=lambda x: listed[x]["Size"])
        whole = c.get_object(Bucket="src", Key=k)["Body"].read()
        part = c.get_object(Bucket="src", Key=k, Range="bytes=10-99")
        assert part["Body"].read() == whole[10:100] and part["ContentRange"].endswith("/%d" % len(whole))
        assert c.get_object(Bucket="src", Key=k, Range="bytes=-5")["Body"].read() == whole[-5:]
        for bad in (key_of(N), "d0000/s000/obj-1.dat"):
            try:
                c.head_object(Bucket="src", Key=bad)
                raise AssertionError("HEAD of %s answered" % bad)
            except c.exceptions.ClientError as e:
                assert e.response["Error"]["Code"] in ("404", "NoSuchKey"), e.response
        s.reset()
        body = b"x" * 3000
        r = c.put_object(Bucket="empty", Key="a b+c", Body=body)
        assert r["ETag"].strip('"') == hashlib.md5(body).hexdigest()
        up = c.create_multipart_upload(Bucket="empty", Key="mp")["UploadId"]
        e1 = c.upload_part(Bucket="empty", Key="mp", UploadId=up, PartNumber=1, Body=b"1" * 100)["ETag"]
        e2 = c.upload_part(Bucket="empty", Key="mp", UploadId=up, PartNumber=2, Body=b"2" * 50)["ETag"]
        r = c.complete_multipart_upload(Bucket="empty", Key="mp", UploadId=up, MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
        md5s = hashlib.md5(b"1" * 100).digest() + hashlib.md5(b"2" * 50).digest()
        assert r["ETag"].strip('"') == hashlib.md5(md5s).hexdigest() + "-2"
        got = c.list_objects_v2(Bucket="empty")["Contents"]
        assert [(o["Key"], o["Size"]) for o in got] == [("a b+c", 3000), ("mp", 150)], got
        rq = s.stats()["requests"]
        assert rq.get("PUT") == 1 and rq.get("MPU_PART") == 2 and rq.get("MPU_COMPLETE") == 1, rq


def test_synth_dth_plan_and_rescan(ctx):
    with Synth(ctx, N) as s:
        env = s.remote_env()
        res = ctx.sync("syn:src", "syn:empty", "--dry-run", config=False, env=env,
                       state=os.path.join(ctx.dir, "dry"))
        assert res["planned"]["new"] == N and res["transferred"] == 0, res
        # the source in ceil(N/1000) pages, the empty destination in one
        assert s.lists() == math.ceil(N / 1000) + 1, s.stats()
        s.reset()
        res = ctx.sync("syn:src", "syn:mirror", config=False, env=env)
        assert res["adopted"] == N and res["transferred"] == 0 and res["failed"] == 0, res
        assert s.lists() == 2 * math.ceil(N / 1000), s.stats()
        s.reset()
        res = ctx.sync("syn:src", "syn:mirror", config=False, env=env)
        assert res["transferred"] == 0 and res["skipped"] == N, res
        rq = s.stats()["requests"]
        assert rq.get("LIST") == math.ceil(N / 1000), rq
        assert set(rq) <= {"LIST", "STATS"}, "a no-change rescan sends only LISTs: %s" % rq
        # a real copy (server side: one endpoint) of one 1,000-key directory
        s.reset()
        res = ctx.sync("syn:src/d0000/s001/", "syn:empty/copy/", config=False, env=env, task="c")
        assert res["transferred"] == 1000 and res["failed"] == 0, res
        c = s.client()
        got = {o["Key"]: o for p in c.get_paginator("list_objects_v2").paginate(Bucket="empty")
               for o in p.get("Contents", [])}
        src = {o["Key"]: o for p in c.get_paginator("list_objects_v2").paginate(
            Bucket="src", Prefix="d0000/s001/") for o in p.get("Contents", [])}
        assert sorted(got) == sorted("copy/" + k[len("d0000/s001/"):] for k in src)
        bad = [k for k in src if got["copy/" + k[len("d0000/s001/"):]]["ETag"] != src[k]["ETag"]]
        assert not bad, bad[:5]
