"""dth mount under load: a manifest-backed mount read while dth sync writes
the same manifest, many files read at once within a small --cache-memory,
and statfs (df)."""

import hashlib
import os
import threading
import time

import lib
from lib import MiB


def test_manifest_mount_while_sync_writes(ctx):
    """The mount reads the task's LMDB manifest while a dth sync process
    commits to it: listings grow as objects are recorded, nothing fails, and
    at the end every object is listed with status done."""
    lib.require_fuse()
    c = lib.s3("a")
    src = ctx.bucket("a", "live-src")
    dst = ctx.bucket("b", "live-dst")
    objs = lib.small_objects("d/", 1000, "live", max_size=2000)
    lib.put_objects(c, src, objs)
    task = ctx.task("live")
    sync = ctx.popen_sync("src:" + src, "dst:" + dst, "--concurrency", "2", task=task)
    try:
        # The task exists as soon as the sync has started.
        assert lib.wait_for(
            lambda: ctx.manifest("tasks", check_exit=None)[1].find(task) >= 0, 60), "no task"
        m = lib.Mount(ctx, None, "--manifest", "--task", task, "--state", ctx.state)
        with m:
            seen = []

            def count():
                try:
                    return len(os.listdir(os.path.join(m.path, "d")))
                except FileNotFoundError:  # no record under d/ yet
                    return 0

            while sync.poll() is None:
                n = count()
                assert not seen or n >= seen[-1], "listing shrank: %d after %d" % (n, seen[-1])
                seen.append(n)
                time.sleep(0.2)
            assert sync.returncode == 0, "dth sync exited %d" % sync.returncode
            # listings are cached for 1 s with --manifest
            assert lib.wait_for(lambda: count() == 1000, 10), "%d names listed after the sync" % count()
            names = sorted(os.listdir(os.path.join(m.path, "d")))
            assert names == sorted(k[2:] for k in objs), "listed names differ from the source keys"
            for k in sorted(objs)[::100]:
                p = os.path.join(m.path, k)
                assert os.getxattr(p, "user.dth.status") == b"done", k
                with open(p, "rb") as f:
                    assert f.read() == objs[k], "bytes of %s" % k
            m.unmount()
        assert m.stats()["requests"]["list"] == 0, "list requests with --manifest: %r" % m.stats()
        assert len(seen) >= 2 and seen[0] < 1000, \
            "the sync finished before the mount could watch it: %r" % seen[:5]
    finally:
        if sync.poll() is None:
            sync.kill()
            sync.wait()


def test_many_open_files_within_cache_memory(ctx):
    """Twelve 12 MiB objects read at once by twelve threads through a mount
    with --cache-memory 8M: every byte right, the cache never held more than
    8 MiB (its own counter), and the daemon's resident memory stayed small."""
    lib.require_fuse()
    c = lib.s3("a")
    b = ctx.bucket("a", "mem")
    objs = {"f%02d.bin" % i: lib.det_bytes("mem%d" % i, 12 * MiB) for i in range(12)}
    md5 = lib.put_objects(c, b, objs, workers=4)
    del objs
    m = lib.Mount(ctx, "src:" + b, "--cache-memory", "8M", "--readahead", "4M",
                  "--kernel-readahead", "0")
    with m:
        names = sorted(os.listdir(m.path))
        assert len(names) == 12, names
        got, errors = {}, []

        def reader(name):
            try:
                h = hashlib.md5()
                with open(os.path.join(m.path, name), "rb", buffering=0) as f:
                    for block in iter(lambda: f.read(256 * 1024), b""):
                        h.update(block)
                got[name] = h.hexdigest()
            except OSError as e:
                errors.append("%s: %s" % (name, e))

        threads = [threading.Thread(target=reader, args=(n,)) for n in names]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        assert got == md5, "bytes read through the mount differ from the objects"
        with open("/proc/%d/status" % m.pid) as f:
            hwm = [int(line.split()[1]) for line in f if line.startswith("VmHWM:")][0]
        m.unmount()
    st = m.stats()
    assert 0 < st["peak_cache_bytes"] <= 8 * MiB, "cache peak %d over the 8 MiB budget" % (
        st["peak_cache_bytes"])
    assert st["fetched_bytes"] >= 12 * 12 * MiB, st
    # 144 MiB went through; the process held far less (libraries, curl and
    # FUSE buffers, and the 8 MiB of blocks). A sanitizer build's shadow memory
    # and quarantine make its RSS meaningless, so it is not held to this.
    ldd = lib.subprocess.run(["ldd", lib.dth_bin()], capture_output=True, text=True).stdout
    if "libasan" not in ldd:
        assert hwm < 96 * 1024, "peak RSS %d KiB with --cache-memory 8M" % hwm


def test_statfs(ctx):
    """df on a mount: a bucket shows as a large volume; a manifest-backed
    mount shows the task's object count and size."""
    lib.require_fuse()
    c = lib.s3("a")
    src = ctx.bucket("a", "df-src")
    dst = ctx.bucket("b", "df-dst")
    objs = {"x/%d" % i: lib.det_bytes("df%d" % i, 10000 + i) for i in range(40)}
    lib.put_objects(c, src, objs)
    ctx.sync("src:" + src, "dst:" + dst, task="df")
    with lib.Mount(ctx, "src:" + src) as m:
        s = os.statvfs(m.path)
        assert s.f_bsize == 4096 and s.f_blocks > 0 and s.f_namemax == 255, s
        out = lib.subprocess.run(["df", "-P", m.path], capture_output=True, text=True)
        assert out.returncode == 0 and "src:" + src in out.stdout, out.stdout + out.stderr
        m.unmount()
    with lib.Mount(ctx, None, "--manifest", "--task", "df", "--state", ctx.state) as m:
        s = os.statvfs(m.path)
        assert s.f_files == 40, s
        assert s.f_blocks * s.f_frsize >= sum(10000 + i for i in range(40)), s
        m.unmount()


def test_refused_object_reads_eacces(ctx):
    """A user allowed to list a bucket and read one object but not another:
    through the mount, the readable one reads, the refused one fails with
    EACCES (radosgw's 403), and the mount keeps serving."""
    lib.require_fuse()
    import errno
    import json
    c = lib.s3("a")
    b = ctx.bucket("a", "acl")
    lib.put_objects(c, b, {"open.txt": b"readable\n", "secret.txt": b"not for rp\n"})
    c.put_bucket_policy(Bucket=b, Policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam:::user/rp"]},
             "Action": ["s3:ListBucket"], "Resource": ["arn:aws:s3:::%s" % b]},
            {"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam:::user/rp"]},
             "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::%s/open.txt" % b]}]}))
    # radosgw really refuses rp the second object
    rp = lib.s3("a", key=lib.RP_KEY, secret=lib.RP_SECRET)
    try:
        rp.get_object(Bucket=b, Key="secret.txt")
        raise AssertionError("radosgw let rp read secret.txt")
    except lib.ClientError as e:
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 403, e
    ctx.write_config(ctx.default_remotes()
                     + lib.remote_section("rp", "a", key=lib.RP_KEY, secret=lib.RP_SECRET))
    with lib.Mount(ctx, "rp:" + b, "--retries", "1") as m:
        assert sorted(os.listdir(m.path)) == ["open.txt", "secret.txt"]
        with open(os.path.join(m.path, "open.txt"), "rb") as f:
            assert f.read() == b"readable\n"
        try:
            with open(os.path.join(m.path, "secret.txt"), "rb") as f:
                f.read()
            raise AssertionError("read of a refused object succeeded")
        except OSError as e:
            assert e.errno == errno.EACCES, "refused object: %r, expected EACCES" % e
        try:
            os.getxattr(os.path.join(m.path, "secret.txt"), "user.s3.content_type")
            raise AssertionError("metadata of a refused object was returned")
        except OSError as e:
            assert e.errno == errno.EACCES, "refused HEAD: %r, expected EACCES" % e
        with open(os.path.join(m.path, "open.txt"), "rb") as f:
            assert f.read() == b"readable\n", "the mount stopped serving after a refusal"
        m.unmount()
