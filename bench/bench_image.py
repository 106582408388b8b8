#!/usr/bin/env python3
"""Side-by-side benchmark of `dth image sync` and `skopeo sync --all` between
two docker-registry instances on loopback.

Driven by bench/image.sh (which checks the tools and exports the BENCH_*
variables read below). This script starts its own registries: src (no auth)
and dst (htpasswd basic auth), with access logs on. It builds a workload
offline with umoci (BENCH_REPOS repositories, BENCH_TAGS tags each, sharing
base layers; odd repositories pushed as OCI, even ones as Docker v2 schema 2;
every layer's bytes come from a seeded PRNG, so the workload is the same on
every machine), pushes it to src with skopeo once, then per run and tool:

  cold    a fresh dst registry (empty storage), a fresh dth state or an
          emptied skopeo blob-info cache; copy every tag of every repository
  rerun   the same command again, nothing changed

measuring wall seconds, CPU seconds of the tool (rusage of the child),
requests at each registry (lines of its access log written during the
command) and bytes the source served (the sizes in its access log). Medians
of the runs, tools in alternating order. Prints a Markdown table and writes
the raw numbers as JSON.
"""

import datetime
import hashlib
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time

KiB = 1024
MiB = 1024 * KiB


def env_int(name, default):
    v = os.environ.get(name)
    return int(v) if v else default


CFG = {
    "work": os.environ["BENCH_WORK"],
    "out": os.environ["BENCH_OUT"],
    "dth": os.environ.get("BENCH_DTH", ""),
    "runs": env_int("BENCH_RUNS", 3),
    "port_src": env_int("BENCH_PORT_SRC", 5400),
    "port_dst": env_int("BENCH_PORT_DST", 5401),
    "repos": env_int("BENCH_REPOS", 20),
    "tags": env_int("BENCH_TAGS", 3),
    "base_size": env_int("BENCH_BASE_SIZE", 2 * MiB),
    "bases": env_int("BENCH_BASES", 3),
    "repo_size": env_int("BENCH_REPO_SIZE", 512 * KiB),
    "tag_size": env_int("BENCH_TAG_SIZE", 256 * KiB),
    "concurrency": env_int("BENCH_DTH_CONCURRENCY", 0),
    "skopeo_src": os.environ.get("BENCH_SKOPEO_SRC", "yaml"),
    "dth_mode": os.environ.get("BENCH_DTH_MODE", "images"),
    "timeout": env_int("BENCH_TIMEOUT", 900),
}
USER, PASS = "testuser", "testpass"
TOOLS = tuple(os.environ.get("BENCH_TOOLS", "dth skopeo").split())
SKOPEO_CACHE = "/var/lib/containers/cache/blob-info-cache-v1.boltdb"

# (scenario, metric, kind, limit): "ratio_max": dth/skopeo <= limit;
# "floor": the dth figure equals the floor computed from the workload
TARGETS = [
    ("cold", "wall", "ratio_max", 0.5),
    ("rerun", "requests", "ratio_max", 0.35),
    ("rerun", "src_requests", "floor", None),
    ("rerun", "dst_requests", "floor", 0),
]


def log(msg):
    print(f"[bench-image {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run(argv, **kw):
    kw.setdefault("check", True)
    return subprocess.run(argv, **kw)


# ---------------------------------------------------------------- registries


class Registry:
    def __init__(self, name, port, auth):
        self.name, self.port, self.auth = name, port, auth
        self.dir = os.path.join(CFG["work"], "reg-" + name)
        self.proc = None
        self.logf = None
        self.logpath = None
        self.generation = 0

    def config(self):
        auth = ""
        if self.auth:
            auth = (f"auth:\n  htpasswd:\n    realm: dth-bench-realm\n"
                    f"    path: {CFG['work']}/htpasswd\n")
        return f"""version: 0.1
log:
  level: warn
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: {self.dir}/data
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  secret: dth-bench-secret-{self.name}
  addr: 127.0.0.1:{self.port}
health:
  storagedriver:
    enabled: false
{auth}"""

    def start(self, wipe):
        if wipe:
            shutil.rmtree(os.path.join(self.dir, "data"), ignore_errors=True)
        os.makedirs(os.path.join(self.dir, "data"), exist_ok=True)
        cfg = os.path.join(self.dir, "config.yml")
        with open(cfg, "w") as f:
            f.write(self.config())
        self.generation += 1
        self.logpath = os.path.join(self.dir, f"access-{self.generation}.log")
        self.logf = open(self.logpath, "wb")
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        self.proc = subprocess.Popen(["docker-registry", "serve", cfg], stdout=self.logf,
                                     stderr=subprocess.STDOUT, env=env, start_new_session=True)
        with open(os.path.join(CFG["work"], "pids"), "a") as f:
            f.write(f"{self.proc.pid}\n")
        for _ in range(400):
            r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                f"http://127.0.0.1:{self.port}/v2/"], capture_output=True, text=True)
            if r.stdout in ("200", "401"):
                time.sleep(0.2)
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"registry {self.name} died; see {self.logpath}")
            time.sleep(0.05)
        raise RuntimeError(f"registry {self.name} on port {self.port} did not answer")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self.logf:
            self.logf.close()
            self.logf = None

    def cpu(self):
        """CPU seconds (utime + stime) of the registry process so far."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log_offset(self):
        return os.path.getsize(self.logpath)

    def requests_since(self, offset):
        """(method, path, status, size, agent) of each access line after offset."""
        with open(self.logpath, "rb") as f:
            f.seek(offset)
            text = f.read().decode("utf-8", "replace")
        out = []
        # combined log format: ... "GET /v2/... HTTP/1.1" 200 123 "referer" "agent"
        rx = re.compile(r'"([A-Z]+) (\S+) [^"]*" (\d{3}) (\d+|-) "[^"]*" "([^"]*)"')
        for line in text.splitlines():
            m = rx.search(line)
            if m:
                size = 0 if m.group(4) == "-" else int(m.group(4))
                out.append((m.group(1), m.group(2), int(m.group(3)), size, m.group(5)))
        return out


def kind(method, path):
    """A short name for a registry request, for the per-kind counts."""
    if path.startswith("/v2/_catalog"):
        return "catalog"
    if "/tags/list" in path:
        return "tags"
    if "/manifests/" in path:
        return "manifest_" + method.lower()
    if "/blobs/uploads" in path:
        return "upload_" + method.lower()
    if "/blobs/" in path:
        return "blob_" + method.lower()
    if path.rstrip("/") == "/v2":
        return "ping"
    return "other"


# ---------------------------------------------------------------- workload


def prng_bytes(seed, size):
    """size bytes from a seeded PRNG (random.Random is Mersenne Twister: the
    same bytes for a seed on every platform)."""
    return random.Random(seed).randbytes(size)


def build_workload():
    """Build the images offline with umoci and push them to src. Returns the
    list of (repo, tag, format)."""
    layout = os.path.join(CFG["work"], "oci")
    files = os.path.join(CFG["work"], "files")
    shutil.rmtree(layout, ignore_errors=True)
    shutil.rmtree(files, ignore_errors=True)
    os.makedirs(files)
    t0 = time.monotonic()
    mtime = 946684800  # 2000-01-01, so the tar headers are the same on every build

    def write(name, seed, size):
        p = os.path.join(files, name)
        with open(p, "wb") as f:
            f.write(prng_bytes(seed, size))
        os.utime(p, (mtime, mtime))
        return p

    created = "2024-01-01T00:00:00Z"
    run(["umoci", "init", "--layout", layout])
    for b in range(CFG["bases"]):
        img = f"{layout}:base{b}"
        run(["umoci", "new", "--image", img])
        p = write(f"base{b}.bin", f"base-{b}", CFG["base_size"])
        run(["umoci", "insert", "--image", img, "--history.created", created, p, f"/base/{b}.bin"])
    images = []
    for r in range(1, CFG["repos"] + 1):
        repo = f"bench/r{r:02d}"
        fmt = "oci" if r % 2 else "v2s2"
        rimg = f"{layout}:r{r:02d}"
        run(["umoci", "tag", "--image", f"{layout}:base{r % CFG['bases']}", f"r{r:02d}"])
        p = write(f"r{r:02d}.bin", f"repo-{r}", CFG["repo_size"])
        run(["umoci", "insert", "--image", rimg, "--history.created", created, p, "/app/repo.bin"])
        for t in range(1, CFG["tags"] + 1):
            name = f"r{r:02d}-t{t}"
            run(["umoci", "tag", "--image", rimg, name])
            p = write(f"{name}.bin", f"tag-{r}-{t}", CFG["tag_size"])
            run(["umoci", "insert", "--image", f"{layout}:{name}", "--history.created", created,
                 p, "/app/tag.bin"])
            run(["umoci", "config", "--image", f"{layout}:{name}", "--created", created,
                 "--history.created", created, "--config.entrypoint", "/app/run", "--architecture", "amd64", "--os", "linux"])
            images.append((repo, f"t{t}", fmt, name))
    log(f"built {len(images)} images in {time.monotonic() - t0:.1f} s")
    t0 = time.monotonic()
    host = f"127.0.0.1:{CFG['port_src']}"
    for repo, tag, fmt, name in images:
        argv = ["skopeo", "copy", "-q", "--dest-tls-verify=false"]
        if fmt == "v2s2":
            argv += ["--format", "v2s2"]
        run(argv + [f"oci:{layout}:{name}", f"docker://{host}/{repo}:{tag}"], env=skopeo_env())
    log(f"pushed them to src in {time.monotonic() - t0:.1f} s")
    return [(repo, tag, fmt) for repo, tag, fmt, _ in images]


def skopeo_env():
    env = dict(os.environ)
    env["REGISTRY_AUTH_FILE"] = os.path.join(CFG["work"], "skopeo-auth.json")
    return env


# ---------------------------------------------------------------- tools


def measure(argv, env=None):
    """Run argv; wall and CPU seconds (rusage of the child), exit status, output."""
    out = os.path.join(CFG["work"], "cmd.out")
    err = os.path.join(CFG["work"], "cmd.err")
    with open(out, "wb") as fo, open(err, "wb") as fe:
        t0 = time.monotonic()
        p = subprocess.Popen(argv, stdout=fo, stderr=fe, env=env)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.monotonic() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    with open(out, "rb") as f:
        o = f.read().decode("utf-8", "replace")
    with open(err, "rb") as f:
        e = f.read().decode("utf-8", "replace")
    return {"wall": wall, "cpu": ru.ru_utime + ru.ru_stime, "rss_mib": ru.ru_maxrss / 1024,
            "rc": p.returncode, "stdout": o, "stderr": e}


def dth_cmd(prefix, state):
    conf = os.path.join(CFG["work"], "dth.conf")
    argv = [CFG["dth"], "image", "sync", "--config", conf, "--state", state, "--task", "bench",
            "--json"]
    if CFG["dth_mode"] == "all":
        argv += ["--all"]
    else:
        argv += ["--images", ",".join(REPOS)]
    if CFG["concurrency"]:
        argv += ["--concurrency", str(CFG["concurrency"])]
    return argv + ["src:", "dst:" + prefix], None


def skopeo_cmd(prefix):
    dst = f"127.0.0.1:{CFG['port_dst']}/{prefix}"
    argv = ["skopeo", "sync", "--all", "--dest", "docker", "--dest-tls-verify=false",
            "--dest-creds", f"{USER}:{PASS}"]
    if CFG["skopeo_src"] == "yaml":
        # one process for every repository; an empty tag list means every tag,
        # and the destination gets the last path component of each repository
        # (DST/rNN), so DST is PREFIX/bench to land where dth puts them
        return argv + ["--src", "yaml", os.path.join(CFG["work"], "skopeo-sync.yml"),
                       f"{dst}/bench"]
    # --src docker takes one repository per invocation: a shell loop over them
    src = f"127.0.0.1:{CFG['port_src']}"
    cmds = []
    for repo in REPOS:
        d = f"{dst}/{os.path.dirname(repo)}"
        cmds.append(" ".join(argv + ["--src", "docker", "--src-tls-verify=false", f"{src}/{repo}", d]))
    return ["sh", "-ec", "\n".join(cmds)]


def write_tool_configs():
    conf = os.path.join(CFG["work"], "dth.conf")
    with open(os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write(f"[remote src]\ntype = registry\nurl = http://127.0.0.1:{CFG['port_src']}\n"
                f"insecure = true\n\n[remote dst]\ntype = registry\n"
                f"url = http://127.0.0.1:{CFG['port_dst']}\ninsecure = true\n"
                f"username = {USER}\npassword = {PASS}\n")
    with open(os.path.join(CFG["work"], "skopeo-sync.yml"), "w") as f:
        f.write(f"127.0.0.1:{CFG['port_src']}:\n  tls-verify: false\n  images:\n")
        for repo in REPOS:
            f.write(f"    {repo}: []\n")
    with open(os.path.join(CFG["work"], "skopeo-auth.json"), "w") as f:
        f.write("{}")


def registry_manifest(port, repo, ref, auth):
    argv = ["skopeo", "inspect", "--raw", "--tls-verify=false"]
    if auth:
        argv += ["--creds", f"{USER}:{PASS}"]
    r = subprocess.run(argv + [f"docker://127.0.0.1:{port}/{repo}:{ref}"], capture_output=True,
                       env=skopeo_env())
    return r.stdout if r.returncode == 0 else None


def verify(prefix):
    """Every tag's manifest at dst (under prefix) equals the source's, byte for
    byte; returns the number of mismatches (sampled: every tag's manifest, a
    blob HEAD per layer of one image in three)."""
    bad = 0
    for i, (repo, tag, _) in enumerate(IMAGES):
        want = SRC_MANIFESTS[(repo, tag)]
        got = registry_manifest(CFG["port_dst"], f"{prefix}/{repo}", tag, True)
        if got != want:
            log(f"verify: {prefix}/{repo}:{tag} differs from the source"
                + (" (absent)" if got is None else ""))
            bad += 1
            if bad == 1:
                r = subprocess.run(["curl", "-s", "-u", f"{USER}:{PASS}",
                                    f"http://127.0.0.1:{CFG['port_dst']}/v2/_catalog"],
                                   capture_output=True, text=True)
                log(f"verify: dst catalog {r.stdout.strip()[:300]}")
            continue
        if i % 3 == 0:
            doc = json.loads(want)
            for d in [doc["config"]["digest"]] + [l["digest"] for l in doc["layers"]]:
                r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-I",
                                    "-u", f"{USER}:{PASS}",
                                    f"http://127.0.0.1:{CFG['port_dst']}/v2/{prefix}/{repo}/blobs/{d}"],
                                   capture_output=True, text=True)
                if r.stdout != "200":
                    log(f"verify: blob {d} missing in {prefix}/{repo}")
                    bad += 1
    return bad


def one(tool, scenario, argv, env, prefix, run_no):
    load = os.getloadavg()[0]
    so, do = SRC.log_offset(), DST.log_offset()
    sc, dc = SRC.cpu(), DST.cpu()
    r = measure(argv, env)
    time.sleep(0.5)  # the registries write an access line once the response is sent
    sc, dc = SRC.cpu() - sc, DST.cpu() - dc
    sreq, dreq = SRC.requests_since(so), DST.requests_since(do)
    rec = {
        "tool": tool, "scenario": scenario, "run": run_no, "prefix": prefix,
        "wall": round(r["wall"], 3), "cpu": round(r["cpu"], 3), "rss_mib": round(r["rss_mib"], 1),
        "rc": r["rc"], "src_requests": len(sreq), "dst_requests": len(dreq),
        "requests": len(sreq) + len(dreq),
        # bodies only: the access log gives a HEAD the Content-Length it did not send
        "src_bytes": sum(q[3] for q in sreq if q[0] == "GET"),
        "loadavg_1m_before": round(load, 2), "src_server_cpu": round(sc, 2), "dst_server_cpu": round(dc, 2),
        "src_kinds": {}, "dst_kinds": {},
    }
    for reqs, key in ((sreq, "src_kinds"), (dreq, "dst_kinds")):
        for q in reqs:
            k = kind(q[0], q[1])
            rec[key][k] = rec[key].get(k, 0) + 1
        rec[key] = dict(sorted(rec[key].items()))
    rec["status"] = {}
    for q in sreq + dreq:
        s = str(q[2])
        rec["status"][s] = rec["status"].get(s, 0) + 1
    if tool == "dth":
        lines = r["stdout"].strip().splitlines()
        try:
            rec["dth_json"] = json.loads(lines[-1]) if lines else None
        except ValueError:
            rec["dth_json"] = None
    if r["rc"] != 0:
        rec["stderr"] = r["stderr"][-2000:]
        log(f"{tool} {scenario} run {run_no} failed (exit {r['rc']}): {r['stderr'][-500:]}")
    if scenario == "cold":
        rec["verify_errors"] = verify(prefix)
    log(f"{tool:6} {scenario:5} run {run_no}: {rec['wall']:.2f} s wall, {rec['cpu']:.2f} s cpu, "
        f"{rec['src_requests']} + {rec['dst_requests']} requests, "
        f"{rec['src_bytes'] / MiB:.1f} MiB from src, exit {rec['rc']}")
    return rec


def run_tool(tool, run_no):
    # a fresh, empty destination for each cold copy
    DST.stop()
    DST.start(wipe=True)
    prefix = f"{tool}{run_no}"
    recs = []
    if tool == "dth":
        state = os.path.join(CFG["work"], f"state-{prefix}")
        shutil.rmtree(state, ignore_errors=True)
        os.makedirs(state)
        argv, env = dth_cmd(prefix, state)
    else:
        try:
            os.unlink(SKOPEO_CACHE)  # skopeo's blob locations from earlier runs
        except FileNotFoundError:
            pass
        argv, env = skopeo_cmd(prefix), skopeo_env()
    recs.append(one(tool, "cold", argv, env, prefix, run_no))
    recs.append(one(tool, "rerun", argv, env, prefix, run_no))
    return recs


# ---------------------------------------------------------------- report


def median(recs, metric):
    vals = [r[metric] for r in recs if r.get(metric) is not None]
    return statistics.median(vals) if vals else None


def fmt(v, metric):
    if v is None:
        return "–"
    if metric in ("wall", "cpu", "src_server_cpu", "dst_server_cpu"):
        return f"{v:.2f}"
    if metric == "src_bytes":
        return f"{v / MiB:.1f}"
    return f"{v:,.0f}"


def report(records, floor):
    metrics = [("wall", "wall s"), ("cpu", "CPU s (tool)"),
               ("src_server_cpu", "CPU s (src registry)"), ("dst_server_cpu", "CPU s (dst registry)"), ("src_requests", "src requests"),
               ("dst_requests", "dst requests"), ("requests", "requests"),
               ("src_bytes", "MiB from src")]
    lines = ["| scenario | metric | dth | skopeo | dth/skopeo | target |",
             "| --- | --- | --- | --- | --- | --- |"]
    verdicts = []
    for sc in ("cold", "rerun"):
        for m, label in metrics:
            d = median([r for r in records if r["tool"] == "dth" and r["scenario"] == sc], m)
            s = median([r for r in records if r["tool"] == "skopeo" and r["scenario"] == sc], m)
            ratio = f"{d / s:.2f}" if d is not None and s else "–"
            tgt = ""
            for tsc, tm, tk, lim in TARGETS:
                if tsc != sc or tm != m:
                    continue
                if tk == "ratio_max" and d is not None and s:
                    ok = d / s <= lim
                    tgt = f"≤ {lim} {'✅' if ok else '❌'}"
                    verdicts.append(ok)
                elif tk == "floor" and d is not None:
                    want = floor[m]
                    ok = d == want
                    tgt = f"= {want} (floor) {'✅' if ok else '❌'}"
                    verdicts.append(ok)
            lines.append(f"| {sc} | {label} | {fmt(d, m)} | {fmt(s, m)} | {ratio} | {tgt} |")
    return "\n".join(lines), verdicts


# ---------------------------------------------------------------- main


SRC = DST = None
IMAGES = []
REPOS = []
SRC_MANIFESTS = {}


def main():
    global SRC, DST, IMAGES, REPOS, SRC_MANIFESTS
    os.makedirs(CFG["work"], exist_ok=True)
    with open(os.path.join(CFG["work"], "htpasswd"), "w") as f:
        f.write(subprocess.run(["htpasswd", "-Bbn", USER, PASS], capture_output=True, text=True,
                               check=True).stdout)
    SRC = Registry("src", CFG["port_src"], auth=False)
    DST = Registry("dst", CFG["port_dst"], auth=True)
    records = []
    failed = False
    try:
        SRC.start(wipe=True)
        DST.start(wipe=True)
        IMAGES = build_workload()
        REPOS = sorted({r for r, _, _ in IMAGES})
        write_tool_configs()
        for repo, tag, _ in IMAGES:
            SRC_MANIFESTS[(repo, tag)] = registry_manifest(CFG["port_src"], repo, tag, False)
        uniq = set()
        total = 0
        for raw in SRC_MANIFESTS.values():
            doc = json.loads(raw)
            for b in [doc["config"]] + doc["layers"]:
                total += b["size"]
                uniq.add((b["digest"], b["size"]))
        workload = {"repos": len(REPOS), "tags": len(IMAGES),
                    "oci": sum(1 for i in IMAGES if i[2] == "oci"),
                    "v2s2": sum(1 for i in IMAGES if i[2] == "v2s2"),
                    "blob_bytes_per_tag_sum": total, "unique_blobs": len(uniq),
                    "unique_blob_bytes": sum(s for _, s in uniq)}
        log(f"workload: {workload}")
        # rerun floor: one tags list per repository (given without tags), one
        # manifest HEAD per tag at the source; nothing at the destination
        floor = {"src_requests": len(REPOS) + len(IMAGES), "dst_requests": 0}
        for i in range(CFG["runs"]):
            order = TOOLS if i % 2 == 0 else TOOLS[::-1]  # alternate which goes first
            for tool in order:
                if tool == "dth" and not CFG["dth"]:
                    continue
                records.extend(run_tool(tool, i + 1))
        table, verdicts = report(records, floor)
        for r in records:
            if r["rc"] != 0 or r.get("verify_errors"):
                failed = True
        result = {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "config": {k: v for k, v in CFG.items() if k not in ("out", "work")},
            "dth_version": subprocess.run([CFG["dth"], "--version"], capture_output=True,
                                          text=True).stdout.strip() if CFG["dth"] else None,
            "skopeo_version": subprocess.run(["skopeo", "--version"], capture_output=True,
                                             text=True).stdout.strip(),
            "workload": workload, "floor": floor, "runs": records, "table": table,
            "targets_met": all(verdicts) if verdicts else None,
        }
        os.makedirs(os.path.dirname(CFG["out"]), exist_ok=True)
        with open(CFG["out"], "w") as f:
            json.dump(result, f, indent=1)
        print(f"\n{workload['repos']} repos / {workload['tags']} tags "
              f"({workload['oci']} OCI, {workload['v2s2']} v2s2), {workload['unique_blobs']} "
              f"unique blobs, {workload['unique_blob_bytes'] / MiB:.1f} MiB; median of "
              f"{CFG['runs']} runs\n")
        print(table)
        print(f"\nraw: {CFG['out']}")
    finally:
        SRC.stop()
        DST.stop()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
