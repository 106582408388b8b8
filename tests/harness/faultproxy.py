#!/usr/bin/env python3
"""faultproxy: a fault-injecting HTTP/1.1 reverse proxy for dth's tests.

It sits between dth and a real server (radosgw, docker-registry): dth's
endpoint points at the proxy, the proxy forwards each request to the upstream
server byte for byte, Host header included (SigV4 signs it, and the registry
builds its Location URLs from it, which then point back at the proxy), and
streams both bodies in small pieces (Content-Length, chunked or
close-delimited; a 128 MiB part is never held whole). Keep-alive is kept on
both sides: one upstream connection per client connection, so a fault that
drops the client connection drops exactly one upstream connection too.

Random faults (each with a rate; see KINDS):
  before forwarding   err500, err503 (S3 SlowDown / registry UNAVAILABLE),
                      err429 (with Retry-After), reset_before (the request is
                      read whole, never forwarded, and the connection reset)
  after the answer    reset_headers (status and headers relayed, then a
                      reset: the server did the work, the client never
                      learns), and for answers with a body: reset_body (reset
                      mid-body), truncate (the body cut short, then a clean
                      close), cl_short / cl_long (a Content-Length below /
                      above the bytes sent, then a close; a chunked answer
                      is reframed with a Content-Length, or truncated when
                      over 8 MiB), stall (headers and
                      part of the body, then silence until the client gives
                      up, at most stall_seconds)
Rates of the first group are per request, of the second per answer (the body
kinds only among 2xx answers that have a body). A `max` per kind caps it;
`ensure` names kinds to inject once, at the first fitting request, when
chance has not done it yet (so a short run still shows every kind).

Decisions are reproducible: each is a hash of (seed, the request's identity,
how many times that identity was seen before, the stage), not a draw from a
shared generator, so the same requests get the same faults however the
client's threads interleave. The identity is the method, the path and the
query without volatile parts (uploadId, the registry's _state, UUIDs in the
path, and any string listed in `strip`, such as a test's random bucket name).
A retry of the same request is the next occurrence and gets a fresh draw.

Hostile modes (for ListObjectsV2 answers, recognised by list-type=2, and for
HEAD ?partNumber=N):
  listing.mode = unsorted        entries of each page from `page` on sorted
                                 case-insensitively (or two swapped when
                                 that changes nothing)
                 backwards       page `page` (>= 2) starts with the last
                                 `count` entries of the previous page
                 duplicate_page  page `page` (>= 2) holds the previous page's
                                 entries again (its own never reach the client)
                 no_truncated    page `page` loses <IsTruncated> and
                                 <NextContinuationToken>
                 repeat_token    page `page` (>= 2) names as next token the
                                 token it was asked with, for ever
  rename_keys    {listed key: key shown} in listings (url-encoded form, for
                 encoding-type=url), e.g. {"a-nul-b": "a%00b"}
  flip           a list of rules {"match": regex on "METHOD /path?query",
                 "dir": "up" | "down", "at": byte offset, "times": n}: the byte
                 at that offset of a fixed-length body is XORed with 0x01, in
                 the request body forwarded upstream ("up") or in a 2xx
                 answer's body ("down"), for the first n requests the rule
                 matches whose body reaches the offset (a bit flipped in
                 flight that TCP did not catch); the first rule that takes a
                 body flips it; counted in hostile["flip"]
  latency        seconds every request (that `match` fits) waits before it
                 is forwarded: a distant server, so that requests overlap
  part_sizes     {"bucket/key": {"N": bytes, ..., "count": n}}: HEAD
                 ?partNumber=N answers as a server that keeps part layouts
                 (radosgw 16 ignores partNumber): that Content-Length, a
                 Content-Range from the sizes of the parts before it, and
                 x-amz-mp-parts-count n; honest or lying, as the test says

Control interface (HTTP on --control; JSON):
  GET  /counters   requests, forwarded, by method and status, injected by
                   kind, hostile rewrites by mode, deletes forwarded, bytes,
                   body PUTs forwarded (puts: "object" and "part"; puts_md5:
                   those that carried a Content-MD5), the most requests
                   served at once (max_in_flight, by method and "all"),
                   the last events (kind, method, path; never headers)
  GET  /config     the configuration in force
  POST /config     replace it (fields as in DEFAULT_CONFIG; missing ones
                   take their defaults)
  POST /reset      zero the counters, occurrences and listing state
  GET  /health     "ok"

Only the Python 3 standard library (asyncio). A small purpose-built proxy
rather than mitmproxy: its decisions are deterministic per request, it can
rewrite S3 listings and part sizes, it counts what it did by kind, and it
starts in well under a second with nothing to install.

usage: faultproxy.py --listen HOST:PORT --upstream HOST:PORT --control HOST:PORT
                     [--flavor s3|registry] [--config JSON] [--pid-file F]
                     [--log-file F] [--access-log F] [--detach]
It stops on SIGTERM or SIGINT, and when its parent process exits (unless
--detach).
"""

import argparse
import asyncio
import collections
import hashlib
import json
import os
import re
import signal
import socket
import struct
import sys
import time
import urllib.parse

PRE_KINDS = ("err500", "err503", "err429", "reset_before")
POST_KINDS = ("reset_headers",)
BODY_KINDS = ("reset_body", "truncate", "cl_short", "cl_long", "stall")
KINDS = PRE_KINDS + POST_KINDS + BODY_KINDS
LISTING_MODES = ("unsorted", "backwards", "duplicate_page", "no_truncated", "repeat_token")

DEFAULT_CONFIG = {
    "seed": 1,
    "rates": {},  # kind -> probability
    "max": {},  # kind -> cap on injections
    "ensure": {},  # kind -> regex on "METHOD /path?query" (or null): inject it
                   # once at the first fitting request if chance has not yet
    "match": None,  # regex on "METHOD /path?query": random faults only there
    "strip": [],  # strings removed from the identity
    "stall_seconds": 90.0,
    "retry_after": "1",
    "listing": {"mode": None, "bucket": None, "page": None, "count": 5},
    "rename_keys": {},
    "part_sizes": {},
    "flip": [],
    "latency": 0.0,  # seconds each request (where `match` fits) waits before it is forwarded
}

PIECE = 256 * 1024
CL_REFRAME_MAX = 8 << 20  # the largest chunked answer a cl_* fault reframes
VOLATILE_PARAMS = {"uploadId", "_state", "X-Amz-Signature", "X-Amz-Credential", "X-Amz-Date",
                   "X-Amz-Security-Token"}
SECRET_PARAMS = {"X-Amz-Signature", "X-Amz-Credential", "X-Amz-Security-Token", "token",
                 "access_token"}
UUID_RE = re.compile(r"/[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
CONTENTS_RE = re.compile(rb"<Contents>.*?</Contents>", re.S)
KEY_RE = re.compile(rb"<Key>(.*?)</Key>", re.S)

S3_ERRORS = {
    "err500": (500, "Internal Server Error", "InternalError",
               "We encountered an internal error. Please try again."),
    "err503": (503, "Slow Down", "SlowDown", "Please reduce your request rate."),
    "err429": (429, "Too Many Requests", "TooManyRequests", "Please reduce your request rate."),
}
REG_ERRORS = {
    "err500": (500, "Internal Server Error", "UNKNOWN", "injected internal error"),
    "err503": (503, "Service Unavailable", "UNAVAILABLE", "service unavailable"),
    "err429": (429, "Too Many Requests", "TOOMANYREQUESTS", "too many requests"),
}


class Closed(Exception):
    """The connection is to be dropped (the fault is done, or a peer left)."""


def merged_config(cfg):
    out = json.loads(json.dumps(DEFAULT_CONFIG))
    for k, v in (cfg or {}).items():
        if k not in out:
            raise ValueError("unknown config field %r" % k)
        if k == "listing":
            out[k].update(v or {})
        else:
            out[k] = v
    for k in list(out["rates"]) + list(out["max"]) + list(out["ensure"]):
        if k not in KINDS:
            raise ValueError("unknown fault kind %r" % k)
    mode = out["listing"]["mode"]
    if mode is not None and mode not in LISTING_MODES:
        raise ValueError("unknown listing mode %r" % mode)
    flips = []
    for f in out["flip"] or []:
        f = dict({"match": None, "dir": "up", "at": 0, "times": 1}, **f)
        if f["dir"] not in ("up", "down") or int(f["at"]) < 0:
            raise ValueError("bad flip rule %r" % (f,))
        flips.append(f)
    out["flip"] = flips
    if not 0 <= float(out["latency"]) <= 60:
        raise ValueError("latency must be 0 to 60 seconds")
    for rx in [out["match"]] + list(out["ensure"].values()) + [f["match"] for f in flips]:
        if rx:
            re.compile(rx)
    return out


class Head:
    """A request or response head: first line and headers (order and case kept)."""

    def __init__(self, first, headers):
        self.first = first
        self.headers = headers  # [[name, value]]

    def get(self, name):
        n = name.lower()
        for k, v in self.headers:
            if k.lower() == n:
                return v
        return None

    def set(self, name, value):
        n = name.lower()
        for h in self.headers:
            if h[0].lower() == n:
                h[1] = value
                return
        self.headers.append([name, value])

    def remove(self, name):
        n = name.lower()
        self.headers = [h for h in self.headers if h[0].lower() != n]

    def has_token(self, name, token):
        v = self.get(name)
        return v is not None and token in [t.strip().lower() for t in v.split(",")]

    def encode(self):
        lines = [self.first] + ["%s: %s" % (k, v) for k, v in self.headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def parse_head(raw):
    text = raw.decode("latin-1")
    lines = text.split("\r\n")
    first = lines[0]
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        if line[0] in " \t" and headers:  # obsolete folding
            headers[-1][1] += " " + line.strip()
            continue
        name, _, value = line.partition(":")
        headers.append([name.strip(), value.strip()])
    return Head(first, headers)


async def read_head(reader):
    """The next head, or None at a clean end of stream."""
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        if not e.partial.strip():
            return None
        raise Closed("incomplete head")
    except asyncio.LimitOverrunError:
        raise Closed("head too large")
    return parse_head(raw)


def framing(head, is_request, request_method=None, status=None):
    """('none'|'fixed'|'chunked'|'eof', length)."""
    if not is_request:
        if request_method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            return "none", 0
    te = head.get("Transfer-Encoding")
    if te and "chunked" in te.lower():
        return "chunked", None
    cl = head.get("Content-Length")
    if cl is not None:
        try:
            n = int(cl)
        except ValueError:
            raise Closed("bad Content-Length")
        return ("fixed", n) if n > 0 else ("none", 0)
    return ("none", 0) if is_request else ("eof", None)


async def body_pieces(reader, kind, length):
    """The raw bytes of a body as they arrive (chunked framing kept)."""
    if kind == "fixed":
        left = length
        while left > 0:
            data = await reader.read(min(PIECE, left))
            if not data:
                raise Closed("peer closed mid-body")
            left -= len(data)
            yield data
    elif kind == "chunked":
        while True:
            line = await reader.readuntil(b"\r\n")
            yield line
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while True:  # trailers, up to the empty line
                    t = await reader.readuntil(b"\r\n")
                    yield t
                    if t == b"\r\n":
                        return
            left = size + 2  # data and its CRLF
            while left > 0:
                data = await reader.read(min(PIECE, left))
                if not data:
                    raise Closed("peer closed mid-chunk")
                left -= len(data)
                yield data
    elif kind == "eof":
        while True:
            data = await reader.read(PIECE)
            if not data:
                return
            yield data


def dechunk(raw):
    out = bytearray()
    i = 0
    while True:
        j = raw.index(b"\r\n", i)
        size = int(raw[i:j].split(b";")[0].strip() or b"0", 16)
        i = j + 2
        if size == 0:
            return bytes(out)
        out += raw[i:i + size]
        i += size + 2


def rst(writer):
    """Close with a TCP reset."""
    sock = writer.get_extra_info("socket")
    try:
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    writer.transport.abort()


class Proxy:
    def __init__(self, upstream, flavor, cfg, log, access=None):
        self.up_host, self.up_port = upstream
        self.flavor = flavor
        self.cfg = merged_config(cfg)
        self.log = log
        self.access = access
        self.reset()

    def reset(self):
        self.occ = collections.Counter()
        self.tokens = {}  # continuation token -> page info
        self.c = {
            "requests": 0, "forwarded": 0, "by_method": collections.Counter(),
            "by_status": collections.Counter(),
            "injected": {k: 0 for k in KINDS},
            "hostile": collections.Counter(), "deletes_forwarded": 0,
            "bytes_up": 0, "bytes_down": 0, "connections": 0,
            "puts": collections.Counter(), "puts_md5": collections.Counter(),
            "in_flight": 0, "max_in_flight": collections.Counter(),
        }
        self.flying = collections.Counter()  # method -> requests being served
        self.events = collections.deque(maxlen=500)
        self.req_n = 0
        self.ensured = set()
        self.ensured_idents = set()
        self.flipped = collections.Counter()  # flip rule index -> bodies flipped

    def counters(self):
        c = dict(self.c)
        for k in ("by_method", "by_status", "hostile", "puts", "puts_md5", "max_in_flight"):
            c[k] = dict(self.c[k])
        c["injected"] = dict(self.c["injected"])
        c["injected_total"] = sum(c["injected"].values())
        c["events"] = list(self.events)
        return c

    # -- decisions
    def identity(self, method, target):
        path, _, query = target.partition("?")
        for s in self.cfg["strip"]:
            if s:
                path = path.replace(s, "")
        path = UUID_RE.sub("/{uuid}", path)
        params = [(k, v) for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True)
                  if k not in VOLATILE_PARAMS]
        q = urllib.parse.urlencode(sorted(params))
        for s in self.cfg["strip"]:
            if s:
                q = q.replace(s, "")
        return "%s %s?%s" % (method, path, q)

    def draw(self, ident, occ, stage):
        h = hashlib.blake2b(("%s|%s|%d|%s" % (self.cfg["seed"], ident, occ, stage)).encode(),
                            digest_size=8).digest()
        return int.from_bytes(h, "big") / 2.0 ** 64

    def pick(self, u, kinds):
        acc = 0.0
        rates, caps = self.cfg["rates"], self.cfg["max"]
        for k in kinds:
            r = float(rates.get(k, 0) or 0)
            if r <= 0:
                continue
            if k in caps and self.c["injected"][k] >= caps[k]:
                continue
            acc += r
            if u < acc:
                return k
        return None

    def pick_ensured(self, kinds, method, target, ident):
        """A kind of `ensure` not injected yet that fits this request, or None.
        At most one per request identity, so they spread over requests and
        never add up to exhaust one request's retries."""
        if ident in self.ensured_idents:
            return None
        for k, rx in self.cfg["ensure"].items():
            if k not in kinds or k in self.ensured or self.c["injected"][k] > 0:
                continue
            if rx and not re.search(rx, "%s %s" % (method, target)):
                continue
            self.ensured.add(k)
            self.ensured_idents.add(ident)
            return k
        return None

    def note(self, kind, method, target, extra=None):
        if kind in self.c["injected"]:
            self.c["injected"][kind] += 1
        else:
            self.c["hostile"][kind] += 1
        ev = {"t": round(time.time(), 3), "kind": kind, "method": method,
              "path": target.partition("?")[0]}
        if extra:
            ev.update(extra)
        self.events.append(ev)
        if self.log:
            self.log.write(json.dumps(ev) + "\n")
            self.log.flush()

    def access_line(self, method, target, status, kind=None, req=None):
        if not self.access:
            return
        rng = req.get("Range") if req is not None else None
        path, _, query = target.partition("?")
        params = [(k, v) for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True)
                  if k not in SECRET_PARAMS]
        q = urllib.parse.urlencode(params)
        self.access.write("%.3f %s %s%s %s%s%s\n" % (
            time.time(), method, path, "?" + q if q else "", status, " " + kind if kind else "",
            " range=" + rng if rng else ""))
        self.access.flush()

    # -- client connections
    async def handle(self, reader, writer):
        self.c["connections"] += 1
        conn = {"up": None}
        try:
            while True:
                req = await read_head(reader)
                if req is None:
                    break
                if not await self.serve_counted(conn, req, reader, writer):
                    break
        except (Closed, ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                OSError, ValueError):
            pass
        finally:
            self.drop_upstream(conn)
            if not writer.transport.is_closing():
                writer.transport.abort() if writer.transport.get_write_buffer_size() else writer.close()

    async def serve_counted(self, conn, req, creader, cwriter):
        """serve(), counting the requests of each method served at once."""
        method = req.first.split(" ", 1)[0]
        self.flying[method] += 1
        self.c["in_flight"] += 1
        top = self.c["max_in_flight"]
        top[method] = max(top[method], self.flying[method])
        top["all"] = max(top["all"], self.c["in_flight"])
        try:
            return await self.serve(conn, req, creader, cwriter)
        finally:
            self.flying[method] -= 1
            self.c["in_flight"] -= 1

    def drop_upstream(self, conn):
        up = conn.get("up")
        conn["up"] = None
        if up is not None:
            up[1].transport.abort()

    async def upstream(self, conn):
        up = conn.get("up")
        if up is not None and not up[0].at_eof():
            return up
        self.drop_upstream(conn)
        r, w = await asyncio.open_connection(self.up_host, self.up_port, limit=1 << 20)
        conn["up"] = (r, w)
        return conn["up"]

    async def drain_request_body(self, req, creader, cwriter):
        kind, length = framing(req, True)
        if kind == "none":
            return
        if req.has_token("Expect", "100-continue"):
            cwriter.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await cwriter.drain()
        async for _ in body_pieces(creader, kind, length):
            pass

    async def answer_error(self, kind, req, method, cwriter):
        status, reason, code, msg = (S3_ERRORS if self.flavor == "s3" else REG_ERRORS)[kind]
        self.req_n += 1
        if self.flavor == "s3":
            body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code><Message>%s'
                    '</Message><RequestId>faultproxy-%d</RequestId></Error>' % (code, msg, self.req_n))
            ctype = "application/xml"
        else:
            body = json.dumps({"errors": [{"code": code, "message": msg, "detail": None}]})
            ctype = "application/json"
        body = body.encode()
        h = Head("HTTP/1.1 %d %s" % (status, reason),
                 [["Content-Type", ctype], ["Content-Length", str(len(body))],
                  ["x-amz-request-id", "faultproxy-%d" % self.req_n]])
        if kind == "err429" or (kind == "err503" and self.flavor == "s3"):
            h.headers.append(["Retry-After", str(self.cfg["retry_after"])])
        cwriter.write(h.encode() + (b"" if method == "HEAD" else body))
        await cwriter.drain()
        self.c["by_status"][str(status)] += 1

    async def serve(self, conn, req, creader, cwriter):
        """One request. True to keep the client connection."""
        try:
            method, target, version = req.first.split(" ", 2)
        except ValueError:
            raise Closed("bad request line")
        self.c["requests"] += 1
        self.c["by_method"][method] += 1
        ident = self.identity(method, target)
        occ = self.occ[ident]
        self.occ[ident] += 1
        match = self.cfg["match"]
        eligible = not match or re.search(match, "%s %s" % (method, target)) is not None

        kind = None
        if eligible:
            kind = (self.pick(self.draw(ident, occ, "pre"), PRE_KINDS)
                    or self.pick_ensured(PRE_KINDS, method, target, ident))
        if kind is not None:
            await self.drain_request_body(req, creader, cwriter)
            self.note(kind, method, target)
            self.access_line(method, target, "-", kind)
            if kind == "reset_before":
                rst(cwriter)
                raise Closed(kind)
            await self.answer_error(kind, req, method, cwriter)
            return version == "HTTP/1.1" and not req.has_token("Connection", "close")

        # forward
        if eligible and self.cfg["latency"]:
            await asyncio.sleep(self.cfg["latency"])
        ur, uw = await self.upstream(conn)
        uw.write(req.encode())
        self.c["forwarded"] += 1
        path = target.partition("?")[0]
        qs = dict(urllib.parse.parse_qsl(target.partition("?")[2], keep_blank_values=True))
        if method == "DELETE" or (method == "POST" and "delete" in qs):
            self.c["deletes_forwarded"] += 1
        op = "part" if "partNumber" in qs and "uploadId" in qs else None if qs else "object"
        if method == "PUT" and op and not req.get("x-amz-copy-source"):
            self.c["puts"][op] += 1
            if req.get("Content-MD5"):
                self.c["puts_md5"][op] += 1
        rkind, rlen = framing(req, True)
        flip_up = self.flip_at("up", method, target, rkind, rlen)
        pump = asyncio.ensure_future(self.pump_request(creader, uw, rkind, rlen, flip_up))
        try:
            while True:
                resp = await read_head(ur)
                if resp is None:
                    raise Closed("upstream closed before answering")
                status = int(resp.first.split(" ", 2)[1])
                if 100 <= status < 200 and status != 101:
                    cwriter.write(resp.encode())
                    await cwriter.drain()
                    continue
                break
            if not pump.done():
                try:
                    await asyncio.wait_for(asyncio.shield(pump), 5)
                except asyncio.TimeoutError:
                    pass
            body_sent = pump.done() and not pump.cancelled() and pump.exception() is None
            if not pump.done():
                pump.cancel()
            elif pump.exception() is not None:
                raise Closed("request body: %s" % pump.exception())
        except BaseException:
            if not pump.done():
                pump.cancel()
            raise
        self.c["by_status"][str(status)] += 1
        self.access_line(method, target, status, req=req)
        skind, slen = framing(resp, False, method, status)
        keep = (body_sent and version == "HTTP/1.1" and not req.has_token("Connection", "close")
                and not resp.has_token("Connection", "close") and skind != "eof")

        # hostile rewrites
        if method == "HEAD" and "partNumber" in qs and self.cfg["part_sizes"]:
            self.lie_part_size(resp, method, target, path, qs)
        if (method == "GET" and qs.get("list-type") == "2" and 200 <= status < 300
                and self.listing_active(path)):
            return await self.rewrite_listing(resp, ur, skind, slen, cwriter, method, target, path,
                                              qs) and keep

        post = None
        if eligible:
            has_body = 200 <= status < 300 and skind in ("fixed", "chunked")
            kinds = POST_KINDS + (BODY_KINDS if has_body else ())
            post = (self.pick(self.draw(ident, occ, "post"), kinds)
                    or self.pick_ensured(kinds, method, target, ident))
        if post is None:
            cwriter.write(resp.encode())
            flip_down = (self.flip_at("down", method, target, skind, slen)
                         if 200 <= status < 300 else None)
            async for piece in self.flipped_pieces(ur, skind, slen, flip_down):
                cwriter.write(piece)
                self.c["bytes_down"] += len(piece)
                await cwriter.drain()
            await cwriter.drain()
            if skind == "eof":
                self.drop_upstream(conn)
            return keep
        return await self.respond_faulty(post, conn, resp, ur, skind, slen, cwriter, creader,
                                         method, target, ident, occ)

    def flip_at(self, direction, method, target, kind, length):
        """The body offset to flip in this body, or None."""
        for i, f in enumerate(self.cfg["flip"]):
            if (f["dir"] != direction or kind != "fixed" or self.flipped[i] >= f["times"]
                    or int(f["at"]) >= length
                    or (f["match"] and not re.search(f["match"], "%s %s" % (method, target)))):
                continue
            self.flipped[i] += 1
            self.note("flip", method, target, {"dir": direction, "at": int(f["at"])})
            return int(f["at"])
        return None

    async def flipped_pieces(self, reader, kind, length, at):
        """body_pieces, with the byte at offset `at` (None: none) flipped."""
        pos = 0
        async for piece in body_pieces(reader, kind, length):
            if at is not None and pos <= at < pos + len(piece):
                b = bytearray(piece)
                b[at - pos] ^= 0x01
                piece = bytes(b)
            pos += len(piece)
            yield piece

    async def pump_request(self, creader, uw, kind, length, at=None):
        async for piece in self.flipped_pieces(creader, kind, length, at):
            uw.write(piece)
            self.c["bytes_up"] += len(piece)
            await uw.drain()
        await uw.drain()

    async def respond_faulty(self, kind, conn, resp, ur, skind, slen, cwriter, creader, method,
                             target, ident, occ):
        u = self.draw(ident, occ, "cut")
        extra = {}
        if kind == "reset_headers":
            cwriter.write(resp.encode())
            await cwriter.drain()
            self.note(kind, method, target)
            self.access_line(method, target, "-", kind)
            self.drop_upstream(conn)
            rst(cwriter)
            raise Closed(kind)
        if kind in ("cl_short", "cl_long") and skind == "chunked":
            # a chunked answer (radosgw's listings) is read whole and sent
            # with a Content-Length, so that it can lie; never a large one
            raw = bytearray()
            async for piece in body_pieces(ur, skind, slen):
                raw += piece
                if len(raw) > CL_REFRAME_MAX:  # too large: cut it short instead
                    cwriter.write(resp.encode() + bytes(raw[:len(raw) // 2]))
                    await cwriter.drain()
                    self.note("truncate", method, target, {"sent": len(raw) // 2})
                    self.drop_upstream(conn)
                    cwriter.close()
                    raise Closed("truncate")
            body = dechunk(bytes(raw))
            resp.remove("Transfer-Encoding")
            ur = asyncio.StreamReader()
            ur.feed_data(body)
            ur.feed_eof()
            skind, slen = "fixed", len(body)
        if skind == "fixed":
            if kind == "cl_long":
                cut = slen
                resp.set("Content-Length", str(slen + 1 + int(u * 4096)))
            elif kind == "cl_short":
                cut = int(u * slen)  # 0 .. slen-1
                resp.set("Content-Length", str(cut))
            else:
                cut = min(slen - 1, int(u * slen)) if slen > 1 else 0
            extra = {"length": slen, "sent": cut}
        else:
            cut = int(u * 4096)
            extra = {"sent": cut}
        cwriter.write(resp.encode())
        sent = 0
        if cut > 0:
            async for piece in body_pieces(ur, skind, slen):
                take = piece[:cut - sent]
                cwriter.write(take)
                sent += len(take)
                await cwriter.drain()
                if sent >= cut:
                    break
        await cwriter.drain()
        self.note(kind, method, target, extra)
        self.access_line(method, target, "-", kind)
        self.drop_upstream(conn)
        if kind == "reset_body":
            rst(cwriter)
        elif kind == "stall":
            try:
                while await asyncio.wait_for(creader.read(PIECE), self.cfg["stall_seconds"]):
                    pass
            except asyncio.TimeoutError:
                pass
            rst(cwriter)
        else:  # truncate, cl_short, cl_long: a clean close
            cwriter.close()
        raise Closed(kind)

    # -- hostile part sizes
    def lie_part_size(self, resp, method, target, path, qs):
        """Answer HEAD ?partNumber=N as a server that keeps part layouts
        would (radosgw 16 ignores partNumber): Content-Length, Content-Range
        and x-amz-mp-parts-count from the rule, true or not."""
        key = urllib.parse.unquote(path.lstrip("/"))
        rule = self.cfg["part_sizes"].get(key)
        if not rule:
            return
        n = qs.get("partNumber", "")
        if n not in rule:
            return
        size = int(rule[n])
        try:
            total = int(resp.get("Content-Length") or 0)
        except ValueError:
            total = 0
        start = sum(int(rule[str(i)]) for i in range(1, int(n)) if str(i) in rule)
        resp.set("Content-Length", str(size))
        if size > 0:
            resp.set("Content-Range", "bytes %d-%d/%d" % (start, start + size - 1, total))
        if "count" in rule:
            resp.set("x-amz-mp-parts-count", str(int(rule["count"])))
        self.note("part_size", method, target, {"part": n, "size": size})

    # -- hostile listings
    def listing_active(self, path):
        lst = self.cfg["listing"]
        if not lst.get("mode") and not self.cfg["rename_keys"]:
            return False
        b = lst.get("bucket")
        return not b or path.strip("/").split("/")[0] == b

    async def rewrite_listing(self, resp, ur, skind, slen, cwriter, method, target, path, qs):
        raw = bytearray()
        async for piece in body_pieces(ur, skind, slen):
            raw += piece
        body = dechunk(bytes(raw)) if skind == "chunked" else bytes(raw)
        body = self.hostile_page(body, qs, method, target, path)
        resp.remove("Transfer-Encoding")
        resp.remove("Content-MD5")
        resp.set("Content-Length", str(len(body)))
        cwriter.write(resp.encode() + body)
        self.c["bytes_down"] += len(body)
        await cwriter.drain()
        return skind != "eof"

    def hostile_page(self, body, qs, method, target, path):
        lst = self.cfg["listing"]
        mode = lst.get("mode")
        url_enc = b"<EncodingType>url</EncodingType>" in body
        spans = [m.span() for m in CONTENTS_RE.finditer(body)]
        entries = [body[a:b] for a, b in spans]
        if spans:
            head, tail = body[:spans[0][0]], body[spans[-1][1]:]
        else:
            m = re.search(rb"<IsTruncated>|<NextContinuationToken>|</ListBucketResult>", body)
            cut = m.start() if m else len(body)
            head, tail = body[:cut], body[cut:]

        def key_of(e):
            k = KEY_RE.search(e).group(1).decode("utf-8", "replace")
            return urllib.parse.unquote(k) if url_enc else k

        tok = qs.get("continuation-token")
        prev = self.tokens.get(tok) if tok else None
        page = prev["page"] + 1 if prev else 1
        want = lst.get("page")
        tail_changes = {}

        if self.cfg["rename_keys"]:
            ren = {k.encode(): v.encode() for k, v in self.cfg["rename_keys"].items()}
            for i, e in enumerate(entries):
                m = KEY_RE.search(e)
                if m and m.group(1) in ren:
                    entries[i] = e[:m.start(1)] + ren[m.group(1)] + e[m.end(1):]
                    self.note("rename_key", method, target, {"page": page})
        original = list(entries)
        if mode == "unsorted" and page >= (want or 1) and len(entries) >= 2:
            s = sorted(entries, key=lambda e: key_of(e).casefold())
            if s == entries:
                mid = len(s) // 2
                s[mid - 1], s[mid] = s[mid], s[mid - 1]
            entries = s
            self.note("unsorted", method, target, {"page": page})
        elif mode == "backwards" and page == (want or 2) and prev:
            entries = prev["entries"][-int(lst.get("count") or 5):] + entries
            self.note("backwards", method, target, {"page": page})
        elif mode == "duplicate_page" and page == (want or 2) and prev:
            entries = list(prev["entries"])
            self.note("duplicate_page", method, target, {"page": page})
        elif mode == "no_truncated" and page == (want or 1):
            tail_changes["no_truncated"] = True
            self.note("no_truncated", method, target, {"page": page})
        elif mode == "repeat_token" and page == (want or 2) and tok:
            tail_changes["token"] = tok
            self.note("repeat_token", method, target, {"page": page})

        m = re.search(rb"<NextContinuationToken>(.*?)</NextContinuationToken>", tail, re.S)
        next_tok = m.group(1).decode() if m else None
        if next_tok is not None and url_enc:
            next_tok = urllib.parse.unquote(next_tok)
        if "no_truncated" in tail_changes:
            tail = re.sub(rb"<IsTruncated>.*?</IsTruncated>", b"", tail, flags=re.S)
            tail = re.sub(rb"<NextContinuationToken>.*?</NextContinuationToken>", b"", tail,
                          flags=re.S)
            head = re.sub(rb"<IsTruncated>.*?</IsTruncated>", b"", head, flags=re.S)
        if "token" in tail_changes:
            t = tail_changes["token"]
            enc = urllib.parse.quote(t, safe="") if url_enc else t
            tail = re.sub(rb"<NextContinuationToken>.*?</NextContinuationToken>",
                          b"<NextContinuationToken>" + enc.encode() + b"</NextContinuationToken>",
                          tail, flags=re.S)
            next_tok = None  # the token keeps meaning the page it was given for
        if next_tok and next_tok not in self.tokens:
            self.tokens[next_tok] = {"page": page, "entries": original}
        out = head + b"".join(entries) + tail
        out = re.sub(rb"<KeyCount>\d+</KeyCount>", b"<KeyCount>%d</KeyCount>" % len(entries), out)
        return out


# -- control interface


async def control(proxy, reader, writer):
    try:
        head = await read_head(reader)
        if head is None:
            return
        method, target, _ = head.first.split(" ", 2)
        kind, n = framing(head, True)
        body = b""
        if kind == "fixed":
            body = await reader.readexactly(n)
        status, out = 200, None
        if method == "GET" and target == "/counters":
            out = proxy.counters()
        elif method == "GET" and target == "/config":
            out = proxy.cfg
        elif method == "POST" and target == "/config":
            try:
                proxy.cfg = merged_config(json.loads(body or b"{}"))
                proxy.ensured, proxy.ensured_idents = set(), set()
                out = proxy.cfg
            except (ValueError, re.error) as e:
                status, out = 400, {"error": str(e)}
        elif method == "POST" and target == "/reset":
            proxy.reset()
            out = {"ok": True}
        elif method == "GET" and target == "/health":
            out = "ok"
        else:
            status, out = 404, {"error": "no such endpoint"}
        data = json.dumps(out, indent=1, sort_keys=True).encode()
        writer.write(b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                     b"Connection: close\r\n\r\n" % (status, len(data)) + data)
        await writer.drain()
    except (Closed, ConnectionError, ValueError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


def hostport(s):
    h, _, p = s.rpartition(":")
    return h or "127.0.0.1", int(p)


async def main_async(opts):
    log = open(opts.log_file, "a") if opts.log_file else None
    access = open(opts.access_log, "a") if opts.access_log else None
    proxy = Proxy(hostport(opts.upstream), opts.flavor, json.loads(opts.config or "{}"), log,
                  access)
    lh, lp = hostport(opts.listen)
    ch, cp = hostport(opts.control)
    srv = await asyncio.start_server(proxy.handle, lh, lp, limit=1 << 20, reuse_address=True,
                                     backlog=512)
    ctl = await asyncio.start_server(lambda r, w: control(proxy, r, w), ch, cp, reuse_address=True)
    if opts.pid_file:
        with open(opts.pid_file + ".tmp", "w") as f:
            f.write("%d\n" % os.getpid())
        os.replace(opts.pid_file + ".tmp", opts.pid_file)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    if not opts.detach:
        parent = os.getppid()

        async def orphan_watch():  # a test runner killed outright leaves no proxy behind
            while os.getppid() == parent:
                await asyncio.sleep(1)
            stop.set()

        watch = asyncio.ensure_future(orphan_watch())
    await stop.wait()
    if not opts.detach:
        watch.cancel()
    srv.close()
    ctl.close()
    if log:
        log.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--listen", required=True, help="HOST:PORT for the clients")
    ap.add_argument("--upstream", required=True, help="HOST:PORT of the real server")
    ap.add_argument("--control", required=True, help="HOST:PORT of the control interface")
    ap.add_argument("--flavor", choices=("s3", "registry"), default="s3",
                    help="error bodies in S3 XML or registry JSON")
    ap.add_argument("--config", help="initial configuration (JSON)")
    ap.add_argument("--pid-file")
    ap.add_argument("--detach", action="store_true",
                    help="keep running when the parent process exits (by default it stops)")
    ap.add_argument("--log-file", help="one JSON line per fault injected")
    ap.add_argument("--access-log", help="one line per request: method, path and query "
                    "(signatures removed), status")
    opts = ap.parse_args()
    merged_config(json.loads(opts.config or "{}"))  # fail early on a bad one
    asyncio.run(main_async(opts))


if __name__ == "__main__":
    sys.exit(main())
