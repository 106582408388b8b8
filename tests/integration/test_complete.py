"""The shell completions (completions/dth.bash, completions/_dth) over the
real dth and radosgw: completions/dth.bash is sourced in `bash -c`, with and
without bash-completion's helpers, COMP_LINE, COMP_POINT, COMP_WORDS and
COMP_CWORD set as readline sets them (split at ':'), and _dth called; the
candidates are checked for a subcommand, an option (from --help), a remote
name, a task name (from the manifest), a bucket (one ListBuckets) and a
prefix (one ListObjectsV2); the same completion again sends no request
(radosgw's req counter), the cache is private (0700, 0600) and holds no
secret, and a dead or unknown remote gives nothing, quietly and within the
time limit. zsh: a syntax check of completions/_dth (zsh -n)."""

import os
import re
import shlex
import shutil
import stat
import subprocess
import time

import lib

BASH_COMPLETION = "/usr/share/bash-completion/bash_completion"


def _readline_words(line):
    """COMP_WORDS as readline makes them: split at blanks, ':' a word of its own."""
    words = []
    for tok in line.split():
        words += [w for w in re.split(r"(:)", tok) if w != ""]
    if line.endswith(" ") or not words:
        words.append("")
    return words


def _complete(ctx, line, helpers):
    """COMPREPLY of _dth for the line (cursor at its end)."""
    words = _readline_words(line)
    script = ""
    if helpers:
        script += ". %s\n" % BASH_COMPLETION
    script += ". %s\n" % shlex.quote(os.path.join(lib.REPO, "completions/dth.bash"))
    script += "COMP_LINE=%s\nCOMP_POINT=%d\n" % (shlex.quote(line), len(line))
    script += "COMP_WORDS=(%s)\nCOMP_CWORD=%d\n" % (" ".join(shlex.quote(w) for w in words),
                                                   len(words) - 1)
    script += "COMPREPLY=()\n_dth\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n"
    p = subprocess.run(["bash", "-c", script], env=ctx.base_env(), capture_output=True, text=True,
                       timeout=30, cwd=ctx.dir)
    assert p.returncode == 0, (line, p.stderr)
    assert p.stderr == "", "completion wrote to stderr: %r" % p.stderr
    return [c for c in p.stdout.split("\n") if c]


def _modes():
    modes = [False]
    if os.path.exists(BASH_COMPLETION):
        modes.append(True)
    return modes


def test_complete_words(ctx):
    """Subcommands, options, remote and task names, bucket and prefix, cached."""
    if not lib.have_endpoint("a"):
        lib.skip("radosgw A not running")
    dth = lib.dth_bin()
    cfg = ctx.config
    src = ctx.bucket("a", "cmpl")
    s3 = lib.s3("a")
    for key in ("dir/one.txt", "dir/two.txt", "dia.txt", "other/x", "top.txt"):
        s3.put_object(Bucket=src, Key=key, Body=b"x")
    dst = ctx.bucket("b" if lib.have_endpoint("b") else "a", "cmpld")
    dst_remote = "dst" if lib.have_endpoint("b") else "src"
    ctx.sync("src:%s/dir/" % src, "%s:%s" % (dst_remote, dst), task="photos-cmpl")

    for helpers in _modes():
        # a subcommand, then a sub-subcommand
        got = _complete(ctx, "%s sy" % dth, helpers)
        assert got == ["sync"], (helpers, got)
        got = _complete(ctx, "%s task st" % dth, helpers)
        assert sorted(got) == ["start", "stop"], (helpers, got)
        # options, from the subcommand's --help
        got = _complete(ctx, "%s sync --dry" % dth, helpers)
        assert got == ["--dry-run"], (helpers, got)
        got = _complete(ctx, "%s mount --dir-" % dth, helpers)
        assert sorted(got) == ["--dir-cache-ttl", "--dir-mode"], (helpers, got)
        # remote names (no request)
        got = _complete(ctx, "%s sync --config %s sr" % (dth, cfg), helpers)
        assert got == ["src:"], (helpers, got)
        got = _complete(ctx, "%s config check --config %s --remote " % (dth, cfg), helpers)
        assert "src" in got, (helpers, got)
        # task names from the manifest
        got = _complete(ctx, "%s manifest stats --config %s --state %s pho" % (dth, cfg, ctx.state),
                        helpers)
        assert got == ["photos-cmpl"], (helpers, got)

    # the listings: the first completion sends one request, the next none.
    # readline keeps what precedes the last ':' when ':' breaks words (bash's
    # default COMP_WORDBREAKS), so the candidates come without "src:".
    for helpers in _modes():
        cache = os.path.join(ctx.dir, ".cache", "dth", "complete")
        shutil.rmtree(cache, ignore_errors=True)
        head = ""
        line = "%s sync --config %s src:%s" % (dth, cfg, src[:-1])
        before = lib.rgw_req("a")
        got = _complete(ctx, line, helpers)
        first = lib.rgw_req("a") - before
        assert got == [head + src + "/"], (helpers, got)
        assert first == 1, "ListBuckets: %d requests" % first
        before = lib.rgw_req("a")
        assert _complete(ctx, line, helpers) == got
        assert lib.rgw_req("a") - before == 0, "the second completion listed again"

        line = "%s sync --config %s src:%s/di" % (dth, cfg, src)
        before = lib.rgw_req("a")
        got = _complete(ctx, line, helpers)
        first = lib.rgw_req("a") - before
        want = [head + "%s/%s" % (src, k) for k in ("dia.txt", "dir/")]
        assert sorted(got) == want, (helpers, got)
        assert first == 1, "ListObjectsV2: %d requests" % first
        before = lib.rgw_req("a")
        assert sorted(_complete(ctx, line, helpers)) == want
        # another word in the same directory: from the same cached listing
        got = _complete(ctx, "%s sync --config %s src:%s/t" % (dth, cfg, src), helpers)
        assert got == [head + "%s/top.txt" % src], (helpers, got)
        assert lib.rgw_req("a") - before == 0, "the second completion listed again"
        got = _complete(ctx, "%s sync --config %s src:%s/dir/" % (dth, cfg, src), helpers)
        assert sorted(got) == [head + "%s/dir/%s" % (src, k) for k in ("one.txt", "two.txt")], got

        # the cache: private, no secret
        st = os.stat(cache)
        assert stat.S_IMODE(st.st_mode) == 0o700, oct(st.st_mode)
        names = os.listdir(cache)
        assert len(names) == 3, names
        for n in names:
            p = os.path.join(cache, n)
            assert stat.S_IMODE(os.stat(p).st_mode) == 0o600, (n, oct(os.stat(p).st_mode))
            with open(p, "rb") as f:
                data = f.read().decode("utf-8", "replace")
            for s in lib.secrets_in_use() + [lib.RGW_SECRET]:
                assert s not in data, "a secret in the completion cache"

    # the binary's own answers, one per line
    _, out, err = ctx.run_dth(["__complete", "path", "src:%s/dir/t" % src, "--config", cfg])
    assert out == "src:%s/dir/two.txt\n" % src and err == "", (out, err)
    ctx.check_no_secrets()


def test_complete_quiet(ctx):
    """A dead remote, an unknown one, a broken config: no candidate, no
    message, no wait beyond the limit."""
    dead = lib.remote_section("dead", "a", endpoint_url="http://10.255.255.1:9")
    ctx.write_config(extra=dead)
    dth = lib.dth_bin()
    for helpers in _modes():
        t0 = time.monotonic()
        got = _complete(ctx, "%s sync --config %s dead:buck/" % (dth, ctx.config), helpers)
        took = time.monotonic() - t0
        assert got == [], got
        assert took < 5, "a dead remote took %.1f s" % took
        assert _complete(ctx, "%s sync --config %s nosuch:b/" % (dth, ctx.config), helpers) == []
        assert _complete(ctx, "%s sync --config /nonexistent s" % dth, helpers) == []
    rc, out, err = ctx.run_dth(["__complete", "path", "dead:", "--config", ctx.config])
    assert out == "" and err == "", (out, err)
    ctx.run_dth(["__complete", "nonsense"], check_exit=2)
    ctx.check_no_secrets()


def test_complete_zsh(ctx):
    zsh = shutil.which("zsh")
    if not zsh:
        lib.skip("zsh not installed")
    p = subprocess.run([zsh, "-n", os.path.join(lib.REPO, "completions/_dth")],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    # _dth itself, with compadd stubbed (it prints what it is given; zsh's
    # own compadd would then filter by the typed prefix)
    dth = lib.dth_bin()
    ctx.write_config(extra="[task zsh-task]\nsource = src:b\ndestination = src:c\n")
    stub = ("compadd() { local -a a; a=(\"$@\"); (( ${a[(I)--]} )) && a=(${a[${a[(I)--]}+1,-1]});"
            " print -rl -- $a; }\n_files() { print -r -- FILES; }\n"
            "source %s >/dev/null 2>&1\n" % shlex.quote(os.path.join(lib.REPO, "completions/_dth")))
    cases = [("%s sy" % dth, "sync"), ("%s sync --dry" % dth, "--dry-run"),
             ("%s sync --config %s s" % (dth, ctx.config), "src:"),
             ("%s task show --config %s z" % (dth, ctx.config), "zsh-task"),
             ("%s sync --state " % dth, "FILES")]
    for line, want in cases:
        words = line.split() + ([""] if line.endswith(" ") else [])
        script = stub + "words=(%s)\nCURRENT=%d\n_dth\n" % (
            " ".join(shlex.quote(w) for w in words), len(words))
        p = subprocess.run([zsh, "-f", "-c", script], env=ctx.base_env(), capture_output=True,
                           text=True, timeout=30)
        assert want in p.stdout.split("\n"), (line, p.stdout, p.stderr)
