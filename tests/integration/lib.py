"""Helpers for the dth integration tests: where the servers and the binary
are, S3 clients for checking results, fast seeding, running dth, and
radosgw request counters.

The servers are started by tests/run-all.sh (through tests/harness/), which
exports:
  DTH_BIN              the dth binary (default: build/dth in the repo)
  DTH_TEST_RGW_A       radosgw A, e.g. http://127.0.0.1:7480 (the usual source)
  DTH_TEST_RGW_B       radosgw B on the same cluster (the usual destination)
  DTH_TEST_RGW_A_ASOK  admin sockets of A and B (request counters)
  DTH_TEST_RGW_B_ASOK
  DTH_TEST_CEPH_DIR    the cluster's run dir (logs under log/)
  DTH_TEST_S3RVER      s3rver, e.g. http://127.0.0.1:4568 (optional)
  DTH_TEST_WORKDIR     where per-test directories go (default: a temp dir)
  DTH_TEST_REQUIRE_SERVERS  when set, a missing server fails a test instead
                       of skipping it
  DTH_TEST_KEEP        keep the directories of passing tests too
Both gateways share one bucket namespace, so every bucket gets a unique name.
"""

import functools
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MiB = 1024 * 1024
RUN_ID = "%06x" % random.SystemRandom().randrange(1 << 24)

# Credentials of the test servers (see tests/harness/ceph.sh, s3rver.sh).
# The harness takes the secrets from the environment (tests/run-all.sh draws
# new ones each run), so every output of dth can be searched for them.
RGW_KEY, RGW_SECRET = "test", os.environ.get("DTH_TEST_RGW_SECRET", "test")
RP_KEY, RP_SECRET = "rp", os.environ.get("DTH_TEST_RP_SECRET", "rpsecret")  # a second user
S3RVER_KEY, S3RVER_SECRET = "S3RVER", "S3RVER"


class Skip(Exception):
    """Raise (or call skip()) to skip the running test."""


def skip(reason):
    raise Skip(reason)


# --------------------------------------------------------------------------
# environment


def dth_bin():
    return os.environ.get("DTH_BIN") or os.path.join(REPO, "build", "dth")


def endpoint(which):
    """URL of endpoint 'a', 'b' (radosgw) or 's3rver'; skips when not set."""
    var = {"a": "DTH_TEST_RGW_A", "b": "DTH_TEST_RGW_B", "s3rver": "DTH_TEST_S3RVER"}[which]
    url = os.environ.get(var)
    if not url:
        if os.environ.get("DTH_TEST_REQUIRE_SERVERS"):
            raise AssertionError("%s not set, and DTH_TEST_REQUIRE_SERVERS is" % var)
        skip("%s not set (start the servers with tests/run-all.sh)" % var)
    return url.rstrip("/")


def have_endpoint(which):
    var = {"a": "DTH_TEST_RGW_A", "b": "DTH_TEST_RGW_B", "s3rver": "DTH_TEST_S3RVER"}[which]
    return bool(os.environ.get(var))


# --------------------------------------------------------------------------
# S3 clients (for seeding and assertions; independent of dth)

_clients = {}
_clients_lock = threading.Lock()


def _config(**kw):
    base = dict(s3={"addressing_style": "path"}, retries={"max_attempts": 4, "mode": "standard"},
                max_pool_connections=48, connect_timeout=10, read_timeout=120)
    base.update(kw)
    try:
        # boto3 >= 1.36 adds CRC checksums by default; radosgw 16 and s3rver
        # predate them. Older boto3 (Debian's) has no such setting.
        return Config(request_checksum_calculation="when_required",
                      response_checksum_validation="when_required", **base)
    except TypeError:
        return Config(**base)


def s3(which="a", key=None, secret=None):
    """A boto3 S3 client for endpoint 'a', 'b' or 's3rver' (cached)."""
    if key is None:
        key, secret = (S3RVER_KEY, S3RVER_SECRET) if which == "s3rver" else (RGW_KEY, RGW_SECRET)
    url = endpoint(which)
    ck = (url, key, secret)
    with _clients_lock:
        c = _clients.get(ck)
        if c is None:
            session = boto3.session.Session()
            c = session.client("s3", endpoint_url=url, aws_access_key_id=key,
                               aws_secret_access_key=secret, region_name="us-east-1",
                               config=_config())
            _clients[ck] = c
    return c


_bucket_n = [0]
_bucket_lock = threading.Lock()


def unique_bucket_name(tag=""):
    with _bucket_lock:
        _bucket_n[0] += 1
        n = _bucket_n[0]
    tag = re.sub(r"[^a-z0-9-]+", "-", tag.lower()).strip("-")
    name = "dth-%s-%d%s" % (RUN_ID, n, ("-" + tag) if tag else "")
    return name[:63].rstrip("-")


def create_bucket(which="a", tag=""):
    name = unique_bucket_name(tag)
    s3(which).create_bucket(Bucket=name)
    return name


# --------------------------------------------------------------------------
# data and seeding


def det_bytes(seed, size):
    """Deterministic pseudo-random bytes (fast for big sizes)."""
    if size <= 0:
        return b""
    r = random.Random(seed)
    if size <= 64 * 1024:
        return r.randbytes(size)
    block = r.randbytes(MiB)
    # Vary each MiB so that parts differ (distinct part ETags).
    out = bytearray()
    i = 0
    while len(out) < size:
        out += hashlib.sha256(b"%s-%d" % (str(seed).encode(), i)).digest() + block[32:]
        i += 1
    del out[size:]
    return bytes(out)


def md5hex(data):
    return hashlib.md5(data).hexdigest()


def multipart_etag(data, part_size):
    """The ETag S3 gives an object uploaded in parts of part_size."""
    digests = [hashlib.md5(data[i:i + part_size]).digest() for i in range(0, len(data), part_size)]
    return "%s-%d" % (hashlib.md5(b"".join(digests)).hexdigest(), len(digests))


def _pool_map(fn, items, workers=16):
    items = list(items)
    if not items:
        return []
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as ex:
        return list(ex.map(fn, items))


def put_objects(client, bucket, objects, workers=16):
    """Upload {key: bytes} or {key: (bytes, extra_put_kwargs)} concurrently.
    Returns {key: md5hex}."""

    def put(item):
        key, val = item
        body, extra = (val if isinstance(val, tuple) else (val, {}))
        client.put_object(Bucket=bucket, Key=key, Body=body, **extra)
        return key, md5hex(body)

    return dict(_pool_map(put, objects.items(), workers))


def put_multipart(client, bucket, key, data, part_size, workers=8, **extra):
    """Upload data as a multipart upload with parts of part_size (the last
    one shorter). Returns the object's ETag (no quotes)."""
    up = client.create_multipart_upload(Bucket=bucket, Key=key, **extra)
    uid = up["UploadId"]
    offsets = list(range(0, len(data), part_size)) or [0]

    def part(i_off):
        i, off = i_off
        r = client.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=i + 1,
                               Body=data[off:off + part_size])
        return {"PartNumber": i + 1, "ETag": r["ETag"]}

    try:
        parts = _pool_map(part, enumerate(offsets), workers)
        client.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=uid,
                                         MultipartUpload={"Parts": parts})
    except Exception:
        client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=uid)
        raise
    return client.head_object(Bucket=bucket, Key=key)["ETag"].strip('"')


def small_objects(prefix, n, seed, max_size=3000):
    """{prefix + '%05d': bytes} with sizes 0..max_size (deterministic)."""
    r = random.Random(seed)
    out = {}
    for i in range(n):
        size = 0 if i == 0 else r.randrange(1, max_size)
        out["%s%05d" % (prefix, i)] = det_bytes("%s-%d" % (seed, i), size)
    return out


def module_fixture(fn):
    """Decorator: compute once per run, share between the tests of a module
    (use only for data that the tests do not change). A failure is remembered
    and re-raised for every test that uses the fixture."""
    cache = {}
    lock = threading.Lock()

    @functools.wraps(fn)
    def wrapper():
        with lock:
            if "value" not in cache and "error" not in cache:
                try:
                    cache["value"] = fn()
                except Skip:
                    raise
                except BaseException as e:  # noqa: B902 - re-raised below
                    cache["error"] = e
            if "error" in cache:
                e = cache["error"]
                raise RuntimeError("fixture %s failed: %s: %s" % (fn.__name__, type(e).__name__, e)) from e
            return cache["value"]

    return wrapper


# --------------------------------------------------------------------------
# reading back


def list_all(client, bucket, prefix=""):
    """{key: {'size': n, 'etag': 'no-quotes', 'storage_class': s}} of a bucket."""
    out = {}
    kw = {"Bucket": bucket, "Prefix": prefix}
    while True:
        r = client.list_objects_v2(**kw)
        for o in r.get("Contents", []):
            out[o["Key"]] = {"size": o["Size"], "etag": o["ETag"].strip('"'),
                             "storage_class": o.get("StorageClass")}
        if not r.get("IsTruncated"):
            return out
        kw["ContinuationToken"] = r["NextContinuationToken"]


def get_bytes(client, bucket, key):
    return client.get_object(Bucket=bucket, Key=key)["Body"].read()


def get_md5(client, bucket, key):
    h = hashlib.md5()
    body = client.get_object(Bucket=bucket, Key=key)["Body"]
    for chunk in iter(lambda: body.read(MiB), b""):
        h.update(chunk)
    return h.hexdigest()


def head(client, bucket, key):
    return client.head_object(Bucket=bucket, Key=key)


def multipart_uploads(client, bucket):
    """Unfinished multipart uploads in a bucket: [(key, upload_id)]."""
    r = client.list_multipart_uploads(Bucket=bucket)
    return [(u["Key"], u["UploadId"]) for u in r.get("Uploads", [])]


def assert_bytes(client, bucket, expected_md5, workers=16):
    """Download every key of {key: md5hex} and compare; lists every mismatch."""

    def check(item):
        key, want = item
        try:
            got = get_md5(client, bucket, key)
        except ClientError as e:
            return "%r: %s" % (key, e.response.get("Error", {}).get("Code", e))
        return None if got == want else "%r: md5 %s, expected %s" % (key, got, want)

    bad = [m for m in _pool_map(check, expected_md5.items(), workers) if m]
    assert not bad, "%d of %d objects differ: %s" % (len(bad), len(expected_md5), "; ".join(bad[:10]))


def assert_same_keys(got, want, what="destination"):
    got, want = set(got), set(want)
    missing, extra = sorted(want - got), sorted(got - want)
    assert not missing and not extra, "%s keys differ: %d missing %s, %d unexpected %s" % (
        what, len(missing), missing[:5], len(extra), extra[:5])


# --------------------------------------------------------------------------
# radosgw request counters (admin socket) and access log


def rgw_counters(which):
    """radosgw 'rgw' perf counters of gateway 'a' or 'b' ({req, get, put, ...})."""
    asok = os.environ.get("DTH_TEST_RGW_%s_ASOK" % which.upper())
    if not asok:
        skip("DTH_TEST_RGW_%s_ASOK not set" % which.upper())
    out = subprocess.run(["ceph", "--admin-daemon", asok, "perf", "dump", "rgw"],
                         check=True, capture_output=True, text=True, timeout=30).stdout
    d = json.loads(out)["rgw"]
    return {k: v for k, v in d.items() if isinstance(v, int)}


def counters_delta(before, after):
    return {k: after[k] - before.get(k, 0) for k in after}


def rgw_log_path(which):
    d = os.environ.get("DTH_TEST_CEPH_DIR")
    return os.path.join(d, "log", "client.rgw.%s.log" % which) if d else None


def rgw_log_size(which):
    p = rgw_log_path(which)
    try:
        return os.path.getsize(p)
    except (OSError, TypeError):
        return 0


def rgw_requests_since(which, offset):
    """Request lines ('METHOD /path?query STATUS') radosgw logged after offset
    (its log is written asynchronously: for diagnostics only)."""
    p = rgw_log_path(which)
    if not p:
        return []
    time.sleep(0.5)
    try:
        with open(p, "rb") as f:
            f.seek(offset)
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return []
    return ["%s %s" % m.groups() for m in re.finditer(r'beast: .*?"([A-Z]+ \S+) HTTP/[0-9.]+" (\d+)', text)]


# --------------------------------------------------------------------------
# running dth

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "WARNING: ThreadSanitizer")

REMOTE_TEMPLATE = """[remote {name}]
type = s3
provider = {provider}
endpoint = {endpoint}
region = us-east-1
path_style = true
access_key_id = {key}
secret_access_key = {secret}
"""


def remote_section(name, which="a", key=None, secret=None, provider=None, endpoint_url=None,
                   extra=None):
    if key is None:
        key, secret = (S3RVER_KEY, S3RVER_SECRET) if which == "s3rver" else (RGW_KEY, RGW_SECRET)
    text = REMOTE_TEMPLATE.format(
        name=name, provider=provider or ("other" if which == "s3rver" else "ceph"),
        endpoint=endpoint_url or endpoint(which), key=key, secret=secret)
    for k, v in (extra or {}).items():
        text += "%s = %s\n" % (k, v)
    return text + "\n"


def remote_env(name, which="a", key=None, secret=None, provider=None):
    """DTH_REMOTE_<NAME>_* variables defining a remote (no config file)."""
    if key is None:
        key, secret = (S3RVER_KEY, S3RVER_SECRET) if which == "s3rver" else (RGW_KEY, RGW_SECRET)
    p = "DTH_REMOTE_%s_" % name.upper()
    return {p + "TYPE": "s3", p + "PROVIDER": provider or ("other" if which == "s3rver" else "ceph"),
            p + "ENDPOINT": endpoint(which), p + "REGION": "us-east-1", p + "PATH_STYLE": "true",
            p + "ACCESS_KEY_ID": key, p + "SECRET_ACCESS_KEY": secret}


class DthError(AssertionError):
    pass


_extra_secrets = set()


def register_secret(value):
    """A secret a test hands to dth besides the harness's own: it is searched
    for in dth's outputs too."""
    _extra_secrets.add(value)
    return value


def secrets_in_use():
    """The secret values dth is given in this run that are distinctive enough
    to search for (tests/run-all.sh draws long random ones; a short default
    like "test" would match everywhere and is skipped)."""
    vals = {RGW_SECRET, RP_SECRET, REG_PASS} | _extra_secrets
    return sorted(v for v in vals if v and len(v) >= 12)


SECRET_SCAN_MAX = 64 * 1024 * 1024


class Context:
    """Per-test state: a directory, a config file (mode 600) with the remotes
    src (radosgw A), dst (radosgw B) and s3rver (when running), a state dir,
    unique bucket names, and the last dth stderr for failure reports."""

    def __init__(self, name, root):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix=re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:60] + ".", dir=root)
        self.state = os.path.join(self.dir, "state")
        self.config = os.path.join(self.dir, "dth.conf")
        self.last_stderr = ""
        self.last_cmd = None
        self._tasks = 0
        self._outputs = []  # stdout and stderr of every dth run, for check_no_secrets
        self._written = set()  # files the test wrote (configs): they hold secrets
        self.write_config()

    # -- config
    def default_remotes(self):
        text = ""
        if have_endpoint("a"):
            text += remote_section("src", "a")
        if have_endpoint("b"):
            text += remote_section("dst", "b")
        if have_endpoint("s3rver"):
            text += remote_section("s3rver", "s3rver")
        return text

    def write_config(self, text=None, extra="", path=None, mode=0o600):
        """Write the config file (default: the standard remotes, plus extra)."""
        path = path or self.config
        self._written.add(os.path.abspath(path))
        if text is None:
            text = self.default_remotes() + extra
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    # -- buckets
    def bucket(self, which="a", tag=""):
        """Create a bucket with a unique name on endpoint which."""
        return create_bucket(which, tag or self.name.split(".")[-1].replace("test_", "")[:20])

    def task(self, tag="t"):
        self._tasks += 1
        return "%s%d" % (tag, self._tasks)

    # -- running dth
    def base_env(self, extra=None):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.dir,
               "LANG": "C.UTF-8", "TMPDIR": self.dir}
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "LD_LIBRARY_PATH"):
            if k in os.environ:
                env[k] = os.environ[k]
        env.update(extra or {})
        return env

    def run_dth(self, args, env=None, check_exit=0, timeout=300, replace_env=False):
        """Run dth with args; returns (rc, stdout, stderr). check_exit: the
        expected exit status (int or tuple), or None for no check. env is
        added to a clean environment (HOME = the test dir, no AWS_* and no
        DTH_* variables unless given); replace_env=True uses env as it is."""
        exe = dth_bin()
        if not os.access(exe, os.X_OK):
            raise DthError("dth binary not found at %s (build it, or set DTH_BIN)" % exe)
        full_env = dict(env or {}) if replace_env else self.base_env(env)
        cmd = [exe] + [str(a) for a in args]
        self.last_cmd = cmd
        p = subprocess.Popen(cmd, env=full_env, cwd=REPO, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, start_new_session=True)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            out, err = p.communicate()
            self.last_stderr = err.decode("utf-8", "replace")
            raise DthError("dth timed out after %ds: %s" % (timeout, " ".join(cmd[1:])))
        out = out.decode("utf-8", "replace")
        err = err.decode("utf-8", "replace")
        self.last_stderr = err
        self._outputs.append(out + err)
        for m in SANITIZER_MARKERS:
            if m in err:
                raise DthError("sanitizer report in dth stderr (%s)" % m)
        rc = p.returncode
        if check_exit is not None:
            want = check_exit if isinstance(check_exit, (tuple, list)) else (check_exit,)
            if rc not in want:
                sig = " (killed by signal %d)" % -rc if rc < 0 else ""
                raise DthError("dth %s exited %d%s, expected %s" % (
                    " ".join(cmd[1:3]), rc, sig, "/".join(map(str, want))))
        return rc, out, err

    def run_dth_rss(self, args, timeout=600):
        """Run dth with args (expecting exit 0) under GNU time; returns
        (stdout, stderr, peak RSS in bytes) as the kernel counted it for the
        dth process (not as dth reports it; and not through a fork of this
        Python process, whose own memory a child's count would include)."""
        rss_file = os.path.join(self.dir, "rss.txt")
        exe = dth_bin()
        cmd = ["/usr/bin/time", "-f", "%M", "-o", rss_file, exe] + [str(a) for a in args]
        self.last_cmd = cmd
        p = subprocess.run(cmd, env=self.base_env(), cwd=REPO, capture_output=True,
                           timeout=timeout, start_new_session=True)
        out = p.stdout.decode("utf-8", "replace")
        err = p.stderr.decode("utf-8", "replace")
        self.last_stderr = err
        self._outputs.append(out + err)
        if p.returncode != 0:
            raise DthError("dth %s exited %d" % (" ".join(args[:1]), p.returncode))
        with open(rss_file) as f:
            kib = int(f.read().split()[-1])
        return out, err, kib * 1024

    def sync(self, src, dst, *opts, task=None, check_exit=0, config=True, state=None, env=None,
             json_out=True, parse=None, timeout=300):
        """dth sync [--config FILE] --state DIR --task NAME [--json] OPTS SRC DST.
        json_out adds --json; the parsed result is returned when parse (by
        default: json_out), else (rc, stdout, stderr)."""
        args = ["sync"]
        if config:
            args += ["--config", self.config if config is True else config]
        args += ["--state", state or self.state, "--task", task or "t"]
        if json_out:
            args.append("--json")
        args += list(opts) + [src, dst]
        rc, out, err = self.run_dth(args, env=env, check_exit=check_exit, timeout=timeout)
        if not (json_out if parse is None else parse):
            return rc, out, err
        return parse_sync_json(out)

    def popen_sync(self, src, dst, *opts, task="t"):
        """Start dth sync in the background (own process group); returns Popen."""
        exe = dth_bin()
        if not os.access(exe, os.X_OK):
            raise DthError("dth binary not found at %s (build it, or set DTH_BIN)" % exe)
        cmd = [exe, "sync", "--config", self.config, "--state", self.state, "--task", task,
               "--json"] + list(opts) + [src, dst]
        self.last_cmd = cmd
        self._bg_err = os.path.join(self.dir, "bg-stderr.txt")
        errf = open(self._bg_err, "wb")
        try:
            return subprocess.Popen(cmd, env=self.base_env(), cwd=REPO, stdout=subprocess.DEVNULL,
                                    stderr=errf, start_new_session=True)
        finally:
            errf.close()

    def manifest(self, *args, check_exit=0, json_out=False, env=None, timeout=120):
        """dth manifest --state STATE ARGS [--json], with DTH_CONFIG pointing
        at the test's config (diff and verify reach the remotes)."""
        e = {"DTH_CONFIG": self.config}
        e.update(env or {})
        a = ["manifest", "--state", self.state] + list(args)
        if json_out:
            a.append("--json")
        return self.run_dth(a, env=e, check_exit=check_exit, timeout=timeout)

    def wrote(self, path):
        """Mark a file the test wrote that holds secrets (a config) so that
        check_no_secrets does not search it."""
        self._written.add(os.path.abspath(path))
        return path

    def check_no_secrets(self):
        """No secret in use may appear in anything dth printed (stdout,
        stderr, --json) or wrote in the test directory (logs, stats files,
        the manifest), config files the test wrote aside. Raises DthError
        naming where one was found."""
        secrets = secrets_in_use()
        if not secrets:
            return
        found = []
        for i, text in enumerate(self._outputs):
            for s in secrets:
                if s in text:
                    found.append("output of dth run %d" % (i + 1))
        enc = [s.encode() for s in secrets]
        for root, _dirs, files in os.walk(self.dir):
            for fn in files:
                path = os.path.abspath(os.path.join(root, fn))
                if path in self._written or fn.endswith((".conf", "htpasswd")):
                    continue
                try:
                    if os.path.getsize(path) > SECRET_SCAN_MAX or not os.path.isfile(path):
                        continue
                    with open(path, "rb") as f:
                        data = f.read()
                except OSError:
                    continue
                if any(s in data for s in enc):
                    found.append(os.path.relpath(path, self.dir))
        if found:
            raise DthError("a secret in use appears in: %s" % ", ".join(sorted(set(found))[:10]))

    def cleanup(self, passed):
        if passed and not os.environ.get("DTH_TEST_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)


def work_root():
    root = os.environ.get("DTH_TEST_WORKDIR")
    if not root:
        root = tempfile.mkdtemp(prefix="dth-it.")
        os.environ["DTH_TEST_WORKDIR"] = root
    os.makedirs(root, exist_ok=True)
    return root


def fixture_context(name):
    """A Context for a module fixture (kept for the whole run)."""
    return Context(name, work_root())


SYNC_JSON_KEYS = ("transferred", "bytes", "skipped", "failed", "deleted", "seconds", "requests")
REQUEST_KINDS = ("list", "head", "get", "put", "copy", "multipart")


def parse_sync_json(out):
    """The one JSON object dth sync --json prints on stdout, checked for the
    documented fields."""
    try:
        res = json.loads(out)
    except ValueError as e:
        raise AssertionError("dth sync --json stdout is not one JSON object (%s): %r" % (e, out[:500]))
    assert isinstance(res, dict), "dth sync --json printed %s, not an object" % type(res).__name__
    missing = [k for k in SYNC_JSON_KEYS if k not in res]
    assert not missing, "sync JSON lacks %s: %s" % (missing, out[:500])
    rq = res["requests"]
    assert isinstance(rq, dict), "sync JSON 'requests' is not an object"
    missing = [k for k in REQUEST_KINDS if k not in rq]
    assert not missing, "sync JSON 'requests' lacks %s: %s" % (missing, rq)
    return res


def parse_json_records(out):
    """Records from a --json output: a JSON array, an object holding one
    array, or JSON lines. Returns a list."""
    text = out.strip()
    if not text:
        return []
    try:
        v = json.loads(text)
    except ValueError:
        recs = []
        for line in text.splitlines():
            line = line.strip()
            if line:
                recs.append(json.loads(line))
        return recs
    if isinstance(v, list):
        return v
    if isinstance(v, dict):
        lists = [x for x in v.values() if isinstance(x, list)]
        if len(lists) == 1:
            return lists[0]
        return [v]
    return [v]


def find_number(obj, *path_options):
    """The first number found at one of the key paths (tuples) in a JSON
    value, e.g. find_number(s, ('done', 'count'), ('done',), ('objects', 'done'))."""
    for path in path_options:
        cur = obj
        ok = True
        for k in path:
            if isinstance(cur, dict) and k in cur:
                cur = cur[k]
            else:
                ok = False
                break
        if ok and isinstance(cur, (int, float)) and not isinstance(cur, bool):
            return cur
    return None


# --------------------------------------------------------------------------
# big deterministic objects, generated part by part (never whole in memory)


class GeneratedObject:
    """size deterministic bytes made of parts of part_size bytes, each part
    generated on demand from (seed, part number): upload, hash, write to a
    file or read any range without ever holding the whole object."""

    def __init__(self, seed, size, part_size=8 * MiB):
        self.seed, self.size, self.part_size = str(seed), size, part_size
        self.nparts = max(1, -(-size // part_size))
        self._cache = {}  # a few parts, for read()
        self._md5 = None

    def part_len(self, i):
        return max(0, min(self.part_size, self.size - i * self.part_size))

    def part(self, i):
        data = self._cache.get(i)
        if data is None:
            data = random.Random("%s/%d" % (self.seed, i)).randbytes(self.part_len(i))
            if len(self._cache) >= 4:
                self._cache.pop(next(iter(self._cache)))
            self._cache[i] = data
        return data

    def parts(self):
        for i in range(self.nparts):
            yield random.Random("%s/%d" % (self.seed, i)).randbytes(self.part_len(i))

    def read(self, off, n):
        """Bytes [off, off+n) (clipped at the end, like a read)."""
        end = min(self.size, off + n)
        out = bytearray()
        while off < end:
            i, o = divmod(off, self.part_size)
            chunk = self.part(i)[o:o + (end - off)]
            out += chunk
            off += len(chunk)
        return bytes(out)

    def md5(self):
        if self._md5 is None:
            h = hashlib.md5()
            for p in self.parts():
                h.update(p)
            self._md5 = h.hexdigest()
        return self._md5

    def multipart_etag(self):
        digests = [hashlib.md5(p).digest() for p in self.parts()]
        return "%s-%d" % (hashlib.md5(b"".join(digests)).hexdigest(), len(digests))

    def write_to(self, path):
        with open(path, "wb") as f:
            for p in self.parts():
                f.write(p)

    def put(self, client, bucket, key, workers=4, **extra):
        """Multipart upload, one part per generated part; returns the ETag
        (no quotes). Memory: about workers parts at a time."""
        up = client.create_multipart_upload(Bucket=bucket, Key=key, **extra)
        uid = up["UploadId"]

        def part(i):
            body = random.Random("%s/%d" % (self.seed, i)).randbytes(self.part_len(i))
            r = client.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=i + 1, Body=body)
            return {"PartNumber": i + 1, "ETag": r["ETag"]}

        try:
            parts = _pool_map(part, range(self.nparts), workers)
            client.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=uid,
                                             MultipartUpload={"Parts": parts})
        except Exception:
            client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=uid)
            raise
        return client.head_object(Bucket=bucket, Key=key)["ETag"].strip('"')


def file_md5(path, chunk=MiB):
    """MD5 of a file read sequentially in chunks (constant memory)."""
    h = hashlib.md5()
    with open(path, "rb", buffering=0) as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


# --------------------------------------------------------------------------
# radosgw requests: exact totals (perf counter `req`) and their kinds (access log)


def rgw_req(which):
    """The `req` counter of radosgw 'a' or 'b' (every request it served)."""
    return rgw_counters(which)["req"]


RGW_LOG_LINE = re.compile(r'beast: \S+ \S+ - \S+ \[[^\]]*\] "([A-Z]+) (\S+) HTTP/[0-9.]+" (\d+) \S+ \S+ "([^"]*)"')


def rgw_log_requests(which, offset, want=0, timeout=10.0):
    """[(method, path, status, user_agent)] radosgw 'a'/'b' logged after byte
    offset. The log is written asynchronously: waits (up to timeout) until it
    holds at least `want` request lines (pass a delta of rgw_req)."""
    p = rgw_log_path(which)
    if not p:
        skip("DTH_TEST_CEPH_DIR not set (no radosgw access log)")
    deadline = time.monotonic() + timeout
    while True:
        try:
            with open(p, "rb") as f:
                f.seek(offset)
                text = f.read().decode("utf-8", "replace")
        except OSError:
            text = ""
        reqs = [(m.group(1), m.group(2), int(m.group(3)), m.group(4)) for m in RGW_LOG_LINE.finditer(text)]
        if len(reqs) >= want or time.monotonic() > deadline:
            return reqs
        time.sleep(0.2)


def is_list_request(method, path):
    """A bucket listing (ListObjects/ListObjectsV2): GET /bucket[/][?query]
    that is not ?uploads / ?location / ... sub-resource."""
    if method != "GET":
        return False
    p, _, q = path.partition("?")
    if p.strip("/").count("/") != 0 or p.strip("/") == "":
        return False
    params = [kv.split("=", 1)[0] for kv in q.split("&") if kv]
    sub = {"uploads", "location", "versioning", "acl", "policy", "tagging", "cors", "lifecycle",
           "website", "logging", "notification", "replication", "requestPayment", "encryption",
           "object-lock", "versions"}
    return not any(k in sub for k in params)


# --------------------------------------------------------------------------
# dth mount (a real FUSE mount)


def require_fuse():
    """Skip unless this machine can FUSE-mount (/dev/fuse and fusermount3)."""
    if not os.path.exists("/dev/fuse"):
        skip("/dev/fuse is missing")
    if not os.access("/dev/fuse", os.R_OK | os.W_OK):
        skip("/dev/fuse is not accessible")
    if not shutil.which("fusermount3"):
        skip("fusermount3 is not installed (Debian package fuse3)")


def _unescape_mountinfo(s):
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)


def mounts():
    """{mountpoint: fstype} from /proc/self/mountinfo."""
    out = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields = left.split()
            out[_unescape_mountinfo(fields[4])] = right.split()[0]
    return out


def is_mounted(path):
    return os.path.realpath(path) in mounts() or path in mounts()


def pid_alive(pid):
    """True while pid runs (a zombie counts as gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def proc_cpu_seconds(pid):
    """utime + stime of a process, in seconds (from /proc/PID/stat)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def dth_pids_for(mnt):
    """Live processes that are dth (by the binary's name) and have mnt among
    their arguments: a mount left behind."""
    names = {"dth", os.path.basename(dth_bin())}
    targets = {mnt, os.path.realpath(mnt), mnt.rstrip("/")}
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                argv = [a.decode("utf-8", "replace") for a in f.read().split(b"\0") if a]
        except OSError:
            continue
        if argv and os.path.basename(argv[0]) in names and targets & set(argv) and pid_alive(int(d)):
            pids.append(int(d))
    return pids


def wait_for(cond, timeout, interval=0.05):
    """Poll cond() until it is true or timeout seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(interval)


def fusermount_u(mnt, lazy=False):
    args = ["fusermount3", "-u"] + (["-z"] if lazy else []) + [mnt]
    return subprocess.run(args, capture_output=True, text=True, timeout=30)


def force_unmount(mnt):
    """Best effort: leave nothing mounted at mnt (for finally blocks)."""
    if is_mounted(mnt):
        if fusermount_u(mnt).returncode != 0:
            fusermount_u(mnt, lazy=True)
    if is_mounted(mnt):
        subprocess.run(["umount", "-l", mnt], capture_output=True, timeout=30)


_mount_help = {}


def mount_has_option(opt):
    """Whether `dth mount --help` documents opt (for optional extras only)."""
    exe = dth_bin()
    if exe not in _mount_help:
        try:
            p = subprocess.run([exe, "mount", "--help"], capture_output=True, text=True, timeout=30)
            _mount_help[exe] = p.stdout + p.stderr
        except (OSError, subprocess.TimeoutExpired):
            _mount_help[exe] = ""
    return re.search(r"(^|\s)%s(\s|=|$)" % re.escape(opt), _mount_help[exe], re.M) is not None


class Mount:
    """A `dth mount` started by a test. Usage:

        m = lib.Mount(ctx, "src:" + bucket, "--dir-cache-ttl", "0")
        try:
            m.start()            # returns once the mount is ready
            ... use m.path ...
            m.unmount()          # fusermount3 -u (or how="sigterm")
        finally:
            m.close()            # unmounts if still mounted, kills leftovers,
                                 # asserts no dth process for m.path is left
        m.stats()                # the --stats-file JSON written at unmount

    The daemon's stderr goes to a file in the test dir (shown when the test
    fails). foreground=True runs it with -f as a child (exit status known)."""

    def __init__(self, ctx, source, *opts, mnt=None, foreground=False, config=True, env=None,
                 stats=True, pid_file=True):
        self.ctx = ctx
        self.source = source
        self.opts = [str(o) for o in opts]
        n = getattr(ctx, "_mounts", 0) + 1
        ctx._mounts = n
        self.path = mnt or os.path.join(ctx.dir, "mnt%d" % n)
        self.foreground = foreground
        self.config = ctx.config if config is True else config
        self.env = env
        self.stats_file = os.path.join(ctx.dir, "mount%d-stats.json" % n) if stats else None
        self.pid_file = os.path.join(ctx.dir, "mount%d.pid" % n) if pid_file else None
        self.err_file = os.path.join(ctx.dir, "mount%d-stderr.txt" % n)
        self.proc = None  # the `dth mount` child (the daemon itself with -f)
        self.pid = None  # the serving process
        self.rc = None  # exit status of the child
        self.started = False

    def argv(self):
        a = [dth_bin(), "mount"]
        if self.foreground:
            a.append("-f")
        if self.config:
            a += ["--config", self.config]
        if self.pid_file:
            a += ["--pid-file", self.pid_file]
        if self.stats_file:
            a += ["--stats-file", self.stats_file]
        if not self.foreground and mount_has_option("--log-file"):
            a += ["--log-file", self.err_file]  # the daemon's log, for failure reports
        a += self.opts
        if self.source:
            a.append(self.source)
        a.append(self.path)
        return a

    def start(self, timeout=60):
        """Start and wait until mounted. Raises DthError when dth fails."""
        exe = dth_bin()
        if not os.access(exe, os.X_OK):
            raise DthError("dth binary not found at %s (build it, or set DTH_BIN)" % exe)
        os.makedirs(self.path, exist_ok=True)
        cmd = self.argv()
        self.ctx.last_cmd = cmd
        self.ctx._bg_err = self.err_file
        with open(self.err_file, "ab") as errf:
            self.proc = subprocess.Popen(cmd, env=self.ctx.base_env(self.env), cwd=REPO,
                                         stdin=subprocess.DEVNULL, stdout=errf, stderr=errf,
                                         start_new_session=True)
        self.started = True
        if self.foreground:
            ok = wait_for(lambda: is_mounted(self.path) or self.proc.poll() is not None, timeout)
            if self.proc.poll() is not None:
                self.rc = self.proc.returncode
                raise DthError("dth mount -f exited %d before mounting" % self.rc)
            if not ok or not is_mounted(self.path):
                raise DthError("dth mount -f: %s not mounted after %ds" % (self.path, timeout))
            self.pid = self.proc.pid
        else:
            try:
                self.rc = self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                raise DthError("dth mount did not return within %ds" % timeout)
            if self.rc != 0:
                raise DthError("dth mount exited %d, expected 0" % self.rc)
            # "when the command returns, the mountpoint is usable"
            if not is_mounted(self.path):
                raise DthError("dth mount exited 0 but %s is not mounted" % self.path)
            if self.pid_file:
                try:
                    with open(self.pid_file) as f:
                        self.pid = int(f.read().strip())
                except (OSError, ValueError) as e:
                    raise DthError("--pid-file %s unreadable after the mount: %s" % (self.pid_file, e))
            else:
                pids = dth_pids_for(self.path)
                self.pid = pids[0] if len(pids) == 1 else None
        if self.pid_file and self.foreground:
            wait_for(lambda: os.path.exists(self.pid_file), 5)
        self.check_stderr()
        return self

    def stderr(self):
        try:
            with open(self.err_file, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def check_stderr(self):
        err = self.stderr()
        for m in SANITIZER_MARKERS:
            if m in err:
                raise DthError("sanitizer report in dth mount's stderr (%s)" % m)

    def wait_exit(self, timeout=30):
        """Wait until the serving process is gone; returns the exit status when
        it is our child (-f), else None."""
        if self.foreground and self.proc is not None:
            try:
                self.rc = self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                raise AssertionError("dth mount (pid %d) still running %ds after the unmount" % (
                    self.proc.pid, timeout))
            return self.rc
        if self.pid and not wait_for(lambda: not pid_alive(self.pid), timeout):
            raise AssertionError("dth mount daemon (pid %d) still running %ds after the unmount" % (
                self.pid, timeout))
        return None

    def unmount(self, how="fusermount", timeout=30):
        """Unmount (how: 'fusermount' = fusermount3 -u, 'sigterm', 'sigint'),
        wait for the process to exit, check nothing is left. Returns the exit
        status with -f, else None."""
        if how == "fusermount":
            r = fusermount_u(self.path)
            assert r.returncode == 0, "fusermount3 -u %s failed: %s" % (self.path, r.stderr.strip())
        else:
            assert self.pid, "no pid of the dth mount process"
            os.kill(self.pid, {"sigterm": signal.SIGTERM, "sigint": signal.SIGINT}[how])
        rc = self.wait_exit(timeout)
        assert wait_for(lambda: not is_mounted(self.path), 10), "%s still mounted after %s" % (self.path, how)
        left = dth_pids_for(self.path)
        assert not left, "dth processes left for %s after %s: %s" % (self.path, how, left)
        self.check_stderr()
        return rc

    def stats(self):
        """The --stats-file JSON (written at unmount)."""
        assert self.stats_file, "mounted without --stats-file"
        assert wait_for(lambda: os.path.exists(self.stats_file), 5), "no --stats-file %s after the unmount" % (
            self.stats_file)
        with open(self.stats_file) as f:
            text = f.read()
        try:
            st = json.loads(text)
        except ValueError as e:
            raise AssertionError("--stats-file is not JSON (%s): %r" % (e, text[:300]))
        assert isinstance(st.get("requests"), dict), "--stats-file lacks requests: %r" % text[:300]
        return st

    def close(self):
        """For finally blocks: unmount if still mounted, end the process,
        and assert no dth process for the mountpoint is left."""
        if not self.started:
            return
        force_unmount(self.path)
        procs = set(dth_pids_for(self.path))
        if self.pid and pid_alive(self.pid):
            procs.add(self.pid)
        if procs:
            for p in procs:
                try:
                    os.kill(p, signal.SIGTERM)
                except OSError:
                    pass
            if not wait_for(lambda: not any(pid_alive(p) for p in procs), 10):
                for p in procs:
                    try:
                        os.kill(p, signal.SIGKILL)
                    except OSError:
                        pass
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        force_unmount(self.path)
        self.started = False
        assert not is_mounted(self.path), "%s is still mounted" % self.path
        left = dth_pids_for(self.path)
        assert not left, "dth processes left for %s: %s" % (self.path, left)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        # do not hide the test's own failure behind a cleanup assertion
        try:
            self.close()
        except AssertionError:
            if exc[0] is None:
                raise
        return False


# --------------------------------------------------------------------------
# container registries (tests/harness/registry.sh, make-images.sh)

REG_USER, REG_PASS = "testuser", os.environ.get("DTH_TEST_REG_PASS", "testpass")
REG_VARS = {"src": "DTH_TEST_REG_SRC", "dst": "DTH_TEST_REG_DST", "token": "DTH_TEST_REG_TOKEN"}


def registry_url(which):
    """URL of registry 'src' (no auth), 'dst' (basic) or 'token' (bearer);
    skips when the registry harness is not running."""
    url = os.environ.get(REG_VARS[which])
    if not url:
        if os.environ.get("DTH_TEST_REQUIRE_REGISTRIES"):
            raise AssertionError("%s not set, and DTH_TEST_REQUIRE_REGISTRIES is" % REG_VARS[which])
        skip("%s not set (start tests/harness/registry.sh)" % REG_VARS[which])
    return url.rstrip("/")


def registry_section(name, which, user=None, password=None):
    """A [remote NAME] of type registry for registry which (plain http)."""
    text = "[remote %s]\ntype = registry\nurl = %s\ninsecure = true\n" % (name, registry_url(which))
    if user is not None:
        text += "username = %s\npassword = %s\n" % (user, password)
    return text + "\n"


def skopeo_raw(which, image, creds=True):
    """The manifest bytes skopeo reads for image ("repo:tag") on registry which."""
    host = registry_url(which).split("://", 1)[1]
    cmd = ["skopeo", "inspect", "--raw", "--tls-verify=false"]
    if creds and which != "src":
        cmd += ["--creds", "%s:%s" % (REG_USER, REG_PASS)]
    env = dict(os.environ)
    env.pop("REGISTRY_AUTH_FILE", None)
    return subprocess.run(cmd + ["docker://%s/%s" % (host, image)], check=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                          timeout=120).stdout


# --------------------------------------------------------------------------
# the fault-injecting proxy (tests/harness/faultproxy.py)


def _port_range():
    """Ports the proxies may take: DTH_TEST_PROXY_PORTS=LO-HI (default 5410-5499)."""
    spec = os.environ.get("DTH_TEST_PROXY_PORTS", "5410-5499")
    lo, _, hi = spec.partition("-")
    return int(lo), int(hi or lo)


_ports_taken = set()
_ports_lock = threading.Lock()


def _free_port():
    """A port of the proxy range that nothing listens on (and that this run
    has not handed out yet)."""
    import socket
    lo, hi = _port_range()
    with _ports_lock:
        for p in range(lo, hi + 1):
            if p in _ports_taken:
                continue
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                continue
            finally:
                s.close()
            _ports_taken.add(p)
            return p
    raise AssertionError("no free port in %d-%d for a proxy" % (lo, hi))


def _release_port(p):
    with _ports_lock:
        _ports_taken.discard(p)


class FaultProxy:
    """tests/harness/faultproxy.py in front of an upstream URL (radosgw or a
    registry), started and stopped by PID. Usage:

        with lib.FaultProxy(ctx, lib.endpoint("a")) as px:
            px.configure(seed=7, rates={"err503": 0.05})
            ... point dth at px.url ...
            px.counters()["injected"]      # what it did, by kind

    Its output and its fault log (one JSON line per fault) go to the test dir."""

    def __init__(self, ctx, upstream, name="proxy", flavor="s3", config=None):
        self.ctx, self.name, self.flavor = ctx, name, flavor
        self.upstream = upstream.split("://", 1)[-1].rstrip("/")
        self.config = config or {}
        self.proc = None
        self.port = self.control_port = None
        self.pid_file = os.path.join(ctx.dir, "%s.pid" % name)
        self.log_file = os.path.join(ctx.dir, "%s-faults.jsonl" % name)
        self.out_file = os.path.join(ctx.dir, "%s.out" % name)
        self.access_file = os.path.join(ctx.dir, "%s-access.log" % name)

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    @property
    def hostport(self):
        return "127.0.0.1:%d" % self.port

    def start(self, timeout=15):
        import sys
        self.port, self.control_port = _free_port(), _free_port()
        cmd = [sys.executable, os.path.join(REPO, "tests", "harness", "faultproxy.py"),
               "--listen", "127.0.0.1:%d" % self.port, "--upstream", self.upstream,
               "--control", "127.0.0.1:%d" % self.control_port, "--flavor", self.flavor,
               "--config", json.dumps(self.config), "--pid-file", self.pid_file,
               "--log-file", self.log_file, "--access-log", self.access_file]
        with open(self.out_file, "ab") as out:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                         start_new_session=True)
        ok = wait_for(lambda: self.proc.poll() is not None or self._health(), timeout, 0.05)
        if self.proc.poll() is not None or not ok:
            self.stop()
            raise AssertionError("faultproxy %s did not start: %s" % (self.name, self._out()))
        return self

    def _out(self):
        try:
            with open(self.out_file, "rb") as f:
                return f.read().decode("utf-8", "replace")[-2000:]
        except OSError:
            return ""

    def _control(self, method, path, body=None, timeout=30):
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", self.control_port, timeout=timeout)
        try:
            data = json.dumps(body).encode() if body is not None else None
            c.request(method, path, body=data,
                      headers={"Content-Type": "application/json"} if data else {})
            r = c.getresponse()
            text = r.read()
            if r.status != 200:
                raise AssertionError("faultproxy %s %s: %d %s" % (method, path, r.status, text[:300]))
            return json.loads(text)
        finally:
            c.close()

    def _health(self):
        try:
            return self._control("GET", "/health", timeout=2) == "ok"
        except (OSError, AssertionError, ValueError):
            return False

    def configure(self, reset=False, **cfg):
        """Replace the proxy's configuration (faultproxy.DEFAULT_CONFIG's
        fields); reset=True also zeroes its counters and listing state."""
        out = self._control("POST", "/config", cfg)
        if reset:
            self.reset()
        return out

    def reset(self):
        return self._control("POST", "/reset", {})

    def counters(self):
        return self._control("GET", "/counters")

    def peak_rss_mib(self):
        """The proxy's peak resident memory (VmHWM), in MiB."""
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
        return 0.0

    def stop(self):
        """End the proxy (SIGTERM by PID, SIGKILL after 10 s)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
            except OSError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None
        for p in (self.port, self.control_port):
            if p:
                _release_port(p)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False
