#!/usr/bin/env python3
"""Side-by-side benchmark of `dth sync` and rclone on two radosgw endpoints.

Driven by bench/run.sh, which starts the Ceph cluster and exports the BENCH_*
variables read below. Each measured run is one child process: wall seconds,
CPU seconds (user + sys) and peak RSS come from wait4() of that child, and the
request counts from the `req` counter of each radosgw (admin socket), read
just before and just after the run, as are the CPU seconds and minor page
faults of both radosgw processes and the OSD (/proc). Prints a Markdown table and writes the raw
numbers as JSON.
"""

import concurrent.futures
import datetime
import hashlib
import json
import os
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import threading
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
    "osd_asok": os.environ["BENCH_OSD_ASOK"],
    "ceph_conf": os.environ["BENCH_CEPH_CONF"],
    "work": os.environ["BENCH_WORK"],
    "out": os.environ["BENCH_OUT"],
    "rclone_conf": os.environ["BENCH_RCLONE_CONF"],
    "dth": os.environ.get("BENCH_DTH", ""),
    "runs": env_int("BENCH_RUNS", 3),
    "warmup": env_int("BENCH_WARMUP", 1),
    "scenarios": os.environ.get("BENCH_SCENARIOS", "1 2 3").split(),
    "small_count": env_int("BENCH_SMALL_COUNT", 2000),
    "small_size": env_int("BENCH_SMALL_SIZE", 4 * KiB),
    "big_size": env_int("BENCH_BIG_SIZE", 1 * GiB),
    "big_part": env_int("BENCH_BIG_PART", 8 * MiB),
    "rescan_count": env_int("BENCH_RESCAN_COUNT", 20000),
    "rescan_small_count": env_int("BENCH_RESCAN_SMALL_COUNT", 2000),
    "rescan_size": env_int("BENCH_RESCAN_SIZE", 1 * KiB),
    "check_size": env_int("BENCH_CHECK_SIZE", 100 * MiB + 12345),
    "check_part": env_int("BENCH_CHECK_PART", 6 * MiB),
    "concurrency": env_int("BENCH_CONCURRENCY", 16),
    "timeout": env_int("BENCH_TIMEOUT", 900),
    "rgw_tcp_nodelay": os.environ.get("BENCH_RGW_NODELAY", "0") == "1",
}

RCLONE_SMALL = ["copy", "--transfers", "16", "--checkers", "16"]
RCLONE_BIG = ["copy"]
RCLONE_RESCAN = ["sync", "--checksum", "--fast-list", "--transfers", "16", "--checkers", "16"]

TARGETS = {
    # scenario -> list of (metric, max ratio dth/rclone or absolute limit)
    # issue 13: small objects wall <= 0.5x; the 1 GiB copy's client CPU <= 0.25x
    "s1": [("cpu", 0.5, "ratio"), ("wall", 0.5, "ratio")],
    "s2": [("cpu", 0.25, "ratio"), ("wall", 1.0, "ratio")],
    "s3": [("requests", 0.5, "ratio"), ("wall", 0.5, "ratio"), ("rss", 64.0, "abs")],
    "s3b": [("rss", 64.0, "abs")],
}
# "flat": dth's peak RSS may grow by at most this much from the small rescan to
# the big one (10x the objects); run-to-run noise is a few tenths of a MiB
RSS_FLAT_MIB = 2.0


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


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


def asok_perf_req(path):
    """The rgw `req` counter of one radosgw."""
    dump = asok_perf_dump(path)
    return sum(v["req"] for k, v in dump.items() if k.startswith("rgw") and "req" in v)


def server_reqs():
    return asok_perf_req(CFG["src_asok"]), asok_perf_req(CFG["dst_asok"])


def server_cpu():
    """CPU seconds (user + sys) and minor page faults so far of the source
    radosgw, the destination radosgw and the OSD, from /proc (each daemon's
    pid file sits next to its admin socket)."""
    out = {}
    for name in ("src_asok", "dst_asok", "osd_asok"):
        try:
            with open(CFG[name][: -len(".asok")] + ".pid") as f:
                pid = int(f.read())
            with open(f"/proc/{pid}/stat") as f:
                st = f.read().rsplit(")", 1)[1].split()
        except (OSError, ValueError):
            return None
        tck = os.sysconf("SC_CLK_TCK")
        out[name[:3]] = ((int(st[11]) + int(st[12])) / tck, int(st[7]))
    return out


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
DST = None


def make_bucket(client, name):
    client.create_bucket(Bucket=name)


def list_bucket(client, bucket):
    """{key: (size, etag)} of every object in a bucket."""
    out = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for o in page.get("Contents", []):
            out[o["Key"]] = (o["Size"], o["ETag"].strip('"'))
    return out


def count_pages(client, bucket):
    """ListObjectsV2 pages (1,000 keys each) a plain paginated listing of bucket takes."""
    return sum(1 for _ in client.get_paginator("list_objects_v2").paginate(Bucket=bucket))


def seed_small(bucket, count, size, key_fmt):
    """count objects of size random bytes, put in parallel."""
    make_bucket(SRC, bucket)
    t0 = time.monotonic()

    def put(i):
        SRC.put_object(Bucket=bucket, Key=key_fmt(i), Body=os.urandom(size))

    with concurrent.futures.ThreadPoolExecutor(48) as ex:
        for f in concurrent.futures.as_completed([ex.submit(put, i) for i in range(count)]):
            f.result()
    got = len(list_bucket(SRC, bucket))
    if got != count:
        raise RuntimeError(f"seeding {bucket}: {got} objects, wanted {count}")
    log(f"seeded {count} x {size} B into {bucket} in {time.monotonic() - t0:.1f} s")


def seed_big(bucket, key, size, part):
    """One object uploaded in parts of `part` bytes; returns the source ETag."""
    make_bucket(SRC, bucket)
    t0 = time.monotonic()
    nparts = (size + part - 1) // part
    up = SRC.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    digests = [None] * nparts

    def put(i):
        n = min(part, size - i * part)
        body = os.urandom(n)
        r = SRC.upload_part(Bucket=bucket, Key=key, UploadId=up, PartNumber=i + 1, Body=body)
        digests[i] = hashlib.md5(body).digest()
        return i + 1, r["ETag"]

    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        parts = [f.result() for f in [ex.submit(put, i) for i in range(nparts)]]
    SRC.complete_multipart_upload(
        Bucket=bucket,
        Key=key,
        UploadId=up,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in parts]},
    )
    head = SRC.head_object(Bucket=bucket, Key=key)
    etag = head["ETag"].strip('"')
    want = hashlib.md5(b"".join(digests)).hexdigest() + f"-{nparts}"
    if etag != want:
        raise RuntimeError(f"source etag {etag}, expected {want}")
    log(f"seeded {size} B in {nparts} parts of {part} B into {bucket} in {time.monotonic() - t0:.1f} s (etag {etag})")
    return etag


def md5_of_object(client, bucket, key):
    h = hashlib.md5()
    body = client.get_object(Bucket=bucket, Key=key)["Body"]
    for chunk in iter(lambda: body.read(4 * MiB), b""):
        h.update(chunk)
    return h.hexdigest()


def delete_all(client, bucket):
    keys = list(list_bucket(client, bucket))
    for i in range(0, len(keys), 1000):
        client.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[i : i + 1000]], "Quiet": True}
        )


def gc_process():
    subprocess.run(
        ["radosgw-admin", "-c", CFG["ceph_conf"], "gc", "process", "--include-all"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )


CEPH_PEAK = {"used": 0, "total": 0, "where": None}


def ceph_df():
    """(bytes used, bytes total) of the memstore OSD, from its own statfs counters
    (the cluster has no mgr, so `ceph df` shows nothing); they lag by a second."""
    try:
        osd = asok_perf_dump(CFG["osd_asok"])["osd"]
        return osd["stat_bytes_used"], osd["stat_bytes"]
    except (OSError, ValueError, KeyError, RuntimeError):
        return None, None


def note_usage(where):
    """Record the memstore fill level; radosgw hangs when the OSD is full."""
    used, total = ceph_df()
    if used is None:
        log(f"{where}: ceph df failed")
        return None
    if used >= CEPH_PEAK["used"]:
        CEPH_PEAK.update(used=used, total=total, where=where)
    frac = used / total if total else 0
    if frac > 0.5:
        log(f"{where}: memstore {used / GiB:.2f} of {total / GiB:.1f} GiB used ({frac:.0%})")
    return used


def drop_bucket(client, bucket):
    """Delete a bucket and everything in it, then let radosgw free the space now."""
    try:
        delete_all(client, bucket)
        client.delete_bucket(Bucket=bucket)
    except Exception as e:  # noqa: BLE001
        log(f"deleting {bucket}: {e}")
    gc_process()


# ---------------------------------------------------------------- tools


def rclone_env():
    env = dict(os.environ)
    env.pop("AWS_CA_BUNDLE", None)  # rclone 1.60 fails on plain http while it is set
    env["RCLONE_CONFIG_BSRC_ENDPOINT"] = CFG["src_url"]
    env["RCLONE_CONFIG_BDST_ENDPOINT"] = CFG["dst_url"]
    return env


def dth_env():
    env = dict(os.environ)
    for k in list(env):
        if k.startswith("DTH_REMOTE_") or k in ("DTH_CONFIG", "DTH_STATE_DIR"):
            del env[k]
    for name, url in (("SRC", CFG["src_url"]), ("DST", CFG["dst_url"])):
        env.update(
            {
                f"DTH_REMOTE_{name}_TYPE": "s3",
                f"DTH_REMOTE_{name}_PROVIDER": "ceph",
                f"DTH_REMOTE_{name}_ENDPOINT": url,
                f"DTH_REMOTE_{name}_REGION": "us-east-1",
                f"DTH_REMOTE_{name}_PATH_STYLE": "true",
                f"DTH_REMOTE_{name}_ACCESS_KEY_ID": "test",
                f"DTH_REMOTE_{name}_SECRET_ACCESS_KEY": "test",
            }
        )
    return env


def rclone_argv(args, src, dst):
    return ["rclone", "--config", CFG["rclone_conf"]] + args + [f"bsrc:{src}", f"bdst:{dst}"]


def dth_argv(src, dst, state):
    return [
        CFG["dth"],
        "sync",
        "--concurrency",
        str(CFG["concurrency"]),
        "--state",
        state,
        "--json",
        f"src:{src}",
        f"dst:{dst}",
    ]


TIME = "/usr/bin/time"  # GNU time
RUN_SEQ = [0]


def measure(tool, label, argv, env):
    """Run argv once as a child; return its measurements."""
    RUN_SEQ[0] += 1
    stem = os.path.join(CFG["work"], "logs", f"{RUN_SEQ[0]:03d}-{label}-{tool}")
    time.sleep(0.2)  # let the servers settle (and finish counting the previous run)
    before = server_reqs()
    cpu0 = server_cpu()
    load1 = os.getloadavg()[0]
    # GNU time measures the tool: a child forked straight from this Python
    # process would start with Python's high-water RSS (Linux carries it over
    # fork and exec), so its ru_maxrss would not be the tool's own.
    timefile = stem + ".time"
    wrapped = [TIME, "-f", "%e %U %S %M %x", "-o", timefile, "--"] + argv
    with open(stem + ".out", "wb") as fo, open(stem + ".err", "wb") as fe:
        t0 = time.monotonic()
        p = subprocess.Popen(
            wrapped, env=env, stdout=fo, stderr=fe, stdin=subprocess.DEVNULL, start_new_session=True
        )
        # on a hang, kill the process group that was started just above
        timer = threading.Timer(CFG["timeout"], lambda: os.killpg(p.pid, signal.SIGKILL))
        timer.start()
        p.wait()
        wall = time.monotonic() - t0
        timer.cancel()
    time.sleep(0.2)
    after = server_reqs()
    cpu1 = server_cpu()
    time.sleep(1.5)  # the OSD's statfs counters lag by about a second
    used = note_usage(f"{label} {tool}")
    try:
        with open(timefile) as f:
            # "Command exited with non-zero status N" may precede the format line
            _, user, sys_, maxrss_kib, code = f.read().strip().splitlines()[-1].split()
    except (OSError, IndexError, ValueError):
        user, sys_, maxrss_kib, code = "0", "0", "0", "-1"
    r = {
        "tool": tool,
        "argv": argv,
        "exit": p.returncode if p.returncode != 0 else int(code),
        "wall": round(wall, 3),
        "cpu": round(float(user) + float(sys_), 3),
        "user": float(user),
        "sys": float(sys_),
        "rss": round(int(maxrss_kib) / 1024.0, 1),
        "req_src": after[0] - before[0],
        "req_dst": after[1] - before[1],
    }
    r["requests"] = r["req_src"] + r["req_dst"]
    if cpu0 and cpu1:
        # what the run cost the servers (both radosgw and the OSD): on a
        # machine the copy keeps busy, wall time follows client + server CPU
        r["srv_cpu_by"] = {k: round(cpu1[k][0] - cpu0[k][0], 2) for k in cpu1}
        r["srv_faults_by"] = {k: cpu1[k][1] - cpu0[k][1] for k in cpu1}
        r["srv_cpu"] = round(sum(r["srv_cpu_by"].values()), 2)
    r["ceph_used_after"] = used
    r["load1_before"] = round(load1, 2)
    if tool == "dth":
        try:
            with open(stem + ".out") as f:
                r["dth_json"] = json.load(f)
        except (OSError, ValueError) as e:
            r["dth_json_error"] = str(e)
    if r["exit"] != 0:
        with open(stem + ".err", errors="replace") as f:
            tail = f.read()[-2000:]
        log(f"{label} {tool}: exit {r['exit']}; stderr tail:\n{tail}")
    log(
        f"{label} {tool}: {r['wall']:.2f} s wall, {r['cpu']:.2f} s cpu, "
        f"servers {r.get('srv_cpu', 0):.2f} s cpu, {r['rss']:.0f} MiB, "
        f"req {r['req_src']}+{r['req_dst']}, exit {r['exit']}"
    )
    return r


def tools():
    return ["dth", "rclone"] if CFG["dth"] else ["rclone"]


def order(i):
    t = tools()
    return t if i % 2 == 0 else list(reversed(t))


def rounds():
    """(i, tool, measured) in the order the copy scenarios run them: first
    CFG["warmup"] unmeasured rounds (i < 0), since the first copies into a
    fresh cluster cost its servers more and would always fall on the tool
    that runs first; then the measured rounds, tools alternating."""
    for i in range(-CFG["warmup"], CFG["runs"]):
        for t in order(i):
            yield i, t, i >= 0


def summarise(runs):
    keys = ["wall", "cpu", "srv_cpu", "rss", "req_src", "req_dst", "requests"]
    return {
        k: statistics.median([r[k] for r in runs]) for k in keys if all(k in r for r in runs)
    }


def check_copy(label, tool, bucket, want, r):
    """Compare the destination listing (size only: ETags differ by tool) with the source's."""
    got = list_bucket(DST, bucket)
    ok = len(got) == len(want) and all(got.get(k, (None,))[0] == v[0] for k, v in want.items())
    r["verified"] = ok
    if not ok:
        missing = sum(1 for k in want if k not in got)
        log(f"{label} {tool}: destination {bucket} has {len(got)} objects ({missing} missing)")
    return ok


# ---------------------------------------------------------------- scenarios


def copy_rounds(name, src, rclone_args, check):
    """Copy src into a fresh destination bucket per round (rounds()), each
    tool in turn; check(label, tool, dst, i, r) checks the copy before the
    bucket is dropped. Returns {tool: [measured runs]}."""
    res = {t: [] for t in tools()}
    for i, t, measured in rounds():
        dst = f"bench-{name}-{t}-{i + 1}"
        make_bucket(DST, dst)
        label = name if measured else f"{name}-warmup"
        if t == "dth":
            state = os.path.join(CFG["work"], f"state-{name}-{i + 1}")
            shutil.rmtree(state, ignore_errors=True)
            r = measure(t, label, dth_argv(src, dst, state), dth_env())
        else:
            r = measure(t, label, rclone_argv(rclone_args, src, dst), rclone_env())
        check(label, t, dst, i, r)
        if measured:
            res[t].append(r)
        drop_bucket(DST, dst)
    return res


def scenario_small():
    n, size = CFG["small_count"], CFG["small_size"]
    src = "bench-s1-src"
    seed_small(src, n, size, lambda i: f"small/{i:05d}.bin")
    want = list_bucket(SRC, src)
    res = copy_rounds("s1", src, RCLONE_SMALL,
                      lambda label, t, dst, i, r: check_copy(label, t, dst, want, r))
    drop_bucket(SRC, src)
    return {
        "title": f"{n:,} × {size // KiB} KiB objects, fresh destination",
        "peer_cmd": "rclone copy --transfers 16 --checkers 16",
        "runs": res,
    }


def check_big(label, t, where, src_etag, full, md5s, r):
    """The destination's ETag and size, and (full: the first measured round)
    its MD5 against the source's; md5s caches the source's."""
    src, dst, key = where
    try:
        head = DST.head_object(Bucket=dst, Key=key)
        r["dst_etag"] = head["ETag"].strip('"')
        r["dst_size"] = head["ContentLength"]
        r["etag_match"] = r["dst_etag"] == src_etag
        r["verified"] = r["dst_size"] == CFG["big_size"]
        if full:  # full content check once per tool
            if "src" not in md5s:
                md5s["src"] = md5_of_object(SRC, src, key)
            r["content_md5_match"] = md5_of_object(DST, dst, key) == md5s["src"]
            r["verified"] = r["verified"] and r["content_md5_match"]
    except Exception as e:  # noqa: BLE001
        r["verified"] = False
        r["etag_match"] = False
        log(f"{label} {t}: destination check failed: {e}")
    log(f"{label} {t}: dst etag {r.get('dst_etag')} (source {src_etag}) verified {r['verified']}")


def scenario_big():
    size, part = CFG["big_size"], CFG["big_part"]
    src, key = "bench-s2-src", "big.bin"
    src_etag = seed_big(src, key, size, part)
    md5s = {}
    res = copy_rounds("s2", src, RCLONE_BIG, lambda label, t, dst, i, r: check_big(
        label, t, (src, dst, key), src_etag, i == 0, md5s, r))
    drop_bucket(SRC, src)
    other = etag_check_other_part_size() if CFG["dth"] else None
    return {
        "title": f"one {size // MiB:,} MiB object in {part // MiB} MiB parts",
        "peer_cmd": "rclone copy",
        "source_etag": src_etag,
        "other_part_size_check": other,
        "runs": res,
    }


def etag_check_other_part_size():
    """dth's default part size (8 MiB) is the big object's: check once, unmeasured,
    that dth also reproduces the ETag of a source uploaded in parts of another size."""
    size, part = CFG["check_size"], CFG["check_part"]
    src, dst, key = "bench-s2x-src", "bench-s2x-dth", "odd.bin"
    src_etag = seed_big(src, key, size, part)
    make_bucket(DST, dst)
    state = os.path.join(CFG["work"], "state-s2x")
    shutil.rmtree(state, ignore_errors=True)
    r = measure("dth", "s2x", dth_argv(src, dst, state), dth_env())
    try:
        r["dst_etag"] = DST.head_object(Bucket=dst, Key=key)["ETag"].strip('"')
    except Exception as e:  # noqa: BLE001
        log(f"s2x: destination check failed: {e}")
    r["source_etag"] = src_etag
    r["source_part_size"] = part
    r["etag_match"] = r.get("dst_etag") == src_etag
    log(f"s2x dth: {size} B in {part} B parts: dst etag {r.get('dst_etag')} (source {src_etag})")
    drop_bucket(DST, dst)
    drop_bucket(SRC, src)
    return r


def scenario_rescan(count, tag, src=None):
    """Initial copy by each tool, then `runs` measured no-change rescans."""
    if src is None:
        src = f"bench-{tag}-src"
        seed_small(src, count, CFG["rescan_size"], lambda i: f"d{i % 100:02d}/obj-{i:06d}")
    want = list_bucket(SRC, src)
    count = len(want)
    pages = count_pages(SRC, src)
    log(f"{tag}: a plain listing of {src} takes {pages} ListObjectsV2 requests")
    res = {t: [] for t in tools()}
    initial = {}
    state = os.path.join(CFG["work"], f"state-{tag}")
    shutil.rmtree(state, ignore_errors=True)
    dsts = {t: f"bench-{tag}-{t}" for t in tools()}
    for t in tools():
        make_bucket(DST, dsts[t])
        if t == "dth":
            r = measure(t, f"{tag}-initial", dth_argv(src, dsts[t], state), dth_env())
        else:
            r = measure(t, f"{tag}-initial", rclone_argv(RCLONE_RESCAN, src, dsts[t]), rclone_env())
        check_copy(f"{tag}-initial", t, dsts[t], want, r)
        initial[t] = r
    for i in range(CFG["runs"]):
        for t in order(i):
            if t == "dth":
                r = measure(t, tag, dth_argv(src, dsts[t], state), dth_env())
                j = r.get("dth_json") or {}
                r["verified"] = r["exit"] == 0 and j.get("transferred") == 0 and not j.get("failed")
            else:
                r = measure(t, tag, rclone_argv(RCLONE_RESCAN, src, dsts[t]), rclone_env())
                r["verified"] = r["exit"] == 0
            res[t].append(r)
    for t in tools():
        if not check_copy(tag, t, dsts[t], want, {}):
            for r in res[t]:
                r["verified"] = False
    for t in tools():
        drop_bucket(DST, dsts[t])
    drop_bucket(SRC, src)
    return {
        "title": f"no-change rescan of {count:,} objects",
        "plain_listing_pages": pages,
        "peer_cmd": "rclone sync --checksum --fast-list --transfers 16 --checkers 16",
        "initial": initial,
        "runs": res,
    }


# ---------------------------------------------------------------- report


def fmt(v, metric):
    if v is None:
        return "—"
    if metric in ("requests",):
        return f"{v:,.0f}"
    if metric == "rss":
        return f"{v:.1f}"
    return f"{v:.2f}"


def pair_ratios(runs, metric):
    """(min, max) of dth/rclone over the runs paired by index (run i of each
    tool ran back to back), or None."""
    d, p = runs.get("dth") or [], runs.get("rclone") or []
    if metric == "requests" or not d or len(d) != len(p):
        return None
    rs = [a[metric] / b[metric] for a, b in zip(d, p) if b.get(metric) and metric in a]
    return (min(rs), max(rs)) if rs else None


def report(results):
    v = results["versions"]
    lines = [
        f"Median of {CFG['runs']} runs per tool (alternating order), {v.get('dth', 'dth')} vs "
        f"{v.get('rclone', 'rclone')}, two radosgw endpoints (Ceph 16, memstore"
        f"{', tcp_nodelay=1' if CFG['rgw_tcp_nodelay'] else ', stock frontend settings'}) on the same "
        f"{results['machine']['cpus']}-core machine as the client. CPU = user + sys of the client "
        "process; requests = counted by each radosgw (source + destination).",
        "",
        "| scenario | metric | dth | rclone | dth/rclone (min–max of the run pairs) | target | met |",
        "| --- | --- | ---: | ---: | ---: | --- | --- |",
    ]
    names = {
        "wall": "wall s",
        "cpu": "client CPU s",
        "srv_cpu": "server CPU s (radosgw ×2 + OSD)",
        "rss": "peak RSS MiB",
        "requests": "requests (src + dst)",
    }
    for sid, sc in results["scenarios"].items():
        sc["problems"] = [
            f"{t} run {i + 1}"
            for t, runs in sc["runs"].items()
            for i, r in enumerate(runs)
            if r.get("exit") != 0 or not r.get("verified", False)
        ]
        med = {t: summarise(runs) for t, runs in sc["runs"].items() if runs}
        sc["median"] = med
        sc["ratio"] = {}
        targets = {m: (lim, kind) for m, lim, kind in TARGETS.get(sid, [])}
        label = f"{sid[1:]}. {sc['title']}"
        first = True
        for metric in ("wall", "cpu", "srv_cpu", "rss", "requests"):
            d = med.get("dth", {}).get(metric)
            p = med.get("rclone", {}).get(metric)
            ratio = d / p if d is not None and p else None
            sc["ratio"][metric] = ratio
            tgt, met = "", ""
            if metric in targets:
                lim, kind = targets[metric]
                if kind == "ratio":
                    tgt = f"≤ {lim}×"
                    met = "—" if ratio is None else ("yes" if ratio <= lim else "**no**")
                else:
                    tgt = f"≤ {lim:.0f} MiB"
                    met = "—" if d is None else ("yes" if d <= lim else "**no**")
                if sc["problems"]:
                    met = "invalid (failed runs)"
                sc.setdefault("met", {})[metric] = met
            dcell, pcell = fmt(d, metric), fmt(p, metric)
            if metric == "requests":
                if d is not None:
                    dcell = f"{med['dth']['req_src']:,.0f} + {med['dth']['req_dst']:,.0f}"
                if p is not None:
                    pcell = f"{med['rclone']['req_src']:,.0f} + {med['rclone']['req_dst']:,.0f}"
            rcell = "—" if ratio is None else f"{ratio:.2f}"
            spread = pair_ratios(sc["runs"], metric)
            if spread:
                sc.setdefault("ratio_spread", {})[metric] = spread
                rcell += f" ({spread[0]:.2f}–{spread[1]:.2f})"
            lines.append(
                f"| {label if first else ''} | {names[metric]} | {dcell} | {pcell} | {rcell} | {tgt} | {met} |"
            )
            first = False
        if sid == "s2":
            cells = {}
            for t in ("dth", "rclone"):
                runs = sc["runs"].get(t) or []
                if not runs:
                    cells[t] = "—"
                else:
                    cells[t] = "yes" if all(r.get("etag_match") for r in runs) else "no"
            lines.append(
                f"|  | dest ETag = source ETag ({sc['source_etag'].split('-')[-1]} parts) | "
                f"{cells['dth']} | {cells['rclone']} |  | dth: yes | "
                f"{'—' if cells['dth'] == '—' else ('yes' if cells['dth'] == 'yes' else '**no**')} |"
            )
            o = sc.get("other_part_size_check")
            if o:
                ok = "yes" if o.get("etag_match") else "no"
                lines.append(
                    f"|  | same, {o['source_part_size'] / MiB:g} MiB parts (dth default options, "
                    f"one unmeasured run) | {ok} |  |  | dth: yes | {'yes' if ok == 'yes' else '**no**'} |"
                )
        if sid == "s3b" and "s3" in results["scenarios"]:
            big = results["scenarios"]["s3"].get("median", {}).get("dth", {}).get("rss")
            small = med.get("dth", {}).get("rss")
            if big is not None and small is not None:
                grow = big - small
                met = "yes" if grow <= RSS_FLAT_MIB else "**no**"
                sc.setdefault("met", {})["rss_flat"] = met
                lines.append(
                    f"|  | dth peak RSS MiB, {CFG['rescan_small_count']:,} → {CFG['rescan_count']:,} objects | "
                    f"{small:.1f} → {big:.1f} ({grow:+.1f}) |  |  | flat (≤ +{RSS_FLAT_MIB:g}) | {met} |"
                )
    out = "\n".join(lines)
    notes = []
    for sid, sc in results["scenarios"].items():
        notes.append(f"- {sid[1:]}: peer `{sc['peer_cmd']}`")
        if sc["problems"]:
            notes.append(f"  - **failed or unverified runs: {', '.join(sc['problems'])}**")
    return out + "\n\n" + "\n".join(notes)


def tool_versions():
    v = {}
    try:
        v["rclone"] = subprocess.run(
            ["rclone", "version"], capture_output=True, text=True, env=rclone_env()
        ).stdout.splitlines()[0]
    except (OSError, IndexError):
        v["rclone"] = "?"
    if CFG["dth"]:
        try:
            p = subprocess.run([CFG["dth"], "--version"], capture_output=True, text=True)
            v["dth"] = (p.stdout or p.stderr).strip().splitlines()[0]
        except (OSError, IndexError):
            v["dth"] = "?"
    return v


def main():
    global SRC, DST
    SRC, DST = s3(CFG["src_url"]), s3(CFG["dst_url"])
    os.makedirs(os.path.join(CFG["work"], "logs"), exist_ok=True)
    t0 = time.monotonic()
    results = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "kernel": os.uname().release},
        "versions": tool_versions(),
        "config": {k: v for k, v in CFG.items() if k not in ("work", "out")},
        "method": (
            "median of N runs, tools alternating order, after `warmup` unmeasured rounds of "
            "both (scenarios 1 and 2); wall/CPU/peak RSS from wait4() of the "
            "client process; requests = delta of the radosgw `req` counter on each endpoint; "
            "both radosgw and the client share the same machine"
        ),
        "scenarios": {},
    }
    if "1" in CFG["scenarios"]:
        results["scenarios"]["s1"] = scenario_small()
    if "2" in CFG["scenarios"]:
        results["scenarios"]["s2"] = scenario_big()
    if "3" in CFG["scenarios"]:
        results["scenarios"]["s3"] = scenario_rescan(CFG["rescan_count"], "s3")
        # the same rescan on fewer objects: dth's peak RSS should stay flat
        results["scenarios"]["s3b"] = scenario_rescan(CFG["rescan_small_count"], "s3b")
    used, total = ceph_df()
    results["ceph"] = {
        "memstore_bytes": total,
        "peak_used_raw_bytes": CEPH_PEAK["used"],
        "peak_used_after": CEPH_PEAK["where"],
        "used_raw_bytes_at_end": used,
    }
    try:
        st = subprocess.run(
            ["ceph", "-c", CFG["ceph_conf"], "health", "-f", "json"], capture_output=True, text=True, timeout=60
        )
        h = json.loads(st.stdout)
        results["ceph"]["health_at_end"] = h["status"]
        results["ceph"]["health_checks"] = sorted(h.get("checks", {}))
    except (OSError, ValueError, KeyError, subprocess.TimeoutExpired):
        results["ceph"]["health_at_end"] = "?"
    log(
        f"memstore peak {CEPH_PEAK['used'] / GiB:.2f} of {(total or 0) / GiB:.1f} GiB "
        f"(after {CEPH_PEAK['where']}); health {results['ceph']['health_at_end']}"
    )
    table = report(results)
    results["elapsed"] = round(time.monotonic() - t0, 1)
    results["markdown"] = table
    os.makedirs(os.path.dirname(CFG["out"]), exist_ok=True)
    with open(CFG["out"], "w") as f:
        json.dump(results, f, indent=1, default=str)
        f.write("\n")
    print(table)
    print(f"\n(raw numbers: {CFG['out']}; {results['elapsed']:.0f} s)")
    bad = any(sc["problems"] for sc in results["scenarios"].values())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
