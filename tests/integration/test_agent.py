"""dth agent against the real servers: tasks from the config file, from
tasks.d (watched) and from the API, each on its schedule; runs checked at the
destination with boto3 and skopeo, requests counted by radosgw; SIGHUP,
SIGTERM, stop and start mid-run, kill -9 and restart; the API's refusals
(token, bodies) and dth task's round trips; /metrics through promtool."""

import json
import os
import shutil
import signal
import subprocess
import time

import requests

import lib

PERIOD = 2  # seconds between runs of the test's scheduled tasks


class Agent:
    """dth agent in the foreground, started and stopped by PID, its API on a
    free port of the proxy range; its stderr goes to a file of the test dir
    (scanned for secrets with the rest of dth's output)."""

    def __init__(self, ctx, extra_args=()):
        self.ctx = ctx
        self.port = lib._free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.log_path = os.path.join(ctx.dir, "agent-%d.log" % self.port)
        self.args = list(extra_args)
        self.proc = None
        self.token = None

    def start(self, wait=True):
        env = self.ctx.base_env()
        cmd = [lib.dth_bin(), "--log-level", "info", "agent", "--config", self.ctx.config,
               "--state", self.ctx.state, "--listen", "127.0.0.1:%d" % self.port] + self.args
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, env=env, cwd=lib.REPO, stdout=self.log,
                                     stderr=self.log, start_new_session=True)
        if wait:
            ok = lib.wait_for(self._healthy, 20)
            assert ok, "the agent did not answer /healthz: %s" % self.log_text()[-2000:]
            with open(os.path.join(self.ctx.state, "agent.token")) as f:
                self.token = f.read().strip()
        return self

    def _healthy(self):
        if self.proc.poll() is not None:
            raise AssertionError("the agent exited %d: %s" % (self.proc.returncode,
                                                              self.log_text()[-2000:]))
        try:
            return requests.get(self.url + "/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def api(self, method, path, body=None, token=True, raw=None, expect=None):
        headers = {}
        if token is True:
            headers["Authorization"] = "Bearer " + self.token
        elif token:
            headers["Authorization"] = token
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        if data is not None:
            headers["Content-Type"] = "application/json"
        r = requests.request(method, self.url + path, headers=headers, data=data, timeout=30)
        if expect is not None:
            assert r.status_code == expect, (method, path, r.status_code, r.text)
        return r

    def task(self, name):
        return self.api("GET", "/api/v1/tasks/" + requests.utils.quote(name, safe=""),
                        expect=200).json()

    def listed(self, name):
        """The task as GET /api/v1/tasks shows it."""
        tasks = self.api("GET", "/api/v1/tasks", expect=200).json()["tasks"]
        return next(t for t in tasks if t["name"] == name)

    def task_names(self):
        return sorted(t["name"] for t in self.api("GET", "/api/v1/tasks", expect=200).json()["tasks"])

    def wait_runs(self, name, n, timeout=60):
        """Wait until task name has n runs ended; returns its JSON."""
        def ended():
            t = self.task(name)
            lr = t.get("last_run")
            return t if lr and lr["seq"] >= n and lr["ended"] and t["state"] != "running" else None
        t = lib.wait_for(ended, timeout, interval=0.2)
        assert t, "task %s: run %d did not end within %ds: %s" % (name, n, timeout,
                                                                  json.dumps(self.task(name)))
        return ended()

    def send(self, sig):
        os.kill(self.proc.pid, sig)

    def stop(self, sig=signal.SIGTERM, timeout=60):
        """Stop it; returns its exit status (it must exit within timeout)."""
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.send(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("the agent did not exit within %ds of signal %d" % (timeout, sig))
        finally:
            self.close()
        return rc

    def close(self):
        self.log.close()
        self.ctx._outputs.append(self.log_text())
        lib._release_port(self.port)

    def kill9(self):
        self.proc.kill()
        self.proc.wait()
        self.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            self.stop(timeout=60)


def _task_section(name, src, dst, schedule="every %ds" % PERIOD, **extra):
    text = "[task %s]\nsource = %s\ndestination = %s\nschedule = %s\n" % (name, src, dst, schedule)
    for k, v in extra.items():
        text += "%s = %s\n" % (k, v)
    return text + "\n"


def _objects(client, bucket, prefix, n, seed, size=2000):
    objs = lib.small_objects(prefix, n, seed, max_size=size)
    lib.put_objects(client, bucket, objs)
    return {k: lib.md5hex(v) for k, v in objs.items()}


def _dst_md5(client, bucket, prefix=""):
    return {k: lib.get_md5(client, bucket, k) for k in lib.list_all(client, bucket, prefix)}


def test_scheduled_s3_and_image_tasks(ctx):
    """A config with an S3 task every 2 s and an image task: the first runs
    copy everything; a new object reaches the destination within a period or
    two; an unchanged rescan costs only LISTs at the source (radosgw's own
    counters and log) and nothing at the destination."""
    a, b = lib.s3("a"), lib.s3("b")
    src, dst = ctx.bucket("a", "agsrc"), ctx.bucket("b", "agdst")
    want = _objects(a, src, "d/", 40, 1)
    reg = (lib.registry_section("rsrc", "src")
           + lib.registry_section("rdst", "dst", lib.REG_USER, lib.REG_PASS))
    ctx.write_config(extra=reg + _task_section("objs", "src:" + src, "dst:" + dst)
                     + "[task imgs]\ntype = image\nsource = rsrc:\ndestination = rdst:agent%d\n"
                       "images = test/tiny:v1\nschedule = every 1h\n\n" % os.getpid())
    with Agent(ctx) as ag:
        ag.wait_runs("objs", 1)
        assert _dst_md5(b, dst) == want
        img = ag.wait_runs("imgs", 1)
        assert img["last_run"]["result"] == "ok" and img["last_run"]["transferred"] == 1, img
        raw = lib.skopeo_raw("dst", "agent%d/test/tiny:v1" % os.getpid())
        assert raw == lib.skopeo_raw("src", "test/tiny:v1")

        # An unchanged rescan: whole runs between two counter readings.
        seq = ag.task("objs")["last_run"]["seq"]
        ag.wait_runs("objs", seq + 1)  # a run boundary, then count from here
        before_a, before_b = lib.rgw_req("a"), lib.rgw_req("b")
        off_a, off_b = lib.rgw_log_size("a"), lib.rgw_log_size("b")
        t = ag.wait_runs("objs", seq + 2)
        # Requests of runs seq+2 (and of seq+3 if it started meanwhile).
        runs = [r for r in ag.api("GET", "/api/v1/tasks/objs/runs?limit=5", expect=200).json()["runs"]
                if r["seq"] > seq + 1]
        assert all(r["transferred"] == 0 and r["skipped"] == 40 for r in runs if r["ended"]), runs

        def of(which, off, delta, bucket):
            return [r for r in lib.rgw_log_requests(which, off, want=delta)
                    if r[1].split("?")[0].strip("/").split("/")[0] == bucket]
        reqs_a = of("a", off_a, lib.rgw_req("a") - before_a, src)
        reqs_b = of("b", off_b, lib.rgw_req("b") - before_b, dst)
        assert reqs_a and all(lib.is_list_request(m, p) for m, p, _, _ in reqs_a), reqs_a[:10]
        assert reqs_b == [], "the destination got requests during an unchanged rescan: %s" % reqs_b
        assert len(reqs_a) in (len(runs), len(runs) + 1), (reqs_a, runs)

        # A new object arrives within a period or two.
        a.put_object(Bucket=src, Key="d/new", Body=b"fresh bytes")
        assert lib.wait_for(lambda: "d/new" in lib.list_all(b, dst), 6 * PERIOD), \
            "d/new did not reach the destination"
        assert lib.get_bytes(b, dst, "d/new") == b"fresh bytes"
        assert t["error"] is None


def test_dropin_files_and_sighup(ctx):
    """tasks.d: a file added starts a task, an edited one changes it, a removed
    one takes it away, without a restart; SIGHUP rereads the config (a task
    added there appears; a broken config changes nothing)."""
    a, b = lib.s3("a"), lib.s3("b")
    src, dst = ctx.bucket("a", "dsrc"), ctx.bucket("b", "ddst")
    want = _objects(a, src, "x/", 10, 2)
    base = ctx.default_remotes()
    ctx.write_config(text=base)
    dropin = os.path.join(ctx.dir, "tasks.d")
    os.mkdir(dropin)
    with Agent(ctx) as ag:
        assert ag.task_names() == []
        with open(os.path.join(dropin, "one.conf"), "w") as f:
            f.write("source = src:%s\ndestination = dst:%s/one\nschedule = every 1h\n" % (src, dst))
        assert lib.wait_for(lambda: "one" in ag.task_names(), 10), ag.log_text()[-2000:]
        t = ag.wait_runs("one", 1)
        assert t["origin"] == "dropin" and t["read_only"]
        assert _dst_md5(b, dst, "one/") == {"one/" + k: v for k, v in want.items()}
        # Edit: a new destination prefix and schedule.
        with open(os.path.join(dropin, "one.conf"), "w") as f:
            f.write("source = src:%s\ndestination = dst:%s/two\nschedule = every 1s\n" % (src, dst))
        assert lib.wait_for(lambda: ag.task("one")["definition"]["destination"] == "dst:%s/two" % dst,
                            10)
        assert lib.wait_for(lambda: len(lib.list_all(b, dst, "two/")) == 10, 30)
        # A broken file: the task shows the error; the others go on.
        with open(os.path.join(dropin, "bad.conf"), "w") as f:
            f.write("source = src:%s\ndestination = dst:%s/bad\npart_size = 1K\n" % (src, dst))
        assert lib.wait_for(lambda: "bad" in ag.task_names(), 10)
        bad = ag.task("bad")
        assert bad["state"] == "error" and bad["error"]["field"] == "part_size", bad
        assert "bad.conf:3" in bad["error"]["message"], bad
        # Remove.
        os.unlink(os.path.join(dropin, "one.conf"))
        os.unlink(os.path.join(dropin, "bad.conf"))
        assert lib.wait_for(lambda: ag.task_names() == [], 10), ag.task_names()
        # SIGHUP: a task added to the config file.
        ctx.write_config(text=base + _task_section("hup", "src:" + src, "dst:%s/hup" % dst,
                                                   schedule="every 1h"))
        ag.send(signal.SIGHUP)
        assert lib.wait_for(lambda: "hup" in ag.task_names(), 10)
        ag.wait_runs("hup", 1)
        assert len(lib.list_all(b, dst, "hup/")) == 10
        # A config that does not load: nothing changes, the agent says why.
        ctx.write_config(text=base + "[remote src]\nendpoint = http://127.0.0.1:1\n")
        ag.send(signal.SIGHUP)
        assert lib.wait_for(lambda: "reload" in ag.log_text() and "kept" in ag.log_text(), 10)
        assert ag.task_names() == ["hup"] and ag.task("hup")["state"] != "error"
        # A task of the config that does not check: that task shows the error.
        ctx.write_config(text=base + "[task hup]\nsource = nowhere\ndestination = dst:x\n")
        ag.send(signal.SIGHUP)
        assert lib.wait_for(lambda: ag.task("hup")["state"] == "error", 10)
        assert ag.task("hup")["error"]["field"] == "source", ag.task("hup")
        assert ag.stop() == 0


def _big_source(ctx, n=300, size=200 * 1024):
    a = lib.s3("a")
    src = ctx.bucket("a", "bigsrc")
    objs = {"o/%04d" % i: lib.det_bytes(i, size) for i in range(n)}
    lib.put_objects(a, src, objs)
    return src, {k: lib.md5hex(v) for k, v in objs.items()}


def test_stop_start_and_kill9(ctx):
    """Stop mid-run through the API (stopping, then stopped; it stays stopped
    across a restart), start again; kill -9 mid-run and restart: every task
    resumes, the destination equals the source, and no object was sent twice
    beyond the transfers in flight (radosgw's access log)."""
    b = lib.s3("b")
    src, want = _big_source(ctx)
    dst = ctx.bucket("b", "bigdst")
    ctx.write_config(extra=_task_section("big", "src:" + src, "dst:" + dst, schedule="every 1h",
                                         concurrency=2))
    off_b = lib.rgw_log_size("b")
    agents = []

    def agent():
        agents.append(Agent(ctx).start())
        return agents[-1]

    try:
        ag = agent()
        assert lib.wait_for(lambda: (ag.task("big")["progress"] or {}).get("transferred", 0) >= 20, 60)
        r = ag.api("POST", "/api/v1/tasks/big/actions/stop", expect=202).json()
        assert r["state"] in ("stopping", "stopped"), r
        assert lib.wait_for(lambda: ag.task("big")["state"] == "stopped", 60)
        copied = len(lib.list_all(b, dst))
        assert 0 < copied < len(want), copied
        assert ag.stop() == 0
        # Restarted, it stays stopped until started.
        ag = agent()
        time.sleep(1)
        assert ag.task("big")["state"] == "stopped"
        ag.api("POST", "/api/v1/tasks/big/actions/start", expect=202)
        assert lib.wait_for(lambda: (ag.task("big")["progress"] or {}).get("transferred", 0) >= 20, 60)
        ag.kill9()
        ag = agent()
        t = ag.wait_runs("big", 3, timeout=180)
        assert t["state"] == "idle" and t["last_run"]["result"] == "ok", t
        ag.stop()

    finally:
        for x in agents:
            if x.proc.poll() is None:
                x.kill9()
    assert _dst_md5(b, dst) == want
    reqs = lib.rgw_log_requests("b", off_b, want=len(want))
    puts = {}
    for m, p, st, _ in reqs:
        if m == "PUT" and st == 200:
            puts[p] = puts.get(p, 0) + 1
    again = sum(c - 1 for c in puts.values())
    assert again <= 2 * 2, "objects sent again: %d (%s)" % (again, [p for p, c in puts.items() if c > 1])
    rc, out, _ = ctx.run_dth(["manifest", "verify", "--config", ctx.config, "--state", ctx.state,
                              "big"], check_exit=0)


def test_api_refusals_and_task_cli(ctx):
    """The API refuses a missing or wrong token (401) and bad bodies (400,
    naming the field), leaves nothing half-made, keeps file tasks read-only;
    dth task creates, shows, stops, starts, runs, lists history and deletes."""
    a, b = lib.s3("a"), lib.s3("b")
    src, dst = ctx.bucket("a", "apisrc"), ctx.bucket("b", "apidst")
    want = _objects(a, src, "", 12, 3)
    ctx.write_config(extra=_task_section("filetask", "src:" + src, "dst:%s/f" % dst,
                                         schedule="every 1h"))
    with Agent(ctx) as ag:
        assert ag.api("GET", "/api/v1/tasks", token=False).status_code == 401
        r = ag.api("GET", "/api/v1/tasks", token="Bearer " + "0" * 64)
        assert r.status_code == 401 and r.headers.get("WWW-Authenticate", "").startswith("Bearer")
        assert ag.api("GET", "/metrics", token=False).status_code == 401
        assert ag.api("GET", "/healthz", token=False).status_code == 200
        r = ag.api("POST", "/api/v1/tasks", raw="{not json", expect=400)
        assert r.json()["error"]["code"] == "bad_request"
        for body, field in (({"name": "t", "source": "src:" + src, "destination": "dst:x",
                              "part_size": "1K"}, "part_size"),
                            ({"name": "t", "source": "src:" + src, "destination": "dst:x",
                              "colour": "blue"}, "colour"),
                            ({"name": "t", "source": "src:" + src, "destination": "dst:x",
                              "schedule": "cron \"61 * * * *\""}, "schedule"),
                            ({"name": "t", "type": "tape"}, "type"),
                            ({"name": "t", "source": "nowhere", "destination": "dst:x"}, "source"),
                            ({"name": "filetask", "source": "src:" + src, "destination": "dst:x"},
                             "name")):
            r = ag.api("POST", "/api/v1/tasks", body)
            assert r.status_code in (400, 409), (body, r.status_code, r.text)
            assert r.json()["error"].get("field") == field, (body, r.text)
        assert ag.task_names() == ["filetask"], "a refused create left a task behind"
        r = ag.api("PUT", "/api/v1/tasks/filetask", {"source": "src:" + src, "destination": "dst:y"},
                   expect=409)
        assert r.json()["error"]["code"] == "read_only"
        ag.api("DELETE", "/api/v1/tasks/filetask", expect=409)
        ag.api("POST", "/api/v1/tasks/filetask/actions/explode", expect=404)
        ag.api("GET", "/api/v1/tasks/nosuch", expect=404)

        base = ["task", "--agent", ag.url.split("//")[1], "--state", ctx.state,
                "--config", ctx.config]
        ctx.run_dth(base + ["create", "viacli", "source=src:" + src, "destination=dst:%s/c" % dst,
                            "schedule=every 1h", "concurrency=4"])
        # The list is served from a snapshot: a client's own change shows in
        # it at once (here and after stop and update below).
        assert "viacli" in ag.task_names()
        t = ag.wait_runs("viacli", 1)
        assert t["origin"] == "api" and not t["read_only"] and t["definition"]["concurrency"] == 4
        assert _dst_md5(b, dst, "c/") == {"c/" + k: v for k, v in want.items()}
        rc, out, _ = ctx.run_dth(base + ["show", "viacli", "--json"])
        assert json.loads(out)["stats"]["objects"]["done"] == 12
        ctx.run_dth(base + ["stop", "viacli"])
        assert ag.task("viacli")["state"] == "stopped"
        assert ag.listed("viacli")["state"] == "stopped"
        ctx.run_dth(base + ["start", "viacli"])
        assert ag.task("viacli")["state"] == "idle"
        ctx.run_dth(base + ["run", "viacli"])
        ag.wait_runs("viacli", 2)
        rc, out, _ = ctx.run_dth(base + ["history", "viacli", "--json"])
        runs = json.loads(out)["runs"]
        assert [r["trigger"] for r in runs] == ["api", "schedule"], runs
        assert runs[0]["transferred"] == 0 and runs[0]["skipped"] == 12
        ctx.run_dth(base + ["update", "viacli", "source=src:" + src,
                            "destination=dst:%s/c" % dst, "schedule=every 2h"])
        assert ag.task("viacli")["definition"]["schedule"] == "every 2h"
        assert ag.listed("viacli")["definition"]["schedule"] == "every 2h"
        # update with some keys keeps the others (the API's PUT replaces).
        ctx.run_dth(base + ["update", "viacli", "schedule=every 3h"])
        d = ag.task("viacli")["definition"]
        assert (d["schedule"], d["concurrency"], d["destination"]) == \
            ("every 3h", 4, "dst:%s/c" % dst), d
        rc, _, err = ctx.run_dth(base + ["delete", "filetask"], check_exit=2)
        ctx.run_dth(base + ["delete", "viacli", "--purge"])
        assert ag.task_names() == ["filetask"]
        rc, _, err = ctx.run_dth(base[:3] + ["--state", ctx.dir, "list"], check_exit=2)
    # The definition made through the API survives a restart; the purged one is gone.
    with Agent(ctx) as ag:
        assert ag.task_names() == ["filetask"]


def test_metrics_pass_promtool(ctx):
    """/metrics is Prometheus text that promtool accepts, with the task's
    counters as radosgw saw them."""
    if not shutil.which("promtool"):
        lib.skip("promtool not installed (Debian's prometheus package)")
    a = lib.s3("a")
    src, dst = ctx.bucket("a", "msrc"), ctx.bucket("b", "mdst")
    _objects(a, src, "", 7, 4)
    ctx.write_config(extra=_task_section("m", "src:" + src, "dst:" + dst, schedule="every 1h"))
    with Agent(ctx) as ag:
        ag.wait_runs("m", 1)
        text = ag.api("GET", "/metrics", expect=200).text
        p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                           text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        assert 'dth_task_objects_transferred_total{task="m"} 7' in text, text[:2000]
        assert 'dth_task_state{state="idle",task="m"} 1' in text
        assert 'dth_requests_total{op="PutObject",remote="dst"}' in text, text


def test_failed_objects_and_retry_only(ctx):
    """Objects the destination refuses (a bucket policy denying bad/*) fail
    with their reasons, listed by the API from the manifest's index; once the
    policy is gone, "retry" copies those objects and nothing else: radosgw's
    log at the source shows no LIST, only requests for them."""
    a, b = lib.s3("a"), lib.s3("b")
    src, dst = ctx.bucket("a", "rsrc"), ctx.bucket("b", "rdst")
    want = _objects(a, src, "good/", 27, 5)
    want.update(_objects(a, src, "bad/", 3, 6))
    policy = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
        "Resource": "arn:aws:s3:::%s/bad/*" % dst}]}
    b.put_bucket_policy(Bucket=dst, Policy=json.dumps(policy))
    ctx.write_config(extra=_task_section("r", "src:" + src, "dst:" + dst, schedule="every 1h"))
    with Agent(ctx) as ag:
        t = ag.wait_runs("r", 1)
        assert t["state"] == "error" and t["error"]["code"] == "objects_failed", t
        assert t["last_run"]["failed"] == 3 and t["last_run"]["transferred"] == 27, t["last_run"]
        assert t["last_run"]["errors"] and "bad/" in t["last_run"]["errors"][0], t["last_run"]
        f = ag.api("GET", "/api/v1/tasks/r/failures", expect=200).json()
        assert sorted(o["key"] for o in f["objects"]) == sorted(k for k in want if k.startswith("bad/"))
        assert all("403" in o["error"] or "AccessDenied" in o["error"] for o in f["objects"]), f
        page = ag.api("GET", "/api/v1/tasks/r/objects?status=done&limit=10", expect=200).json()
        assert len(page["objects"]) == 10 and page["next"], page
        rest = ag.api("GET", "/api/v1/tasks/r/objects?status=done&limit=100&after=" + page["next"],
                      expect=200).json()
        assert len(rest["objects"]) == 17 and rest["next"] is None, rest
        b.delete_bucket_policy(Bucket=dst)
        off_a, req_a = lib.rgw_log_size("a"), lib.rgw_req("a")
        ag.api("POST", "/api/v1/tasks/r/actions/retry", expect=202)
        t = ag.wait_runs("r", 2)
        assert t["state"] == "idle" and t["last_run"]["trigger"] == "retry", t
        assert (t["last_run"]["transferred"], t["last_run"]["failed"]) == (3, 0), t["last_run"]
        reqs = [r for r in lib.rgw_log_requests("a", off_a, want=lib.rgw_req("a") - req_a)
                if r[1].split("?")[0].strip("/").split("/")[0] == src]
        assert reqs and not any(lib.is_list_request(m, p) for m, p, _, _ in reqs), reqs
        assert all(p.startswith("/%s/bad/" % src) for _, p, _, _ in reqs), reqs
        assert ag.api("GET", "/api/v1/tasks/r/failures", expect=200).json()["objects"] == []
    assert _dst_md5(b, dst) == want


def test_mounts_served_beside_tasks(ctx):
    """[mount NAME] sections are served by the agent (dth mount children): the
    files show through FUSE; a mount that cannot work fails alone (the
    task goes on); SIGHUP applies the sections anew (an unchanged mount keeps
    its child, a removed one unmounts, a new one mounts); SIGTERM unmounts."""
    lib.require_fuse()
    a = lib.s3("a")
    src, dst = ctx.bucket("a", "mnsrc"), ctx.bucket("b", "mndst")
    want = _objects(a, src, "m/", 5, 7)
    mnt = os.path.join(ctx.dir, "mnt")
    os.mkdir(mnt)
    ctx.write_config(extra=_task_section("t", "src:" + src, "dst:" + dst, schedule="every 1h")
                     + "[mount view]\nsource = src:%s\nmountpoint = %s\ndir_cache_ttl = 0\n\n"
                       % (src, mnt)
                     + "[mount broken]\nsource = nosuchremote:x\nmountpoint = %s/none\n\n"
                       % ctx.dir)
    ag = Agent(ctx).start()
    try:
        def state(name):
            ms = ag.api("GET", "/api/v1/agent", expect=200).json()["mounts"]
            return {m["name"]: m for m in ms}.get(name, {})  # a reload may not be read yet
        assert lib.wait_for(lambda: state("view").get("state") == "mounted", 30), state("view")
        assert sorted(os.listdir(os.path.join(mnt, "m"))) == sorted(k[2:] for k in want)
        for k, md5 in want.items():
            assert lib.file_md5(os.path.join(mnt, k)) == md5
        assert lib.wait_for(lambda: state("broken").get("state") == "failed", 30), state("broken")
        assert state("broken")["last_exit"] == 2, state("broken")
        t = ag.wait_runs("t", 1)
        assert t["last_run"]["result"] == "ok"
        # SIGHUP: view unchanged, broken gone, view2 new.
        pid = state("view")["pid"]
        mnt2 = os.path.join(ctx.dir, "mnt2")
        os.mkdir(mnt2)
        task = _task_section("t", "src:" + src, "dst:" + dst, schedule="every 1h")
        view = "[mount view]\nsource = src:%s\nmountpoint = %s\ndir_cache_ttl = 0\n\n" % (src, mnt)
        view2 = "[mount view2]\nsource = src:%s/m\nmountpoint = %s\n\n" % (src, mnt2)
        ctx.write_config(extra=task + view + view2)
        ag.send(signal.SIGHUP)
        assert lib.wait_for(lambda: state("view2").get("state") == "mounted", 30), state("view2")
        assert sorted(os.listdir(mnt2)) == sorted(k[2:] for k in want)
        mounts = ag.api("GET", "/api/v1/agent", expect=200).json()["mounts"]
        assert sorted(m["name"] for m in mounts) == ["view", "view2"], mounts
        assert state("view")["pid"] == pid, "an unchanged mount was restarted"
        # SIGHUP: view removed: it unmounts; view2 stays.
        ctx.write_config(extra=task + view2)
        ag.send(signal.SIGHUP)
        assert lib.wait_for(lambda: not lib.is_mounted(mnt), 20), "a removed mount stayed"
        assert lib.is_mounted(mnt2)
        assert ag.task("t")["state"] == "idle"
        assert ag.stop() == 0
        assert lib.wait_for(lambda: not lib.is_mounted(mnt2), 20), "still mounted after SIGTERM"
    finally:
        if ag.proc.poll() is None:
            ag.kill9()
        for path in (mnt, os.path.join(ctx.dir, "mnt2")):
            if lib.is_mounted(path):
                lib.force_unmount(path)
