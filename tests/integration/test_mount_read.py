"""dth mount's read path checked byte for byte against boto3's GET of the
same object: a large sequential read in odd-sized reads, reads that straddle
the read cache's block edges, the object's part edges and the readahead
window's, and several readers of one file at once. Also the read cache's
memory on a long sequential read (its buffers are reused, so the process
stays well under --cache-memory), measured by the kernel (VmHWM)."""

import os
import random
import subprocess
import threading

import lib
from lib import MiB



def _get(c, bucket, key, off=None, n=None):
    """The object's bytes (or a range of them) by boto3's GET."""
    kw = {"Bucket": bucket, "Key": key}
    if off is not None:
        kw["Range"] = "bytes=%d-%d" % (off, off + n - 1)
    return c.get_object(**kw)["Body"].read()


def _first_diff(a, b):
    return next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))


def _hwm_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        return [int(line.split()[1]) for line in f if line.startswith("VmHWM:")][0]


def _sanitized():
    ldd = subprocess.run(["ldd", lib.dth_bin()], capture_output=True, text=True).stdout
    return "libasan" in ldd


@lib.module_fixture
def big():
    """A 384 MiB + 4099 byte object in 8 MiB parts (the last one short)."""
    c = lib.s3("a")
    b = lib.create_bucket("a", "mnt-rd-big")
    g = lib.GeneratedObject("mr-big", 384 * MiB + 4099, 8 * MiB)
    g.put(c, b, "one/big.bin", workers=4)
    return {"bucket": b, "key": "one/big.bin", "size": g.size}


@lib.module_fixture
def odd():
    """A 37 MiB + 321 byte object in 5 MiB parts: its part edges fall
    between the read cache's block edges."""
    c = lib.s3("a")
    b = lib.create_bucket("a", "mnt-rd-odd")
    g = lib.GeneratedObject("mr-odd", 37 * MiB + 321, 5 * MiB)
    g.put(c, b, "odd.bin", workers=4)
    return {"bucket": b, "key": "odd.bin", "size": g.size, "part": g.part_size}


def test_mount_sequential_read_equals_get(ctx):
    """384 MiB read through the mount in reads of 1 MiB + 4099 bytes, each
    compared with the same bytes of one streamed boto3 GET; the mount
    process's peak RSS stays well below the 256 MiB cache budget."""
    lib.require_fuse()
    f = big()
    c = lib.s3("a")
    m = lib.Mount(ctx, "src:" + f["bucket"])
    with m:
        path = os.path.join(m.path, f["key"])
        body = c.get_object(Bucket=f["bucket"], Key=f["key"])["Body"]
        rd = MiB + 4099
        off, bad = 0, None
        with open(path, "rb", buffering=0) as fh:
            while True:
                got = fh.read(rd)
                want = body.read(rd)
                # a short read from the mount is not yet the end: read on
                while len(got) < len(want):
                    more = fh.read(len(want) - len(got))
                    if not more:
                        break
                    got += more
                if got != want:
                    bad = "at byte %d: %d bytes through the mount, %d by GET, first difference at +%d" % (
                        off, len(got), len(want), _first_diff(got, want))
                    break
                if not want:
                    break
                off += len(want)
        assert bad is None, bad
        assert off == f["size"], "read %d bytes, the object has %d" % (off, f["size"])
        hwm = _hwm_kib(m.pid)
        m.unmount()
    st = m.stats()
    assert f["size"] <= st["fetched_bytes"] <= f["size"] * 5 // 4, st
    # Before its buffers were reused, the cache filled its whole budget on
    # such a read (332 MiB peak RSS). Now about a quarter of the budget plus
    # the 64 MiB window, and the rest of the process.
    if not _sanitized():
        assert hwm < 200 * 1024, "peak RSS %d KiB reading 384 MiB with the 256 MiB default budget" % hwm


def test_mount_reads_across_block_and_part_edges(ctx):
    """With --cache-memory 12M (3 MiB blocks) and --readahead 3M: a
    sequential pass in reads of changing odd sizes, then preads straddling
    every block edge, part edge and readahead step, all against boto3's GET."""
    lib.require_fuse()
    f = odd()
    c = lib.s3("a")
    want = _get(c, f["bucket"], f["key"])
    size = f["size"]
    assert len(want) == size
    m = lib.Mount(ctx, "src:" + f["bucket"], "--cache-memory", "12M", "--readahead", "3M",
                  "--kernel-readahead", "0")
    with m:
        path = os.path.join(m.path, f["key"])
        sizes = [1, 4095, 65537, MiB + 3, 3 * MiB - 1, 7 * MiB, 128 * 1024]
        fd = os.open(path, os.O_RDONLY)
        try:
            off, i, bad = 0, 0, []
            while off < size:
                n = sizes[i % len(sizes)]
                got = os.pread(fd, n, off)
                if got != want[off:off + n]:
                    bad.append("sequential pread(%d, off=%d): %d bytes, first difference at +%d" % (
                        n, off, len(got), _first_diff(got, want[off:off + n])))
                off += n
                i += 1
            edges = set()
            for step in (3 * MiB, f["part"], 64 * 1024 * 7, 1 * MiB):
                edges.update(range(step, size, step))
            edges.add(size)
            for e in sorted(edges):
                for k in (1, 4096, 65536 + 1, 3 * MiB + 5):
                    o = max(0, e - k)
                    got = os.pread(fd, 2 * k, o)
                    exp = want[o:o + 2 * k]
                    if got != exp:
                        bad.append("pread(%d, off=%d) across %d: %d bytes, first difference at +%d" % (
                            2 * k, o, e, len(got), _first_diff(got, exp)))
            assert os.pread(fd, 100, size) == b"", "a read at the end of the file is not empty"
        finally:
            os.close(fd)
        assert not bad, "%d reads wrong: %s" % (len(bad), "; ".join(bad[:5]))
        m.unmount()
    st = m.stats()
    assert 0 < st["peak_cache_bytes"] <= 12 * MiB, "cache peak %d over the 12 MiB budget" % (
        st["peak_cache_bytes"])


def test_mount_concurrent_readers_one_file(ctx):
    """Four threads read the 37 MiB object from start to end through their
    own handles (different read sizes), two more pread at random, all at
    once: every byte as boto3's GET has it, and the readers share the cache
    (the object is not fetched once per reader)."""
    lib.require_fuse()
    f = odd()
    c = lib.s3("a")
    want = _get(c, f["bucket"], f["key"])
    size = f["size"]
    m = lib.Mount(ctx, "src:" + f["bucket"], "--kernel-readahead", "0")
    with m:
        path = os.path.join(m.path, f["key"])
        errors = []
        start = threading.Barrier(6)

        def sequential(rd):
            try:
                start.wait()
                with open(path, "rb", buffering=0) as fh:
                    off = 0
                    while True:
                        got = fh.read(rd)
                        if not got:
                            break
                        if got != want[off:off + len(got)]:
                            errors.append("reader %d at %d: first difference at +%d" % (
                                rd, off, _first_diff(got, want[off:off + len(got)])))
                            return
                        off += len(got)
                    if off != size:
                        errors.append("reader %d read %d of %d bytes" % (rd, off, size))
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append("reader %d: %r" % (rd, e))

        def randoms(seed):
            try:
                rnd = random.Random(seed)
                start.wait()
                fd = os.open(path, os.O_RDONLY)
                try:
                    for _ in range(60):
                        o = rnd.randrange(size)
                        n = rnd.choice([1, 4096, 65537, MiB + 7])
                        got = os.pread(fd, n, o)
                        if got != want[o:o + n]:
                            errors.append("pread(%d, off=%d) wrong" % (n, o))
                finally:
                    os.close(fd)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append("random reader %d: %r" % (seed, e))

        threads = [threading.Thread(target=sequential, args=(rd,))
                   for rd in (4096, 128 * 1024 + 1, MiB, 5 * MiB - 3)]
        threads += [threading.Thread(target=randoms, args=(s,)) for s in (1, 2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, "; ".join(errors[:5])
        m.unmount()
    st = m.stats()
    assert size <= st["fetched_bytes"] <= 2 * size, (
        "six readers of a %d-byte object fetched %d bytes" % (size, st["fetched_bytes"]))


def test_mount_paced_gets_leave_connections_usable(ctx):
    """Large GETs are read with a receive low-water mark on their socket
    (remote/http.c, pace_body): it must never hold back a body's last bytes
    and must be back at 1 before the connection carries its next answer.
    With two fetch threads (so connections are reused many times) and no
    retries: the 37 MiB object, whose last range is shorter than the mark,
    read whole, then small objects whose answers are smaller than the mark,
    each equal to boto3's GET; and the gateway served exactly the GETs the
    mount counted (none failed and was sent again). A mark left set does not
    fail this test by itself: the answer waits until radosgw closes the idle
    connection (about a minute, then it is read whole), so such a bug shows
    as this test taking over a minute instead of a few seconds (checked by
    leaving out the reset)."""
    lib.require_fuse()
    f = odd()
    c = lib.s3("a")
    small = {"paced/s%d.bin" % i: lib.det_bytes("paced-%d" % i, n)
             for i, n in enumerate((1, 1000, 70 * 1024 + 3, 300 * 1024))}
    lib.put_objects(c, f["bucket"], small)
    want = _get(c, f["bucket"], f["key"])
    m = lib.Mount(ctx, "src:" + f["bucket"], "--read-concurrency", "2", "--retries", "0",
                  "--kernel-readahead", "0")
    with m:
        before = lib.rgw_counters("a")
        with open(os.path.join(m.path, f["key"]), "rb") as fh:
            got = fh.read()
        assert got == want, "the object through the mount: %d bytes, first difference at +%d" % (
            len(got), _first_diff(got, want))
        for k, body in sorted(small.items()):
            with open(os.path.join(m.path, k), "rb") as fh:
                got = fh.read()
            assert got == body, "%s through the mount: %d bytes, first difference at +%d" % (
                k, len(got), _first_diff(got, body))
        after = lib.rgw_counters("a")
        m.unmount()
    st = m.stats()
    gets = lib.counters_delta(before, after).get("get", 0)
    assert st["requests"]["get"] == gets, "the mount counted %d GETs, the gateway served %d" % (
        st["requests"]["get"], gets)
    assert st["fetched_bytes"] == f["size"] + sum(len(b) for b in small.values()), st
