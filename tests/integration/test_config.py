"""dth config check against the real servers: every problem of a broken
config named with its file and line (exit 2, no request sent); then each
remote probed: radosgw with good credentials (ok: radosgw's log shows the one
signed HeadBucket, answered 404), with a wrong secret (refused, exit 3), a
port nobody listens on (unreachable), docker-registry with Basic auth (ok)
and with a wrong password (refused), the bearer-token registry; no secret in
the output."""

import json

import lib


def _check(ctx, *args, check_exit=0):
    rc, out, err = ctx.run_dth(["config", "check", "--config", ctx.config] + list(args),
                               check_exit=check_exit)
    return out, err


def test_config_problems(ctx):
    secret = lib.register_secret("NeverPrinted-7c2e91")
    lines = [
        "[remote a]", "type = s3", "endpont = http://127.0.0.1:1", "access_key_id = k",
        "secret_access_key = " + secret, "retries = lots", "",
        "[remote b]", "type = s3", "provider = nosuch", "endpoint = http://127.0.0.1:1", "",
        "[wrong section]", "x = 1", "",
        "[task t1]", "source = a:bucket", "destination = nowhere", "",
        "[agent]", "workers = many",
    ]
    ctx.write_config("\n".join(lines) + "\n", mode=0o644)
    off = lib.rgw_log_size("a")
    out, _ = _check(ctx, check_exit=2)
    f = ctx.config
    for want in ("%s:3: unknown key 'endpont'" % f, "%s:6: bad retries 'lots'" % f,
                 "%s:10: unknown provider 'nosuch'" % f, "%s:13: unknown section" % f,
                 "readable by others (mode 0644)", "%s:16: task t1: destination" % f,
                 "%s:21: bad value for workers in [agent]" % f):
        assert want in out, (want, out)
    assert secret not in out
    out, _ = _check(ctx, "--json", check_exit=2)
    doc = json.loads(out)
    assert len(doc["problems"]) == 7 and doc["remotes"] == [] and doc["exit"] == 2, doc
    assert lib.rgw_log_requests("a", off, want=1, timeout=1) == []


def test_config_remotes(ctx):
    bad = lib.remote_section("badsecret", "a", key=lib.RGW_KEY,
                             secret=lib.register_secret("NotTheSecret-4b1d"))
    dead = lib.remote_section("dead", "a", endpoint_url="http://127.0.0.1:%d" % lib._free_port())
    regs = (lib.registry_section("rok", "dst", lib.REG_USER, lib.REG_PASS)
            + lib.registry_section("rbad", "dst", lib.REG_USER,
                                   lib.register_secret("wrong-password-9c")))
    ctx.write_config(extra=bad + dead + regs)
    off = lib.rgw_log_size("a")
    out, _ = _check(ctx, "--json", check_exit=3)
    doc = json.loads(out)
    got = {r["name"]: r for r in doc["remotes"]}
    assert got["src"]["outcome"] == "ok" and got["src"]["call"] == "HeadBucket", got["src"]
    assert got["dst"]["outcome"] == "ok", got["dst"]
    assert got["badsecret"]["outcome"] == "refused", got["badsecret"]
    assert got["dead"]["outcome"] == "unreachable", got["dead"]
    assert got["rok"]["outcome"] == "ok" and got["rok"]["call"] == "GET /v2/", got["rok"]
    assert got["rbad"]["outcome"] == "refused", got["rbad"]
    # radosgw saw one HeadBucket per probe of an s3 remote on it: 404 for the
    # good credentials, 403 for the wrong secret
    heads = [(m, s) for m, p, s, _ in lib.rgw_log_requests("a", off, want=2)
             if p.strip("/").startswith("dth-config-check-")]
    assert sorted(heads) == [("HEAD", 403), ("HEAD", 404)], heads
    # one remote only, as text
    out, _ = _check(ctx, "--remote", "src")
    assert "remote src (s3, %s): ok (HeadBucket" % lib.endpoint("a") in out, out
    assert "badsecret" not in out
    out, _ = _check(ctx, "--remote", "rbad", check_exit=3)
    assert "refused" in out, out
    _check(ctx, "--remote", "nosuch", check_exit=2)
    out, _ = _check(ctx, "--offline")
    assert "remote " not in out, out
