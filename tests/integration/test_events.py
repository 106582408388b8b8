"""Change events against the real servers: radosgw bucket notifications
POSTed to the agent's webhook (radosgw's SNS-compatible topics, then
PutBucketNotificationConfiguration), docker-registry push notifications, and
events the test POSTs itself (stale, duplicated, refused, signed). Outcomes
are checked at the destination with boto3 and skopeo, request counts in
radosgw's own log."""

import hashlib
import hmac
import http.server
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import boto3
import requests

import lib
from test_agent import Agent, _task_section, _objects, _dst_md5


def _webhook_url(ctx, ag, task):
    """The task's webhook URL from dth task webhook (its secret registered,
    so no output of dth may show it)."""
    out = subprocess.run([lib.dth_bin(), "task", "--agent", ag.url, "--state", ctx.state,
                          "webhook", task], check=True, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=ctx.base_env(), timeout=30).stdout
    url = out.decode().strip()
    lib.register_secret(url.split("secret=", 1)[1])
    return url


def _notify(bucket, url, which="a"):
    """Subscribe bucket (on radosgw which) to ObjectCreated/Removed through a
    topic pushing to url (synchronous: the POST happens before the PUT ends)."""
    sns = boto3.client("sns", endpoint_url=lib.endpoint(which), region_name="default",
                       aws_access_key_id=lib.RGW_KEY, aws_secret_access_key=lib.RGW_SECRET)
    arn = sns.create_topic(Name=bucket + "-hook",
                           Attributes={"push-endpoint": url, "persistent": "false"})["TopicArn"]
    lib.s3(which).put_bucket_notification_configuration(
        Bucket=bucket, NotificationConfiguration={"TopicConfigurations": [{
            "Id": bucket + "-hook", "TopicArn": arn,
            "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]}]})


def _record(bucket, key, name="ObjectCreated:Put", source="aws:s3"):
    return {"eventSource": source, "eventName": name,
            "s3": {"bucket": {"name": bucket}, "object": {"key": key, "sequencer": "00"}}}


def _event_runs(ag, task, after):
    runs = ag.api("GET", "/api/v1/tasks/%s/runs?limit=50" % task, expect=200).json()["runs"]
    return [r for r in runs if r["seq"] > after and r["trigger"] == "events"]


def _puts_at(bucket, off):
    """Successful PUTs per key into bucket at radosgw b since log offset off."""
    puts = {}
    for meth, path, status, _ in lib.rgw_log_requests("b", off):
        if meth == "PUT" and path.startswith("/" + bucket + "/") and str(status).startswith("2"):
            k = requests.utils.unquote(path.split("?")[0][len(bucket) + 2:])
            puts[k] = puts.get(k, 0) + 1
    return puts


def test_rgw_notifications_to_webhook(ctx):
    """radosgw notifies the agent of a new, an overwritten and a deleted
    object: each reaches the destination (bytes checked) within seconds, with
    no listing of the source; a stale event and a duplicate copy nothing; a
    wrong secret, a bad signature and a body that is not an event are
    refused and change nothing."""
    a, b = lib.s3("a"), lib.s3("b")
    src, dst = ctx.bucket("a", "evsrc"), ctx.bucket("b", "evdst")
    want = _objects(a, src, "in/", 5, 11)
    ctx.write_config(extra=_task_section("hook", "src:%s/in/" % src, "dst:%s/out/" % dst,
                                         schedule="every 1h", events="webhook", delete="true"))
    with Agent(ctx) as ag:
        ag.wait_runs("hook", 1)
        assert _dst_md5(b, dst, "out/") == {"out/" + k[3:]: v for k, v in want.items()}
        url = _webhook_url(ctx, ag, "hook")
        # The subscription stays with the bucket (a throw-away one): radosgw
        # 16 takes no empty NotificationConfiguration, and nothing sends
        # DeleteObjects to it (that aborts radosgw 16's beast frontend on a
        # notified bucket).
        _notify(src, url)
        if True:
            off = lib.rgw_log_size("a")
            t0 = time.time()
            a.put_object(Bucket=src, Key="in/new one", Body=b"first")
            assert lib.wait_for(lambda: "out/new one" in lib.list_all(b, dst, "out/"), 10), \
                ag.log_text()[-2000:]
            latency = time.time() - t0
            assert lib.get_bytes(b, dst, "out/new one") == b"first"
            # Overwritten: the new bytes arrive.
            a.put_object(Bucket=src, Key="in/new one", Body=b"second, longer")
            assert lib.wait_for(
                lambda: lib.get_bytes(b, dst, "out/new one") == b"second, longer", 10)
            # Outside the task's prefix: ignored.
            a.put_object(Bucket=src, Key="elsewhere", Body=b"x")
            # Deleted (the task deletes): gone at the destination.
            a.delete_object(Bucket=src, Key="in/d/00000")
            assert lib.wait_for(lambda: "out/d/00000" not in lib.list_all(b, dst, "out/"), 10)
            t = ag.task("hook")
            assert lib.wait_for(lambda: not ag.task("hook")["events"]["pending"], 10)
            reqs = [r for r in lib.rgw_log_requests("a", off)
                    if r[1].split("?")[0].strip("/").split("/")[0] == src]
            assert not any(lib.is_list_request(m, p) for m, p, _, _ in reqs), reqs
            # radosgw's records say the size and ETag: a new object is copied
            # without a HEAD first (the delete's event has none: one HEAD)
            heads = [p for m, p, _, _ in reqs if m == "HEAD"]
            assert len(heads) == 1 and heads[0].endswith("/in/d/00000"), heads
        assert "elsewhere" not in "".join(lib.list_all(b, dst))
        t = ag.task("hook")
        assert t["events"]["received"] >= 3 and t["events"]["ignored"] >= 1, t["events"]
        metrics = ag.api("GET", "/metrics", expect=200).text
        line = 'dth_task_events_total{outcome="accepted",task="hook"} %d' % t["events"]["received"]
        assert line in metrics, [m for m in metrics.splitlines() if "events" in m]
        assert 'dth_task_events_backlog{task="hook"} 0' in metrics

        # Replayed and stale events: the source's state wins.
        seq = t["last_run"]["seq"]
        body = {"Records": [_record(src, "in/d/00000"), _record(src, "in/new+one"),
                            _record(src, "in/new+one", "ObjectRemoved:Delete")]}
        r = ag.api("POST", "/api/v1/tasks/hook/events", body=body, expect=202).json()
        assert r["accepted"] == 3, r
        assert lib.wait_for(lambda: _event_runs(ag, "hook", seq) and
                            not ag.task("hook")["events"]["pending"] and
                            ag.task("hook")["state"] == "idle", 10)
        runs = _event_runs(ag, "hook", seq)
        assert sum(x["transferred"] + x["deleted"] for x in runs) == 0, runs
        assert "out/d/00000" not in lib.list_all(b, dst, "out/")
        assert lib.get_bytes(b, dst, "out/new one") == b"second, longer"

        # A stale create that says the size and ETag of a version deleted
        # since: copied from that hint without a HEAD, the GET finds nothing;
        # not a failure, and the destination keeps no copy.
        seq = ag.task("hook")["last_run"]["seq"]
        rec = _record(src, "in/d/00000")
        rec["s3"]["object"].update({"size": 5, "eTag": "0123456789abcdef0123456789abcdef"})
        ag.api("POST", "/api/v1/tasks/hook/events", body={"Records": [rec]}, expect=202)
        assert lib.wait_for(lambda: _event_runs(ag, "hook", seq) and
                            not ag.task("hook")["events"]["pending"] and
                            ag.task("hook")["state"] == "idle", 10)
        runs = _event_runs(ag, "hook", seq)
        assert [(x["result"], x["failed"], x["transferred"]) for x in runs] == [("ok", 0, 0)], runs
        assert ag.api("GET", "/api/v1/tasks/hook/failures", expect=200).json()["objects"] == []
        assert "out/d/00000" not in lib.list_all(b, dst, "out/")

        # Refusals: nothing kept.
        path = "/api/v1/tasks/hook/events"
        raw = json.dumps({"Records": [_record(src, "in/refused")]})
        bad = requests.post(ag.url + path + "?secret=" + "0" * 64, data=raw, timeout=10)
        assert bad.status_code == 401, bad.text
        secret = url.split("secret=", 1)[1]
        sig = hmac.new(secret.encode(), raw.encode(), hashlib.sha256).hexdigest()
        forged = requests.post(ag.url + path, data=raw + " ",
                               headers={"X-Dth-Signature": "sha256=" + sig}, timeout=10)
        assert forged.status_code == 401, forged.text
        assert ag.api("POST", path, raw="not json").status_code == 400
        assert ag.api("POST", path, raw='{"Records":[{"eventName":"ObjectCreated:Put"}]}'
                      ).status_code == 400
        assert ag.api("POST", "/api/v1/tasks/nosuch/events", raw=raw).status_code == 404
        assert ag.task("hook")["events"]["backlog"] == 0
        # A signed body is accepted.
        a.put_object(Bucket=src, Key="in/refused", Body=b"signed")
        ok = requests.post(ag.url + path, data=raw,
                           headers={"X-Dth-Signature": "sha256=" + sig}, timeout=10)
        assert ok.status_code == 202, ok.text
        assert lib.wait_for(lambda: "out/refused" in lib.list_all(b, dst, "out/"), 10)
        print("event to destination: %.2f s" % latency)


def test_events_kept_across_kill9(ctx):
    """Events accepted while the task is stopped are kept in the manifest:
    after kill -9 and a restart, the task copies every key they name, each
    exactly once (radosgw's log at the destination), with no listing."""
    a, b = lib.s3("a"), lib.s3("b")
    src, dst = ctx.bucket("a", "evksrc"), ctx.bucket("b", "evkdst")
    ctx.write_config(extra=_task_section("k", "src:" + src, "dst:" + dst,
                                         schedule="every 1h", events="webhook"))
    with Agent(ctx) as ag:
        ag.wait_runs("k", 1)
    want = _objects(a, src, "e/", 300, 12)
    ag = Agent(ctx).start()
    ag.api("POST", "/api/v1/tasks/k/actions/stop", expect=202)
    body = {"Records": [_record(src, k) for k in sorted(want)]}
    r = ag.api("POST", "/api/v1/tasks/k/events", body=body, expect=202).json()
    assert r["accepted"] == 300 and r["backlog"] == 300, r
    ag.kill9()
    off = lib.rgw_log_size("b")
    ag = Agent(ctx).start()
    try:
        assert ag.task("k")["events"]["backlog"] == 300
        ag.api("POST", "/api/v1/tasks/k/actions/start", expect=202)
        # Killed again in the middle of the event run: the next one resumes.
        assert lib.wait_for(lambda: len(lib.list_all(b, dst)) >= 30, 60)
        ag.kill9()
        ag = Agent(ctx).start()
        assert lib.wait_for(lambda: not ag.task("k")["events"]["pending"] and
                            ag.task("k")["state"] == "idle", 120), ag.task("k")
        assert _dst_md5(b, dst) == want
    finally:
        ag.stop()
    twice = {k: n for k, n in _puts_at(dst, off).items() if n > 1}
    assert not twice, "copied more than once: %s" % twice


def test_events_during_a_rescan(ctx):
    """Events for every key, POSTed while the first full run copies them:
    the event run that follows copies nothing again (each key PUT once at the
    destination, radosgw's log) and acknowledges them all."""
    a, b = lib.s3("a"), lib.s3("b")
    src, dst = ctx.bucket("a", "evrsrc"), ctx.bucket("b", "evrdst")
    want = _objects(a, src, "r/", 400, 51, size=20000)
    ctx.write_config(extra=_task_section("r", "src:" + src, "dst:" + dst,
                                         schedule="every 1h", events="webhook", concurrency="2"))
    off = lib.rgw_log_size("b")
    with Agent(ctx) as ag:
        assert lib.wait_for(lambda: ag.task("r")["state"] == "running", 20)
        body = {"Records": [_record(src, k) for k in sorted(want)]}
        r = ag.api("POST", "/api/v1/tasks/r/events", body=body, expect=202).json()
        assert r["accepted"] == 400
        assert ag.task("r")["state"] == "running", "the full run ended before the events came"
        assert lib.wait_for(lambda: ag.task("r")["state"] != "running" and
                            not ag.task("r")["events"]["pending"], 120), ag.task("r")
        assert _dst_md5(b, dst) == want
        runs = ag.api("GET", "/api/v1/tasks/r/runs", expect=200).json()["runs"]
        assert sum(x["transferred"] for x in runs if x["trigger"] == "events") == 0, runs
    puts = _puts_at(dst, off)
    assert len(puts) == 400 and max(puts.values()) == 1, sorted(puts.items())[:5]


def _notify_registry(ctx, port, hook_url):
    """A docker-registry on port that POSTs push notifications to hook_url;
    returns its stop function."""
    # Its config and log hold the task's secret (the URL): kept outside the
    # test dir, whose files are checked for secrets dth must not write.
    base = tempfile.mkdtemp(prefix="reg-notify-", dir=os.path.dirname(ctx.dir))
    root = os.path.join(base, "data")
    cfg = os.path.join(base, "reg-notify.yml")
    with open(cfg, "w") as f:
        f.write("""version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  secret: test-notify
  addr: 127.0.0.1:%d
notifications:
  endpoints:
    - name: dth
      url: %s
      headers:
        X-Test: [dth]
      timeout: 2s
      threshold: 3
      backoff: 1s
      ignore:
        mediatypes: [application/octet-stream]
        actions: [pull]
""" % (root, port, hook_url))
    os.chmod(cfg, 0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    log = open(os.path.join(base, "reg-notify.log"), "ab")
    proc = subprocess.Popen(["docker-registry", "serve", cfg], stdout=log, stderr=log, env=env,
                            start_new_session=True)
    url = "http://127.0.0.1:%d" % port

    def up():
        assert proc.poll() is None, "the notifying registry exited"
        try:
            return requests.get(url + "/v2/", timeout=1).status_code == 200
        except requests.RequestException:
            return False
    assert lib.wait_for(up, 20), "the notifying registry did not start"

    def stop():
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(base, ignore_errors=True)
    return stop


def _skopeo_copy(src_ref, dst_ref):
    cmd = ["skopeo", "copy", "--all", "--src-tls-verify=false", "--dest-tls-verify=false",
           src_ref, dst_ref]
    env = dict(os.environ)
    env.pop("REGISTRY_AUTH_FILE", None)
    subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                   timeout=120)


def test_registry_push_notifications(ctx):
    """A push to a registry that notifies the agent copies that tag, and only
    that tag, to the destination registry at once (the schedule is hourly);
    a tag the task's regex excludes is not copied."""
    src_host = lib.registry_url("src").split("://", 1)[1]
    pfx = "evimg%d" % os.getpid()
    port = lib._free_port()
    rn = "http://127.0.0.1:%d" % port
    ctx.write_config(extra="[remote rn]\ntype = registry\nurl = %s\ninsecure = true\n\n" % rn
                     + lib.registry_section("rdst", "dst", lib.REG_USER, lib.REG_PASS)
                     + "[task imgs]\ntype = image\nsource = rn:\ndestination = rdst:%s\n"
                       "images = test/tiny\ntags = v[0-9]+\nschedule = every 1h\n"
                       "events = webhook\n\n" % pfx)
    stop = None
    try:
        with Agent(ctx) as ag:
            # The first (scheduled) run finds no registry yet: it fails.
            t = ag.wait_runs("imgs", 1)
            assert t["last_run"]["result"] != "ok", t
            seq = t["last_run"]["seq"]
            stop = _notify_registry(ctx, port, _webhook_url(ctx, ag, "imgs"))
            tiny = "docker://%s/test/tiny:v1" % src_host
            _skopeo_copy(tiny, "docker://127.0.0.1:%d/test/tiny:v1" % port)
            assert lib.wait_for(lambda: sum(r["transferred"] for r in _event_runs(ag, "imgs", seq))
                                == 1, 30), ag.task("imgs")
            seq = ag.task("imgs")["last_run"]["seq"]
            _skopeo_copy(tiny, "docker://127.0.0.1:%d/test/tiny:v2" % port)
            _skopeo_copy(tiny, "docker://127.0.0.1:%d/test/tiny:latest" % port)
            assert lib.wait_for(lambda: _event_runs(ag, "imgs", seq) and
                                ag.task("imgs")["state"] != "running" and
                                not ag.task("imgs")["events"]["pending"], 30), ag.task("imgs")
            runs = _event_runs(ag, "imgs", seq)
            assert sum(r["transferred"] for r in runs) == 1, runs
            assert all(r["result"] == "ok" for r in runs), runs
            ev = ag.task("imgs")["events"]
            assert ev["ignored"] >= 1 and ev["received"] == 2, ev
            want = lib.skopeo_raw("src", "test/tiny:v1")
            assert lib.skopeo_raw("dst", "%s/test/tiny:v2" % pfx) == want
            tags = subprocess.run(["skopeo", "list-tags", "--tls-verify=false", "--creds",
                                   "%s:%s" % (lib.REG_USER, lib.REG_PASS),
                                   "docker://%s/%s/test/tiny" % (
                                       lib.registry_url("dst").split("://", 1)[1], pfx)],
                                  check=True, stdout=subprocess.PIPE, timeout=60).stdout
            assert sorted(json.loads(tags)["Tags"]) == ["v1", "v2"], tags
    finally:
        if stop:
            stop()
        lib._release_port(port)


# --------------------------------------------------------------------------
# S3 event notifications through SQS: moto's S3 notifies moto's SQS (moto
# serves the AWS-only APIs; nothing else here does), the agent copies to
# radosgw. moto checks no signature.

class _Moto:
    def __init__(self, ctx):
        if subprocess.run(["python3", "-c", "import moto.server, boto3"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode:
            lib.skip("python3 on PATH has no moto (the machine image has it; a fresh "
                     "Debian cannot install it)")
        self.port = lib._free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.log = os.path.join(ctx.dir, "moto.log")
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                ["python3", "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

        def up():
            assert self.proc.poll() is None, "moto exited; see %s" % self.log
            try:
                return requests.get(self.url + "/moto-api/", timeout=1).status_code == 200
            except requests.RequestException:
                return False
        assert lib.wait_for(up, 30), "moto did not start"
        kw = dict(endpoint_url=self.url, region_name="us-east-1", aws_access_key_id="moto",
                  aws_secret_access_key="moto-secret")
        self.s3 = boto3.client("s3", config=lib._config(), **kw)
        self.sqs = boto3.client("sqs", **kw)

    def queue(self, name, visibility, dlq_after=None):
        attrs = {"VisibilityTimeout": str(visibility)}
        dlq = None
        if dlq_after:
            dlq = self.sqs.create_queue(QueueName=name + "-dlq")["QueueUrl"]
            arn = self.sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])
            attrs["RedrivePolicy"] = json.dumps({
                "deadLetterTargetArn": arn["Attributes"]["QueueArn"],
                "maxReceiveCount": str(dlq_after)})
        q = self.sqs.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"]
        return q, dlq

    def notify(self, bucket, queue):
        arn = self.sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
        self.s3.put_bucket_notification_configuration(
            Bucket=bucket, NotificationConfiguration={"QueueConfigurations": [{
                "QueueArn": arn["Attributes"]["QueueArn"],
                "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]}]})

    def counts(self, queue):
        a = self.sqs.get_queue_attributes(
            QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages",
                                            "ApproximateNumberOfMessagesNotVisible"])
        a = a["Attributes"]
        return int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"])

    def section(self, name):
        return ("[remote %s]\ntype = s3\nendpoint = %s\nregion = us-east-1\npath_style = true\n"
                "access_key_id = moto\nsecret_access_key = moto-secret\n\n" % (name, self.url))

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        lib._release_port(self.port)


def test_sqs_s3_events(ctx):
    """moto S3 -> moto SQS -> agent -> radosgw: new, overwritten and deleted
    objects arrive (bytes checked); a stale event for a deleted key copies
    nothing; messages are deleted from the queue once done; a message that is
    not an event and one whose key cannot be copied (a NUL) end in the
    dead-letter queue, the latter also in the task's failures with its
    reason."""
    m = _Moto(ctx)
    try:
        b = lib.s3("b")
        m.s3.create_bucket(Bucket="sqsrc")
        dst = ctx.bucket("b", "sqdst")
        q, dlq = m.queue("dth-events", visibility=2, dlq_after=2)
        m.notify("sqsrc", q)
        ctx.write_config(extra=m.section("moto") + _task_section(
            "sq", "moto:sqsrc/in/", "dst:%s/out/" % dst, schedule="every 1h",
            events="sqs:" + q, delete="true"))
        with Agent(ctx) as ag:
            ag.wait_runs("sq", 1)
            t0 = time.time()
            m.s3.put_object(Bucket="sqsrc", Key="in/a b+c", Body=b"one")
            m.s3.put_object(Bucket="sqsrc", Key="in/keep", Body=b"kept")
            m.s3.put_object(Bucket="sqsrc", Key="other/x", Body=b"not the task's")
            assert lib.wait_for(lambda: {"out/a b+c", "out/keep"} <= set(lib.list_all(b, dst)), 15), \
                ag.log_text()[-3000:]
            latency = time.time() - t0
            m.s3.put_object(Bucket="sqsrc", Key="in/a b+c", Body=b"two, longer")
            assert lib.wait_for(lambda: lib.get_bytes(b, dst, "out/a b+c") == b"two, longer", 15)
            m.s3.delete_object(Bucket="sqsrc", Key="in/keep")
            assert lib.wait_for(lambda: "out/keep" not in lib.list_all(b, dst), 15)
            # done messages leave the queue
            assert lib.wait_for(lambda: m.counts(q) == (0, 0), 15), m.counts(q)
            # a stale creation event of the deleted key: nothing comes back
            seq = ag.task("sq")["last_run"]["seq"]
            stale = {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                                  "s3": {"bucket": {"name": "sqsrc"},
                                         "object": {"key": "in/keep", "sequencer": "01"}}}]}
            m.sqs.send_message(QueueUrl=q, MessageBody=json.dumps(stale))
            assert lib.wait_for(lambda: _event_runs(ag, "sq", seq) and m.counts(q) == (0, 0), 15)
            assert "out/keep" not in lib.list_all(b, dst)
            assert sum(r["transferred"] for r in _event_runs(ag, "sq", seq)) == 0
            # poison: not an event, and a key no request can carry
            m.sqs.send_message(QueueUrl=q, MessageBody="not an event")
            bad = dict(stale)
            bad["Records"] = [dict(stale["Records"][0])]
            bad["Records"][0]["s3"] = {"bucket": {"name": "sqsrc"},
                                       "object": {"key": "in/bad%00key"}}
            m.sqs.send_message(QueueUrl=q, MessageBody=json.dumps(bad))
            assert lib.wait_for(lambda: m.counts(dlq)[0] == 2, 30), (m.counts(q), m.counts(dlq))
            assert m.counts(q) == (0, 0)
            fails = ag.api("GET", "/api/v1/tasks/sq/failures", expect=200).json()["objects"]
            assert [f["key"] for f in fails] == ["bad\\x00key"], fails
            assert "NUL" in fails[0]["error"], fails
            ev = ag.task("sq")["events"]
            assert ev["refused"] >= 2 and ev["ignored"] >= 1, ev
            assert lib.get_bytes(b, dst, "out/a b+c") == b"two, longer"
            print("event to destination through SQS: %.2f s" % latency)
    finally:
        m.stop()


def test_sqs_kill9_in_flight(ctx):
    """kill -9 of the agent while it works through 200 SQS messages: after a
    restart every object arrives, each PUT once at the destination (radosgw's
    log), and the queue ends empty."""
    m = _Moto(ctx)
    try:
        b = lib.s3("b")
        m.s3.create_bucket(Bucket="sqk")
        dst = ctx.bucket("b", "sqkdst")
        q, _ = m.queue("dth-kill", visibility=3)
        m.notify("sqk", q)
        ctx.write_config(extra=m.section("moto") + _task_section(
            "k", "moto:sqk", "dst:" + dst, schedule="every 1h", events="sqs:" + q))
        with Agent(ctx) as ag:
            ag.wait_runs("k", 1)
            ag.api("POST", "/api/v1/tasks/k/actions/stop", expect=202)
        objs = lib.small_objects("s/", 200, 21, max_size=2000)
        lib.put_objects(m.s3, "sqk", objs, workers=8)
        want = {k: lib.md5hex(v) for k, v in objs.items()}
        off = lib.rgw_log_size("b")
        ag = Agent(ctx).start()
        ag.api("POST", "/api/v1/tasks/k/actions/start", expect=202)
        assert lib.wait_for(lambda: len(lib.list_all(b, dst)) >= 20, 60), ag.log_text()[-2000:]
        ag.kill9()
        ag = Agent(ctx).start()
        try:
            assert lib.wait_for(lambda: len(lib.list_all(b, dst)) == 200, 120), \
                (len(lib.list_all(b, dst)), ag.task("k"))
            assert lib.wait_for(lambda: m.counts(q) == (0, 0), 30), m.counts(q)
            assert _dst_md5(b, dst) == want
        finally:
            ag.stop()
        twice = {k: n for k, n in _puts_at(dst, off).items() if n > 1}
        assert not twice, "copied more than once: %s" % twice
    finally:
        m.stop()


# --------------------------------------------------------------------------
# Notifications out: a webhook receiver in the test (the first POST answered
# 500, to see the retry), and SNS through moto.

class _Receiver:
    """An HTTP server on a free port that keeps every POST (path, headers,
    raw body); the first `fail_first` are answered 500."""

    def __init__(self, fail_first=1):
        outer = self
        self.posts = []
        self.fail_left = fail_first
        self.lock = threading.Lock()

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with outer.lock:
                    fail = outer.fail_left > 0
                    outer.fail_left -= 1 if fail else 0
                    outer.posts.append((self.path, dict(self.headers.items()), body, fail))
                self.send_response(500 if fail else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = "http://127.0.0.1:%d" % self.srv.server_address[1]
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()

    def delivered(self, event=None):
        with self.lock:
            return [(p, h, b) for p, h, b, fail in self.posts
                    if not fail and (event is None or h.get("X-Dth-Event") == event)]

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


def _notify_secret(ctx, ag, task):
    out = subprocess.run([lib.dth_bin(), "task", "--agent", ag.url, "--state", ctx.state,
                          "notify-secret", task], check=True, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=ctx.base_env(), timeout=30).stdout
    secret = out.decode().strip()
    lib.register_secret(secret)
    return secret


def test_notifications_to_a_webhook(ctx):
    """A task's notifications reach a webhook signed with its secret: the end
    of its run (after the receiver's first answer, a 500, the retry), failed
    objects with their reason, and a backlog of events past the threshold;
    /metrics counts them; the hook's secret path never reaches a log."""
    a = lib.s3("a")
    src, dst = ctx.bucket("a", "ntsrc"), ctx.bucket("b", "ntdst")
    _objects(a, src, "n/", 4, 31)
    rcv = _Receiver(fail_first=1)
    hook_path = "/hooks/T0-%s" % os.urandom(8).hex()
    lib.register_secret(hook_path[7:])
    try:
        ctx.write_config(extra=_task_section(
            "nt", "src:" + src, "dst:" + dst, schedule="every 1h", events="webhook",
            notify="webhook:" + rcv.url + hook_path, notify_backlog="3"))
        with Agent(ctx) as ag:
            ag.wait_runs("nt", 1)
            secret = _notify_secret(ctx, ag, "nt")
            assert lib.wait_for(lambda: rcv.delivered("run_finished"), 15), rcv.posts
            path, headers, body = rcv.delivered("run_finished")[0]
            assert path == hook_path and headers["Content-Type"] == "application/json"
            want = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            assert headers["X-Dth-Signature"] == want, (headers, want)
            doc = json.loads(body)
            assert doc["event"] == "run_finished" and doc["task"] == "nt" and \
                doc["type"] == "s3" and doc["run"]["result"] == "ok" and \
                doc["run"]["transferred"] == 4 and doc["run"]["seq"] == 1, doc
            assert len(rcv.posts) == 2 and rcv.posts[0][3], "the 500 was not retried"

            # failed objects: an event naming a key no request can carry
            bad = {"Records": [_record(src, "n/bad%00key")]}
            ag.api("POST", "/api/v1/tasks/nt/events", body=bad, expect=202)
            assert lib.wait_for(lambda: rcv.delivered("objects_failed"), 15), rcv.posts
            _, headers, body = rcv.delivered("objects_failed")[0]
            doc = json.loads(body)
            assert doc["run"]["failed"] == 1 and "NUL" in " ".join(doc["run"]["errors"]), doc
            assert headers["X-Dth-Signature"] == "sha256=" + hmac.new(
                secret.encode(), body, hashlib.sha256).hexdigest()

            # a backlog of 3 events while the task is stopped
            ag.api("POST", "/api/v1/tasks/nt/actions/stop", expect=202)
            three = {"Records": [_record(src, "n/d/0000%d" % i) for i in range(3)]}
            ag.api("POST", "/api/v1/tasks/nt/events", body=three, expect=202)
            assert lib.wait_for(lambda: rcv.delivered("event_backlog"), 15), rcv.posts
            doc = json.loads(rcv.delivered("event_backlog")[0][2])
            assert doc["backlog"] == 3 and doc["threshold"] == 3, doc
            metrics = ag.api("GET", "/metrics", expect=200).text
            assert 'dth_notifications_total{outcome="retried"} 1' in metrics, \
                [m for m in metrics.splitlines() if "notif" in m]
            assert 'dth_notifications_total{outcome="sent"} 3' in metrics
    finally:
        rcv.stop()


def test_notifications_to_sns(ctx):
    """A task's run_finished reaches an SNS topic (moto's, subscribed by an
    SQS queue), published with notify_remote's credentials and endpoint."""
    m = _Moto(ctx)
    try:
        a = lib.s3("a")
        src, dst = ctx.bucket("a", "snsrc"), ctx.bucket("b", "sndst")
        _objects(a, src, "s/", 3, 41)
        sns = boto3.client("sns", endpoint_url=m.url, region_name="us-east-1",
                           aws_access_key_id="moto", aws_secret_access_key="moto-secret")
        arn = sns.create_topic(Name="dth-notes")["TopicArn"]
        q, _ = m.queue("dth-notes", visibility=30)
        qarn = m.sqs.get_queue_attributes(QueueUrl=q, AttributeNames=["QueueArn"])
        sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=qarn["Attributes"]["QueueArn"])
        ctx.write_config(extra=m.section("moto") + _task_section(
            "ns", "src:" + src, "dst:" + dst, schedule="every 1h", notify="sns:" + arn,
            notify_remote="moto"))
        with Agent(ctx) as ag:
            ag.wait_runs("ns", 1)
            got = []

            def arrived():
                r = m.sqs.receive_message(QueueUrl=q, MaxNumberOfMessages=10, WaitTimeSeconds=1)
                got.extend(json.loads(x["Body"]) for x in r.get("Messages", []))
                return got
            assert lib.wait_for(arrived, 20), "no SNS message"
            note = got[0]
            assert note["Subject"] == "dth: run_finished: ns", note
            doc = json.loads(note["Message"])
            assert doc["event"] == "run_finished" and doc["run"]["transferred"] == 3, doc
    finally:
        m.stop()
