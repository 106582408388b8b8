"""Local directories as sources, against radosgw B as the destination:
dth sync of a tree (bytes and ETags checked with boto3, the multipart ETag
computed here in dth's layout), a rescan of an unchanged tree that opens no
file (the kernel's own inotify IN_OPEN events, watched by this test) and
sends no request (radosgw's log), changes and deletes; and the agent with
events = inotify: a write, a rename, a delete, a new subdirectory, a burst
of 1,000 files, a file written slowly over 5 s (PUT once, complete), and a
kernel queue overflow that ends in a full rescan."""

import ctypes
import os
import signal
import struct
import time

import lib
from test_agent import Agent, _task_section, _dst_md5
from test_events import _puts_at

MiB = 1 << 20
IN_OPEN, IN_ISDIR = 0x20, 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


class _OpenWatch:
    """The files (not directories) opened under a tree, as inotify reports
    them: a second observer, independent of dth."""

    def __init__(self, root):
        self.fd = _libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        assert self.fd >= 0
        for d, _dirs, _files in os.walk(root):
            assert _libc.inotify_add_watch(self.fd, d.encode(), IN_OPEN) >= 0

    def file_opens(self):
        n, hdr = 0, struct.calcsize("iIII")
        while True:
            try:
                buf = os.read(self.fd, 1 << 20)
            except BlockingIOError:
                break
            off = 0
            while off < len(buf):
                _wd, mask, _cookie, ln = struct.unpack_from("iIII", buf, off)
                if not mask & IN_ISDIR:
                    n += 1
                off += hdr + ln
        return n

    def close(self):
        os.close(self.fd)


def _write(root, rel, data):
    p = os.path.join(root, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(data)


def _tree(ctx):
    root = os.path.join(ctx.dir, "tree")
    want = {}
    for i in range(40):
        rel = "d%d/sub/f%03d.txt" % (i % 4, i) if i % 3 else "top%03d.bin" % i
        data = lib.det_bytes(i, 100 + 37 * i)
        _write(root, rel, data)
        want[rel] = data
    big = lib.det_bytes(99, 20 * MiB + 12345)  # over the 16 MiB threshold: 3 parts of 8 MiB
    _write(root, "big/large.dat", big)
    want["big/large.dat"] = big
    os.symlink("/etc/passwd", os.path.join(root, "link-out"))
    os.mkfifo(os.path.join(root, "d0", "fifo"))
    return root, want


def test_local_sync_and_rescan(ctx):
    b = lib.s3("b")
    dst = ctx.bucket("b", "local")
    root, want = _tree(ctx)
    res = ctx.sync(root, "dst:%s/m/" % dst)
    assert res["transferred"] == len(want), res
    got = _dst_md5(b, dst, "m/")
    assert got == {"m/" + k: lib.md5hex(v) for k, v in want.items()}, "bytes differ"
    for k, v in want.items():
        etag = lib.head(b, dst, "m/" + k)["ETag"].strip('"')
        exp = lib.multipart_etag(v, 8 * MiB) if len(v) >= 16 * MiB else lib.md5hex(v)
        assert etag == exp, (k, etag, exp)
    assert "m/link-out" not in got and "m/d0/fifo" not in got

    # An unchanged tree: no file opened, no request sent.
    watch = _OpenWatch(root)
    off = lib.rgw_log_size("b")
    res = ctx.sync(root, "dst:%s/m/" % dst)
    opens = watch.file_opens()
    watch.close()
    assert res["transferred"] == 0 and res["skipped"] == len(want), res
    assert opens == 0, "the rescan opened %d files" % opens
    assert lib.rgw_log_requests("b", off, want=1, timeout=2) == [], "the rescan sent requests"

    # A changed file, a new one, a deleted one.
    _write(root, "top000.bin", b"changed")
    _write(root, "new/one.txt", b"new file")
    os.unlink(os.path.join(root, "d1", "sub", "f001.txt"))
    off = lib.rgw_log_size("b")
    res = ctx.sync(root, "dst:%s/m/" % dst, "--delete")
    assert res["transferred"] == 2 and res["deleted"] == 1, res
    assert lib.get_bytes(b, dst, "m/top000.bin") == b"changed"
    assert lib.get_bytes(b, dst, "m/new/one.txt") == b"new file"
    assert "m/d1/sub/f001.txt" not in lib.list_all(b, dst, "m/")
    puts = _puts_at(dst, off)
    assert puts == {"m/top000.bin": 1, "m/new/one.txt": 1}, puts

    # The manifest's record checks out against the destination.
    rc, out, err = ctx.run_dth(["manifest", "--state", ctx.state, "verify", "t", "--config",
                                ctx.config], check_exit=None)
    assert rc == 0 and " 0 mismatched" in out + err, out + err

    # A local destination, a missing source: clear errors, nothing done.
    rc, _, err = ctx.sync("dst:" + dst, root, check_exit=2, json_out=False, task="x")
    assert "local directory can only be a source" in err, err
    rc, _, err = ctx.sync(os.path.join(ctx.dir, "nope"), "dst:" + dst, check_exit=2,
                          json_out=False, task="y")
    assert "nope" in err and "No such file" in err, err


def _agent_task(ctx, root, dst, **extra):
    ctx.write_config(extra=_task_section("w", root, "dst:%s/w/" % dst, schedule="every 1h",
                                         events="inotify", delete="true", **extra))


def _settle(ag, b, dst, want, timeout=60):
    """Wait until the task is idle with no events pending and the destination
    lists exactly want (ETags are MD5s: every file here is one part); then
    check the bytes of what changed last."""
    exp = {"w/" + k: lib.md5hex(v) for k, v in want.items()}

    def listed():
        return {k: o["etag"] for k, o in lib.list_all(b, dst, "w/").items()}

    def same():
        t = ag.task("w")
        return not t["events"]["pending"] and t["state"] == "idle" and listed() == exp
    ok = lib.wait_for(same, timeout, interval=0.3)
    got = listed()
    assert ok, ("destination not in step", sorted(set(got.items()) ^ set(exp.items()))[:10],
                ag.task("w"))


def test_local_inotify_events(ctx):
    b = lib.s3("b")
    dst = ctx.bucket("b", "inot")
    root = os.path.join(ctx.dir, "live")
    want = {"a.txt": b"first", "dir/b.txt": b"second"}
    for k, v in want.items():
        _write(root, k, v)
    _agent_task(ctx, root, dst)
    with Agent(ctx) as ag:
        ag.wait_runs("w", 1)
        _settle(ag, b, dst, want)
        assert "watching " + root in ag.log_text()

        # a write
        _write(root, "c.txt", b"third")
        want["c.txt"] = b"third"
        _settle(ag, b, dst, want)
        # a rename, within the tree
        os.rename(os.path.join(root, "a.txt"), os.path.join(root, "dir", "a2.txt"))
        want["dir/a2.txt"] = want.pop("a.txt")
        _settle(ag, b, dst, want)
        # a delete
        os.unlink(os.path.join(root, "c.txt"))
        del want["c.txt"]
        _settle(ag, b, dst, want)
        # a new subdirectory with files, made at once
        for i in range(5):
            _write(root, "n1/n2/f%d" % i, b"x" * i)
            want["n1/n2/f%d" % i] = b"x" * i
        _settle(ag, b, dst, want)

        # a burst of 1,000 files: each PUT once
        off = lib.rgw_log_size("b")
        for i in range(1000):
            data = lib.det_bytes(1000 + i, 50 + i)
            _write(root, "burst/%02d/f%04d" % (i % 10, i), data)
            want["burst/%02d/f%04d" % (i % 10, i)] = data
        _settle(ag, b, dst, want, timeout=120)
        puts = _puts_at(dst, off)
        assert len(puts) == 1000 and max(puts.values()) == 1, sorted(puts.items())[:5]

        # a file written slowly over 5 s: copied once, after it is closed
        off = lib.rgw_log_size("b")
        chunks = [lib.det_bytes(7000 + i, 100000) for i in range(6)]
        with open(os.path.join(root, "slow.bin"), "wb") as f:
            for c in chunks:
                f.write(c)
                f.flush()
                time.sleep(1)
        want["slow.bin"] = b"".join(chunks)
        _settle(ag, b, dst, want)
        assert _puts_at(dst, off) == {"w/slow.bin": 1}, _puts_at(dst, off)
        runs = ag.api("GET", "/api/v1/tasks/w/runs?limit=100", expect=200).json()["runs"]
        assert [r for r in runs if r["trigger"] == "events"], runs
        assert not [r for r in runs if r["trigger"] == "events" and r["result"] != "ok"], runs
        ag.stop()


def _set_max_queued(n):
    path = "/proc/sys/fs/inotify/max_queued_events"
    try:
        with open(path) as f:
            old = int(f.read())
        with open(path, "w") as f:
            f.write(str(n))
        return old
    except OSError:
        return None


def test_local_inotify_overflow(ctx):
    """The agent stopped (SIGSTOP) while more changes are made than the
    kernel queues: IN_Q_OVERFLOW, then a full rescan copies them all."""
    b = lib.s3("b")
    dst = ctx.bucket("b", "ovfl")
    root = os.path.join(ctx.dir, "ovfl")
    want = {"seed": b"seed"}
    _write(root, "seed", b"seed")
    _agent_task(ctx, root, dst)
    # A small kernel queue when this machine lets us set it (the agent's
    # inotify instance takes the limit when it is made); else the default
    # 16384 events, which 9,000 files (two events each) overflow.
    old = _set_max_queued(256)
    n = 400 if old is not None else 9000
    try:
        ag = Agent(ctx).start()
        assert lib.wait_for(lambda: "watching " + root in ag.log_text(), 20)
    finally:
        if old is not None:
            _set_max_queued(old)
    try:
        ag.wait_runs("w", 1)
        _settle(ag, b, dst, want)
        ag.send(signal.SIGSTOP)
        try:
            # in a directory already watched (a new one would be scanned whole
            # once the agent runs again, with no events queued for its files)
            for i in range(n):
                _write(root, "f%05d" % i, b"o%d" % i)
                want["f%05d" % i] = b"o%d" % i
        finally:
            ag.send(signal.SIGCONT)
        _settle(ag, b, dst, want, timeout=300)
        assert "IN_Q_OVERFLOW" in ag.log_text()
    finally:
        ag.stop()


def test_local_source_through_the_api(ctx):
    """A task made through the API takes a local directory only under
    [agent] local_sources: the token alone does not let a client copy out the
    agent's own files (its state directory holds the token)."""
    b = lib.s3("b")
    dst = ctx.bucket("b", "apiloc")
    allowed = os.path.join(ctx.dir, "exports")
    _write(allowed, "pub/a.txt", b"public")
    with Agent(ctx) as ag:
        for src in (ctx.state, allowed, "/etc"):
            r = ag.api("POST", "/api/v1/tasks", {"name": "x", "source": src,
                                                 "destination": "dst:" + dst}, expect=400)
            assert r.json()["error"].get("field") == "source", r.text
            assert "local_sources" in r.text, r.text
        assert ag.task_names() == []
    ctx.write_config(extra="[agent]\nlocal_sources = %s\n\n" % allowed)
    with Agent(ctx) as ag:
        for src in (ctx.state, allowed + "/../state", "/etc"):
            ag.api("POST", "/api/v1/tasks", {"name": "x", "source": src,
                                             "destination": "dst:" + dst}, expect=400)
        ag.api("POST", "/api/v1/tasks", {"name": "x", "source": allowed + "/pub",
                                         "destination": "dst:" + dst, "schedule": "every 1h"},
               expect=201)
        ag.wait_runs("x", 1)
        assert lib.get_bytes(b, dst, "a.txt") == b"public"
        ag.stop()
