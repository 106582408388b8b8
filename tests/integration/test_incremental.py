"""Incremental behaviour: changed objects, --delete, --dry-run, filters."""

import lib


def _seed(ctx, n, tag, prefix="obj/"):
    c = lib.s3("a")
    src = ctx.bucket("a", tag + "-src")
    objs = lib.small_objects(prefix, n, tag)
    md5 = lib.put_objects(c, src, objs)
    return src, md5


def test_changing_three_copies_three(ctx):
    src, md5 = _seed(ctx, 50, "chg")
    dst = ctx.bucket("b", "chg-dst")
    res = ctx.sync("src:" + src, "dst:" + dst)
    assert res["transferred"] == 50 and res["failed"] == 0, res

    c = lib.s3("a")
    old3 = lib.get_bytes(c, src, "obj/00003")
    changes = {
        "obj/00003": bytes(b ^ 0x5A for b in old3) or b"x",  # same size, new bytes
        "obj/00010": b"a different size entirely",
        "obj/00020": b"",
    }
    md5.update(lib.put_objects(c, src, changes))
    res = ctx.sync("src:" + src, "dst:" + dst)
    assert res["transferred"] == 3, "changed 3 objects, dth copied %s" % res["transferred"]
    assert res["failed"] == 0, res
    got = lib.list_all(lib.s3("b"), dst)
    lib.assert_same_keys(got, md5)
    bad = [k for k in md5 if got[k]["etag"] != md5[k]]
    assert not bad, "destination differs from source for %s" % bad

    res = ctx.sync("src:" + src, "dst:" + dst)
    assert res["transferred"] == 0, "third run copied %s" % res["transferred"]


def test_delete_propagation(ctx):
    src, md5 = _seed(ctx, 20, "del")
    dst = ctx.bucket("b", "del-dst")
    res = ctx.sync("src:" + src, "dst:" + dst)
    assert res["transferred"] == 20, res
    gone = ["obj/00002", "obj/00005", "obj/00011", "obj/00019"]
    c = lib.s3("a")
    for k in gone:
        c.delete_object(Bucket=src, Key=k)
    dc = lib.s3("b")

    res = ctx.sync("src:" + src, "dst:" + dst)
    assert res["deleted"] == 0, "deleted %s without --delete" % res["deleted"]
    lib.assert_same_keys(lib.list_all(dc, dst), md5, "destination (without --delete)")

    res = ctx.sync("src:" + src, "dst:" + dst, "--delete")
    assert res["deleted"] == len(gone), "--delete deleted %s, expected %d" % (res["deleted"], len(gone))
    assert res["failed"] == 0, res
    want = {k: v for k, v in md5.items() if k not in gone}
    got = lib.list_all(dc, dst)
    lib.assert_same_keys(got, want, "destination (after --delete)")
    bad = [k for k in want if got[k]["etag"] != want[k]]
    assert not bad, "objects changed by --delete: %s" % bad

    res = ctx.sync("src:" + src, "dst:" + dst, "--delete")
    assert res["deleted"] == 0 and res["transferred"] == 0, res


def test_dry_run_copies_nothing(ctx):
    src, md5 = _seed(ctx, 30, "dry")
    dst = ctx.bucket("b", "dry-dst")
    res = ctx.sync("src:" + src, "dst:" + dst, "--dry-run")
    dc = lib.s3("b")
    assert lib.list_all(dc, dst) == {}, "--dry-run wrote to the destination"
    rq = res["requests"]
    assert rq["put"] == 0 and rq["copy"] == 0 and rq["multipart"] == 0 and rq["get"] == 0, rq
    # Without --json it prints the plan: every key it would copy.
    rc, out, err = ctx.sync("src:" + src, "dst:" + dst, "--dry-run", json_out=False)
    missing = [k for k in md5 if k not in out]
    assert not missing, "dry run output does not name %s" % missing[:5]
    assert lib.list_all(dc, dst) == {}, "--dry-run wrote to the destination"
    # The dry runs recorded nothing as done: a real run copies everything.
    res = ctx.sync("src:" + src, "dst:" + dst)
    assert res["transferred"] == 30 and res["failed"] == 0, res
    got = lib.list_all(dc, dst)
    lib.assert_same_keys(got, md5)


FILTER_KEYS = ["data/x.csv", "data/y.csv", "data/notes.txt", "data/tmp/z.csv", "other/w.csv",
               "top.txt", "logs/app.log"]
# Semantics of agent/filter.h: '*' stops at '/', '**' does not; an unanchored
# pattern also matches any suffix after a '/'; 'dir/' matches everything
# under a directory called dir; the first matching rule decides; with any
# --include, keys no rule matches are left out.
FILTER_CASES = [
    (["--include", "*.csv"], ["data/x.csv", "data/y.csv", "data/tmp/z.csv", "other/w.csv"]),
    (["--exclude", "tmp/", "--include", "*.csv"], ["data/x.csv", "data/y.csv", "other/w.csv"]),
    (["--exclude", "*.txt"], ["data/x.csv", "data/y.csv", "data/tmp/z.csv", "other/w.csv", "logs/app.log"]),
    (["--include", "/data/*.csv", "--include", "logs/**"], ["data/x.csv", "data/y.csv", "logs/app.log"]),
]


def test_include_exclude(ctx):
    c = lib.s3("a")
    src = ctx.bucket("a", "filt-src")
    lib.put_objects(c, src, {k: k.encode() for k in FILTER_KEYS})
    dc = lib.s3("b")
    for i, (opts, want) in enumerate(FILTER_CASES):
        dst = ctx.bucket("b", "filt-dst%d" % i)
        res = ctx.sync("src:" + src, "dst:" + dst, *opts, task="filt%d" % i)
        got = lib.list_all(dc, dst)
        assert sorted(got) == sorted(want), "%s: copied %s, expected %s" % (" ".join(opts), sorted(got), sorted(want))
        assert res["transferred"] == len(want) and res["failed"] == 0, (opts, res)
