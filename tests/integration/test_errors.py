"""Exit statuses and messages: refused credentials and unreachable endpoints
(3), bad usage and bad config (2, nothing touched), and remotes given only
by environment variables."""

import json
import re
import shutil
import subprocess
import socket

import lib

WRONG_SECRET = lib.register_secret("WrongSecret-dth-7f3a9cQ")


def _seed(ctx, n=5, tag="err"):
    src = ctx.bucket("a", tag + "-src")
    md5 = lib.put_objects(lib.s3("a"), src, lib.small_objects("e/", n, tag))
    return src, md5


def _assert_empty(bucket, which="b"):
    got = lib.list_all(lib.s3(which), bucket)
    assert got == {}, "the destination was written to: %s" % sorted(got)[:5]


def _wrong_secret(ctx, side):
    src, _ = _seed(ctx, tag="wsec")
    dst = ctx.bucket("b", "wsec-dst")
    text = (lib.remote_section("src", "a", secret=WRONG_SECRET if side == "src" else None,
                               key="test" if side == "src" else None)
            + lib.remote_section("dst", "b", secret=WRONG_SECRET if side == "dst" else None,
                                 key="test" if side == "dst" else None))
    ctx.write_config(text)
    rc, out, err = ctx.sync("src:" + src, "dst:" + dst, check_exit=3, json_out=False)
    assert re.search(r"credential|signature", err, re.I), (
        "stderr does not mention the credentials or the signature: %r" % err[-500:])
    assert WRONG_SECRET not in out + err, "the secret was printed"
    _assert_empty(dst)


def test_wrong_secret_at_source(ctx):
    _wrong_secret(ctx, "src")


def test_wrong_secret_at_destination(ctx):
    _wrong_secret(ctx, "dst")


def _closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_unreachable_endpoint(ctx):
    dst = ctx.bucket("b", "unr-dst")
    port = _closed_port()
    ctx.write_config(lib.remote_section("src", "a", endpoint_url="http://127.0.0.1:%d" % port)
                     + lib.remote_section("dst", "b"))
    rc, out, err = ctx.sync("src:nosuchbucket", "dst:" + dst, check_exit=3, json_out=False, timeout=240)
    assert err.strip(), "no message on stderr"
    assert re.search(r"connect|reach|refused|127\.0\.0\.1:%d" % port, err, re.I), (
        "stderr does not say the endpoint cannot be reached: %r" % err[-500:])
    _assert_empty(dst)


def test_config_readable_by_others(ctx):
    src, _ = _seed(ctx, tag="perm")
    dst = ctx.bucket("b", "perm-dst")
    for mode in (0o644, 0o640, 0o604):
        ctx.write_config(mode=mode)
        rc, out, err = ctx.sync("src:" + src, "dst:" + dst, check_exit=2, json_out=False)
        assert ctx.config in err, "mode %o: stderr does not name the config file: %r" % (mode, err[-300:])
        assert "secret_access_key = test" not in out + err
    _assert_empty(dst)
    # The same file with mode 600 works.
    ctx.write_config(mode=0o600)
    res = ctx.sync("src:" + src, "dst:" + dst)
    assert res["transferred"] == 5 and res["failed"] == 0, res


BAD_CONFIGS = [
    ("unclosed section", "[remote src\nendpoint = http://127.0.0.1:1\n"),
    ("line without =", "[remote src]\ntype = s3\nendpoint http://127.0.0.1:1\n"),
    ("unknown key", "[remote src]\ntype = s3\nprovider = ceph\nendpiont = http://127.0.0.1:1\n"),
    ("bad boolean", "[remote src]\ntype = s3\nprovider = ceph\nendpoint = http://127.0.0.1:1\npath_style = maybe\n"),
    ("unknown provider", "[remote src]\ntype = s3\nprovider = nosuchcloud\nendpoint = http://127.0.0.1:1\n"),
]


def test_malformed_config(ctx):
    src, _ = _seed(ctx, tag="badcfg")
    dst = ctx.bucket("b", "badcfg-dst")
    for what, text in BAD_CONFIGS:
        ctx.write_config(text + "\n" + lib.remote_section("dst", "b"))
        try:
            rc, out, err = ctx.sync("src:" + src, "dst:" + dst, check_exit=2, json_out=False)
        except AssertionError as e:
            raise AssertionError("%s: %s" % (what, e))
        assert ctx.config in err, "%s: stderr does not name the config file: %r" % (what, err[-300:])
    _assert_empty(dst)


def test_missing_config_file(ctx):
    src, _ = _seed(ctx, tag="nocfg")
    dst = ctx.bucket("b", "nocfg-dst")
    missing = ctx.dir + "/does-not-exist.conf"
    rc, out, err = ctx.sync("src:" + src, "dst:" + dst, config=missing, check_exit=2, json_out=False)
    assert missing in err, "stderr does not name the missing file: %r" % err[-300:]
    _assert_empty(dst)


def test_usage_errors(ctx):
    src, _ = _seed(ctx, tag="usage")
    dst = ctx.bucket("b", "usage-dst")
    S, D = "src:" + src, "dst:" + dst
    cases = [
        ("one path", [S]),
        ("three paths", [S, D, D]),
        ("no colon", ["nocolon", D]),
        ("no bucket", [S, "dst:"]),
        ("unknown remote", ["nosuchremote:" + src, D]),
        ("unknown option", ["--no-such-option", S, D]),
        ("concurrency 0", ["--concurrency", "0", S, D]),
        ("concurrency abc", ["--concurrency", "abc", S, D]),
        ("bad size", ["--multipart-threshold", "12Q", S, D]),
        ("bad sse", ["--sse", "rot13", S, D]),
        ("kms key without kms", ["--sse-kms-key-id", "k", S, D]),
        ("bad glob", ["--include", "[z-a]", S, D]),
    ]
    for what, args in cases:
        cmd = ["sync", "--config", ctx.config, "--state", ctx.state] + args
        rc, out, err = ctx.run_dth(cmd, check_exit=None)
        assert rc == 2, "%s: exit %d, expected 2 (stderr %r)" % (what, rc, err[-300:])
        assert err.strip(), "%s: no message on stderr" % what
    _assert_empty(dst)
    rc, out, err = ctx.run_dth(["no-such-command"], check_exit=None)
    assert rc == 2, "unknown command: exit %d" % rc


def test_remotes_from_environment(ctx):
    src, md5 = _seed(ctx, 12, tag="env")
    dst = ctx.bucket("b", "env-dst")
    env = lib.remote_env("src", "a")
    env.update(lib.remote_env("dst", "b"))
    # No --config, and HOME (the test dir) holds no config file.
    res = ctx.sync("src:" + src, "dst:" + dst, config=False, env=env)
    assert res["transferred"] == 12 and res["failed"] == 0, res
    got = lib.list_all(lib.s3("b"), dst)
    lib.assert_same_keys(got, md5)
    assert all(got[k]["etag"] == md5[k] for k in md5)


def test_environment_overrides_config_file(ctx):
    src, md5 = _seed(ctx, 4, tag="envov")
    dst = ctx.bucket("b", "envov-dst")
    ctx.write_config(lib.remote_section("src", "a", key="test", secret=WRONG_SECRET)
                     + lib.remote_section("dst", "b"))
    ctx.sync("src:" + src, "dst:" + dst, check_exit=3, json_out=False)
    res = ctx.sync("src:" + src, "dst:" + dst, env={"DTH_REMOTE_SRC_SECRET_ACCESS_KEY": lib.RGW_SECRET})
    assert res["transferred"] == 4 and res["failed"] == 0, res
    lib.assert_same_keys(lib.list_all(lib.s3("b"), dst), md5)


def test_version(ctx):
    """dth version names the revision it was built from (git's own answer
    for this checkout) and the libraries' versions, as text and as JSON."""
    rc, out, _ = ctx.run_dth(["version", "--json"])
    doc = json.loads(out)
    libs = doc["libraries"]
    for name in ("libcurl", "openssl", "lmdb", "libfuse", "jansson", "expat",
                 "libmicrohttpd", "xxhash", "libsystemd"):
        assert re.match(r"\d+(\.\d+)*", libs[name]), (name, libs)
    head = subprocess.run(["git", "-C", lib.REPO, "rev-parse", "--short=12", "HEAD"],
                          capture_output=True, text=True) if shutil.which("git") else None
    if head and head.returncode == 0:
        assert doc["revision"].startswith(head.stdout.strip()), (doc["revision"], head.stdout)
    _, text, _ = ctx.run_dth(["version"])
    assert text.startswith("dth %s (revision %s)" % (doc["version"], doc["revision"])), text
    assert "libmicrohttpd" in text
    ctx.run_dth(["version", "--bogus"], check_exit=2)
