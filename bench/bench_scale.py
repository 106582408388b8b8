#!/usr/bin/env python3
"""Scale benchmark of `dth sync` against the synthetic S3 server
(tests/harness/synth-s3.py), at N = 10^5, 10^6, 10^7 keys (driven by
bench/scale.sh; run it directly with --help for the options).

For each N, one synthetic server (its own process, port --port) serves
  src     N generated keys
  mirror  the same N keys, sizes and ETags (a destination already equal)
  empty   an empty bucket
and dth runs, each time as a new process:
  plan     `dth sync --dry-run syn:src syn:empty` with a new state directory:
           the first full plan (lists src, and the empty destination once)
  adopt    `dth sync syn:src syn:mirror` with a new state directory, once:
           the first real run finds every object at the destination and
           records it as done (no copy), which fills the manifest
  rescan   the same command again: a no-change rescan (the manifest holds
           every key as done; the destination is not listed again)
plan and rescan are repeated --runs times (median and min-max reported).

Measured from the kernel and the server, not from dth's own report:
  wall       monotonic time around the process
  cpu        user + system seconds of the dth process (wait4 rusage)
  peak_rss   ru_maxrss of the dth process (VmHWM: every page it ever had
             resident, the manifest's mapped file pages included)
  anon_peak  the largest RssAnon seen while sampling /proc/PID/status every
             20 ms (heap, stacks, anonymous maps: not the manifest's file
             pages, which the kernel can drop)
  lists      LIST requests the synthetic server counted (GET /__stats)
  heap_peak  heaptrack's "peak heap memory consumption" (one extra run of
             plan and rescan under heaptrack, at N <= --heap-max only)
  manifest   data.mdb file size, and mdb_stat's pages in use x page size,
             each per object
  server     pages/s the server sends alone over one keep-alive HTTP/1.1
             connection (curl), to show it is not what limits dth
Writes the raw numbers as JSON (--out) and prints a Markdown table."""

import argparse
import json
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SYNTH = os.path.join(ROOT, "tests", "harness", "synth-s3.py")
RUNNING = [None]  # the dth process running now (its own process group)


def on_term(_sig, _frm):
    """Stopped: the running dth goes too (a dth left behind would go on
    listing from the next server started on the port, tokens being
    stateless), then the finally blocks stop the server."""
    if RUNNING[0]:
        try:
            os.killpg(RUNNING[0], signal.SIGKILL)
        except OSError:
            pass
    raise SystemExit("interrupted")


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100000,1000000,10000000")
    ap.add_argument("--runs", type=int, default=3, help="plan and rescan runs per N")
    ap.add_argument("--runs-large", type=int, default=0,
                    help="plan and rescan runs at N >= 10^7 (0: --runs)")
    ap.add_argument("--port", type=int, default=19100)
    ap.add_argument("--dth", default=os.path.join(ROOT, "build", "dth"))
    ap.add_argument("--work", default="/tmp/dth-scale")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "scale-latest.json"))
    ap.add_argument("--heap-max", type=int, default=1000000,
                    help="largest N measured under heaptrack (0: none)")
    ap.add_argument("--list-delay", type=float, default=0.0,
                    help="milliseconds the server adds to each LIST")
    return ap.parse_args()


# ---------------------------------------------------------------- server


class Synth:
    def __init__(self, args, n, work):
        self.port, self.n = args.port, n
        self.url = "http://127.0.0.1:%d" % args.port
        self.pid_file = os.path.join(work, "synth.pid")
        self.log = open(os.path.join(work, "synth.out"), "ab")
        cmd = [sys.executable, SYNTH, "--port", str(args.port), "--keys", str(n), "--bucket", "src",
               "--mirror", "mirror", "--empty", "empty", "--pid-file", self.pid_file,
               "--list-delay", str(args.list_delay)]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=self.log,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit("synth-s3 exited at start (see %s)" % self.log.name)
            try:
                self.stats()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise SystemExit("synth-s3 did not answer on port %d" % args.port)

    def _req(self, method, path):
        r = urllib.request.Request(self.url + path, method=method)
        with urllib.request.urlopen(r, timeout=30) as f:
            return json.loads(f.read())

    def stats(self):
        return self._req("GET", "/__stats")

    def reset(self):
        self._req("POST", "/__stats/reset")

    def cpu_seconds(self):
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()

    def pages_per_second(self, work, pages):
        """Pages the server sends alone: curl fetches `pages` full pages over
        one keep-alive connection (start-after walks the listing)."""
        cfg = os.path.join(work, "pages.cfg")
        pages = max(1, min(pages, self.n // 1000))
        with open(cfg, "w") as f:
            for p in range(pages):
                i = p * 1000 - 1
                after = ("&start-after=d%04d/s%03d/obj-%010d.dat"
                         % (i // 1000000, (i // 1000) % 1000, i)) if i >= 0 else ""
                f.write('url = "%s/src?list-type=2%s"\noutput = "/dev/null"\n' % (self.url, after))
        c0 = self.cpu_seconds()
        t0 = time.monotonic()
        subprocess.run(["curl", "-s", "-K", cfg], check=True)
        dt = time.monotonic() - t0
        return {"pages": pages, "seconds": round(dt, 3), "pages_per_s": round(pages / dt, 1),
                "server_cpu_s": round(self.cpu_seconds() - c0, 3)}


# ---------------------------------------------------------------- dth runs


def dth_env(url):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"),
           "LANG": "C.UTF-8"}
    p = "DTH_REMOTE_SYN_"
    env.update({p + "TYPE": "s3", p + "PROVIDER": "other", p + "ENDPOINT": url,
                p + "REGION": "us-east-1", p + "PATH_STYLE": "true",
                # the synthetic server checks no signature: any key will do
                p + "ACCESS_KEY_ID": "synth", p + "SECRET_ACCESS_KEY": "synth-not-a-secret"})
    return env


def sample_rss(pid, peak, stop):
    """Largest RssAnon / RssFile (KiB) of pid until stop is set."""
    path = "/proc/%d/status" % pid
    while not stop.is_set():
        try:
            with open(path) as f:
                for line in f:
                    if line.startswith(("RssAnon:", "RssFile:")):
                        k, v = line.split()[:2]
                        peak[k] = max(peak.get(k, 0), int(v))
        except OSError:
            break
        stop.wait(0.02)


def run_dth(args, synth, argv, wrap=None, log=None):
    """One dth process; returns the measurements (raises when it fails)."""
    cmd = (wrap or []) + [args.dth] + argv
    synth.reset()
    t0 = time.monotonic()
    with open(log or os.devnull, "ab") as err:
        p = subprocess.Popen(cmd, env=dth_env(synth.url), stdout=subprocess.PIPE, stderr=err,
                             stdin=subprocess.DEVNULL, start_new_session=True)
        RUNNING[0] = p.pid
        peak, stop = {}, threading.Event()
        th = threading.Thread(target=sample_rss, args=(p.pid, peak, stop), daemon=True)
        th.start()
        out = p.stdout.read()
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        RUNNING[0] = None
        stop.set()
        th.join()
    wall = time.monotonic() - t0
    st = synth.stats()
    if p.returncode != 0:
        raise SystemExit("%s exited %d (log: %s)" % (" ".join(cmd), p.returncode, log))
    res = json.loads(out) if out.strip().startswith(b"{") else {}
    return {"wall_s": round(wall, 3), "cpu_s": round(ru.ru_utime + ru.ru_stime, 3),
            "peak_rss_kib": ru.ru_maxrss, "anon_peak_kib": peak.get("RssAnon:", 0),
            "file_peak_kib": peak.get("RssFile:", 0),
            "lists": st["requests"].get("LIST", 0), "requests": st["requests"],
            "keys_listed": st["keys_listed"], "dth": {k: res.get(k) for k in (
                "planned", "adopted", "skipped", "transferred", "failed")}}


def sync_argv(state, src, dst, dry):
    a = ["sync", "--json", "--no-progress", "--state", state, "--task", "t"]
    return a + (["--dry-run"] if dry else []) + [src, dst]


def heaptrack_peak(args, synth, work, name, argv):
    """heaptrack's peak heap of one run, in bytes (None without heaptrack)."""
    if not shutil.which("heaptrack") or not shutil.which("heaptrack_print"):
        return None
    base = os.path.join(work, "heaptrack." + name)
    for f in os.listdir(work):
        if f.startswith("heaptrack.%s." % name):
            os.unlink(os.path.join(work, f))
    run_dth(args, synth, argv, wrap=["heaptrack", "-o", base], log=base + ".log")
    data = [f for f in os.listdir(work) if f.startswith("heaptrack.%s." % name)
            and f.endswith((".zst", ".gz"))]
    if not data:
        return None
    out = subprocess.run(["heaptrack_print", "-f", os.path.join(work, data[0]), "-p", "0",
                          "-a", "0", "-T", "0", "-l", "0", "-n", "0", "-s", "0"],
                         capture_output=True, text=True).stdout
    m = re.search(r"peak heap memory consumption:\s*([\d.]+)([KMG]?)B?", out)
    if not m:
        return None
    mult = {"": 1, "K": 1e3, "M": 1e6, "G": 1e9}[m.group(2)]
    return int(float(m.group(1)) * mult)


def manifest_size(state, n):
    path = os.path.join(state, "data.mdb")
    size = os.path.getsize(path)
    used = None
    if shutil.which("mdb_stat"):
        out = subprocess.run(["mdb_stat", "-e", state], capture_output=True, text=True).stdout
        psize = re.search(r"Page size: (\d+)", out)
        pages = re.search(r"Number of pages used: (\d+)", out)
        if psize and pages:
            used = int(psize.group(1)) * int(pages.group(1))
    return {"file_bytes": size, "used_bytes": used, "file_bytes_per_object": round(size / n, 1),
            "used_bytes_per_object": round(used / n, 1) if used else None}


# ---------------------------------------------------------------- one N


def summary(runs, key):
    v = [r[key] for r in runs]
    return {"median": statistics.median(v), "min": min(v), "max": max(v)}


def measure(args, n):
    work = os.path.join(args.work, "n%d" % n)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    synth = Synth(args, n, work)
    log = os.path.join(work, "dth.log")
    out = {"n": n, "expected_lists": math.ceil(n / 1000)}
    try:
        out["server"] = synth.pages_per_second(work, 200)
        plans = []
        runs = args.runs_large if args.runs_large and n >= 10**7 else args.runs
        for i in range(runs):
            st = os.path.join(work, "plan%d" % i)
            plans.append(run_dth(args, synth, sync_argv(st, "syn:src", "syn:empty", True), log=log))
            shutil.rmtree(st, ignore_errors=True)
            print("  N=%d plan %d: %.1fs" % (n, i + 1, plans[-1]["wall_s"]), flush=True)
        state = os.path.join(work, "state")
        adopt = run_dth(args, synth, sync_argv(state, "syn:src", "syn:mirror", False), log=log)
        print("  N=%d adopt: %.1fs" % (n, adopt["wall_s"]), flush=True)
        out["manifest"] = manifest_size(state, n)
        rescans = []
        for i in range(runs):
            rescans.append(run_dth(args, synth, sync_argv(state, "syn:src", "syn:mirror", False),
                                   log=log))
            print("  N=%d rescan %d: %.1fs" % (n, i + 1, rescans[-1]["wall_s"]), flush=True)
        out.update(plan_runs=plans, adopt=adopt, rescan_runs=rescans)
        for name, runs in (("plan", plans), ("rescan", rescans)):
            s = {k: summary(runs, k) for k in ("wall_s", "cpu_s", "peak_rss_kib", "anon_peak_kib",
                                               "lists")}
            w = s["wall_s"]
            s["keys_per_s"] = {"median": round(n / w["median"]), "min": round(n / w["max"]),
                               "max": round(n / w["min"])}
            s["cpu_us_per_key"] = round(s["cpu_s"]["median"] / n * 1e6, 3)
            out[name] = s
        if n <= args.heap_max:
            hp = os.path.join(work, "planh")
            out["plan"]["heap_peak_bytes"] = heaptrack_peak(
                args, synth, work, "plan", sync_argv(hp, "syn:src", "syn:empty", True))
            shutil.rmtree(hp, ignore_errors=True)
            out["rescan"]["heap_peak_bytes"] = heaptrack_peak(
                args, synth, work, "rescan", sync_argv(state, "syn:src", "syn:mirror", False))
    finally:
        synth.stop()
    shutil.rmtree(os.path.join(work, "state"), ignore_errors=True)
    return out


# ---------------------------------------------------------------- report


def mib(kib):
    return "%.1f" % (kib / 1024)


def spread(s, fmt, f=lambda v: v):
    return ("%s (%s–%s)" % (fmt, fmt, fmt)) % (f(s["median"]), f(s["min"]), f(s["max"]))


def table(results):
    rows = ["| N | run | wall s | keys/s | dth CPU µs/key | peak RSS MiB | anon peak MiB | "
            "heap peak MiB | LISTs (expected) | manifest B/object |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        for name in ("plan", "rescan"):
            s = r[name]
            hp = s.get("heap_peak_bytes")
            man = r["manifest"]
            rows.append("| %s | %s | %s | %s | %.2f | %s | %s | %s | %s (%d) | %s |" % (
                "{:,}".format(r["n"]), "first plan (dry run)" if name == "plan" else "no-change rescan",
                spread(s["wall_s"], "%.1f"), spread(s["keys_per_s"], "%d", int),
                s["cpu_us_per_key"], spread(s["peak_rss_kib"], "%s", mib),
                spread(s["anon_peak_kib"], "%s", mib), "%.1f" % (hp / 1048576) if hp else "–",
                spread(s["lists"], "%d"), r["expected_lists"],
                ("%.0f (%.0f used)" % (man["file_bytes_per_object"], man["used_bytes_per_object"])
                 if man.get("used_bytes_per_object") else "%.0f" % man["file_bytes_per_object"])
                if name == "rescan" else "–"))
    rows.append("")
    rows.append("| N | first run, destination equal (adopt) wall s | keys/s | peak RSS MiB | "
                "LISTs | server alone pages/s |")
    rows.append("| --- | --- | --- | --- | --- | --- |")
    for r in results:
        a = r["adopt"]
        rows.append("| %s | %.1f | %d | %s | %d | %.0f |" % (
            "{:,}".format(r["n"]), a["wall_s"], r["n"] / a["wall_s"], mib(a["peak_rss_kib"]),
            a["lists"], r["server"]["pages_per_s"]))
    return "\n".join(rows)


def main():
    args = parse_args()
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    args.dth = os.path.abspath(args.dth)
    if not os.access(args.dth, os.X_OK):
        raise SystemExit("no dth binary at %s" % args.dth)
    os.makedirs(args.work, exist_ok=True)
    sizes = [int(float(s)) for s in args.sizes.split(",") if s]
    results = []
    for n in sizes:
        print("N=%d" % n, flush=True)
        results.append(measure(args, n))
        doc = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "dth": args.dth, "runs": args.runs, "host_cpus": os.cpu_count(),
               "list_delay_ms": args.list_delay, "results": results,
               "load_average": os.getloadavg()}
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(doc, f, indent=1)
    print()
    print(table(results))
    bad = [r["n"] for r in results if r["rescan"]["lists"]["max"] != r["expected_lists"]]
    if bad:
        print("\nrescan LIST count differs from ceil(N/1000) at N = %s" % bad)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
