"""The systemd files of systemd/, checked offline with systemd's own tools
(no server, no systemd as PID 1 needed):
  - `systemd-analyze verify --man=no` of dth-agent.service and
    dth-mount@.service, with /usr/bin/dth pointed at the built binary, prints
    nothing (unknown keys are only warnings there, so any output fails);
  - `systemd-analyze security --offline=true --threshold=20` rates
    dth-agent.service OK or better (2.0 at most);
  - `systemd-sysusers --root=DIR` makes the dth system user and group, and
    `systemd-tmpfiles --root=DIR --create` /var/lib/dth 0750 dth:dth.
Each check also runs on a broken variant (a typo, the sandbox removed, a
wrong mode) and must fail there, so it can fail.
Skipped when the tools are absent (Debian: the systemd package)."""

import os
import re
import shutil
import subprocess

import lib

SYSTEMD_DIR = os.path.join(lib.REPO, "systemd")
GOOD_WORDS = ("PERFECT", "SAFE", "OK")


def _need(tool):
    if not shutil.which(tool):
        lib.skip("%s not found (Debian: apt-get install systemd)" % tool)


def _run(cmd, timeout=120):
    env = dict(os.environ, LC_ALL="C", SYSTEMD_COLORS="0", SYSTEMD_PAGER="")
    p = subprocess.run(cmd, env=env, capture_output=True, timeout=timeout, cwd="/")
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def _unit_copy(ctx, name, edit=None, sub="units"):
    """systemd/NAME copied into the test dir with /usr/bin/dth replaced by the
    built binary (verify wants every command to exist); edit(text) -> text."""
    exe = lib.dth_bin()
    assert os.access(exe, os.X_OK), "dth binary not found at %s (build it, or set DTH_BIN)" % exe
    with open(os.path.join(SYSTEMD_DIR, name)) as f:
        text = f.read()
    assert "=/usr/bin/dth " in text, "%s: no command /usr/bin/dth to point at the build" % name
    text = re.sub(r"=(-?)/usr/bin/dth ", lambda m: "=%s%s " % (m.group(1), exe), text)
    if edit:
        text = edit(text)
    d = os.path.join(ctx.dir, sub)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def _verify(path):
    rc, out, err = _run(["systemd-analyze", "verify", "--man=no", path])
    return rc, (out + err).strip()


def test_verify_units(ctx):
    _need("systemd-analyze")
    for name in ("dth-agent.service", "dth-mount@.service"):
        rc, out = _verify(_unit_copy(ctx, name))
        assert rc == 0 and out == "", "verify %s: rc %d:\n%s" % (name, rc, out)


def test_verify_fails_on_a_typo(ctx):
    _need("systemd-analyze")

    def typo(text):
        assert "\nProtectSystem=strict\n" in text
        return text.replace("\nProtectSystem=strict\n", "\nProtectSytem=strict\n")

    rc, out = _verify(_unit_copy(ctx, "dth-agent.service", typo))
    assert rc != 0 or out != "", "verify passed a unit with a typo"
    assert "ProtectSytem" in out, out


def _security(path):
    """(rc, word, score, output) of systemd-analyze security for path."""
    rc, out, err = _run(["systemd-analyze", "security", "--offline=true", "--threshold=20",
                         "--no-pager", path])
    m = None
    for line in out.splitlines():
        m = re.search(r"Overall exposure level for [^:]*: ([0-9.]+) ([A-Z]+)", line) or m
    if not m:
        return rc, None, None, out + err
    return rc, m.group(2), float(m.group(1)), out + err


def test_agent_security(ctx):
    _need("systemd-analyze")
    rc, word, score, out = _security(_unit_copy(ctx, "dth-agent.service"))
    assert word is not None, "no verdict line:\n%s" % out[-2000:]
    assert rc == 0 and word in GOOD_WORDS and score <= 2.0, \
        "dth-agent.service rated %s %s (rc %d):\n%s" % (score, word, rc, out[-3000:])


def test_security_fails_without_the_sandbox(ctx):
    _need("systemd-analyze")

    def strip(text):
        head, sep, rest = text.partition("\n# Sandbox\n")
        assert sep, "no '# Sandbox' block in dth-agent.service"
        return head + "\n" + rest[rest.index("\n[Install]"):]

    rc, word, score, out = _security(_unit_copy(ctx, "dth-agent.service", strip, "bare"))
    assert word is not None, "no verdict line:\n%s" % out[-2000:]
    assert rc != 0 and word not in GOOD_WORDS, \
        "the unit without its sandbox still passes: %s %s rc %d" % (score, word, rc)


def _make_root(ctx, tmpfiles_text=None):
    """A scratch root with the dth user and the state directory made by
    systemd-sysusers and systemd-tmpfiles from systemd/ (or from
    tmpfiles_text); returns the root."""
    if os.geteuid() != 0:
        lib.skip("systemd-sysusers/tmpfiles --root need root to chown")
    root = os.path.join(ctx.dir, "root%d" % len(os.listdir(ctx.dir)))
    os.makedirs(os.path.join(root, "etc"))
    sysusers = os.path.join(SYSTEMD_DIR, "dth.sysusers")
    tmpfiles = os.path.join(SYSTEMD_DIR, "dth.tmpfiles")
    if tmpfiles_text is not None:
        tmpfiles = os.path.join(ctx.dir, "variant.tmpfiles")
        with open(tmpfiles, "w") as f:
            f.write(tmpfiles_text)
    rc, out, err = _run(["systemd-sysusers", "--root=" + root, sysusers])
    assert rc == 0, "systemd-sysusers rc %d: %s%s" % (rc, out, err)
    rc, out, err = _run(["systemd-tmpfiles", "--root=" + root, "--create", tmpfiles])
    assert rc == 0, "systemd-tmpfiles rc %d: %s%s" % (rc, out, err)
    return root


def _problems(root):
    """What is wrong with the dth user, group and state dir under root."""
    probs = []
    with open(os.path.join(root, "etc/passwd")) as f:
        users = [ln.rstrip("\n").split(":") for ln in f if ln.startswith("dth:")]
    with open(os.path.join(root, "etc/group")) as f:
        groups = [ln.rstrip("\n").split(":") for ln in f if ln.startswith("dth:")]
    if len(users) != 1 or len(groups) != 1:
        return ["%d dth users, %d dth groups" % (len(users), len(groups))]
    _, _, uid, gid, _, home, shell = users[0]
    uid, gid = int(uid), int(gid)
    if not 0 < uid < 1000:
        probs.append("uid %d is not a system uid" % uid)
    if gid != int(groups[0][2]):
        probs.append("primary gid %d is not the dth group's %s" % (gid, groups[0][2]))
    if home != "/var/lib/dth":
        probs.append("home %s" % home)
    if not shell.endswith("/nologin"):
        probs.append("login shell %s" % shell)
    st = os.stat(os.path.join(root, "var/lib/dth"))
    if (st.st_mode & 0o7777, st.st_uid, st.st_gid) != (0o750, uid, gid):
        probs.append("/var/lib/dth is %o %d:%d, expected 750 %d:%d" % (
            st.st_mode & 0o7777, st.st_uid, st.st_gid, uid, gid))
    return probs


def test_sysusers_tmpfiles(ctx):
    _need("systemd-sysusers")
    _need("systemd-tmpfiles")
    root = _make_root(ctx)
    probs = _problems(root)
    assert not probs, "; ".join(probs)
    # The same checks on a state directory of the wrong mode must fail.
    with open(os.path.join(SYSTEMD_DIR, "dth.tmpfiles")) as f:
        text = f.read()
    assert " 0750 " in text
    probs = _problems(_make_root(ctx, text.replace(" 0750 ", " 0755 ")))
    assert any("/var/lib/dth is 755" in p for p in probs), probs
