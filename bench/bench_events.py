#!/usr/bin/env python3
"""Benchmark of change events (driven by bench/events.sh, which starts two
radosgw endpoints and exports the BENCH_* variables).

1. Latency: a task with events = webhook mirrors bucket A to bucket B; A is
   subscribed (a radosgw topic pushing to the agent's webhook URL). Small
   objects are PUT to A one at a time; for each, the time from just before
   the PUT to the first HEAD at B that finds it (HEADs every 5 ms). p50 and
   p95 per run, BENCH_RUNS runs of BENCH_LATENCY_OBJECTS objects.
2. Burst: tasks with events = webhook have had their first run on an empty
   source (as a task does when it is made); BENCH_BURST objects are then put
   in that source, which notifies nobody, and the agent is POSTed their events
   (records as radosgw writes them, with each object's size and ETag, 100 per
   POST, as fast as it answers); timed until the last object is at the
   destination. `dth sync` copies the same objects into another bucket; the
   two take turns at going first (the store slows as it fills). Both as
   objects/s, with the requests each sent to the source (radosgw's `req`
   counter). BENCH_RUNS times each.
3. A local directory with events = inotify, mirrored to B: the latency from
   writing a 1 KiB file (open, write, close) to the first HEAD at B that
   finds it; and a burst of BENCH_BURST 1 KiB files written into a watched
   directory, timed from the first write until the last is at B, against
   `dth sync` and `rclone copy --transfers 16 --checkers 16` of the same files
   into other buckets (the three take turns at going first).
Prints a Markdown table (medians and spread) and writes the raw numbers as
JSON to BENCH_OUT."""

import concurrent.futures
import hashlib
import json
import os
import signal
import statistics
import subprocess
import time

import boto3
import botocore.config
import requests

E = os.environ
SRC, DST = E["BENCH_SRC_URL"], E["BENCH_DST_URL"]
SRC_ASOK = E["BENCH_SRC_ASOK"]
KEY, SECRET = E.get("BENCH_KEY", "test"), E["BENCH_SECRET"]
WORK, OUT, DTH = E["BENCH_WORK"], E["BENCH_OUT"], E["BENCH_DTH"]
RUNS = int(E.get("BENCH_RUNS", "5"))
LAT_N = int(E.get("BENCH_LATENCY_OBJECTS", "100"))
BURST = int(E.get("BENCH_BURST", "10000"))
PORT = int(E.get("BENCH_API_PORT", "8592"))
TAG = "e%d" % int(time.time())
ONLY = E.get("BENCH_ONLY", "")  # "local": the inotify part alone


def s3(url):
    return boto3.client("s3", endpoint_url=url, aws_access_key_id=KEY,
                        aws_secret_access_key=SECRET, region_name="us-east-1",
                        config=botocore.config.Config(max_pool_connections=32,
                                                      s3={"addressing_style": "path"},
                                                      retries={"max_attempts": 1}))


def req_counter(asok):
    out = subprocess.run(["ceph", "--admin-daemon", asok, "perf", "dump", "rgw"], check=True,
                         capture_output=True, text=True, timeout=30).stdout
    return json.loads(out)["rgw"]["req"]


def remotes():
    text = ""
    for name, url in (("src", SRC), ("dst", DST)):
        text += ("[remote %s]\ntype = s3\nprovider = ceph\nendpoint = %s\nregion = us-east-1\n"
                 "path_style = true\naccess_key_id = %s\nsecret_access_key = %s\n\n"
                 % (name, url, KEY, SECRET))
    return text


def write(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


class Agent:
    def __init__(self, conf):
        self.state = os.path.join(WORK, "state-" + TAG)
        self.log = open(os.path.join(WORK, "agent-%s.log" % TAG), "ab")
        self.proc = subprocess.Popen([DTH, "agent", "--config", conf, "--state", self.state,
                                      "--listen", "127.0.0.1:%d" % PORT],
                                     stdout=self.log, stderr=self.log)
        self.url = "http://127.0.0.1:%d" % PORT
        self.s = requests.Session()
        for _ in range(400):
            try:
                if self.s.get(self.url + "/healthz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.05)
        with open(os.path.join(self.state, "agent.token")) as f:
            self.s.headers["Authorization"] = "Bearer " + f.read().strip()

    def task(self, name):
        return self.s.get(self.url + "/api/v1/tasks/" + name, timeout=30).json()

    def wait_idle(self, name, timeout=600):
        t0 = time.time()
        while time.time() - t0 < timeout:
            t = self.task(name)
            if t["state"] != "running" and not t["events"]["pending"] and t["last_run"]:
                return t
            time.sleep(0.05)
        raise RuntimeError("task %s did not settle" % name)

    def webhook(self, name):
        out = subprocess.run([DTH, "task", "--agent", self.url, "--state", self.state, "webhook",
                              name], check=True, capture_output=True, text=True).stdout
        return out.strip()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=120)
        self.log.close()


def subscribe(bucket, url):
    sns = boto3.client("sns", endpoint_url=SRC, region_name="default", aws_access_key_id=KEY,
                       aws_secret_access_key=SECRET)
    arn = sns.create_topic(Name=bucket + "-hook", Attributes={
        "push-endpoint": url, "persistent": "false"})["TopicArn"]
    s3(SRC).put_bucket_notification_configuration(
        Bucket=bucket, NotificationConfiguration={"TopicConfigurations": [{
            "Id": "dth", "TopicArn": arn,
            "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]}]})


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def time_to_arrive(b, dst, key, make):
    """Seconds from make() (which writes key at the source) to the first HEAD
    at the destination (every 5 ms) that finds it."""
    t0 = time.monotonic()
    make()
    while True:
        try:
            b.head_object(Bucket=dst, Key=key)
            return time.monotonic() - t0
        except Exception:  # noqa: BLE001 (404 until it arrives)
            if time.monotonic() - t0 > 30:
                raise RuntimeError("%s did not arrive in 30 s" % key)
            time.sleep(0.005)


def lat_summary(lat):
    return {"p50": pct(lat, 50), "p95": pct(lat, 95), "max": max(lat)}


def latency_run(a, b, src, dst, run):
    keys = ["l/%d/%05d" % (run, i) for i in range(LAT_N)]
    return lat_summary([time_to_arrive(b, dst, k, lambda k=k: a.put_object(
        Bucket=src, Key=k, Body=b"z" * 1024)) for k in keys])


def populate(bucket, n):
    a = s3(SRC)
    with concurrent.futures.ThreadPoolExecutor(32) as ex:
        list(ex.map(lambda i: a.put_object(Bucket=bucket, Key="b/%06d" % i, Body=b"q" * 1024),
                    range(n)))


def count(client, bucket, prefix=""):
    n = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        n += len(page.get("Contents", []))
    return n


def burst_events(ag, task, bucket, dst_bucket):
    # as radosgw writes them: with the object's size and ETag
    etag = hashlib.md5(b"q" * 1024).hexdigest()
    recs = [{"eventSource": "ceph:s3", "eventName": "ObjectCreated:Put",
             "s3": {"bucket": {"name": bucket},
                    "object": {"key": "b/%06d" % i, "size": 1024, "eTag": etag}}}
            for i in range(BURST)]
    r0 = req_counter(SRC_ASOK)
    seq0 = (ag.task(task)["last_run"] or {}).get("seq", 0)
    t0 = time.monotonic()
    for i in range(0, BURST, 100):
        r = ag.s.post(ag.url + "/api/v1/tasks/%s/events" % task,
                      data=json.dumps({"Records": recs[i:i + 100]}), timeout=60)
        r.raise_for_status()
    while True:
        t = ag.task(task)
        if t["state"] != "running" and not t["events"]["pending"] and \
                (t["last_run"] or {}).get("seq", 0) > seq0:
            break
        time.sleep(0.02)
    secs = time.monotonic() - t0
    got = count(s3(DST), dst_bucket)
    return {"seconds": secs, "objects_per_s": BURST / secs, "source_requests":
            req_counter(SRC_ASOK) - r0, "at_destination": got}


def burst_sync(conf, bucket, dst_bucket):
    r0 = req_counter(SRC_ASOK)
    t0 = time.monotonic()
    subprocess.run([DTH, "sync", "--config", conf, "--state", os.path.join(WORK, "sync-" + dst_bucket),
                    "--no-progress", "src:%s/b/" % bucket, "dst:%s/b/" % dst_bucket], check=True,
                   capture_output=True)
    secs = time.monotonic() - t0
    return {"seconds": secs, "objects_per_s": BURST / secs,
            "source_requests": req_counter(SRC_ASOK) - r0,
            "at_destination": count(s3(DST), dst_bucket)}


def lat_local_run(b, root, dst, run):
    os.makedirs(os.path.join(root, "l", str(run)), exist_ok=True)
    time.sleep(0.5)  # the new directory is watched

    def write(key):
        with open(os.path.join(root, key), "wb") as f:
            f.write(b"z" * 1024)
    keys = ["l/%d/%05d" % (run, i) for i in range(LAT_N)]
    return lat_summary([time_to_arrive(b, dst, k, lambda k=k: write(k)) for k in keys])


def burst_inotify(ag, task, root, run, dst_bucket):
    d = os.path.join(root, "b%d" % run)
    seq0 = (ag.task(task)["last_run"] or {}).get("seq", 0)
    t0 = time.monotonic()
    for i in range(BURST):
        with open(os.path.join(d, "%06d" % i), "wb") as f:
            f.write(b"q" * 1024)
    written = time.monotonic() - t0
    b = s3(DST)
    while True:
        t = ag.task(task)
        if t["state"] != "running" and not t["events"]["pending"] and \
                (t["last_run"] or {}).get("seq", 0) > seq0 and \
                count(b, dst_bucket, "b%d/" % run) >= BURST:
            break
        time.sleep(0.05)
    secs = time.monotonic() - t0
    return {"seconds": secs, "objects_per_s": BURST / secs, "writing_seconds": written}


def copy_local(argv, dst_bucket, env=None):
    t0 = time.monotonic()
    subprocess.run(argv, check=True, capture_output=True, env=env)
    secs = time.monotonic() - t0
    got = count(s3(DST), dst_bucket)
    return {"seconds": secs, "objects_per_s": BURST / secs, "at_destination": got}


def rclone_env():
    env = dict(os.environ)
    env.pop("AWS_CA_BUNDLE", None)
    env.update({"RCLONE_CONFIG_BDST_TYPE": "s3", "RCLONE_CONFIG_BDST_PROVIDER": "Ceph",
                "RCLONE_CONFIG_BDST_ACCESS_KEY_ID": KEY,
                "RCLONE_CONFIG_BDST_SECRET_ACCESS_KEY": SECRET,
                "RCLONE_CONFIG_BDST_ENDPOINT": DST, "RCLONE_CONFIG_BDST_REGION": "us-east-1",
                "RCLONE_CONFIG_BDST_FORCE_PATH_STYLE": "true"})
    return env


def local_part(res, ag, conf, root, ldst):
    b = s3(DST)
    ag.wait_idle("loc")
    for r in range(RUNS):
        res["local_latency"].append(lat_local_run(b, root, ldst, r))
        # the same files, outside the watched tree, for dth sync and rclone
        src = os.path.join(WORK, "plain-%s-%d" % (TAG, r))
        os.makedirs(src)
        for i in range(BURST):
            with open(os.path.join(src, "%06d" % i), "wb") as f:
                f.write(b"q" * 1024)
        sy_b, rc_b = "evls%d-%s" % (r, TAG), "evlr%d-%s" % (r, TAG)
        b.create_bucket(Bucket=sy_b)
        b.create_bucket(Bucket=rc_b)
        order = ["inotify", "sync", "rclone"]
        order = order[r % 3:] + order[:r % 3]
        out = {}
        for which in order:
            if which == "inotify":
                out[which] = burst_inotify(ag, "loc", root, r, ldst)
            elif which == "sync":
                out[which] = copy_local([DTH, "sync", "--config", conf, "--state",
                                         os.path.join(WORK, "lsync-%d" % r), "--no-progress",
                                         src, "dst:%s" % sy_b], sy_b)
            else:
                out[which] = copy_local(["rclone", "copy", "--transfers", "16", "--checkers",
                                         "16", src, "bdst:%s" % rc_b], rc_b, rclone_env())
        res["local_events"].append(out["inotify"])
        res["local_sync"].append(out["sync"])
        res["local_rclone"].append(out["rclone"])
        print("local run %d: %s" % (r, json.dumps(out)), flush=True)


def spread(v):
    return "%.2f (%.2f–%.2f)" % (statistics.median(v), min(v), max(v))


def main():
    os.makedirs(WORK, exist_ok=True)
    lsrc, ldst = "evl-" + TAG, "evld-" + TAG
    bsrc = "evb-" + TAG
    a, b = s3(SRC), s3(DST)
    a.create_bucket(Bucket=lsrc)
    b.create_bucket(Bucket=ldst)
    a.create_bucket(Bucket=bsrc)
    lroot, lldst = os.path.join(WORK, "local-" + TAG), "evlo-" + TAG
    for r in range(RUNS):
        os.makedirs(os.path.join(lroot, "b%d" % r))
    b.create_bucket(Bucket=lldst)
    text = remotes() + (
        "[task loc]\nsource = %s\ndestination = dst:%s\nschedule = every 1h\n"
        "events = inotify\n\n" % (lroot, lldst)) + (
        "[task lat]\nsource = src:%s\ndestination = dst:%s\nschedule = every 1h\n"
        "events = webhook\n\n" % (lsrc, ldst))
    for r in range(RUNS):
        # its first run (at once) finds the source empty; the next is an
        # hour away: only the events copy
        text += ("[task burst%d]\nsource = src:%s/b/\ndestination = dst:evbd%d-%s/b/\n"
                 "schedule = every 1h\nevents = webhook\n\n" % (r, bsrc, r, TAG))
    conf = write(os.path.join(WORK, "events.conf"), text)
    for r in range(RUNS):
        b.create_bucket(Bucket="evbd%d-%s" % (r, TAG))
        b.create_bucket(Bucket="evsd%d-%s" % (r, TAG))
    ag = Agent(conf)
    res = {"latency": [], "events": [], "sync": [], "objects": BURST, "local_latency": [],
           "local_events": [], "local_sync": [], "local_rclone": []}
    try:
        ag.wait_idle("lat")
        for r in range(RUNS):
            ag.wait_idle("burst%d" % r)
        if ONLY != "local":
            populate(bsrc, BURST)  # no notification: the burst is POSTed below
            subscribe(lsrc, ag.webhook("lat"))
        for r in range(RUNS if ONLY != "local" else 0):
            res["latency"].append(latency_run(a, b, lsrc, ldst, r))
            # alternate which goes first: the store slows as it fills
            ev = lambda: burst_events(ag, "burst%d" % r, bsrc, "evbd%d-%s" % (r, TAG))  # noqa: E731
            sy = lambda: burst_sync(conf, bsrc, "evsd%d-%s" % (r, TAG))  # noqa: E731
            if r % 2:
                res["sync"].append(sy())
                res["events"].append(ev())
            else:
                res["events"].append(ev())
                res["sync"].append(sy())
            print("run %d: %s" % (r, json.dumps({k: res[k][-1] for k in ("latency", "events", "sync")})),
                  flush=True)
        local_part(res, ag, conf, lroot, lldst)
    finally:
        ag.stop()
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(res, f, indent=1)
    lat = res["latency"]
    ev, sy = res["events"], res["sync"]
    print("| measure (median of %d runs, min–max) | value |" % RUNS)
    print("| --- | --- |")
    if lat:
        print("| event to object at the destination, p50 | %s s |" % spread([x["p50"] for x in lat]))
        print("| event to object at the destination, p95 | %s s |" % spread([x["p95"] for x in lat]))
        print("| burst of %d events drained | %s objects/s |" % (BURST, spread([x["objects_per_s"] for x in ev])))
        print("| `dth sync` of the same objects | %s objects/s |" % spread([x["objects_per_s"] for x in sy]))
        print("| events / sync rate | %s |" % spread([e["objects_per_s"] / s["objects_per_s"] for e, s in zip(ev, sy)]))
        print("| source requests: events / sync | %d / %d |" % (statistics.median([x["source_requests"] for x in ev]),
                                                           statistics.median([x["source_requests"] for x in sy])))
    ll, le = res["local_latency"], res["local_events"]
    ls, lr = res["local_sync"], res["local_rclone"]
    print("| local file written to object at the destination (inotify), p50 | %s s |"
          % spread([x["p50"] for x in ll]))
    print("| local file written to object at the destination (inotify), p95 | %s s |"
          % spread([x["p95"] for x in ll]))
    print("| burst of %d local files drained (inotify) | %s objects/s |"
          % (BURST, spread([x["objects_per_s"] for x in le])))
    print("| `dth sync` of the same files | %s objects/s |" % spread([x["objects_per_s"] for x in ls]))
    print("| `rclone copy` of the same files | %s objects/s |" % spread([x["objects_per_s"] for x in lr]))
    print("| inotify / dth sync rate | %s |" % spread([e["objects_per_s"] / s["objects_per_s"] for e, s in zip(le, ls)]))
    print("| dth sync / rclone rate | %s |" % spread([s["objects_per_s"] / r["objects_per_s"] for s, r in zip(ls, lr)]))


if __name__ == "__main__":
    main()
