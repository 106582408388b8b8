#!/usr/bin/env python3
"""synth-s3: a synthetic S3 server for scale tests (Python 3.11 stdlib only).

It serves buckets of N deterministic objects that are generated on the fly and
never stored, so dth can be measured at 10^7 keys and beyond without a store
that holds them. It does NOT check signatures: any SigV4 (or no) credentials
are accepted.

Keys. Object i (0 <= i < N) of a synthetic bucket is

    d%04d/s%03d/obj-%010d.dat  %  (i // 10^6, (i // 1000) % 1000, i)

Every field has a fixed width, so the keys sort (byte order) exactly as their
indexes do: the first key after any string is found by bisection over i, a
prefix is a contiguous run of indexes, and no listing is ever materialised.

Bodies. Object i's body depends on its content class c = i % CLASSES only:
the text "synth-s3 c=<c> " repeated and cut to size(c) bytes, where size(c) =
1 + (c * 7919) % --max-size. ETag = MD5 of that body (computed once per class
at start), Last-Modified a fixed date. GET honours Range; HEAD and GET
?partNumber=1 answer the whole object (every synthetic object is one part).

Buckets.
  --bucket NAME   synthetic, N keys (repeatable: each is its own copy)
  --mirror NAME   synthetic too, the same N keys, sizes and ETags (a
                  destination that already holds everything)
  --empty NAME    an ordinary bucket that starts empty (repeatable)
A bucket created with PUT Bucket is an ordinary bucket too. Writes (PUT,
CopyObject, multipart) are accepted in every bucket and counted; the bodies
are discarded (ETag = MD5 of the bytes received; a multipart object's ETag is
S3's MD5-of-part-MD5s "-N"). An ordinary bucket records the key, size and
ETag of what was written (metadata only, at most --max-stored keys over all
buckets; past that, writes are still accepted but not listed, and the stats'
"stored_dropped" says how many) and lists and HEADs them; a write to a
synthetic bucket is counted only. DELETE removes a recorded key.

Listing follows S3's rules: ListObjectsV2 (list-type=2) and V1, prefix,
delimiter (common prefixes count towards max-keys and roll up every key
under them), start-after / marker, continuation-token (opaque), max-keys
(1..1000, default 1000), encoding-type=url, IsTruncated only when more
results exist, NextContinuationToken, KeyCount, ascending byte order.

Counters. GET /__stats answers JSON: requests by kind (LIST, HEAD, GET, PUT,
COPY, MPU_INIT, MPU_PART, MPU_COMPLETE, ...), keys listed, bytes sent and
received; POST /__stats/reset zeroes them. --access-log FILE writes one line
per request (Unix time, method, path and query, status, kind).

Start/stop: --port P [--host 127.0.0.1] --keys N; --pid-file FILE (removed at
exit); SIGTERM or SIGINT stops it. --list-delay MS adds a delay to every LIST
(to model a remote store's LIST latency).

Throughput: bench/bench_scale.py measures the pages per second it serves
alone (curl, one keep-alive HTTP/1.1 connection) next to dth's figures. A
synthetic page without a delimiter is rendered straight from the index range
(about 0.5 ms of CPU for 1,000 keys on an idle core); with a delimiter or in
an ordinary bucket the general path is slower.
"""

import argparse
import base64
import bisect
import contextlib
import hashlib
import json
import os
import re
import signal
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

CLASSES = 8192
LAST_MODIFIED_ISO = "2026-01-01T00:00:00.000Z"
LAST_MODIFIED_HTTP = "Thu, 01 Jan 2026 00:00:00 GMT"
KEY_RE = re.compile(r"^d(\d{4})/s(\d{3})/obj-(\d{10})\.dat$")
XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/"


def synth_key(i):
    return "d%04d/s%03d/obj-%010d.dat" % (i // 1000000, (i // 1000) % 1000, i)


def synth_index(key):
    """Index of a synthetic key, or -1 when key is not one (of any N)."""
    m = KEY_RE.match(key)
    if not m:
        return -1
    i = int(m.group(3))
    return i if synth_key(i) == key else -1


class Content:
    """Sizes, ETags and bodies of the content classes."""

    def __init__(self, max_size):
        self.sizes = [1 + (c * 7919) % max_size for c in range(CLASSES)]
        self.etags = [hashlib.md5(self.body(c)).hexdigest() for c in range(CLASSES)]
        self.etags_b = [e.encode() for e in self.etags]

    def body(self, c, start=0, end=None):
        size = self.sizes[c]
        end = size if end is None else min(end, size)
        unit = b"synth-s3 c=%d " % c
        reps = end // len(unit) + 1
        return (unit * reps)[start:end]


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with getattr(self, "lock"):
            self.requests = {}
            self.keys_listed = 0
            self.bytes_sent = 0
            self.bytes_received = 0
            self.stored_dropped = 0
            self.started = time.time()

    def count(self, kind, listed=0, sent=0, received=0):
        with self.lock:
            self.requests[kind] = self.requests.get(kind, 0) + 1
            self.keys_listed += listed
            self.bytes_sent += sent
            self.bytes_received += received

    def snapshot(self):
        with self.lock:
            return {"requests": dict(self.requests), "keys_listed": self.keys_listed,
                    "bytes_sent": self.bytes_sent, "bytes_received": self.bytes_received,
                    "stored_dropped": self.stored_dropped,
                    "seconds": round(time.time() - self.started, 3)}


class StoredBucket:
    """An ordinary bucket: key -> (size, etag) of what was written, sorted."""

    def __init__(self):
        self.keys = []  # sorted
        self.meta = {}

    def put(self, key, size, etag):
        if key not in self.meta:
            bisect.insort(self.keys, key)
        self.meta[key] = (size, etag)

    def delete(self, key):
        if self.meta.pop(key, None) is not None:
            del self.keys[bisect.bisect_left(self.keys, key)]


class SynthBucket:
    def __init__(self, n):
        self.n = n


def first_true(lo, hi, pred):
    """The smallest i in [lo, hi) with pred(i) true (pred monotonic), or hi."""
    while lo < hi:
        mid = (lo + hi) // 2
        if pred(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


class Source:
    """A uniform sorted-key view of either kind of bucket: count, key(i),
    size/etag(i)."""

    def __init__(self, server, bucket):
        self.srv = server
        self.b = bucket
        self.synth = isinstance(bucket, SynthBucket)
        self.n = bucket.n if self.synth else len(bucket.keys)

    def key(self, i):
        return synth_key(i) if self.synth else self.b.keys[i]

    def size_etag(self, i):
        if self.synth:
            c = i % CLASSES
            return self.srv.content.sizes[c], self.srv.content.etags[c]
        return self.b.meta[self.b.keys[i]]

    def first_after(self, s):
        return first_true(0, self.n, lambda i: self.key(i) > s)

    def first_at_or_after(self, s):
        return first_true(0, self.n, lambda i: self.key(i) >= s)

    def past_prefix(self, lo, p):
        """First index from lo whose key does not start with p (keys from lo
        are >= p)."""
        lp = len(p)
        return first_true(lo, self.n, lambda i: self.key(i)[:lp] > p)


def encode_token(kind, value):
    return base64.urlsafe_b64encode((kind + value).encode()).decode()


def decode_token(tok):
    raw = base64.urlsafe_b64decode(tok.encode()).decode()
    if not raw or raw[0] not in "kp":
        raise ValueError("bad token")
    return raw[0], raw[1:]


def list_entries(src, prefix, delim, after, after_is_prefix, max_keys):
    """The entries of one page: [("k", index) | ("p", common prefix)], and
    whether more results exist."""
    lo = src.first_at_or_after(prefix) if prefix else 0
    if after is not None:
        lo = max(lo, src.first_after(after))
        if after_is_prefix:
            lo = max(lo, src.past_prefix(lo, after))
    hi = src.past_prefix(lo, prefix) if prefix else src.n
    out = []
    i = lo
    lp = len(prefix)
    while i < hi and len(out) < max_keys:
        k = src.key(i)
        if delim:
            j = k.find(delim, lp)
            if j >= 0:
                cp = k[:j + len(delim)]
                out.append(("p", cp))
                i = src.past_prefix(i, cp)
                continue
        out.append(("k", i))
        i += 1
    return out, i < hi


NOLOCK = contextlib.nullcontext()
XML_DECL = b'<?xml version="1.0" encoding="UTF-8"?>\n'
CONTENTS_TAIL = ("</Key><LastModified>" + LAST_MODIFIED_ISO + "</LastModified><ETag>&quot;%s&quot;"
                 "</ETag><Size>%d</Size><StorageClass>STANDARD</StorageClass></Contents>")
CONTENTS_KEY = "<Contents><Key>%s" + CONTENTS_TAIL
CONTENTS_B = ("<Contents><Key>d%04d/s%03d/obj-%010d.dat" + CONTENTS_TAIL).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "synth-s3"
    sys_version = ""

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, fmt, *args):  # no stderr line per request
        pass

    # ---- plumbing

    def send(self, status, body=b"", headers=None, kind=None, listed=0, head=False, prolog=b""):
        """One answer: the status line and headers in one write, the body
        (prolog + body) in a second (TCP_NODELAY is set: no Nagle stall)."""
        headers = headers or {}
        length = headers.pop("_length", None) if head else len(prolog) + len(body)
        lines = ["HTTP/1.1 %d %s" % (status, self.responses.get(status, ("",))[0]),
                 "Server: synth-s3", "x-amz-request-id: synth",
                 "Content-Length: %d" % (length or 0)]
        for k, v in headers.items():
            lines.append("%s: %s" % (k, v))
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if not head and len(body) < 4096:
            self.wfile.write(data + prolog + body)
        else:
            self.wfile.write(data + prolog)
            if not head:
                self.wfile.write(body)
        srv = self.server.synth
        srv.stats.count(kind or "OTHER", listed=listed, sent=0 if head else length,
                        received=self.received)
        if srv.access_log:
            with srv.log_lock:
                srv.access_log.write("%.6f %s %s %d %s\n" % (time.time(), self.command, self.path,
                                                             status, kind))
                srv.access_log.flush()

    def xml(self, status, body, kind, listed=0, tail=b""):
        """An XML answer; body str or bytes (then tail is appended)."""
        if isinstance(body, str):
            body = body.encode()
        self.send(status, body + tail if tail else body, {"Content-Type": "application/xml"},
                  kind, listed, prolog=XML_DECL)

    def error(self, status, code, msg, kind, head=False):
        if head:
            return self.send(status, b"", {"_length": 0}, kind, head=True)
        self.xml(status, "<Error><Code>%s</Code><Message>%s</Message></Error>" % (code, escape(msg)),
                 kind)

    def read_body(self):
        if self.command == "POST" and "delete" in self.query:
            # DeleteObjects needs its body (the keys), not only its MD5
            n = int(self.headers.get("Content-Length") or 0)
            self.delete_body = self.rfile.read(n)
            self.received = n
            return n, hashlib.md5(self.delete_body)
        te = self.headers.get("Transfer-Encoding", "")
        h = hashlib.md5()
        n = 0
        if "chunked" in te.lower():
            while True:
                line = self.rfile.readline()
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                left = size
                while left:
                    chunk = self.rfile.read(min(left, 1 << 20))
                    if not chunk:
                        raise ConnectionError("short body")
                    h.update(chunk)
                    left -= len(chunk)
                    n += len(chunk)
                self.rfile.readline()
        else:
            left = int(self.headers.get("Content-Length") or 0)
            while left:
                chunk = self.rfile.read(min(left, 1 << 20))
                if not chunk:
                    raise ConnectionError("short body")
                h.update(chunk)
                left -= len(chunk)
                n += len(chunk)
        self.received = n
        return n, h

    def route(self):
        self.received = 0
        u = urllib.parse.urlsplit(self.path)
        self.query = dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True))
        path = urllib.parse.unquote(u.path)
        parts = path.lstrip("/").split("/", 1)
        self.bucket_name = parts[0]
        self.key = parts[1] if len(parts) > 1 else ""
        self.bucket = self.server.synth.buckets.get(self.bucket_name)

    # ---- methods

    def do_GET(self):
        self.route()
        if self.path.startswith("/__stats"):
            body = json.dumps(self.server.synth.stats.snapshot()).encode()
            return self.send(200, body, {"Content-Type": "application/json"}, "STATS")
        if not self.bucket_name:
            names = "".join("<Bucket><Name>%s</Name><CreationDate>%s</CreationDate></Bucket>"
                            % (escape(b), LAST_MODIFIED_ISO) for b in sorted(self.server.synth.buckets))
            return self.xml(200, '<ListAllMyBucketsResult xmlns="%s"><Owner><ID>synth</ID>'
                            '</Owner><Buckets>%s</Buckets></ListAllMyBucketsResult>'
                            % (XMLNS, names), "LIST_BUCKETS")
        if self.bucket is None:
            return self.error(404, "NoSuchBucket", "no such bucket", "NO_BUCKET")
        if not self.key:
            return self.bucket_get()
        if "uploadId" in self.query:
            return self.list_parts()
        if "tagging" in self.query:
            return self.xml(200, '<Tagging xmlns="%s"><TagSet></TagSet></Tagging>' % XMLNS,
                            "GET_TAGGING")
        if "acl" in self.query:
            return self.xml(200, '<AccessControlPolicy xmlns="%s"><Owner><ID>synth</ID></Owner>'
                            '<AccessControlList></AccessControlList></AccessControlPolicy>'
                            % XMLNS, "GET_ACL")
        self.object_read(head=False)

    def do_HEAD(self):
        self.route()
        if self.bucket is None:
            return self.error(404, "NoSuchBucket", "", "NO_BUCKET", head=True)
        if not self.key:
            return self.send(200, b"", {"x-amz-bucket-region": "us-east-1", "_length": 0},
                             "HEAD_BUCKET", head=True)
        self.object_read(head=True)

    def do_PUT(self):
        self.route()
        n, h = self.read_body()
        if not self.key:
            if self.bucket is None and self.bucket_name:
                self.server.synth.buckets[self.bucket_name] = StoredBucket()
                return self.send(200, b"", {"Location": "/" + self.bucket_name}, "CREATE_BUCKET")
            return self.error(409, "BucketAlreadyOwnedByYou", "exists", "CREATE_BUCKET")
        if self.bucket is None:
            return self.error(404, "NoSuchBucket", "no such bucket", "NO_BUCKET")
        if "tagging" in self.query:
            return self.send(200, b"", None, "PUT_TAGGING")
        if "uploadId" in self.query:
            return self.upload_part(n, h)
        src = self.headers.get("x-amz-copy-source")
        if src:
            return self.copy_object(src)
        etag = h.hexdigest()
        self.store(self.key, n, etag)
        self.send(200, b"", {"ETag": '"%s"' % etag}, "PUT")

    def do_POST(self):
        self.route()
        if self.path.startswith("/__stats/reset"):
            self.server.synth.stats.reset()
            return self.send(200, b"{}", {"Content-Type": "application/json"}, "STATS")
        n, h = self.read_body()
        if self.bucket is None:
            return self.error(404, "NoSuchBucket", "no such bucket", "NO_BUCKET")
        if "uploads" in self.query:
            return self.mpu_init()
        if "uploadId" in self.query:
            return self.mpu_complete()
        if "delete" in self.query:
            return self.delete_multi()
        self.error(400, "InvalidRequest", "unsupported POST", "OTHER")

    def do_DELETE(self):
        self.route()
        if self.bucket is None:
            return self.error(404, "NoSuchBucket", "no such bucket", "NO_BUCKET")
        if "uploadId" in self.query:
            with self.server.synth.lock:
                self.server.synth.uploads.pop(self.query["uploadId"], None)
            return self.send(204, b"", None, "MPU_ABORT")
        if "tagging" in self.query:
            return self.send(204, b"", None, "DELETE_TAGGING")
        if isinstance(self.bucket, StoredBucket):
            with self.server.synth.lock:
                self.bucket.delete(self.key)
        self.send(204, b"", None, "DELETE")

    # ---- buckets

    def bucket_get(self):
        q = self.query
        if "location" in q:
            return self.xml(200, '<LocationConstraint xmlns="%s"></LocationConstraint>' % XMLNS,
                            "GET_LOCATION")
        if "versioning" in q:
            return self.xml(200, '<VersioningConfiguration xmlns="%s"/>' % XMLNS, "GET_VERSIONING")
        if "uploads" in q:
            return self.xml(200, '<ListMultipartUploadsResult xmlns="%s"><Bucket>%s</Bucket>'
                            '<IsTruncated>false</IsTruncated></ListMultipartUploadsResult>'
                            % (XMLNS, escape(self.bucket_name)), "LIST_UPLOADS")
        for sub in ("policy", "cors", "lifecycle", "notification", "tagging", "encryption",
                    "replication", "website", "logging", "requestPayment", "ownershipControls",
                    "publicAccessBlock", "object-lock", "acl"):
            if sub in q:
                return self.error(404, "NoSuchConfiguration", sub, "GET_BUCKET_CONFIG")
        self.list_objects()

    def list_objects(self):
        q = self.query
        v2 = q.get("list-type") == "2"
        try:
            max_keys = int(q.get("max-keys", "1000"))
        except ValueError:
            return self.error(400, "InvalidArgument", "max-keys", "LIST")
        if max_keys < 0:
            return self.error(400, "InvalidArgument", "max-keys", "LIST")
        max_keys = min(max_keys, 1000)
        prefix, delim = q.get("prefix", ""), q.get("delimiter", "")
        after, after_is_prefix = None, False
        if v2 and "continuation-token" in q:
            try:
                kind, after = decode_token(q["continuation-token"])
            except ValueError:
                return self.error(400, "InvalidArgument", "The continuation token provided "
                                  "is incorrect", "LIST")
            after_is_prefix = kind == "p"
        elif v2 and q.get("start-after"):
            after = q["start-after"]
        elif not v2 and q.get("marker"):
            after = q["marker"]
            after_is_prefix = bool(delim) and after.endswith(delim)
        delay = self.server.synth.list_delay
        if delay:
            time.sleep(delay)
        if isinstance(self.bucket, SynthBucket) and not delim:
            return self.list_synth_fast(v2, q, prefix, max_keys, after, after_is_prefix)
        lock = self.server.synth.lock if isinstance(self.bucket, StoredBucket) else NOLOCK
        with lock:
            src = Source(self.server.synth, self.bucket)
            entries, more = list_entries(src, prefix, delim, after, after_is_prefix, max_keys)
            rows = [(k, src.key(v), src.size_etag(v)) if k == "k" else (k, v, None)
                    for k, v in entries]
        self.list_answer(v2, q, prefix, delim, max_keys, rows, more)

    def list_synth_fast(self, v2, q, prefix, max_keys, after, after_is_prefix):
        """A synthetic bucket without a delimiter: a run of indexes, rendered
        straight from the index (synthetic keys need no escaping)."""
        src = Source(self.server.synth, self.bucket)
        lo = src.first_at_or_after(prefix) if prefix else 0
        if after is not None:
            lo = max(lo, src.first_after(after))
            if after_is_prefix:
                lo = max(lo, src.past_prefix(lo, after))
        hi = src.past_prefix(lo, prefix) if prefix else src.n
        top = min(hi, lo + max_keys)
        sizes, etags = self.server.synth.content.sizes, self.server.synth.content.etags_b
        body = b"".join([CONTENTS_B % (i // 1000000, (i // 1000) % 1000, i, etags[i % CLASSES],
                                       sizes[i % CLASSES]) for i in range(lo, top)])
        more = top < hi
        head = self.list_head(v2, q, prefix, "", max_keys, top - lo, more,
                              ("k", synth_key(top - 1)) if more and top > lo else None)
        self.send(200, body + b"</ListBucketResult>", {"Content-Type": "application/xml"}, "LIST",
                  top - lo, prolog=XML_DECL + head.encode())

    def list_head(self, v2, q, prefix, delim, max_keys, count, more, last):
        """The elements before the entries; last: (kind, name) of the last
        entry when the listing is truncated."""
        url = q.get("encoding-type") == "url"
        enc = (lambda s: urllib.parse.quote(s, safe="/")) if url else escape
        out = ['<ListBucketResult xmlns="%s"><Name>%s</Name><Prefix>%s</Prefix>'
               % (XMLNS, escape(self.bucket_name), enc(prefix))]
        if v2:
            out.append("<KeyCount>%d</KeyCount>" % count)
            if "continuation-token" in q:
                out.append("<ContinuationToken>%s</ContinuationToken>" % q["continuation-token"])
            if q.get("start-after"):
                out.append("<StartAfter>%s</StartAfter>" % enc(q["start-after"]))
        else:
            out.append("<Marker>%s</Marker>" % enc(q.get("marker", "")))
        out.append("<MaxKeys>%d</MaxKeys>" % max_keys)
        if delim:
            out.append("<Delimiter>%s</Delimiter>" % enc(delim))
        if url:
            out.append("<EncodingType>url</EncodingType>")
        out.append("<IsTruncated>%s</IsTruncated>" % ("true" if more else "false"))
        if more and last:
            if v2:
                out.append("<NextContinuationToken>%s</NextContinuationToken>"
                           % encode_token(*last))
            elif delim:
                out.append("<NextMarker>%s</NextMarker>" % enc(last[1]))
        return "".join(out)

    def list_answer(self, v2, q, prefix, delim, max_keys, rows, more):
        enc = ((lambda s: urllib.parse.quote(s, safe="/")) if q.get("encoding-type") == "url"
               else escape)
        out = [self.list_head(v2, q, prefix, delim, max_keys, len(rows), more,
                              rows[-1][:2] if rows else None)]
        keys = 0
        for kind, name, se in rows:
            if kind == "k":
                keys += 1
                out.append(CONTENTS_KEY % (enc(name), se[1], se[0]))
            else:
                out.append("<CommonPrefixes><Prefix>%s</Prefix></CommonPrefixes>" % enc(name))
        out.append("</ListBucketResult>")
        self.xml(200, "".join(out), "LIST", listed=keys)

    # ---- objects

    def lookup(self):
        """(size, etag, content class or None) of the key, or None."""
        b = self.bucket
        if isinstance(b, SynthBucket):
            i = synth_index(self.key)
            if i < 0 or i >= b.n:
                return None
            c = i % CLASSES
            return self.server.synth.content.sizes[c], self.server.synth.content.etags[c], c
        with self.server.synth.lock:
            m = b.meta.get(self.key)
        return (m[0], m[1], None) if m else None

    def object_read(self, head):
        kind = "HEAD" if head else "GET"
        found = self.lookup()
        if found is None:
            return self.error(404, "NoSuchKey", "no such key", kind, head=head)
        size, etag, c = found
        hdr = {"ETag": '"%s"' % etag, "Last-Modified": LAST_MODIFIED_HTTP,
               "Content-Type": "application/octet-stream", "Accept-Ranges": "bytes"}
        pn = self.query.get("partNumber")
        if pn is not None and pn != "1":
            return self.error(416, "InvalidPartNumber", "one part", kind, head=head)
        rng = self.headers.get("Range")
        start, end, status = 0, size, 200
        if rng:
            m = re.match(r"^bytes=(\d*)-(\d*)$", rng.strip())
            if not m or (not m.group(1) and not m.group(2)):
                return self.error(400, "InvalidRange", rng, kind, head=head)
            if m.group(1):
                start = int(m.group(1))
                end = min(size, int(m.group(2)) + 1) if m.group(2) else size
            else:
                start = max(0, size - int(m.group(2)))
            if start >= size or end <= start:
                hdr["Content-Range"] = "bytes */%d" % size
                return self.error(416, "InvalidRange", "not satisfiable", kind, head=head)
            status = 206
            hdr["Content-Range"] = "bytes %d-%d/%d" % (start, end - 1, size)
        im = self.headers.get("If-Match")
        if im and im.strip('"') != etag and im != "*":
            return self.error(412, "PreconditionFailed", "If-Match", kind, head=head)
        if c is None:
            body = b"\0" * (end - start)  # bodies written here are not kept
        else:
            body = self.server.synth.content.body(c, start, end)
        if head:
            hdr["_length"] = end - start
        self.send(status, body if not head else b"", hdr, kind, head=head)

    def store(self, key, size, etag):
        if not isinstance(self.bucket, StoredBucket):
            return
        srv = self.server.synth
        with srv.lock:
            if key not in self.bucket.meta and srv.stored >= srv.max_stored:
                srv.stats.stored_dropped += 1
                return
            if key not in self.bucket.meta:
                srv.stored += 1
            self.bucket.put(key, size, etag)

    def copy_object(self, src):
        s = urllib.parse.unquote(src.split("?", 1)[0]).lstrip("/")
        sb, _, sk = s.partition("/")
        saved = (self.bucket, self.key)
        self.bucket, self.key = self.server.synth.buckets.get(sb), sk
        found = self.lookup() if self.bucket is not None else None
        self.bucket, self.key = saved
        if found is None:
            return self.error(404, "NoSuchKey", "copy source", "COPY")
        self.store(self.key, found[0], found[1])
        self.xml(200, '<CopyObjectResult><LastModified>%s</LastModified><ETag>&quot;%s&quot;'
                 '</ETag></CopyObjectResult>' % (LAST_MODIFIED_ISO, found[1]), "COPY")

    # ---- multipart

    def mpu_init(self):
        srv = self.server.synth
        with srv.lock:
            srv.upload_seq += 1
            uid = "synth-%d-%d" % (os.getpid(), srv.upload_seq)
            srv.uploads[uid] = {"bucket": self.bucket_name, "key": self.key, "parts": {}}
        self.xml(200, '<InitiateMultipartUploadResult xmlns="%s"><Bucket>%s</Bucket><Key>%s</Key>'
                 '<UploadId>%s</UploadId></InitiateMultipartUploadResult>'
                 % (XMLNS, escape(self.bucket_name), escape(self.key), uid), "MPU_INIT")

    def upload_part(self, n, h):
        srv = self.server.synth
        uid = self.query["uploadId"]
        try:
            pn = int(self.query.get("partNumber", "0"))
        except ValueError:
            pn = 0
        with srv.lock:
            up = srv.uploads.get(uid)
            if up is None or not 1 <= pn <= 10000:
                up = None
            src = self.headers.get("x-amz-copy-source")
            if up is not None:
                up["parts"][pn] = (h.digest(), n)
        if up is None:
            return self.error(404, "NoSuchUpload", "no such upload", "MPU_PART")
        if src:
            return self.xml(200, '<CopyPartResult><LastModified>%s</LastModified><ETag>&quot;%s'
                            '&quot;</ETag></CopyPartResult>' % (LAST_MODIFIED_ISO, h.hexdigest()),
                            "MPU_PART_COPY")
        self.send(200, b"", {"ETag": '"%s"' % h.hexdigest()}, "MPU_PART")

    def list_parts(self):
        srv = self.server.synth
        with srv.lock:
            up = srv.uploads.get(self.query["uploadId"])
            parts = sorted(up["parts"].items()) if up else None
        if parts is None:
            return self.error(404, "NoSuchUpload", "no such upload", "LIST_PARTS")
        rows = "".join("<Part><PartNumber>%d</PartNumber><ETag>&quot;%s&quot;</ETag><Size>%d"
                       "</Size></Part>" % (pn, d.hex(), n) for pn, (d, n) in parts)
        self.xml(200, '<ListPartsResult xmlns="%s"><Bucket>%s</Bucket><Key>%s</Key><UploadId>%s'
                 '</UploadId><IsTruncated>false</IsTruncated>%s</ListPartsResult>'
                 % (XMLNS, escape(self.bucket_name), escape(self.key), self.query["uploadId"], rows),
                 "LIST_PARTS")

    def mpu_complete(self):
        srv = self.server.synth
        with srv.lock:
            up = srv.uploads.pop(self.query["uploadId"], None)
        if up is None:
            return self.error(404, "NoSuchUpload", "no such upload", "MPU_COMPLETE")
        parts = sorted(up["parts"].items())
        etag = "%s-%d" % (hashlib.md5(b"".join(d for _, (d, _n) in parts)).hexdigest(), len(parts))
        self.store(self.key, sum(n for _, (_d, n) in parts), etag)
        self.xml(200, '<CompleteMultipartUploadResult xmlns="%s"><Bucket>%s</Bucket><Key>%s</Key>'
                 '<ETag>&quot;%s&quot;</ETag></CompleteMultipartUploadResult>'
                 % (XMLNS, escape(self.bucket_name), escape(self.key), etag), "MPU_COMPLETE")

    def delete_multi(self):
        keys = re.findall(r"<Key>(.*?)</Key>", self.delete_body.decode("utf-8", "replace"))
        keys = [k.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"')
                .replace("&apos;", "'").replace("&amp;", "&") for k in keys]
        if isinstance(self.bucket, StoredBucket):
            with self.server.synth.lock:
                for k in keys:
                    self.bucket.delete(k)
        rows = "".join("<Deleted><Key>%s</Key></Deleted>" % escape(k) for k in keys)
        self.xml(200, '<DeleteResult xmlns="%s">%s</DeleteResult>' % (XMLNS, rows), "DELETE_MULTI")


class Synth:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.log_lock = threading.Lock()
        self.stats = Stats()
        self.content = Content(args.max_size)
        self.buckets = {}
        for b in args.bucket or []:
            self.buckets[b] = SynthBucket(args.keys)
        for b in args.mirror or []:
            self.buckets[b] = SynthBucket(args.keys)
        for b in args.empty or []:
            self.buckets[b] = StoredBucket()
        self.uploads = {}
        self.upload_seq = 0
        self.stored = 0
        self.max_stored = args.max_stored
        self.list_delay = args.list_delay / 1000.0
        self.access_log = open(args.access_log, "a") if args.access_log else None


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--keys", type=int, default=1000, help="objects in a synthetic bucket")
    ap.add_argument("--bucket", action="append", help="a synthetic bucket (repeatable)")
    ap.add_argument("--mirror", action="append", help="a synthetic bucket listing the same keys")
    ap.add_argument("--empty", action="append", help="an ordinary bucket, empty at start")
    ap.add_argument("--max-size", type=int, default=8192, help="largest generated body")
    ap.add_argument("--max-stored", type=int, default=200000,
                    help="written keys recorded (metadata only) over all ordinary buckets")
    ap.add_argument("--list-delay", type=float, default=0.0, help="milliseconds added to a LIST")
    ap.add_argument("--access-log", help="one line per request")
    ap.add_argument("--pid-file")
    args = ap.parse_args()
    if args.keys < 0 or args.max_size < 1:
        ap.error("--keys >= 0 and --max-size >= 1")
    synth = Synth(args)
    srv = Server((args.host, args.port), Handler)
    srv.synth = synth

    def stop(_sig, _frm):
        threading.Thread(target=srv.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.pid_file:
        with open(args.pid_file, "w") as f:
            f.write("%d\n" % os.getpid())
    print("synth-s3 listening on http://%s:%d (%d keys; buckets %s)" % (
        args.host, args.port, args.keys, ", ".join(sorted(synth.buckets))), flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    finally:
        srv.server_close()
        if args.pid_file:
            try:
                os.unlink(args.pid_file)
            except OSError:
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
