#!/usr/bin/env python3
"""Side-by-side benchmark of `dth mount` and s3fs on one radosgw endpoint.

Driven by bench/mount.sh, which starts the Ceph cluster and exports the
BENCH_* variables read below. Every measured operation runs on a fresh mount
(mounting is not timed): wall seconds around the operation, CPU seconds of
the mount process (utime + stime from /proc/PID/stat, before and after), and
requests counted by radosgw (the `req` perf counter of both gateways, read
just before and just after). Medians of the runs, tools in alternating
order. Prints a Markdown table and writes the raw numbers as JSON.
"""

import concurrent.futures
import datetime
import hashlib
import json
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import time

import boto3
import botocore.config

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB


def env_int(name, default):
    v = os.environ.get(name)
    return int(v) if v else default


CFG = {
    "src_url": os.environ["BENCH_SRC_URL"],
    "dst_url": os.environ["BENCH_DST_URL"],
    "src_asok": os.environ["BENCH_SRC_ASOK"],
    "dst_asok": os.environ["BENCH_DST_ASOK"],
    "work": os.environ["BENCH_WORK"],
    "out": os.environ["BENCH_OUT"],
    "dth": os.environ["BENCH_DTH"],
    "runs": env_int("BENCH_RUNS", 5),
    "only": [x for x in os.environ.get("BENCH_ONLY", "").split(",") if x],
    "big_size": env_int("BENCH_BIG_SIZE", 1 * GiB),
    "big_part": env_int("BENCH_BIG_PART", 8 * MiB),
    "ls_count": env_int("BENCH_LS_COUNT", 10000),
    "find_count": env_int("BENCH_FIND_COUNT", 20000),
    "timeout": env_int("BENCH_TIMEOUT", 600),
    "rgw_tcp_nodelay": os.environ.get("BENCH_RGW_NODELAY", "0") == "1",
}
TOOLS = ("dth", "s3fs")
TASK = "bench-mount"

# (scenario, metric, target kind, limit): "ratio_min": dth/s3fs >= limit;
# "ratio_max": dth/s3fs <= limit; "abs_max": dth < limit; "zero": dth == 0
TARGETS = [
    ("seq", "mib_s", "ratio_min", 1.5),
    ("seq", "cpu_gib", "ratio_max", 0.5),
    ("ls", "wall", "ratio_max", 0.2),
    ("ls_manifest", "wall", "abs_max", 1.0),
    ("ls_manifest", "requests", "zero", 0),
    ("find_manifest", "requests", "zero", 0),
]


def log(msg):
    print(f"[bench-mount {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- servers


def asok_perf_dump(path):
    """`perf dump` of one Ceph daemon, read from its admin socket."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    try:
        s.connect(path)
        s.sendall(json.dumps({"prefix": "perf dump"}).encode() + b"\0")

        def recv_exact(n):
            d = b""
            while len(d) < n:
                c = s.recv(n - len(d))
                if not c:
                    raise RuntimeError(f"short read from {path}")
                d += c
            return d

        n = struct.unpack(">I", recv_exact(4))[0]
        return json.loads(recv_exact(n))
    finally:
        s.close()


def server_reqs():
    """Requests served so far by both gateways (the mounts use only A)."""
    total = 0
    for p in (CFG["src_asok"], CFG["dst_asok"]):
        dump = asok_perf_dump(p)
        total += sum(v["req"] for k, v in dump.items() if k.startswith("rgw") and "req" in v)
    return total


def server_cpu():
    """CPU seconds used so far by the cluster's daemons (radosgw, OSD, mon),
    found by the pid files next to the gateways' admin sockets."""
    run = os.path.dirname(CFG["src_asok"])
    total = 0.0
    for name in os.listdir(run):
        if not name.endswith(".pid"):
            continue
        try:
            with open(os.path.join(run, name)) as f:
                total += cpu_seconds(int(f.read().split()[0]))
        except (OSError, ValueError, IndexError):
            pass
    return total


def s3(url):
    return boto3.client(
        "s3",
        endpoint_url=url,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
        config=botocore.config.Config(
            max_pool_connections=64,
            s3={"addressing_style": "path"},
            retries={"max_attempts": 5, "mode": "standard"},
        ),
    )


SRC = None


def seed_many(bucket, keys, body=lambda i: b"%d\n" % i):
    SRC.create_bucket(Bucket=bucket)
    t0 = time.monotonic()

    def put(ik):
        i, k = ik
        SRC.put_object(Bucket=bucket, Key=k, Body=body(i))

    with concurrent.futures.ThreadPoolExecutor(48) as ex:
        for f in concurrent.futures.as_completed([ex.submit(put, ik) for ik in enumerate(keys)]):
            f.result()
    log(f"seeded {len(keys):,} objects into {bucket} in {time.monotonic() - t0:.1f} s")


def seed_big(bucket, key, size, part):
    """One object of random bytes in parts of `part` bytes (a few in flight at
    a time); returns its MD5 (hex)."""
    t0 = time.monotonic()
    nparts = (size + part - 1) // part
    up = SRC.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]

    def put(i, body):
        return i, SRC.upload_part(Bucket=bucket, Key=key, UploadId=up, PartNumber=i + 1, Body=body)["ETag"]

    h = hashlib.md5()
    done, inflight = [], set()
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        for i in range(nparts):
            body = os.urandom(min(part, size - i * part))
            h.update(body)
            inflight.add(ex.submit(put, i, body))
            del body
            if len(inflight) >= 8:
                fin, inflight = concurrent.futures.wait(inflight, return_when=concurrent.futures.FIRST_COMPLETED)
                done += [f.result() for f in fin]
        done += [f.result() for f in inflight]
    SRC.complete_multipart_upload(
        Bucket=bucket,
        Key=key,
        UploadId=up,
        MultipartUpload={"Parts": [{"PartNumber": i + 1, "ETag": e} for i, e in sorted(done)]},
    )
    log(f"seeded {size:,} B in {nparts} parts into {bucket}/{key} in {time.monotonic() - t0:.1f} s")
    return h.hexdigest()


# ---------------------------------------------------------------- mounts


def mounted(path):
    with open("/proc/self/mountinfo") as f:
        for line in f:
            if line.split()[4] == path:
                return True
    return False


def pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def pids_for(name, mnt):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                argv = [a.decode() for a in f.read().split(b"\0") if a]
        except (OSError, UnicodeDecodeError):
            continue
        if argv and os.path.basename(argv[0]) == name and mnt in argv and pid_alive(int(d)):
            out.append(int(d))
    return out


def wait_for(cond, timeout, interval=0.02):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


MOUNT_SEQ = [0]
ACTIVE = []


class Mounted:
    """One mount of a tool; .pid is the serving process."""

    def __init__(self, tool, target, extra=()):
        MOUNT_SEQ[0] += 1
        n = MOUNT_SEQ[0]
        self.tool = tool
        self.path = os.path.join(CFG["work"], "mnt", f"{n:03d}-{tool}")
        os.makedirs(self.path)
        self.stats_file = os.path.join(CFG["work"], "logs", f"{n:03d}-{tool}-stats.json")
        logf = os.path.join(CFG["work"], "logs", f"{n:03d}-{tool}.log")
        if tool == "dth":
            pidf = os.path.join(CFG["work"], "logs", f"{n:03d}-dth.pid")
            argv = [CFG["dth"], "mount", "--config", CONF, "--pid-file", pidf, "--stats-file",
                    self.stats_file, *extra, target, self.path]
        else:
            argv = ["s3fs", target, self.path, "-o",
                    f"url={CFG['src_url']},use_path_request_style,passwd_file={PASSWD}", *extra]
        self.argv = argv
        with open(logf, "wb") as lf:
            p = subprocess.run(argv, stdout=lf, stderr=lf, stdin=subprocess.DEVNULL, timeout=120)
        if p.returncode != 0:
            raise RuntimeError(f"{tool} mount exited {p.returncode}; see {logf}")
        if not wait_for(lambda: mounted(self.path), 30):
            raise RuntimeError(f"{tool}: {self.path} not mounted; see {logf}")
        ACTIVE.append(self)
        if tool == "dth":
            with open(pidf) as f:
                self.pid = int(f.read())
        else:
            pids = []
            wait_for(lambda: pids.extend(pids_for("s3fs", self.path)) or pids, 10)
            if len(pids) != 1:
                raise RuntimeError(f"s3fs processes for {self.path}: {pids}")
            self.pid = pids[0]

    def unmount(self):
        if self in ACTIVE:
            ACTIVE.remove(self)
        r = subprocess.run(["fusermount3", "-u", self.path], capture_output=True, text=True)
        if r.returncode != 0:
            log(f"fusermount3 -u {self.path}: {r.stderr.strip()}; unmounting lazily")
            subprocess.run(["fusermount3", "-u", "-z", self.path], capture_output=True)
        if not wait_for(lambda: not pid_alive(self.pid), 30):
            log(f"{self.tool} pid {self.pid} still running after the unmount; killing it")
            os.kill(self.pid, 9)
        try:
            os.rmdir(self.path)
        except OSError:
            pass

    def stats(self):
        try:
            with open(self.stats_file) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None


def measure(tool, label, target, op, extra=()):
    """Mount, run op(mount) -> dict, unmount; adds wall, cpu, requests."""
    m = Mounted(tool, target, extra)
    try:
        time.sleep(0.2)  # let the mount settle (and the servers finish counting)
        req0 = server_reqs()
        srv0 = server_cpu()
        cpu0 = cpu_seconds(m.pid)
        t0 = time.monotonic()
        r = op(m)
        wall = time.monotonic() - t0
        cpu1 = cpu_seconds(m.pid)
        srv1 = server_cpu()
        time.sleep(0.2)
        req1 = server_reqs()
        r.update(tool=tool, label=label, wall=wall, cpu=cpu1 - cpu0, requests=req1 - req0,
                 server_cpu=srv1 - srv0, rss=rss_mib(m.pid), argv=m.argv)
    finally:
        m.unmount()
    if tool == "dth":
        r["dth_stats"] = m.stats()
    log(f"{label} {tool}: {r['wall']:.3f} s, cpu {r['cpu']:.2f} s, {r['requests']:,} requests"
        + ("" if r.get("ok", True) else " ** WRONG RESULT **"))
    return r


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, timeout=CFG["timeout"], **kw)


def op_seq(key, size):
    def op(m):
        p = run(["dd", f"if={os.path.join(m.path, key)}", "of=/dev/null", "bs=1M"])
        ok = p.returncode == 0
        return {"ok": ok, "bytes": size}

    return op


def op_md5(key, want):
    def op(m):
        h = hashlib.md5()
        with open(os.path.join(m.path, key), "rb", buffering=0) as f:
            for chunk in iter(lambda: f.read(MiB), b""):
                h.update(chunk)
        return {"ok": h.hexdigest() == want, "md5": h.hexdigest()}

    return op


def op_ls(sub, count):
    def op(m):
        p = run(["ls", "-l", os.path.join(m.path, sub)])
        n = sum(1 for line in p.stdout.splitlines() if line.startswith(b"-"))
        return {"ok": p.returncode == 0 and n == count, "listed": n}

    return op


def op_find(count):
    def op(m):
        p = run(["find", m.path, "-type", "f"])
        n = p.stdout.count(b"\n")
        return {"ok": p.returncode == 0 and n == count, "found": n}

    return op


def op_first_byte(key, want):
    def op(m):
        t0 = time.monotonic()
        fd = os.open(os.path.join(m.path, key), os.O_RDONLY)
        try:
            data = os.read(fd, 4 * KiB)
        finally:
            t1 = time.monotonic()
            os.close(fd)
        return {"ok": data == want, "ms": (t1 - t0) * 1000}

    return op


def order(i):
    return TOOLS if i % 2 == 0 else TOOLS[::-1]


# ---------------------------------------------------------------- report


def median(runs, metric):
    vals = [r[metric] for r in runs if r.get(metric) is not None]
    return statistics.median(vals) if vals else None


def per_run(r, metric):
    """One run's value of metric (derived ones from the run's bytes)."""
    if metric == "mib_s":
        return r["bytes"] / MiB / r["wall"] if "bytes" in r else None
    if metric == "cpu_gib":
        return r["cpu"] / (r["bytes"] / GiB) if "bytes" in r else None
    if metric == "server_cpu_gib":
        return r["server_cpu"] / (r["bytes"] / GiB) if "bytes" in r and "server_cpu" in r else None
    return r.get(metric)


def summarise(runs):
    """Median and (min, max) of every metric over the runs."""
    out, spread = {}, {}
    for m in ("wall", "cpu", "requests", "rss", "ms", "mib_s", "cpu_gib", "server_cpu_gib"):
        vals = [v for v in (per_run(r, m) for r in runs) if v is not None]
        if vals:
            out[m] = statistics.median(vals)
            spread[m] = (min(vals), max(vals))
    return out, spread


def pair_ratios(sc, metric):
    """dth/s3fs of run i against run i (the two ran back to back): the ratios'
    median and (min, max), or None."""
    d, p = sc["runs"].get("dth", []), sc["runs"].get("s3fs", [])
    vals = []
    for a, b in zip(d, p):
        x, y = per_run(a, metric), per_run(b, metric)
        if x is not None and y:
            vals.append(x / y)
    if not vals:
        return None
    return statistics.median(vals), (min(vals), max(vals)), vals


ROWS = [
    # scenario, title, metrics shown
    ("seq", "sequential read of a {big} object", ["mib_s", "cpu_gib", "server_cpu_gib", "rss", "requests"]),
    ("ls", "`ls -l` of a directory of {ls} objects", ["wall", "cpu", "requests"]),
    ("ls_manifest", "`ls -l` of {ls}, dth --manifest", ["wall", "requests"]),
    ("find", "`find` over {find} objects", ["wall", "cpu", "requests"]),
    ("find_manifest", "`find` over {find}, dth --manifest", ["wall", "requests"]),
    ("first_byte", "first byte: 4 KiB of an object not read before", ["ms", "requests"]),
]
NAMES = {"mib_s": "MiB/s", "wall": "wall s", "cpu": "mount process CPU s", "cpu_gib": "mount process CPU s per GiB",
         "server_cpu_gib": "server (radosgw, OSD, mon) CPU s per GiB",
         "requests": "requests at the server",
         "ms": "ms", "rss": "peak RSS MiB"}


def fmt(v, metric):
    if v is None:
        return "—"
    if metric == "requests":
        return f"{v:,.0f}"
    if metric in ("mib_s", "ms"):
        return f"{v:,.0f}" if v >= 100 else f"{v:.1f}"
    return f"{v:.2f}" if v >= 0.1 else f"{v:.3f}"


def cell(med, spread, metric, runs):
    """ "median (min–max)" of one tool's metric, or the median alone for one run."""
    if med is None:
        return "—"
    if runs < 2 or spread is None:
        return fmt(med, metric)
    return f"{fmt(med, metric)} ({fmt(spread[0], metric)}–{fmt(spread[1], metric)})"


def report(results):
    v = results["versions"]
    sizes = {"big": f"{CFG['big_size'] / MiB:,.0f} MiB", "ls": f"{CFG['ls_count']:,}",
             "find": f"{CFG['find_count']:,}"}
    lines = [
        f"Median (min–max) of {CFG['runs']} runs per tool (alternating order, a fresh mount each), "
        f"{v.get('dth', 'dth')} vs {v.get('s3fs', 's3fs')}, one radosgw (Ceph 16, memstore"
        f"{', tcp_nodelay=1' if CFG['rgw_tcp_nodelay'] else ', stock frontend settings'}) on the same "
        f"{results['machine']['cpus']}-core machine as the client. dth/s3fs: median (min–max) of the "
        "ratios of runs made back to back. CPU = user + sys of the mount process "
        "during the operation; requests = counted by radosgw.",
        "",
        "| operation | metric | dth | s3fs | dth/s3fs | target | met |",
        "| --- | --- | ---: | ---: | ---: | --- | --- |",
    ]
    targets = {(s, m): (k, lim) for s, m, k, lim in TARGETS}
    for sid, title, metrics in ROWS:
        sc = results["scenarios"].get(sid)
        if not sc:
            continue
        sc["problems"] = [f"{t} run {i + 1}" for t, runs in sc["runs"].items() for i, r in enumerate(runs)
                          if not r.get("ok")]
        summ = {t: summarise(runs) for t, runs in sc["runs"].items() if runs}
        sc["median"] = {t: m for t, (m, _) in summ.items()}
        sc["spread"] = {t: sp for t, (_, sp) in summ.items()}
        sc["ratio"] = {}
        first = True
        for metric in metrics:
            d = sc["median"].get("dth", {}).get(metric)
            p = sc["median"].get("s3fs", {}).get(metric)
            pr = pair_ratios(sc, metric)
            ratio = pr[0] if pr else None
            sc["ratio"][metric] = None if pr is None else {"median": pr[0], "min": pr[1][0], "max": pr[1][1],
                                                           "runs": pr[2]}
            tgt, met = "", ""
            if (sid, metric) in targets:
                kind, lim = targets[(sid, metric)]
                if kind == "ratio_min":
                    tgt, ok = f"≥ {lim:g}×", ratio is not None and ratio >= lim
                elif kind == "ratio_max":
                    tgt, ok = f"≤ {lim:g}×", ratio is not None and ratio <= lim
                elif kind == "abs_max":
                    tgt, ok = f"< {lim:g} s", d is not None and d < lim
                else:
                    tgt, ok = "0", d == 0
                met = "yes" if ok else "**no**"
                if sc["problems"]:
                    met = "invalid (wrong results)"
                sc.setdefault("met", {})[metric] = met
            if pr is None:
                rcell = "—"
            elif len(pr[2]) < 2:
                rcell = f"{pr[0]:.2f}"
            else:
                rcell = f"{pr[0]:.2f} ({pr[1][0]:.2f}–{pr[1][1]:.2f})"
            label = title.format(**sizes) if first else ""
            n = CFG["runs"]
            cells = [label, NAMES[metric], cell(d, sc["spread"].get("dth", {}).get(metric), metric, n),
                     cell(p, sc["spread"].get("s3fs", {}).get(metric), metric, n), rcell, tgt, met]
            lines.append("| " + " | ".join(cells) + " |")
            first = False
    notes = [
        "",
        "- s3fs: `s3fs BUCKET MNT -o url=http://127.0.0.1:PORT,use_path_request_style,passwd_file=FILE` "
        "(no local cache); dth: `dth mount --config FILE src:BUCKET MNT` (defaults)",
        "- sequential read: `dd bs=1M` of the whole object to /dev/null; its content was checked once per "
        "tool by MD5 (unmeasured). dth sets the kernel's readahead of its mount to 1 MiB (as root); "
        "s3fs leaves the kernel default",
        "- peak RSS: VmHWM of the mount process at the end of the operation (since it was mounted)",
        "- server CPU: user + sys of the Ceph daemons during the operation (they share the client's cores)",
    ]
    for sid, sc in results["scenarios"].items():
        if sc.get("problems"):
            notes.append(f"- **{sid}: failed or wrong runs: {', '.join(sc['problems'])}**")
    return "\n".join(lines + notes)


def tool_versions():
    v = {}
    try:
        p = subprocess.run(["s3fs", "--version"], capture_output=True, text=True)
        line = (p.stdout or p.stderr).splitlines()[0]
        v["s3fs"] = "s3fs " + line.split(" V")[1].split()[0] if " V" in line else line
    except (OSError, IndexError):
        v["s3fs"] = "?"
    try:
        p = subprocess.run([CFG["dth"], "--version"], capture_output=True, text=True)
        v["dth"] = (p.stdout or p.stderr).strip().splitlines()[0]
    except (OSError, IndexError):
        v["dth"] = "?"
    return v


# ---------------------------------------------------------------- main

CONF = None
PASSWD = None


def write_secret_file(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def main():
    global SRC, CONF, PASSWD
    SRC = s3(CFG["src_url"])
    work = CFG["work"]
    for d in ("logs", "mnt"):
        os.makedirs(os.path.join(work, d), exist_ok=True)
    CONF = os.path.join(work, "dth.conf")
    remote = ("[remote {n}]\ntype = s3\nprovider = ceph\nendpoint = {u}\nregion = us-east-1\npath_style = true\n"
              "access_key_id = test\nsecret_access_key = test\n\n")
    write_secret_file(CONF, remote.format(n="src", u=CFG["src_url"]) + remote.format(n="dst", u=CFG["dst_url"]))
    PASSWD = os.path.join(work, "s3fs.passwd")
    write_secret_file(PASSWD, "test:test\n")

    t_start = time.monotonic()
    results = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "kernel": os.uname().release},
        "versions": tool_versions(),
        "config": {k: v for k, v in CFG.items() if k not in ("work", "out")},
        "method": (
            "median of N runs, tools alternating order, a fresh mount for every run (mounting not timed); "
            "wall time around the operation; CPU = utime+stime of the mount process from /proc/PID/stat "
            "before and after; requests = delta of the radosgw `req` counters; client and server share "
            "the machine"
        ),
        "scenarios": {},
    }

    # data: one bucket to list (flat/ holds ls_count objects, tree/ the rest of
    # find_count in 100 directories), one to read (the big object, small ones
    # for first-byte)
    lb, rb = "bench-mount-list", "bench-mount-read"
    n_flat = CFG["ls_count"]
    n_tree = max(0, CFG["find_count"] - n_flat)
    keys = [f"flat/obj-{i:06d}" for i in range(n_flat)] + [f"tree/d{i % 100:02d}/obj-{i:06d}" for i in range(n_tree)]
    listing = not CFG["only"] or any(x in CFG["only"] for x in ("ls", "find", "ls_manifest", "find_manifest"))
    if listing:
        seed_many(lb, keys)
    SRC.create_bucket(Bucket=rb)
    big_key = "big/object.bin"
    big_md5 = seed_big(rb, big_key, CFG["big_size"], CFG["big_part"])
    fb_keys = {}
    for i in range(CFG["runs"]):
        for t in TOOLS:
            k = f"fb/{t}-{i}.bin"
            fb_keys[(t, i)] = k
    fb_body = {k: os.urandom(MiB) for k in fb_keys.values()}
    for k, b in fb_body.items():
        SRC.put_object(Bucket=rb, Key=k, Body=b)

    # a mirror task of the list bucket, for dth mount --manifest
    state = os.path.join(work, "state")
    if listing:
        SRC.create_bucket(Bucket=lb + "-mirror")
        t0 = time.monotonic()
        p = subprocess.run([CFG["dth"], "sync", "--config", CONF, "--state", state, "--task", TASK, "--json",
                            "--concurrency", "32", "src:" + lb, "dst:" + lb + "-mirror"],
                           capture_output=True, text=True, timeout=3600)
        if p.returncode != 0:
            log(f"dth sync for the manifest failed ({p.returncode}): {p.stderr.strip()[-500:]}")
            return 1
        log(f"mirrored {lb} as task {TASK} in {time.monotonic() - t0:.1f} s: {p.stdout.strip()[:200]}")
    manifest_opts = ("--manifest", "--task", TASK, "--state", state)

    sc = results["scenarios"]
    try:
        # correctness once per tool (unmeasured in the table)
        checks = {}
        for t in TOOLS:
            checks[t] = measure(t, "md5", rb if t == "s3fs" else "src:" + rb, op_md5(big_key, big_md5))
        results["content_check"] = {t: {"ok": r["ok"], "md5": r["md5"], "want": big_md5} for t, r in checks.items()}
        specs = [
            ("seq", lambda t, i: (rb, op_seq(big_key, CFG["big_size"]), ())),
            ("ls", lambda t, i: (lb, op_ls("flat", n_flat), ())),
            ("find", lambda t, i: (lb, op_find(n_flat + n_tree), ())),
            ("first_byte", lambda t, i: (rb, op_first_byte(fb_keys[(t, i)], fb_body[fb_keys[(t, i)]][:4 * KiB]), ())),
        ]
        for sid, spec in specs:
            if CFG["only"] and sid not in CFG["only"]:
                continue
            res = {t: [] for t in TOOLS}
            for i in range(CFG["runs"]):
                for t in order(i):
                    bucket, op, extra = spec(t, i)
                    res[t].append(measure(t, sid, bucket if t == "s3fs" else "src:" + bucket, op, extra))
            sc[sid] = {"runs": res}
        for sid, op in (("ls_manifest", op_ls("flat", n_flat)), ("find_manifest", op_find(n_flat + n_tree))):
            if CFG["only"] and sid not in CFG["only"]:
                continue
            res = {"dth": []}
            for i in range(CFG["runs"]):
                res["dth"].append(measure("dth", sid, "src:" + lb, op, manifest_opts))
            sc[sid] = {"runs": res}
    finally:
        for m in list(ACTIVE):
            m.unmount()

    table = report(results)
    results["elapsed"] = round(time.monotonic() - t_start, 1)
    results["markdown"] = table
    os.makedirs(os.path.dirname(CFG["out"]), exist_ok=True)
    with open(CFG["out"], "w") as f:
        json.dump(results, f, indent=1, default=str)
        f.write("\n")
    print(table)
    print(f"\n(raw numbers: {CFG['out']}; {results['elapsed']:.0f} s)")
    bad = any(s.get("problems") for s in sc.values()) or not all(c["ok"] for c in results["content_check"].values())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
