#!/usr/bin/env python3
"""Benchmark of `dth agent` holding many idle tasks (driven by bench/agent.sh,
which starts two radosgw endpoints and exports the BENCH_* variables).

Workload: a source bucket of BENCH_OBJECTS objects, copied once to the
destination by `dth sync`; then an agent with BENCH_TASKS tasks, each
mirroring that source to that destination every BENCH_PERIOD (so each task's
first run adopts what is there: it lists both sides and copies nothing).

Measured, from the kernel's and the servers' own counters:
  - the agent's RSS once every task has run (VmRSS, VmHWM from /proc);
  - its CPU seconds (utime + stime from /proc) over a window with no run due;
  - the requests of one whole round of rescans (radosgw `req` counters);
  - the latency of GET /api/v1/tasks at BENCH_RATE requests/s for
    BENCH_SECONDS, while a copy of BENCH_BUSY_COUNT objects runs in another
    task: p50 and p99, BENCH_RUNS times (median and spread reported).
Prints a Markdown table and writes the raw numbers as JSON to BENCH_OUT."""

import concurrent.futures
import json
import os
import selectors
import signal
import socket
import statistics
import subprocess
import time

import boto3
import botocore.config
import requests

E = os.environ
SRC, DST = E["BENCH_SRC_URL"], E["BENCH_DST_URL"]
SRC_ASOK, DST_ASOK = E["BENCH_SRC_ASOK"], E["BENCH_DST_ASOK"]
KEY, SECRET = E.get("BENCH_KEY", "test"), E["BENCH_SECRET"]
WORK, OUT, DTH = E["BENCH_WORK"], E["BENCH_OUT"], E["BENCH_DTH"]
TASKS = int(E.get("BENCH_TASKS", "100"))
OBJECTS = int(E.get("BENCH_OBJECTS", "10000"))
PERIOD = int(E.get("BENCH_PERIOD", "60"))
RATE = int(E.get("BENCH_RATE", "200"))
SECONDS = int(E.get("BENCH_SECONDS", "10"))
RUNS = int(E.get("BENCH_RUNS", "5"))
BUSY = int(E.get("BENCH_BUSY_COUNT", "3000"))
PORT = int(E.get("BENCH_API_PORT", "8591"))
TAG = "b%d" % int(time.time())


def s3(url):
    return boto3.client("s3", endpoint_url=url, aws_access_key_id=KEY, aws_secret_access_key=SECRET,
                        region_name="us-east-1",
                        config=botocore.config.Config(max_pool_connections=32,
                                                      s3={"addressing_style": "path"}))


def req_counter(asok):
    out = subprocess.run(["ceph", "--admin-daemon", asok, "perf", "dump", "rgw"], check=True,
                         capture_output=True, text=True, timeout=30).stdout
    return json.loads(out)["rgw"]["req"]


def proc_stat(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / tick
    mem = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                mem[k] = int(v.split()[0]) * 1024
    return cpu, mem


def populate(src_bucket, dst_bucket):
    a = s3(SRC)
    a.create_bucket(Bucket=src_bucket)
    s3(DST).create_bucket(Bucket=dst_bucket)
    body = b"x" * 1024

    def put(i):
        a.put_object(Bucket=src_bucket, Key="o/%06d" % i, Body=body)
    with concurrent.futures.ThreadPoolExecutor(32) as ex:
        list(ex.map(put, range(OBJECTS)))
    busy = s3(SRC)
    busy_body = b"y" * (256 * 1024)
    with concurrent.futures.ThreadPoolExecutor(32) as ex:
        list(ex.map(lambda i: busy.put_object(Bucket=src_bucket, Key="busy/%05d" % i,
                                              Body=busy_body), range(BUSY)))


def config(src_bucket, dst_bucket):
    text = ""
    for name, url in (("src", SRC), ("dst", DST)):
        text += ("[remote %s]\ntype = s3\nprovider = ceph\nendpoint = %s\nregion = us-east-1\n"
                 "path_style = true\naccess_key_id = %s\nsecret_access_key = %s\n\n"
                 % (name, url, KEY, SECRET))
    text += "[agent]\nlisten = 127.0.0.1:%d\n\n" % PORT
    for i in range(TASKS):
        text += ("[task t%03d]\nsource = src:%s/o\ndestination = dst:%s/o\nschedule = every %ds\n\n"
                 % (i, src_bucket, dst_bucket, PERIOD))
    path = os.path.join(WORK, "agent.conf")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


class Api:
    def __init__(self, token):
        self.s = requests.Session()
        self.h = {"Authorization": "Bearer " + token}

    def get(self, path):
        r = self.s.get("http://127.0.0.1:%d%s" % (PORT, path), headers=self.h, timeout=30)
        r.raise_for_status()
        return r.json()


def wait_all_ran(api, n_runs):
    while True:
        tasks = api.get("/api/v1/tasks")["tasks"]
        done = [t for t in tasks if t["name"].startswith("t") and t["last_run"]
                and t["last_run"]["seq"] >= n_runs and t["state"] == "idle"]
        if len(done) == TASKS:
            return tasks
        time.sleep(0.5)


def latency_run(token, seconds, rate):
    """GET /api/v1/tasks at a fixed rate (open loop: a request is sent at its
    time whether or not earlier ones have been answered) on keep-alive
    connections, from one thread with raw sockets so the client's own cost
    and its GIL stay out of the figures; the latency of a request is from its
    send to the last byte of its answer."""
    req = ("GET /api/v1/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n\r\n"
           % token).encode()
    sel = selectors.DefaultSelector()
    idle, lat, late, resets = [], [], 0, []

    def connect():
        c = socket.create_connection(("127.0.0.1", PORT))
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.setblocking(False)
        return c

    for _ in range(8):
        idle.append((connect(), 0))
    busy = {}  # socket -> [sent_at, buffer]
    begin = time.monotonic()
    stop, k = begin + seconds, 0
    while True:
        now = time.monotonic()
        while begin + k * (1.0 / rate) <= now and begin + k * (1.0 / rate) < stop:
            if now - (begin + k * (1.0 / rate)) > 0.001:
                late += 1
            c, served = idle.pop() if idle else (connect(), 0)
            c.sendall(req)
            busy[c] = [time.monotonic(), bytearray(), served]
            sel.register(c, selectors.EVENT_READ)
            k += 1
        if now >= stop and not busy:
            break
        nxt = begin + k * (1.0 / rate)
        timeout = max(0.0, nxt - time.monotonic()) if nxt < stop else 0.1
        for key, _ in sel.select(timeout):
            c = key.fileobj
            st = busy[c]
            try:
                data = c.recv(1 << 20)
            except ConnectionResetError:
                data = b""
            if not data:
                # Closed by the agent: counted, and the request is lost.
                resets.append({"after_s": time.monotonic() - st[0], "served": st[2],
                               "got": len(st[1])})
                sel.unregister(c)
                del busy[c]
                c.close()
                continue
            st[1] += data
            head, sep, body = bytes(st[1]).partition(b"\r\n\r\n")
            if not sep:
                continue
            status = head.split(b" ", 2)[1]
            if status != b"200":
                raise RuntimeError("GET /api/v1/tasks: HTTP %s" % status.decode())
            length = None
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if length is None:
                raise RuntimeError("no Content-Length in the answer")
            if len(body) < length:
                continue
            lat.append(time.monotonic() - st[0])
            sel.unregister(c)
            del busy[c]
            idle.append((c, st[2] + 1))
    for c, _ in idle:
        c.close()
    lat.sort()
    return {"requests": len(lat), "p50_ms": 1000 * lat[len(lat) // 2],
            "p99_ms": 1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))],
            "max_ms": 1000 * lat[-1], "connections": len(idle), "sent_late": late,
            "closed_by_agent": resets,
            "rate": len(lat) / (time.monotonic() - begin)}


def main():
    os.makedirs(WORK, exist_ok=True)
    src_bucket, dst_bucket = TAG + "-src", TAG + "-dst"
    t0 = time.monotonic()
    populate(src_bucket, dst_bucket)
    conf = config(src_bucket, dst_bucket)
    state = os.path.join(WORK, "state-" + TAG)
    subprocess.run([DTH, "sync", "--config", conf, "--state", os.path.join(WORK, "prime-" + TAG),
                    "--no-progress", "src:%s/o" % src_bucket, "dst:%s/o" % dst_bucket], check=True)
    print("# workload ready in %.0f s" % (time.monotonic() - t0), flush=True)
    log = open(os.path.join(WORK, "agent-%s.log" % TAG), "wb")
    agent = subprocess.Popen([DTH, "agent", "--config", conf, "--state", state], stdout=log,
                             stderr=log)
    res = {"tasks": TASKS, "objects_per_task": OBJECTS, "period_s": PERIOD}
    try:
        token_path = os.path.join(state, "agent.token")
        while not os.path.exists(token_path):
            time.sleep(0.1)
        time.sleep(0.5)
        with open(token_path) as f:
            token = f.read().strip()
        api = Api(token)
        while True:
            try:
                api.get("/api/v1/agent")
                break
            except requests.RequestException:
                time.sleep(0.2)
        t1 = time.monotonic()
        tasks = wait_all_ran(api, 1)
        res["first_round_s"] = time.monotonic() - t1
        res["adopted"] = sum(t["stats"]["objects"]["done"] for t in tasks)
        # A quiet window: after the round, well before the next one.
        time.sleep(2)
        c0, _ = proc_stat(agent.pid)
        w0 = time.monotonic()
        quiet = max(5, PERIOD // 3)
        time.sleep(quiet)
        c1, mem = proc_stat(agent.pid)
        res["idle_cpu_s"] = c1 - c0
        res["idle_window_s"] = time.monotonic() - w0
        res["rss_bytes"] = mem["VmRSS"]
        res["rss_peak_bytes"] = mem["VmHWM"]
        res["rss_anon_bytes"], res["rss_file_bytes"] = mem["RssAnon"], mem["RssFile"]
        # One whole round of rescans, counted at both radosgw.
        a0, b0, cpu0 = req_counter(SRC_ASOK), req_counter(DST_ASOK), proc_stat(agent.pid)[0]
        tasks = wait_all_ran(api, 2)
        time.sleep(1)
        res["round_requests_src"] = req_counter(SRC_ASOK) - a0
        res["round_requests_dst"] = req_counter(DST_ASOK) - b0
        res["round_cpu_s"] = proc_stat(agent.pid)[0] - cpu0
        mem = proc_stat(agent.pid)[1]
        res["rss_after_round_bytes"] = mem["VmRSS"]
        res["rss_anon_after_round_bytes"] = mem["RssAnon"]
        # API latency while a copy runs.
        runs = []
        for i in range(RUNS):
            body = {"name": "busy%d" % i, "source": "src:%s/busy" % src_bucket,
                    "destination": "dst:%s/busy%d" % (dst_bucket, i), "schedule": "once",
                    "concurrency": 16}
            r = requests.post("http://127.0.0.1:%d/api/v1/tasks" % PORT, json=body,
                              headers={"Authorization": "Bearer " + token}, timeout=30)
            r.raise_for_status()
            while api.get("/api/v1/tasks/busy%d" % i)["state"] != "running":
                time.sleep(0.05)
            m = latency_run(token, SECONDS, RATE)
            m["busy_still_running"] = api.get("/api/v1/tasks/busy%d" % i)["state"] == "running"
            runs.append(m)
            print("# latency run %d: %s" % (i + 1, json.dumps(m)), flush=True)
            while api.get("/api/v1/tasks/busy%d" % i)["state"] == "running":
                time.sleep(0.2)
        res["latency_runs"] = runs
        for k in ("p50_ms", "p99_ms"):
            v = [r[k] for r in runs]
            res[k + "_median"] = statistics.median(v)
            res[k + "_min"], res[k + "_max"] = min(v), max(v)
        agent.send_signal(signal.SIGTERM)
        t2 = time.monotonic()
        res["exit_status"] = agent.wait(timeout=120)
        res["stop_s"] = time.monotonic() - t2
    finally:
        if agent.poll() is None:
            agent.kill()
    with open(OUT, "w") as f:
        json.dump(res, f, indent=1)
    MiB = 1024 * 1024
    print("| measure | value | target |")
    print("| --- | --- | --- |")
    print("| tasks × objects | %d × %d | 100 × 10,000 |" % (TASKS, OBJECTS))
    print("| RSS after the first round (peak) | %.1f MiB (%.1f MiB) | ≤ 64 MiB |"
          % (res["rss_bytes"] / MiB, res["rss_peak_bytes"] / MiB))
    print("| ... of it the agent's own (RssAnon) | %.1f MiB, %.1f MiB after the second round | |"
          % (res["rss_anon_bytes"] / MiB, res["rss_anon_after_round_bytes"] / MiB))
    print("| ... of it mapped files: the manifest's pages, binary, libraries (RssFile) | %.1f MiB | |"
          % (res["rss_file_bytes"] / MiB))
    print("| CPU between runs | %.2f s in %.0f s | ≈ 0 |" % (res["idle_cpu_s"], res["idle_window_s"]))
    print("| one round of %d rescans | %d source requests, %d destination requests, %.1f s CPU | "
          "%d LISTs, 0 |" % (TASKS, res["round_requests_src"], res["round_requests_dst"],
                             res["round_cpu_s"], TASKS * ((OBJECTS + 999) // 1000)))
    print("| GET /api/v1/tasks at %d/s during a copy: p50 | %.1f ms (%.1f–%.1f) | |"
          % (RATE, res["p50_ms_median"], res["p50_ms_min"], res["p50_ms_max"]))
    print("| ... p99 (median of %d runs, min–max) | %.1f ms (%.1f–%.1f) | ≤ 20 ms |"
          % (RUNS, res["p99_ms_median"], res["p99_ms_min"], res["p99_ms_max"]))
    print("| requests whose connection the agent closed | %d of %d | 0 |"
          % (sum(len(r["closed_by_agent"]) for r in runs), sum(r["requests"] for r in runs)))
    print("| SIGTERM to exit | %.1f s, status %d | 0 |" % (res["stop_s"], res["exit_status"]))


if __name__ == "__main__":
    main()
