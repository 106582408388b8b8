"""Brakes against losing data: --max-delete, the empty-source guard, deletes
sent only after the listing completed, names and specs that do not fit.

Deletes are counted at radosgw (its access log), and the destination is
listed with boto3: neither relies on what dth says about itself."""

import os

import lib


def _seed(ctx, n, tag):
    c = lib.s3("a")
    src = ctx.bucket("a", tag + "-src")
    md5 = lib.put_objects(c, src, lib.small_objects("obj/", n, tag))
    return src, md5


def _mirror(ctx, n, tag):
    """A source of n objects mirrored into a new destination bucket."""
    src, md5 = _seed(ctx, n, tag)
    dst = ctx.bucket("b", tag + "-dst")
    res = ctx.sync("src:" + src, "dst:" + dst)
    assert res["transferred"] == n and res["failed"] == 0, res
    return src, dst, md5


def _deletes_at(dst, offset):
    """DELETE requests radosgw B logged for bucket dst after offset."""
    return [r for r in lib.rgw_requests_since("b", offset) if r.startswith("DELETE /%s/" % dst)]


def _drop(src, keys):
    c = lib.s3("a")
    for k in keys:
        c.delete_object(Bucket=src, Key=k)


def test_max_delete_count_refuses_all(ctx):
    src, dst, md5 = _mirror(ctx, 20, "maxn")
    _drop(src, ["obj/%05d" % i for i in range(5)])
    off = lib.rgw_log_size("b")
    rc, out, err = ctx.sync("src:" + src, "dst:" + dst, "--delete", "--max-delete", "4",
                            check_exit=1, parse=False)
    assert "refusing to delete 5 objects" in err and "--max-delete 4" in err, err
    res = lib.parse_sync_json(out)
    assert res["deleted"] == 0, res
    assert not _deletes_at(dst, off), "deletes reached radosgw: %s" % _deletes_at(dst, off)
    lib.assert_same_keys(lib.list_all(lib.s3("b"), dst), md5, "destination after the refusal")

    # At the limit, every delete goes (and the log shows them: the check above
    # can fail).
    off = lib.rgw_log_size("b")
    res = ctx.sync("src:" + src, "dst:" + dst, "--delete", "--max-delete", "5")
    assert res["deleted"] == 5 and res["failed"] == 0, res
    assert len(lib.list_all(lib.s3("b"), dst)) == 15
    assert len(_deletes_at(dst, off)) == 5, _deletes_at(dst, off)


def test_max_delete_percent(ctx):
    src, dst, md5 = _mirror(ctx, 20, "maxp")
    _drop(src, ["obj/%05d" % i for i in range(11)])  # 55 % of the destination
    off = lib.rgw_log_size("b")
    rc, out, err = ctx.sync("src:" + src, "dst:" + dst, "--delete", "--max-delete", "50%",
                            check_exit=1, parse=False)
    assert "refusing to delete 11 of the 20 objects" in err, err
    assert not _deletes_at(dst, off)
    lib.assert_same_keys(lib.list_all(lib.s3("b"), dst), md5)
    res = ctx.sync("src:" + src, "dst:" + dst, "--delete", "--max-delete", "60%")
    assert res["deleted"] == 11, res
    assert len(lib.list_all(lib.s3("b"), dst)) == 9


def test_empty_source_deletes_nothing(ctx):
    """A mistyped source prefix lists nothing: a new task with --delete must
    not empty the destination."""
    src, dst, md5 = _mirror(ctx, 12, "empty")
    off = lib.rgw_log_size("b")
    rc, out, err = ctx.sync("src:%s/no-such-prefix/" % src, "dst:" + dst, "--delete",
                            task="typo", check_exit=1, parse=False)
    assert "the source lists no objects" in err and "12 would be deleted" in err, err
    assert not _deletes_at(dst, off), _deletes_at(dst, off)
    lib.assert_same_keys(lib.list_all(lib.s3("b"), dst), md5)

    # The same through the manifest: everything removed at the source.
    _drop(src, list(md5))
    rc, out, err = ctx.sync("src:" + src, "dst:" + dst, "--delete", check_exit=1, parse=False)
    assert "the source lists no objects" in err, err
    assert len(lib.list_all(lib.s3("b"), dst)) == 12
    # Asked for explicitly, it goes.
    res = ctx.sync("src:" + src, "dst:" + dst, "--delete", "--max-delete", "100%")
    assert res["deleted"] == 12, res
    assert lib.list_all(lib.s3("b"), dst) == {}


def test_max_delete_usage(ctx):
    for bad in ("x", "101%", "-1", "%", "5%%"):
        rc, out, err = ctx.sync("src:a", "dst:b", "--delete", "--max-delete", bad,
                                check_exit=2, parse=False)
        assert "--max-delete" in err, (bad, err)
    rc, out, err = ctx.sync("src:a", "dst:b", "--max-delete", "3", check_exit=2, parse=False)
    assert "--max-delete needs --delete" in err, err


def test_dry_run_reports_refusal(ctx):
    src, dst, md5 = _mirror(ctx, 10, "drymax")
    _drop(src, ["obj/%05d" % i for i in range(3)])
    rc, out, err = ctx.sync("src:" + src, "dst:" + dst, "--delete", "--dry-run",
                            "--max-delete", "2", check_exit=1, parse=False)
    assert "refusing to delete 3 objects" in err, err
    assert len(lib.list_all(lib.s3("b"), dst)) == 10


def test_long_task_name_refused_up_front(ctx):
    src, md5 = _seed(ctx, 3, "longname")
    dst = ctx.bucket("b", "longname-dst")
    prefix = "p" * 240
    # The default name, SRC--DST, is over 255 bytes: refused before anything
    # is touched (it used to be cut when stored and then never found again).
    rc, out, err = ctx.run_dth(["sync", "--config", ctx.config, "--state", ctx.state,
                                "src:%s/%s/" % (src, prefix), "dst:" + dst], check_exit=2)
    assert "task name" in err and "--task" in err, err
    assert lib.list_all(lib.s3("b"), dst) == {}
    rc, out, err = ctx.sync("src:" + src, "dst:" + dst, task="n" * 256, check_exit=2,
                            parse=False)
    assert "task name is 256 bytes" in err, err
    # A name that fits works, twice (found again on the second run).
    for want in (3, 0):
        res = ctx.sync("src:" + src, "dst:" + dst, task="n" * 255)
        assert res["transferred"] == want and res["failed"] == 0, res
    # A spec too long for the manifest's record.
    rc, out, err = ctx.sync("src:%s/%s/" % (src, "q" * 1100), "dst:" + dst, task="spec",
                            check_exit=2, parse=False)
    assert "cannot be recorded" in err, err


def test_secret_scan_can_fail(ctx):
    """The search for secrets that every test ends with (lib.check_no_secrets)
    finds one written where dth writes: this test would fail without it."""
    secrets = lib.secrets_in_use()
    if not secrets:
        lib.skip("the servers use default secrets (start them with tests/run-all.sh)")
    leak = os.path.join(ctx.dir, "state", "leak.log")
    os.makedirs(os.path.dirname(leak), exist_ok=True)
    with open(leak, "w") as f:
        f.write("error: signature of %s\n" % secrets[0])
    try:
        ctx.check_no_secrets()
        raise AssertionError("check_no_secrets did not find the planted secret")
    except lib.DthError as e:
        assert "leak.log" in str(e), e
    os.unlink(leak)
    ctx._outputs.append("x" + secrets[-1] + "x")
    try:
        ctx.check_no_secrets()
        raise AssertionError("check_no_secrets did not find a secret in an output")
    except lib.DthError:
        pass
    ctx._outputs.pop()
