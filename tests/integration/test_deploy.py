"""The deployment examples of deploy/ (Kubernetes, systemd), checked without
a cluster (there is no kubectl or kube-apiserver here) and without systemd as
PID 1, but against the real dth and radosgw:
  - deploy/kubernetes/*.yaml parse (PyYAML), and the fields that matter hold
    together: an Indexed Job whose completions and parallelism are the N of
    `--shard auto/N`; a StatefulSet whose replicas are the N of its task's
    `shard = auto/N`, whose shard index is the pod ordinal, whose probes hit
    /healthz on the port dth listens on, and whose Services select its pods;
    credentials only in a Secret volume of mode 0400 (never in args or env);
    a state volume per pod at --state; non-root, read-only root file
    system, no capabilities; memory requests and limits above
    --memory-limit, itself at least concurrency x part size;
  - the init container's command (copying the config out of the Secret) run
    here, paths moved into the test dir: the copy must be mode 0400;
  - the Job's own dth command line run for each index I with
    JOB_COMPLETION_INDEX=I and --dry-run against radosgw: the N shards
    together plan every key exactly once;
  - the agent of the StatefulSet run with the config the init container makes
    and DTH_SHARD_INDEX=1: it answers /healthz, loads the task without error
    and its first run copies exactly the keys of shard 1;
  - deploy/systemd/dth-shard@.service and dth-shards.target pass
    `systemd-analyze verify` silently and the service rates OK on
    `systemd-analyze security`; its ExecStart, expanded as systemd does
    (%i, ${VAR}, $VAR) from a sample /etc/dth/shard.env, partitions the keys
    over the 4 instances the target starts.
Each structural check also runs on a broken variant that it must refuse."""

import copy
import os
import re
import shlex
import shutil
import signal
import stat
import subprocess

import lib

try:
    import yaml
except ImportError:  # Debian: python3-yaml
    yaml = None

DEPLOY = os.path.join(lib.REPO, "deploy")
K8S = os.path.join(DEPLOY, "kubernetes")
SYSTEMD = os.path.join(DEPLOY, "systemd")
SECRETISH = re.compile(r"SECRET|PASSWORD|TOKEN|ACCESS_KEY|CREDENTIAL", re.I)
SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
K8S_UNITS = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40, "": 1,
             "k": 10**3, "M": 10**6, "G": 10**9}


def _need_yaml():
    if yaml is None:
        lib.skip("PyYAML is missing (Debian: apt-get install python3-yaml)")


def _docs(name):
    _need_yaml()
    with open(os.path.join(K8S, name)) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def _one(docs, kind):
    found = [d for d in docs if d.get("kind") == kind]
    assert len(found) == 1, "%d objects of kind %s" % (len(found), kind)
    return found[0]


def _dth_size(text):
    m = re.fullmatch(r"(\d+)([KMGT]?)", str(text))
    assert m, "not a dth size: %r" % text
    return int(m.group(1)) * SIZE_UNITS[m.group(2)]


def _k8s_qty(text):
    m = re.fullmatch(r"(\d+)(Ki|Mi|Gi|Ti|k|M|G|)", str(text))
    assert m, "not a memory quantity: %r" % text
    return int(m.group(1)) * K8S_UNITS[m.group(2)]


def _opt(args, name, default=None):
    """The value after option name in an argument list (or default)."""
    for i, a in enumerate(args):
        if a == name and i + 1 < len(args):
            return args[i + 1]
    return default


def _shard_count(spec):
    m = re.fullmatch(r"auto/(\d+)", spec or "")
    assert m, "shard %r: the example must say auto/N" % spec
    return int(m.group(1))


# --------------------------------------------------------------------------
# checks shared by the Job and the StatefulSet (each returns the problems)


def _pod_problems(pod, cmd):
    """What is wrong with a pod template's security, credentials, volumes and
    resources, given the main container's command line cmd."""
    probs = []
    psc = pod.get("securityContext", {})
    if not psc.get("runAsNonRoot") or not psc.get("runAsUser"):
        probs.append("pod not runAsNonRoot with a runAsUser")
    if pod.get("automountServiceAccountToken") is not False:
        probs.append("service account token mounted")
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    secrets = [v for v in vols.values() if "secret" in v]
    if not secrets or any(v["secret"].get("defaultMode") != 0o400 for v in secrets):
        probs.append("no Secret volume, or one not mode 0400")
    for c in pod.get("initContainers", []) + pod.get("containers", []):
        sc = c.get("securityContext", {})
        if (sc.get("readOnlyRootFilesystem") is not True or sc.get("allowPrivilegeEscalation") is not False
                or sc.get("capabilities", {}).get("drop") != ["ALL"]):
            probs.append("%s: not read-only root, no escalation, no capabilities" % c["name"])
        for e in c.get("env", []):
            if SECRETISH.search(e["name"]) or "secretKeyRef" in e.get("valueFrom", {}):
                probs.append("%s: credential-like variable %s" % (c["name"], e["name"]))
        words = " ".join(c.get("command", []) + c.get("args", []))
        if re.search(r"secret_access_key|--secret|password=", words, re.I):
            probs.append("%s: a credential on the command line" % c["name"])
        res = c.get("resources", {})
        for k in ("requests", "limits"):
            if not {"cpu", "memory"} <= set(res.get(k, {})):
                probs.append("%s: no cpu and memory %s" % (c["name"], k))
    main = pod["containers"][0]
    mounts = {m["mountPath"]: m for m in main.get("volumeMounts", [])}
    # --config: in a memory volume the init container fills from the Secret
    conf = _opt(cmd, "--config")
    cdir = os.path.dirname(conf or "")
    cvol = vols.get(mounts.get(cdir, {}).get("name"), {})
    if cvol.get("emptyDir", {}).get("medium") != "Memory" or not mounts[cdir].get("readOnly"):
        probs.append("--config %s is not in a read-only memory volume" % conf)
    # --state: a volume of the pod's own, not the container's root
    st = _opt(cmd, "--state")
    if st not in mounts:
        probs.append("--state %s is not a volume" % st)
    # TMPDIR on a writable volume (the root file system is read-only)
    tmp = {e["name"]: e.get("value") for e in main.get("env", [])}.get("TMPDIR")
    if tmp not in mounts or mounts[tmp].get("readOnly"):
        probs.append("TMPDIR %s is not a writable volume" % tmp)
    return probs


def _memory_problems(container, concurrency, part, limit):
    """Memory asked for against what dth may hold."""
    probs = []
    if limit < concurrency * part:
        probs.append("memory_limit %d < concurrency %d x part size %d" % (limit, concurrency, part))
    res = container.get("resources", {})
    req = _k8s_qty(res.get("requests", {}).get("memory", "0"))
    lim = _k8s_qty(res.get("limits", {}).get("memory", "0"))
    if req < limit + 64 * lib.MiB or lim < req:
        probs.append("memory request %d / limit %d below memory_limit %d + 64Mi" % (req, lim, limit))
    return probs


def _job_problems(docs):
    job = _one(docs, "Job")
    spec = job["spec"]
    pod = spec["template"]["spec"]
    main = pod["containers"][0]
    cmd = main.get("command", []) + main.get("args", [])
    probs = []
    n = _shard_count(_opt(cmd, "--shard"))
    if spec.get("completionMode") != "Indexed":
        probs.append("completionMode is not Indexed")
    if spec.get("completions") != n or spec.get("parallelism") != n:
        probs.append("completions/parallelism %s/%s, --shard auto/%d" % (
            spec.get("completions"), spec.get("parallelism"), n))
    if pod.get("restartPolicy") not in ("OnFailure", "Never"):
        probs.append("restartPolicy %s" % pod.get("restartPolicy"))
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    smount = next((m for m in main["volumeMounts"] if m["mountPath"] == _opt(cmd, "--state")), {})
    if not ({"ephemeral", "persistentVolumeClaim"} & set(vols.get(smount.get("name"), {}))):
        probs.append("--state is not on a volume claim of the pod")
    probs += _pod_problems(pod, cmd)
    probs += _memory_problems(main, int(_opt(cmd, "--concurrency", "16")),
                              _dth_size(_opt(cmd, "--part-size", "8M")),
                              _dth_size(_opt(cmd, "--memory-limit", "512M")))
    return probs


def _task_keys(text):
    """{key: value} of the one [task] section of a task file."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if "=" in line and not line.startswith(("#", ";", "[")):
            k, v = line.split("=", 1)
            out[k.strip()] = v.strip()
    return out


def _agent_problems(docs):
    sts = _one(docs, "StatefulSet")
    cm = _one(docs, "ConfigMap")
    spec = sts["spec"]
    pod = spec["template"]["spec"]
    labels = spec["template"]["metadata"]["labels"]
    main = pod["containers"][0]
    cmd = main.get("command", []) + main.get("args", [])
    probs = []
    tasks = [_task_keys(t) for t in cm["data"].values()]
    ns = {_shard_count(t.get("shard")) for t in tasks}
    if ns != {spec.get("replicas")}:
        probs.append("replicas %s, tasks' shard counts %s" % (spec.get("replicas"), ns))
    env = {e["name"]: e for e in main.get("env", [])}
    ref = env.get("DTH_SHARD_INDEX", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
    if ref != "metadata.labels['apps.kubernetes.io/pod-index']":
        probs.append("DTH_SHARD_INDEX is not the pod ordinal: %s" % ref)
    port = int(_opt(cmd, "--listen", ":0").rsplit(":", 1)[1])
    cports = {p["name"]: p["containerPort"] for p in main.get("ports", [])}
    if cports.get("http") != port:
        probs.append("container port http %s, --listen port %d" % (cports.get("http"), port))
    for kind in ("livenessProbe", "readinessProbe"):
        g = main.get(kind, {}).get("httpGet", {})
        if g.get("path") != "/healthz" or cports.get(g.get("port"), g.get("port")) != port:
            probs.append("%s is not GET /healthz on port %d" % (kind, port))
    svcs = [d for d in docs if d.get("kind") == "Service"]
    for s in svcs:
        sel = s["spec"].get("selector", {})
        if not sel or any(labels.get(k) != v for k, v in sel.items()):
            probs.append("Service %s does not select the pods" % s["metadata"]["name"])
        if any(p.get("targetPort") not in ("http", port) for p in s["spec"]["ports"]):
            probs.append("Service %s does not target the API port" % s["metadata"]["name"])
    headless = [s["metadata"]["name"] for s in svcs if s["spec"].get("clusterIP") == "None"]
    if spec.get("serviceName") not in headless:
        probs.append("serviceName %s is not a headless Service" % spec.get("serviceName"))
    claims = {c["metadata"]["name"] for c in spec.get("volumeClaimTemplates", [])}
    smount = next((m for m in main["volumeMounts"] if m["mountPath"] == _opt(cmd, "--state")), {})
    if smount.get("name") not in claims:
        probs.append("--state is not on a volumeClaimTemplate (a PVC per pod)")
    probs += _pod_problems(pod, cmd)
    workers = int(_opt(cmd, "--workers", "32"))
    for t in tasks:
        probs += _memory_problems(main, min(workers, int(t.get("concurrency", 16))),
                                  _dth_size(t.get("part_size", "8M")),
                                  _dth_size(t.get("memory_limit", "512M")))
    return probs


def test_kubernetes_job_fields(ctx):
    docs = _docs("sync-job.yaml")
    probs = _job_problems(docs)
    assert not probs, "; ".join(probs)
    # broken variants must be caught
    bad = copy.deepcopy(docs)
    _one(bad, "Job")["spec"]["parallelism"] = 3
    assert any("completions/parallelism" in p for p in _job_problems(bad))
    bad = copy.deepcopy(docs)
    pod = _one(bad, "Job")["spec"]["template"]["spec"]
    pod["containers"][0]["env"].append({"name": "AWS_SECRET_ACCESS_KEY", "value": "x"})
    next(v for v in pod["volumes"] if "secret" in v)["secret"]["defaultMode"] = 0o644
    probs = _job_problems(bad)
    assert any("credential-like" in p for p in probs) and any("0400" in p for p in probs), probs
    bad = copy.deepcopy(docs)
    _one(bad, "Job")["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] = "128Mi"
    assert any("memory request" in p for p in _job_problems(bad))


def test_kubernetes_agent_fields(ctx):
    docs = _docs("agent-statefulset.yaml")
    probs = _agent_problems(docs)
    assert not probs, "; ".join(probs)
    bad = copy.deepcopy(docs)
    _one(bad, "StatefulSet")["spec"]["replicas"] = 4
    main = _one(bad, "StatefulSet")["spec"]["template"]["spec"]["containers"][0]
    main["readinessProbe"]["httpGet"]["path"] = "/metrics"
    main["securityContext"]["readOnlyRootFilesystem"] = False
    probs = _agent_problems(bad)
    for want in ("replicas 4", "readinessProbe", "read-only root"):
        assert any(want in p for p in probs), (want, probs)


# --------------------------------------------------------------------------
# running what the manifests run


def _run_init(ctx, pod, root, secret_text, configmap=None):
    """Run the pod's init container command with /run/dth moved to root:
    the Secret's dth.conf (and the ConfigMap's files) in, the config dir out."""
    init = pod["initContainers"][0]
    vols = {v["name"]: v for v in pod["volumes"]}
    for m in init["volumeMounts"]:
        d = root + m["mountPath"]
        os.makedirs(d, exist_ok=True)
        v = vols[m["name"]]
        if "secret" in v:
            p = os.path.join(d, "dth.conf")
            # as the kubelet makes it with fsGroup: group read added
            ctx.write_config(text=secret_text, path=p, mode=v["secret"]["defaultMode"] | 0o040)
        elif "configMap" in v:
            for k, text in (configmap or {}).items():
                with open(os.path.join(d, k), "w") as f:
                    f.write(text)
    cmd = [w.replace("/run/dth/", root + "/run/dth/") for w in init["command"]]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, "init container: rc %d: %s" % (p.returncode, p.stderr)
    return root + "/run/dth/config"


def _seed(ctx, n=240):
    """A source bucket on A with n keys of random-looking names (spread
    over the key alphabet, as hashed names are) and an empty bucket on B."""
    import base64
    import hashlib

    def name(i):  # 0-9, A-Z, a-z, - and _: spread over the printable bytes
        return base64.urlsafe_b64encode(hashlib.sha1(b"%d" % i).digest()).decode()[:12] + ".dat"
    keys = {name(i): lib.det_bytes(i, 64 + i % 200) for i in range(n)}
    src, dst = ctx.bucket("a", "deploy-src"), ctx.bucket("b", "deploy-dst")
    lib.put_objects(lib.s3("a"), src, keys)
    return src, dst, set(keys)


def _planned_keys(out):
    """Keys of the copy lines of a --dry-run's stdout (ACTION TAB KEY TAB SIZE)."""
    keys = []
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[0] != "skip":
            keys.append(parts[1])
    return keys


def _assert_partition(per_shard, all_keys):
    seen = {}
    for i, keys in enumerate(per_shard):
        for k in keys:
            assert k not in seen, "key %s in shards %d and %d" % (k, seen[k], i)
            seen[k] = i
    lib.assert_same_keys(seen, all_keys, "the shards' keys")
    empty = [i for i, k in enumerate(per_shard) if not k]
    assert not empty, "shards %s plan no key: %s" % (empty, [len(k) for k in per_shard])


def _make_plan(ctx, n, src, dst, path):
    ctx.run_dth(["sync", "--config", ctx.config, "--state", os.path.join(ctx.dir, "plan-state"),
                 "--task", "plan", "--make-shard-plan", str(n), "--shard-plan", path,
                 src, dst])
    return path


def test_kubernetes_job_dry_run(ctx):
    """The Job's dth command line, for each completion index, against radosgw."""
    job = _one(_docs("sync-job.yaml"), "Job")
    pod = job["spec"]["template"]["spec"]
    main = pod["containers"][0]
    cmd = main["command"] + main["args"]
    n = _shard_count(_opt(cmd, "--shard"))
    src, dst, keys = _seed(ctx)
    # the init container's copy of the Secret: mode 0400, the same text
    conf = os.path.join(_run_init(ctx, pod, os.path.join(ctx.dir, "pod"),
                                  ctx.default_remotes()), "dth.conf")
    st = os.stat(conf)
    assert stat.S_IMODE(st.st_mode) == 0o400, "config copy is mode %o" % stat.S_IMODE(st.st_mode)
    with open(conf) as f:
        assert f.read() == ctx.default_remotes()
    plan = _make_plan(ctx, n, "src:" + src, "dst:" + dst, os.path.join(ctx.dir, "shard.plan"))
    subst = {_opt(cmd, "--config"): conf, _opt(cmd, "--shard-plan"): plan,
             "src:source-bucket": "src:" + src, "dst:destination-bucket": "dst:" + dst}
    per_shard = []
    for i in range(n):
        subst[_opt(cmd, "--state")] = os.path.join(ctx.dir, "state-%d" % i)
        args = [subst.get(a, a) for a in cmd[1:] if a != "--json"]
        args.insert(1, "--dry-run")  # options before SRC DST
        _, out, _ = ctx.run_dth(args, env={"JOB_COMPLETION_INDEX": str(i)})
        per_shard.append(_planned_keys(out))
    _assert_partition(per_shard, keys)
    assert not lib.list_all(lib.s3("b"), dst), "a dry run wrote to the destination"
    ctx.check_no_secrets()


def _start_agent(ctx, cmd, conf, state, index):
    port = lib._free_port()
    subst = {_opt(cmd, "--config"): conf, _opt(cmd, "--state"): state,
             _opt(cmd, "--listen"): "127.0.0.1:%d" % port}
    args = [lib.dth_bin()] + [subst.get(a, a) for a in cmd[1:]]
    log = open(os.path.join(ctx.dir, "agent.log"), "wb")
    proc = subprocess.Popen(args, env=ctx.base_env({"DTH_SHARD_INDEX": str(index)}), stdout=log,
                            stderr=log, start_new_session=True)
    return proc, log, port


def test_kubernetes_agent_runs_its_shard(ctx):
    """The StatefulSet's agent, as pod ordinal 1: /healthz, the task, shard 1."""
    import requests
    docs = _docs("agent-statefulset.yaml")
    sts, cm = _one(docs, "StatefulSet"), _one(docs, "ConfigMap")
    pod = sts["spec"]["template"]["spec"]
    main = pod["containers"][0]
    cmd = main["command"] + main["args"]
    src, dst, keys = _seed(ctx)
    files = {k: v.replace("src:source-bucket", "src:" + src).replace(
        "dst:destination-bucket", "dst:" + dst) for k, v in cm["data"].items()}
    cdir = _run_init(ctx, pod, os.path.join(ctx.dir, "pod"), ctx.default_remotes(), files)
    for k in files:
        p = os.path.join(cdir, "tasks.d", k)
        assert stat.S_ISREG(os.lstat(p).st_mode), "%s is not a regular file" % p
    task = _task_keys(next(iter(files.values())))
    n = _shard_count(task["shard"])
    # what shard 1 of n must copy: dth sync's own dry run of --shard 1/n
    _, out, _ = ctx.run_dth(["sync", "--config", os.path.join(cdir, "dth.conf"), "--state",
                             os.path.join(ctx.dir, "dry"), "--task", "dry", "--shard", "1/%d" % n,
                             "--dry-run", task["source"], task["destination"]])
    want = set(_planned_keys(out))
    assert want and want < keys, "shard 1/%d plans %d of %d keys" % (n, len(want), len(keys))
    state = os.path.join(ctx.dir, "agent-state")
    proc, log, port = _start_agent(ctx, cmd, os.path.join(cdir, "dth.conf"), state, 1)
    url = "http://127.0.0.1:%d" % port
    try:
        def health():
            assert proc.poll() is None, "the agent exited %d" % proc.returncode
            try:
                return requests.get(url + "/healthz", timeout=2).status_code == 200
            except requests.RequestException:
                return False
        assert lib.wait_for(health, 20), "no answer on /healthz"
        with open(os.path.join(state, "agent.token")) as f:
            auth = {"Authorization": "Bearer " + f.read().strip()}
        name = re.search(r"\[task ([^\]]+)\]", next(iter(files.values()))).group(1)
        # a run now, not at the schedule's next turn (409: one is running)
        r = requests.post(url + "/api/v1/tasks/%s/actions/run" % name, headers=auth, timeout=10)
        assert r.status_code < 300 or r.status_code == 409, (r.status_code, r.text)

        def ran():
            t = requests.get(url + "/api/v1/tasks/" + name, headers=auth, timeout=10).json()
            assert t.get("state") != "error", "task %s: %s" % (name, t)
            lr = t.get("last_run")
            return t if lr and lr.get("ended") and t["state"] != "running" else None
        t = lib.wait_for(ran, 90, interval=0.5)
        assert t, "the task's first run did not end"
        got = set(lib.list_all(lib.s3("b"), dst))
        lib.assert_same_keys(got, want, "agent shard 1's copies")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(timeout=60)
            assert rc == 0, "the agent exited %d on SIGTERM" % rc
        log.close()
        lib._release_port(port)
        with open(os.path.join(ctx.dir, "agent.log"), "rb") as f:
            ctx._outputs.append(f.read().decode("utf-8", "replace"))
    ctx.check_no_secrets()


# --------------------------------------------------------------------------
# systemd


def _need_systemd():
    if not shutil.which("systemd-analyze"):
        lib.skip("systemd-analyze not found (Debian: apt-get install systemd)")


def _sd_run(cmd):
    env = dict(os.environ, LC_ALL="C", SYSTEMD_COLORS="0", SYSTEMD_PAGER="")
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, cwd="/")
    return p.returncode, (p.stdout + p.stderr).strip()


def _unit(ctx, name, edit=None):
    """deploy/systemd/NAME copied with /usr/bin/dth pointed at the build."""
    with open(os.path.join(SYSTEMD, name)) as f:
        text = f.read()
    text = text.replace("=/usr/bin/dth ", "=%s " % os.path.abspath(lib.dth_bin()))
    if edit:
        text = edit(text)
    d = os.path.join(ctx.dir, "units")
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def test_systemd_shard_units(ctx):
    _need_systemd()
    svc = _unit(ctx, "dth-shard@.service")
    tgt = _unit(ctx, "dth-shards.target")
    for path in (svc, tgt):
        rc, out = _sd_run(["systemd-analyze", "verify", "--man=no", path])
        assert rc == 0 and out == "", "verify %s: rc %d:\n%s" % (os.path.basename(path), rc, out)
    rc, out = _sd_run(["systemd-analyze", "verify", "--man=no",
                       _unit(ctx, "dth-shard@.service", lambda t: t.replace("ProtectHome=", "ProtectHom="))])
    assert rc != 0 or "ProtectHom" in out, "verify passed a typo"
    rc, out = _sd_run(["systemd-analyze", "security", "--offline=true", "--threshold=20",
                       "--no-pager", svc])
    m = re.search(r"Overall exposure level for [^:]*: ([0-9.]+) ([A-Z]+)", out)
    assert m and rc == 0 and float(m.group(1)) <= 2.0, "security: rc %d\n%s" % (rc, out[-2000:])


def _unit_value(text, key):
    vals = re.findall(r"^%s=(.*)$" % re.escape(key), text, re.M)
    assert len(vals) == 1, "%s= given %d times" % (key, len(vals))
    return vals[0]


def _expand(line, instance, env):
    """An Exec line as systemd expands it: %i, then ${VAR} (one word, kept
    whole) and $VAR (split on white space)."""
    words = []
    for w in shlex.split(line.replace("%i", instance).replace("%%", "%")):
        if re.fullmatch(r"\$[A-Za-z_][A-Za-z0-9_]*", w):
            words += env.get(w[1:], "").split()
        else:
            words.append(re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: env.get(m.group(1), ""), w))
    return words


def test_systemd_shards_partition(ctx):
    """dth-shard@I.service's ExecStart for I = 0..3 (the instances of
    dth-shards.target) plans every key once, run with --dry-run."""
    with open(os.path.join(SYSTEMD, "dth-shard@.service")) as f:
        unit = f.read()
    with open(os.path.join(SYSTEMD, "dth-shards.target")) as f:
        target = f.read()
    instances = re.findall(r"dth-shard@([0-9]+)\.service", _unit_value(target, "Wants"))
    assert instances == [str(i) for i in range(len(instances))], instances
    n = len(instances)
    assert _unit_value(unit, "StateDirectory") == "dth/shard-%i"
    src, dst, keys = _seed(ctx)
    plan = _make_plan(ctx, n, "src:" + src, "dst:" + dst, os.path.join(ctx.dir, "shard.plan"))
    env = {"SHARD_COUNT": str(n), "SOURCE": "src:" + src, "DESTINATION": "dst:" + dst,
           "TASK": "sharded", "OPTIONS": "--shard-plan %s --concurrency 8" % plan}
    per_shard = []
    for i in instances:
        args = _expand(_unit_value(unit, "ExecStart"), i, env)
        assert args[:2] == ["/usr/bin/dth", "sync"] and _opt(args, "--shard") == "%s/%d" % (i, n), args
        assert _opt(args, "--state") == "/var/lib/" + _unit_value(unit, "StateDirectory").replace("%i", i)
        subst = {"/etc/dth/dth.conf": ctx.config,
                 _opt(args, "--state"): os.path.join(ctx.dir, "shard-" + i)}
        _, out, _ = ctx.run_dth(["sync", "--dry-run"] + [subst.get(a, a) for a in args[2:]])
        per_shard.append(_planned_keys(out))
    _assert_partition(per_shard, keys)
    ctx.check_no_secrets()
