"""dth mount: a real FUSE mount of radosgw buckets, checked with ordinary
tools (diff -r, find, stat, xattrs, pread) against what boto3 put there, and
requests counted at the server. Skips when /dev/fuse or fusermount3 is
missing. Every test unmounts in a finally block and checks that no dth
process for its mountpoint is left."""

import errno
import os
import random
import re
import shutil
import signal
import socket
import stat
import subprocess
import time

import lib
from lib import MiB

GiB = 1024 * MiB

# keys that cannot be file names: a component "", "." or ".." (skipped)
UNNAMEABLE = ["a/./x", "a//b", "a/../y", "../top", "./dot", "/lead", "p//"]


def expected_tree(keys):
    """(files {relpath: key}, dirs {relpath}) a mount of these keys shows."""
    files, dirs = {}, set()

    def bad(parts):
        return any(p in ("", ".", "..") for p in parts)

    for k in keys:
        marker = k.endswith("/")
        parts = (k[:-1] if marker else k).split("/")
        if bad(parts):
            continue
        n = len(parts) if marker else len(parts) - 1
        for i in range(1, n + 1):
            dirs.add("/".join(parts[:i]))
        if not marker:
            files["/".join(parts)] = k
    for d in dirs:  # a key that is both a file and a prefix shows as a directory
        files.pop(d, None)
    return files, dirs


def _run(args, timeout=300, **kw):
    return subprocess.run(args, capture_output=True, timeout=timeout, **kw)


def _errno_name(e):
    return errno.errorcode.get(e, str(e))


# --------------------------------------------------------------------------
# shared data (read-only for the tests)


@lib.module_fixture
def tree():
    """Bucket on A: nested prefixes, unicode and odd names, empty objects,
    folder markers, a file shadowed by a prefix, unnameable keys, objects with
    a content type and user metadata, and a 200 MiB multipart object; plus a
    local directory holding what the mount must show."""
    c = lib.s3("a")
    b = lib.create_bucket("a", "mnt-tree")
    objs = {}
    for i in range(4):
        objs["a/b/c/d/deep-%d.txt" % i] = lib.det_bytes("mt-deep-%d" % i, 100 + 1500 * i)
    objs.update(lib.small_objects("a/b/f", 25, "mt-ab"))  # f00000 is empty
    objs.update(lib.small_objects("top-", 8, "mt-top"))
    objs["a/ok.txt"] = b"ok"
    objs["empty.bin"] = b""
    objs["uni/\u00fcn\u00efc\u00f8d\u00e9-\u540d\u524d-\U0001f389.txt"] = "\u00fcn\u00efc\u00f8d\u00e9".encode()
    objs["uni/\u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac/\u0444\u0430\u0439\u043b.txt"] = b"greek dir"
    objs["odd/space name+plus%25#hash?q=1&x=;.txt"] = b"odd name"
    objs["odd/trailing space "] = b"trailing space"
    objs["dir/"] = b""  # a folder marker: an empty directory
    objs["p/q/"] = b""  # a marker of a directory that has contents too
    objs["p/q/r.txt"] = b"r"
    objs["both"] = b"a file shadowed by the prefix both/"
    objs["both/inner.txt"] = b"inner"
    for k in UNNAMEABLE:
        objs[k] = b"unnameable " + k.encode()
    objs["meta/doc.json"] = (b'{"a": 1}\n', {"ContentType": "application/json",
                                             "Metadata": {"color": "blue", "build-id": "42"}})
    objs["meta/plain.txt"] = (b"plain\n", {"ContentType": "text/plain; charset=utf-8"})
    lib.put_objects(c, b, objs)
    big = lib.GeneratedObject("mt-200m", 200 * MiB + 4321, 8 * MiB)
    big_key = "big/two-hundred.bin"
    big_etag = big.put(c, b, big_key)

    listing = {}
    kw = {"Bucket": b}
    while True:
        r = c.list_objects_v2(**kw)
        for o in r.get("Contents", []):
            listing[o["Key"]] = o
        if not r.get("IsTruncated"):
            break
        kw["ContinuationToken"] = r["NextContinuationToken"]
    assert len(listing) == len(objs) + 1, "seeded %d keys, listed %d" % (len(objs) + 1, len(listing))

    files, dirs = expected_tree(listing)
    fctx = lib.fixture_context("test_mount.tree")
    local = os.path.join(fctx.dir, "local")
    os.makedirs(local)
    for d in sorted(dirs):
        os.makedirs(os.path.join(local, d), exist_ok=True)
    for rel, key in files.items():
        if key == big_key:
            big.write_to(os.path.join(local, rel))
            continue
        v = objs[key]
        with open(os.path.join(local, rel), "wb") as f:
            f.write(v[0] if isinstance(v, tuple) else v)
    return {"bucket": b, "local": local, "files": files, "dirs": dirs, "listing": listing,
            "big_key": big_key, "big_etag": big_etag, "big": big}


@lib.module_fixture
def gib():
    """One 1 GiB (+777 bytes) object in 8 MiB parts, generated part by part."""
    c = lib.s3("a")
    b = lib.create_bucket("a", "mnt-gib")
    g = lib.GeneratedObject("mt-gib", GiB + 777, 8 * MiB)
    etag = g.put(c, b, "huge/one-gib.bin", workers=4)
    return {"bucket": b, "key": "huge/one-gib.bin", "gen": g, "etag": etag}


TASK20K = "mnt20k"
N20K = 20000


@lib.module_fixture
def many():
    """20,000 tiny objects on A (d00..d09, 2,000 each: listings take two
    pages), recorded as
    done in the manifest of task mnt20k by `dth sync`. The two gateways
    share one bucket namespace, so the destination dst:BUCKET is the very
    same bucket seen through gateway B: the sync finds every object already
    there and records it done with its destination ETag (no copying, which
    would take a minute here), which is all a manifest-backed mount reads."""
    c = lib.s3("a")
    b = lib.create_bucket("a", "mnt-20k")
    keys = ["d%02d/o%05d" % (i % 10, i) for i in range(N20K)]
    lib.put_objects(c, b, {k: b"%d" % i for i, k in enumerate(keys)}, workers=48)
    fctx = lib.fixture_context("test_mount.many")
    res = fctx.sync("src:" + b, "dst:" + b, task=TASK20K, timeout=600)
    assert res["failed"] == 0, "sync of the 20,000 objects failed: %s" % res
    return {"bucket": b, "keys": keys, "state": fctx.state, "config": fctx.config}


# --------------------------------------------------------------------------
# the tree


def test_mount_diff_find_stat(ctx):
    lib.require_fuse()
    t = tree()
    m = lib.Mount(ctx, "src:" + t["bucket"])
    try:
        m.start()
        r = _run(["diff", "-r", t["local"], m.path])
        assert r.returncode == 0, "diff -r LOCAL MOUNT exited %d:\n%s%s" % (
            r.returncode, r.stdout.decode("utf-8", "replace")[:3000], r.stderr.decode("utf-8", "replace")[:1000])

        r = _run(["sh", "-c", 'find "$1" -type f | wc -l', "sh", m.path])
        assert r.returncode == 0, r.stderr
        n = int(r.stdout.split()[0])
        assert n == len(t["files"]), "find -type f | wc -l: %d, expected %d" % (n, len(t["files"]))
        r = _run(["find", m.path, "-mindepth", "1", "-printf", "%y %P\\n"])
        assert r.returncode == 0, r.stderr.decode("utf-8", "replace")
        got_files, got_dirs = set(), set()
        for line in r.stdout.decode("utf-8", "surrogateescape").split("\n"):
            if line:
                (got_dirs if line[0] == "d" else got_files).add(line[2:])
        lib.assert_same_keys(got_files, t["files"], "files in the mount")
        lib.assert_same_keys(got_dirs, t["dirs"], "directories in the mount")

        # unnameable keys are skipped, their valid siblings kept
        assert sorted(os.listdir(os.path.join(m.path, "a"))) == ["b", "ok.txt"], os.listdir(
            os.path.join(m.path, "a"))
        assert os.listdir(os.path.join(m.path, "dir")) == [], "folder marker dir/ is not an empty directory"
        assert os.listdir(os.path.join(m.path, "p")) == ["q"], "p/: %s" % os.listdir(os.path.join(m.path, "p"))
        assert stat.S_ISDIR(os.stat(os.path.join(m.path, "both")).st_mode), "both (file and prefix) not a directory"

        uid, gid = os.getuid(), os.getgid()
        bad = []
        for rel, key in t["files"].items():
            st = os.stat(os.path.join(m.path, rel))
            o = t["listing"][key]
            want_mtime = int(o["LastModified"].timestamp())
            if not stat.S_ISREG(st.st_mode) or st.st_size != o["Size"] or int(st.st_mtime) != want_mtime:
                bad.append("%r: mode %o size %d mtime %d, S3 says size %d mtime %d" % (
                    rel, st.st_mode, st.st_size, int(st.st_mtime), o["Size"], want_mtime))
            elif stat.S_IMODE(st.st_mode) != 0o444 or st.st_nlink != 1 or (st.st_uid, st.st_gid) != (uid, gid):
                bad.append("%r: perms %o nlink %d owner %d:%d, expected 444, 1, %d:%d" % (
                    rel, stat.S_IMODE(st.st_mode), st.st_nlink, st.st_uid, st.st_gid, uid, gid))
        for d in t["dirs"]:
            st = os.stat(os.path.join(m.path, d))
            if not stat.S_ISDIR(st.st_mode) or stat.S_IMODE(st.st_mode) != 0o555:
                bad.append("%r: mode %o, expected a directory 555" % (d, st.st_mode))
        assert not bad, "%d wrong attributes: %s" % (len(bad), "; ".join(bad[:8]))

        sv = os.statvfs(m.path)
        assert sv.f_bsize == 4096, "statfs f_bsize %d" % sv.f_bsize
        r = _run(["df", "-P", m.path])
        assert r.returncode == 0, "df failed: %s" % r.stderr.decode("utf-8", "replace")
        m.unmount()
    finally:
        m.close()


def test_mount_xattrs(ctx):
    lib.require_fuse()
    t = tree()
    c = lib.s3("a")
    m = lib.Mount(ctx, "src:" + t["bucket"])
    try:
        m.start()
        doc = os.path.join(m.path, "meta", "doc.json")
        h = lib.head(c, t["bucket"], "meta/doc.json")
        want = {
            "user.s3.etag": h["ETag"].strip('"'),
            "user.s3.content_type": "application/json",
            "user.s3.meta.color": "blue",
            "user.s3.meta.build-id": "42",
        }
        for name, value in want.items():
            got = os.getxattr(doc, name)
            assert got == value.encode(), "%s of meta/doc.json: %r, expected %r" % (name, got, value)
        names = os.listxattr(doc)
        missing = [n for n in want if n not in names]
        assert not missing, "listxattr of meta/doc.json lacks %s: %s" % (missing, names)

        plain = os.path.join(m.path, "meta", "plain.txt")
        assert os.getxattr(plain, "user.s3.content_type") == b"text/plain; charset=utf-8"
        assert not [n for n in os.listxattr(plain) if n.startswith("user.s3.meta.")], os.listxattr(plain)
        big = os.path.join(m.path, t["big_key"])
        etag = os.getxattr(big, "user.s3.etag").decode()
        assert etag == t["big_etag"] and etag.endswith("-%d" % t["big"].nparts), (
            "user.s3.etag of the multipart object: %s, boto3 says %s" % (etag, t["big_etag"]))
        for path, name in ((doc, "user.s3.meta.nope"), (doc, "user.dth.status")):
            try:
                v = os.getxattr(path, name)
            except OSError as e:
                assert e.errno == errno.ENODATA, "getxattr %s: %s, expected ENODATA" % (name, _errno_name(e.errno))
            else:
                raise AssertionError("getxattr %s gave %r, expected ENODATA" % (name, v))
        m.unmount()
    finally:
        m.close()


def test_mount_writes_refused(ctx):
    lib.require_fuse()
    t = tree()
    c = lib.s3("a")
    before = lib.list_all(c, t["bucket"])
    m = lib.Mount(ctx, "src:" + t["bucket"])
    try:
        m.start()
        d = os.path.join(m.path, "a")
        f = os.path.join(d, "ok.txt")
        cases = [
            ("open(existing, 'w')", lambda: open(f, "w")),
            ("open(existing, 'a')", lambda: open(f, "a")),
            ("open(existing, 'r+')", lambda: open(f, "r+")),
            ("open(new, 'w')", lambda: open(os.path.join(d, "new.txt"), "w")),
            ("O_CREAT|O_EXCL", lambda: os.open(os.path.join(d, "new2"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)),
            ("mkdir", lambda: os.mkdir(os.path.join(d, "newdir"))),
            ("unlink", lambda: os.unlink(f)),
            ("rmdir", lambda: os.rmdir(os.path.join(m.path, "dir"))),
            ("rename", lambda: os.rename(f, os.path.join(d, "moved.txt"))),
            ("utime", lambda: os.utime(f)),
            ("chmod", lambda: os.chmod(f, 0o644)),
            ("chown", lambda: os.chown(f, 0, 0)),
            ("truncate", lambda: os.truncate(f, 0)),
            ("symlink", lambda: os.symlink("ok.txt", os.path.join(d, "link"))),
            ("link", lambda: os.link(f, os.path.join(d, "hard"))),
            ("mknod", lambda: os.mknod(os.path.join(d, "fifo"), 0o644 | stat.S_IFIFO)),
        ]
        wrong = []
        for what, fn in cases:
            try:
                res = fn()
            except OSError as e:
                if e.errno != errno.EROFS:
                    wrong.append("%s: %s" % (what, _errno_name(e.errno)))
            else:
                if hasattr(res, "close"):
                    res.close()
                elif isinstance(res, int):
                    os.close(res)
                wrong.append("%s: succeeded" % what)
        try:
            os.setxattr(f, "user.x", b"1")
            wrong.append("setxattr: succeeded")
        except OSError as e:
            if e.errno not in (errno.EROFS, errno.ENOTSUP, errno.EPERM, errno.EACCES):
                wrong.append("setxattr: %s" % _errno_name(e.errno))
        for cmd in (["touch", f], ["touch", os.path.join(d, "new3")], ["rm", "-f", f],
                    ["mkdir", os.path.join(d, "newdir2")], ["cp", "/etc/hostname", d]):
            r = _run(cmd, timeout=30)
            msg = r.stderr.decode("utf-8", "replace")
            if r.returncode == 0 or "Read-only file system" not in msg:
                wrong.append("%s: exit %d, %r" % (" ".join(cmd[:1]), r.returncode, msg.strip()))
        assert not wrong, "writes not refused with EROFS: %s" % "; ".join(wrong)
        with open(f, "rb") as fh:
            assert fh.read() == b"ok"
        m.unmount()
    finally:
        m.close()
    after = lib.list_all(c, t["bucket"])
    assert after == before, "the bucket changed under a read-only mount"


# --------------------------------------------------------------------------
# reading big objects


def test_mount_random_pread(ctx):
    lib.require_fuse()
    f = gib()
    g = f["gen"]
    m = lib.Mount(ctx, "src:" + f["bucket"])
    try:
        m.start()
        path = os.path.join(m.path, f["key"])
        assert os.stat(path).st_size == g.size
        rnd = random.Random(20261128)
        size, part = g.size, g.part_size
        ranges = [(0, 4096), (size - 777, 777), (size - 100, 4096), (part - 5, 10), (3 * part - 1, 2),
                  (part * 64 - 1000, 70000), (size // 2, 1)]
        while len(ranges) < 100:
            n = rnd.choice([1, 17, 512, 4096, 4097, 65536 + 3, 200000, MiB + 1, 3 * MiB])
            ranges.append((rnd.randrange(size), n))
        fd = os.open(path, os.O_RDONLY)
        try:
            bad = []
            for off, n in ranges:
                got = os.pread(fd, n, off)
                want = g.read(off, n)
                if got != want:
                    first = next((i for i in range(min(len(got), len(want))) if got[i] != want[i]), None)
                    bad.append("pread(%d, off=%d): %d bytes, expected %d, first difference at %s" % (
                        n, off, len(got), len(want), first))
            assert os.pread(fd, 10, size) == b"", "a read at the end of the file is not empty"
        finally:
            os.close(fd)
        assert not bad, "%d of %d reads wrong: %s" % (len(bad), len(ranges), "; ".join(bad[:5]))
        m.unmount()
        st = m.stats()
        fetched = st.get("fetched_bytes")
        assert isinstance(fetched, int) and 0 < fetched < size // 2, (
            "random reads of %d bytes in all fetched %s bytes of a %d-byte object" % (
                sum(n for _, n in ranges), fetched, size))
    finally:
        m.close()


def test_mount_sequential_md5(ctx):
    lib.require_fuse()
    f = gib()
    g = f["gen"]
    want = g.md5()
    m = lib.Mount(ctx, "src:" + f["bucket"])
    try:
        m.start()
        path = os.path.join(m.path, f["key"])
        got = lib.file_md5(path, chunk=MiB)
        assert got == want, "MD5 of the 1 GiB object read through the mount: %s, expected %s" % (got, want)
        m.unmount()
        st = m.stats()
        fetched = st.get("fetched_bytes")
        assert isinstance(fetched, int) and g.size <= fetched <= g.size * 3 // 2, (
            "a sequential read of %d bytes fetched %s bytes" % (g.size, fetched))
    finally:
        m.close()


def test_mount_changed_object_eio(ctx):
    lib.require_fuse()
    c = lib.s3("a")
    b = ctx.bucket("a", "mnt-chg")
    key = "changing.bin"
    old = lib.det_bytes("mt-chg-old", 32 * MiB)
    c.put_object(Bucket=b, Key=key, Body=old)
    m = lib.Mount(ctx, "src:" + b, "--readahead", "1M", "--cache-memory", "2M")
    try:
        m.start()
        fd = os.open(os.path.join(m.path, key), os.O_RDONLY)
        try:
            assert os.pread(fd, 65536, 0) == old[:65536], "first read wrong"
            new = lib.det_bytes("mt-chg-new", 32 * MiB)
            c.put_object(Bucket=b, Key=key, Body=new)
            off = 24 * MiB
            try:
                got = os.pread(fd, 65536, off)
            except OSError as e:
                assert e.errno == errno.EIO, "read after the object changed: %s, expected EIO" % (
                    _errno_name(e.errno))
            else:
                which = "the new" if got == new[off:off + 65536] else (
                    "the old" if got == old[off:off + 65536] else "other")
                raise AssertionError("read after the object changed returned %d bytes (%s bytes), expected EIO"
                                     % (len(got), which))
        finally:
            os.close(fd)
        m.unmount()
    finally:
        m.close()


# --------------------------------------------------------------------------
# listing cache


def _small_dir_bucket(ctx, tag, n=150):
    c = lib.s3("a")
    b = ctx.bucket("a", tag)
    objs = lib.small_objects("sub/f", n, tag, max_size=200)
    objs["other/x"] = b"x"
    lib.put_objects(c, b, objs)
    return c, b, objs


def test_mount_dir_cache_ttl_zero(ctx):
    lib.require_fuse()
    c, b, objs = _small_dir_bucket(ctx, "mnt-ttl0", 20)
    m = lib.Mount(ctx, "src:" + b, "--dir-cache-ttl", "0")
    try:
        m.start()
        sub = os.path.join(m.path, "sub")
        first = sorted(os.listdir(sub))
        assert len(first) == 20, first
        c.put_object(Bucket=b, Key="sub/zz-new", Body=b"new object")
        c.delete_object(Bucket=b, Key="sub/f00003")
        second = sorted(os.listdir(sub))
        assert "zz-new" in second, "a new object does not appear with --dir-cache-ttl 0: %s" % second[-3:]
        assert "f00003" not in second, "a deleted object still listed with --dir-cache-ttl 0"
        with open(os.path.join(sub, "zz-new"), "rb") as f:
            assert f.read() == b"new object"
        assert os.stat(os.path.join(m.path, "sub", "zz-new")).st_size == len(b"new object")
        m.unmount()
    finally:
        m.close()


def test_mount_dir_cache_lists_once(ctx):
    """Default cache: `ls -l` twice sends the LIST once; READDIRPLUS
    attributes mean no HEAD per file."""
    lib.require_fuse()
    c, b, objs = _small_dir_bucket(ctx, "mnt-ttl", 150)
    log0 = lib.rgw_log_size("a")
    req0 = lib.rgw_req("a")
    m = lib.Mount(ctx, "src:" + b)
    try:
        m.start()
        sub = os.path.join(m.path, "sub")
        r1 = lib.rgw_req("a")
        r = _run(["ls", "-l", sub])
        assert r.returncode == 0, r.stderr
        lines = [l for l in r.stdout.decode().splitlines() if l.startswith("-")]
        assert len(lines) == 150, "ls -l listed %d files, expected 150" % len(lines)
        r2 = lib.rgw_req("a")
        r = _run(["ls", "-l", sub])
        assert r.returncode == 0, r.stderr
        r3 = lib.rgw_req("a")
        first, second = r2 - r1, r3 - r2
        assert 1 <= first <= 4, "the first ls -l of 150 files sent %d requests (LIST, no HEAD per file)" % first
        assert second == 0, "the second ls -l sent %d requests, expected 0 (cached listing)" % second
        m.unmount()
        st = m.stats()
    finally:
        m.close()
    req_all = lib.rgw_req("a") - req0
    reqs = [q for q in lib.rgw_log_requests("a", log0, want=req_all) if q[3].startswith("dth/")]
    lists = [q for q in reqs if lib.is_list_request(q[0], q[1])]
    heads = [q for q in reqs if q[0] == "HEAD" and "/" in q[1].strip("/")]
    assert lists, "no LIST request seen in radosgw's log"
    assert len(heads) <= 2, "HEAD requests per file: %s" % [q[1] for q in heads][:10]
    assert st["requests"].get("list") == len(lists), "--stats-file says %s LIST requests, the server saw %d" % (
        st["requests"].get("list"), len(lists))


# --------------------------------------------------------------------------
# manifest-backed mount


def test_mount_manifest_20k_zero_lists(ctx):
    lib.require_fuse()
    f = many()
    b = f["bucket"]
    ctx.config = f["config"]
    log0 = {w: lib.rgw_log_size(w) for w in "ab"}
    req0 = {w: lib.rgw_req(w) for w in "ab"}
    m = lib.Mount(ctx, None, "--manifest", "--task", TASK20K, "--state", f["state"])
    try:
        m.start()
        before = {w: lib.rgw_req(w) for w in "ab"}
        r = _run(["find", m.path, "-type", "f", "-printf", "%P\\n"], timeout=300)
        assert r.returncode == 0, r.stderr
        found = r.stdout.decode().splitlines()
        after = {w: lib.rgw_req(w) for w in "ab"}
        assert len(found) == N20K, "find lists %d files, expected %d" % (len(found), N20K)
        lib.assert_same_keys(found, f["keys"], "files of the manifest mount")
        during = {w: after[w] - before[w] for w in "ab"}
        assert during == {"a": 0, "b": 0}, "find over a manifest mount sent requests: %s" % during
        dirs = os.listdir(m.path)
        assert sorted(dirs) == ["d%02d" % i for i in range(10)], sorted(dirs)
        sv = os.statvfs(m.path)
        assert sv.f_files == N20K, "statfs f_files %d, the manifest knows %d objects" % (sv.f_files, N20K)

        key = f["keys"][12345]
        p = os.path.join(m.path, key)
        st = os.stat(p)
        assert st.st_size == len(b"12345"), st
        assert os.getxattr(p, "user.dth.status") == b"done"
        src_etag = lib.head(lib.s3("a"), b, key)["ETag"].strip('"')
        dest = os.getxattr(p, "user.dth.dest_etag").decode()
        assert dest == src_etag, "user.dth.dest_etag %r, the destination's ETag is %r" % (dest, src_etag)
        assert os.getxattr(p, "user.s3.etag").decode() == src_etag
        with open(p, "rb") as fh:
            assert fh.read() == b"12345", "content read through the manifest mount"
        m.unmount()
        stats = m.stats()
    finally:
        m.close()
    assert stats["requests"].get("list") == 0, "--stats-file: %s" % stats["requests"]
    total = {w: lib.rgw_req(w) - req0[w] for w in "ab"}
    lists = []
    for w in "ab":
        lines = lib.rgw_log_requests(w, log0[w], want=total[w])
        lists += ["%s %s" % (q[0], q[1]) for q in lines if q[3].startswith("dth/") and lib.is_list_request(q[0], q[1])]
    assert not lists, "the manifest mount sent %d LIST requests: %s" % (len(lists), lists[:5])

    # the same bucket without the manifest: the same files, one LIST per page
    m = lib.Mount(ctx, "src:" + b)
    try:
        m.start()
        r = _run(["find", m.path, "-type", "f", "-printf", "%P\\n"], timeout=300)
        assert r.returncode == 0, r.stderr
        lib.assert_same_keys(r.stdout.decode().splitlines(), f["keys"], "files of the plain mount")
        m.unmount()
        rq = m.stats()["requests"]
    finally:
        m.close()
    pages = N20K // 1000 + 10 + 1
    assert rq.get("list", 0) <= 2 * pages and rq.get("head", 0) <= 2, (
        "find over 20,000 objects in 10 directories sent %s (about %d LIST pages expected)" % (rq, pages))


# --------------------------------------------------------------------------
# lifecycle


def _one_file_bucket(ctx, tag):
    c = lib.s3("a")
    b = ctx.bucket("a", tag)
    c.put_object(Bucket=b, Key="hello.txt", Body=b"hello\n")
    return b


def test_mount_unmount_ends_process(ctx):
    """SIGTERM, SIGINT (to the --pid-file pid) and fusermount3 -u each
    unmount and end the process, in the foreground (exit status 0) and as
    a daemon."""
    lib.require_fuse()
    b = _one_file_bucket(ctx, "mnt-umount")
    wrong = []
    for foreground in (True, False):
        for how in ("sigterm", "fusermount", "sigint"):
            m = lib.Mount(ctx, "src:" + b, foreground=foreground)
            what = "%s, %s" % ("-f" if foreground else "daemon", how)
            try:
                m.start()
                with open(os.path.join(m.path, "hello.txt"), "rb") as fh:
                    assert fh.read() == b"hello\n", what
                with open(m.pid_file) as pf:
                    pid = int(pf.read())
                assert lib.dth_pids_for(m.path) == [pid], "%s: pid file %d, dth processes for the mountpoint %s" % (
                    what, pid, lib.dth_pids_for(m.path))
                m.pid = pid
                rc = m.unmount(how)
                if foreground and rc != 0:
                    wrong.append("%s: exit status %d, expected 0" % (what, rc))
                st = m.stats()
                if "get" not in st["requests"]:
                    wrong.append("%s: --stats-file %s" % (what, st))
            except AssertionError as e:
                wrong.append("%s: %s" % (what, e))
            finally:
                m.close()
    assert not wrong, "; ".join(wrong)


def test_mount_bad_input(ctx):
    lib.require_fuse()
    b = _one_file_bucket(ctx, "mnt-bad")
    ctx.write_config(extra=lib.remote_section("wrongkey", "a", key=lib.RGW_KEY, secret="not-the-secret")
                     + lib.remote_section("nowhere", "a", endpoint_url="http://127.0.0.1:9"))
    mnt = os.path.join(ctx.dir, "badmnt")
    os.makedirs(mnt)
    cases = [
        ("unknown remote", ["nosuchremote:" + b, mnt], 2, "nosuchremote"),
        ("wrong secret", ["wrongkey:" + b, mnt], 3, None),
        ("unreachable endpoint", ["--retries", "1", "nowhere:" + b, mnt] if lib.mount_has_option("--retries")
         else ["nowhere:" + b, mnt], 3, None),
        ("missing mountpoint", ["src:" + b, os.path.join(ctx.dir, "no-such-dir")], 2, "no-such-dir"),
        ("missing bucket", ["src:" + b + "-nosuch", mnt], (2, 3), b + "-nosuch"),
        ("bad option value", ["--readahead", "lots", "src:" + b, mnt], 2, None),
        ("--manifest without --task", ["--manifest", "src:" + b, mnt], 2, None),
        ("unknown task", ["--manifest", "--task", "nosuchtask", "--state", ctx.state, "src:" + b, mnt], 2, None),
    ]
    wrong = []
    for what, args, want, word in cases:
        rc, out, err = ctx.run_dth(["mount", "--config", ctx.config] + args, check_exit=None, timeout=120)
        if "not-the-secret" in out + err:
            wrong.append("%s: the secret is in the output" % what)
        if rc not in (want if isinstance(want, tuple) else (want,)):
            wrong.append("%s: exit %d, expected %s (%s)" % (what, rc, want, err.strip()[-200:]))
        elif word and word not in err:
            wrong.append("%s: message does not name %s: %r" % (what, word, err.strip()[-200:]))
        elif not err.strip():
            wrong.append("%s: no message" % what)
        if lib.is_mounted(mnt):
            lib.force_unmount(mnt)
            wrong.append("%s: left %s mounted" % (what, mnt))
        left = lib.dth_pids_for(mnt)
        if left:
            for p in left:
                os.kill(p, signal.SIGKILL)
            wrong.append("%s: left dth processes %s" % (what, left))
    assert not wrong, "; ".join(wrong)


# mount(8) runs its helpers without PATH, so mount.fuse3's `/bin/sh -c 'dth
# ...'` finds dth only in the shell's default path
SH_DEFAULT_PATH = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
HELPER_LINK = "/usr/local/sbin/dth"


def _dth_on_default_path():
    """Make `dth` on the shell's default path be the dth under test. Returns
    the symlink made (to remove afterwards), or None; skips when another dth
    is installed there."""
    me = os.path.realpath(lib.dth_bin())
    for d in SH_DEFAULT_PATH:
        p = os.path.join(d, "dth")
        if os.path.exists(p):
            if os.path.realpath(p) == me:
                return None
            if os.path.islink(p) and p == HELPER_LINK and "/build" in os.readlink(p):
                break  # a link left by an earlier run of this test: repoint it
            lib.skip("another dth is installed at %s (mount(8) would run that one)" % p)
    if os.path.lexists(HELPER_LINK):
        os.unlink(HELPER_LINK)
    os.symlink(me, HELPER_LINK)
    return HELPER_LINK


def test_mount_fstab_form(ctx):
    """mount.fuse3 runs `dth SRC MNT -o OPTS` (dth found on PATH); then the
    same through mount(8): `mount -t fuse.dth -o OPTS SRC MNT` and a line of
    an fstab file (mount -T FILE MNT)."""
    lib.require_fuse()
    helper = shutil.which("mount.fuse3") or ("/sbin/mount.fuse3" if os.path.exists("/sbin/mount.fuse3") else None)
    if not helper:
        lib.skip("mount.fuse3 is missing (Debian package fuse3)")
    if os.geteuid() != 0:
        lib.skip("mounting through mount(8) and mount.fuse3 needs root here")
    b = _one_file_bucket(ctx, "mnt-fstab")
    lib.s3("a").put_object(Bucket=b, Key="sub/inner.txt", Body=b"inner\n")
    bindir = os.path.join(ctx.dir, "bin")
    os.makedirs(bindir)
    os.symlink(os.path.abspath(lib.dth_bin()), os.path.join(bindir, "dth"))
    env = ctx.base_env({"PATH": bindir + ":" + os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")})
    mnt = os.path.join(ctx.dir, "fstab mnt")  # a space, as fstab writes it \040
    os.makedirs(mnt)
    opts = ("config=%s,uid=4321,gid=4322,file_mode=0440,dir_mode=0550,dir_cache_ttl=0,_netdev,nofail,"
            "x-systemd.automount" % ctx.config)
    fstab = os.path.join(ctx.dir, "fstab")
    with open(fstab, "w") as fh:
        fh.write("# test fstab\nsrc:%s %s fuse.dth %s,noauto 0 0\n" % (b, mnt.replace(" ", "\\040"), opts))
    forms = [("mount.fuse3", [helper, "src:" + b, mnt, "-t", "fuse.dth", "-o", opts]),
             ("mount -t fuse.dth", ["mount", "-t", "fuse.dth", "-o", opts, "src:" + b, mnt]),
             ("mount -T FSTAB", ["mount", "-T", fstab, mnt])]
    link = None
    try:
        for what, cmd in forms:
            if what.startswith("mount ") and link is None:
                link = _dth_on_default_path() or False
            ctx.last_cmd = cmd
            r = _run(cmd, env=env, timeout=120)
            ctx.last_stderr = r.stderr.decode("utf-8", "replace")
            assert r.returncode == 0, "%s exited %d: %s" % (what, r.returncode, ctx.last_stderr.strip())
            fstype = lib.mounts().get(mnt)
            assert fstype == "fuse.dth", "%s: %r mounted as %s" % (what, mnt, fstype)
            pids = lib.dth_pids_for(mnt)
            assert len(pids) == 1, "%s: dth processes for the mountpoint: %s" % (what, pids)
            p = os.path.join(mnt, "hello.txt")
            with open(p, "rb") as fh:
                assert fh.read() == b"hello\n"
            st = os.stat(p)
            assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (4321, 4322, 0o440), (
                "%s: owner %d:%d mode %o, expected 4321:4322 440 from -o" % (
                    what, st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)))
            assert stat.S_IMODE(os.stat(os.path.join(mnt, "sub")).st_mode) == 0o550
            r = _run(["umount", mnt], timeout=60)
            assert r.returncode == 0, "umount: %s" % r.stderr
            assert lib.wait_for(lambda: not any(lib.pid_alive(x) for x in pids), 20), (
                "%s: dth still running after umount" % what)
            assert not lib.is_mounted(mnt)
    finally:
        if link:
            os.unlink(link)
        lib.force_unmount(mnt)
        left = lib.dth_pids_for(mnt)
        for p in left:
            os.kill(p, signal.SIGKILL)
        assert not left, "dth processes left: %s" % left


UNIT = os.path.join(lib.REPO, "systemd", "dth-mount@.service")


def _unit_exec_start(text):
    m = re.search(r"^ExecStart=(.*)$", text, re.M)
    assert m, "no ExecStart in the unit"
    return m.group(1).strip()


def test_mount_systemd_unit(ctx):
    """The unit verifies (systemd-analyze), and its ExecStart, with an
    instance's environment file, mounts in the foreground, says READY=1 on
    $NOTIFY_SOCKET once the mount is usable, and unmounts on SIGTERM."""
    lib.require_fuse()
    with open(UNIT) as fh:
        text = fh.read()
    for line in ("Type=notify", "EnvironmentFile=/etc/dth/mount/%i.env", "Restart=on-failure"):
        assert re.search(r"^%s$" % re.escape(line), text, re.M), "the unit lacks %s" % line
    assert re.search(r"^After=.*\bnetwork-online\.target\b", text, re.M), "not ordered after network-online"
    execstart = _unit_exec_start(text)
    assert execstart == "/usr/bin/dth mount -f $SOURCE $MOUNTPOINT $OPTIONS", execstart

    if shutil.which("systemd-analyze"):
        udir = os.path.join(ctx.dir, "units")
        os.makedirs(udir)
        inst = os.path.join(udir, "dth-mount@test.service")
        with open(inst, "w") as fh:  # the built binary stands in for /usr/bin/dth
            fh.write(text.replace("ExecStart=/usr/bin/dth ", "ExecStart=%s " % os.path.abspath(lib.dth_bin())))
        # --man=no: the man page of Documentation= is installed by the package
        # (tests/package.sh verifies the installed unit with it), not by a build.
        r = _run(["systemd-analyze", "verify", "--man=no", inst], timeout=60)
        out = (r.stdout + r.stderr).decode("utf-8", "replace")
        complaints = [l for l in out.splitlines() if "dth-mount@" in l]
        assert r.returncode == 0 and not complaints, "systemd-analyze verify: %s" % out.strip()

    # what systemd would run for an instance
    b = _one_file_bucket(ctx, "mnt-unit")
    mnt = os.path.join(ctx.dir, "unit-mnt")
    os.makedirs(mnt)
    envf = {"SOURCE": "src:" + b, "MOUNTPOINT": mnt, "OPTIONS": "--config %s --dir-cache-ttl 5" % ctx.config}
    argv = []
    for word in execstart.split():
        argv += envf[word[1:]].split() if word.startswith("$") else [word]
    argv[0] = lib.dth_bin()
    sock_path = os.path.join(ctx.dir, "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(sock_path)
    sock.settimeout(0.5)
    errf = os.path.join(ctx.dir, "unit-stderr.txt")
    ctx._bg_err = errf
    ctx.last_cmd = argv
    with open(errf, "wb") as ef:
        p = subprocess.Popen(argv, env=ctx.base_env({"NOTIFY_SOCKET": sock_path}), stdout=ef, stderr=ef,
                             stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        msgs = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(b"READY=1" in x.split(b"\n") for x in msgs):
            try:
                msgs.append(sock.recv(4096))
            except socket.timeout:
                assert p.poll() is None, "dth mount -f exited %d without READY=1" % p.returncode
        assert any(b"READY=1" in x.split(b"\n") for x in msgs), "no READY=1 on NOTIFY_SOCKET: %r" % msgs
        assert lib.is_mounted(mnt), "READY=1 sent before %s was mounted" % mnt
        with open(os.path.join(mnt, "hello.txt"), "rb") as fh:
            assert fh.read() == b"hello\n"
        assert p.poll() is None, "dth -f exited while mounted"
        p.send_signal(signal.SIGTERM)
        rc = p.wait(timeout=30)
        assert rc == 0, "dth mount -f exited %d on SIGTERM (systemd stop), expected 0" % rc
        assert not lib.is_mounted(mnt), "still mounted after SIGTERM"
    finally:
        sock.close()
        if p.poll() is None:
            p.kill()
            p.wait()
        lib.force_unmount(mnt)
        assert not lib.dth_pids_for(mnt), "dth processes left: %s" % lib.dth_pids_for(mnt)
