"""The agent's side of the web console against the real servers: the
console's files served without the token (bytes compared with web/ and
Debian's Chart.js, CSP and X-Frame-Options, 304 on If-None-Match), the API
still behind the token, [agent] console = false; GET /api/v1/settings against
dth sync --help; dry runs that store nothing; remote checks of radosgw with
good and wrong credentials and of a closed port; a task's time series
against the bytes at the destination (boto3); a task's recent events after
webhook POSTs."""

import json
import os
import re
import time

import requests

import lib
from test_agent import Agent, _task_section, _objects, _dst_md5

WEB = os.path.join(lib.REPO, "web")
CHARTJS = "/usr/share/javascript/chart.js/chart.min.js"
CONSOLE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
               "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
               "frame-ancestors 'none'")
API_CSP = "default-src 'none'; frame-ancestors 'none'"


def _console_files():
    """URL path -> file of web/meson.build's console_files, and Chart.js."""
    with open(os.path.join(WEB, "meson.build")) as f:
        text = f.read()
    block = text[text.index("console_files = files("):]
    block = block[:block.index(")")]
    files = {"/" + p: os.path.join(WEB, p) for p in re.findall(r"'([^']+)'", block)}
    files["/vendor/chart.min.js"] = CHARTJS
    return files


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _get(ag, path, **headers):
    return requests.get(ag.url + path, headers=headers, timeout=30)


def test_console_files(ctx):
    """Every file of the console is served without a token, byte for byte,
    with its type, the console's CSP, X-Frame-Options and a strong ETag that
    a conditional GET turns into a 304; the API still wants the token."""
    with Agent(ctx) as ag:
        files = _console_files()
        assert "/index.html" in files and len(files) >= 3, files
        for url, path in sorted(files.items()):
            r = _get(ag, url)
            assert r.status_code == 200, (url, r.status_code, r.text[:200])
            assert r.content == _read(path), "%s differs from %s" % (url, path)
            h = r.headers
            assert h["Content-Security-Policy"] == CONSOLE_CSP, (url, h)
            assert h["X-Frame-Options"] == "DENY" and h["Referrer-Policy"] == "no-referrer", h
            assert h["X-Content-Type-Options"] == "nosniff", h
            assert re.fullmatch(r'"[0-9a-f]{64}"', h["ETag"]), h
            ext = url.rsplit(".", 1)[-1]
            want = {"html": "text/html", "css": "text/css", "js": "text/javascript"}.get(ext)
            if want:
                assert h["Content-Type"] == want + "; charset=utf-8", (url, h)
            r304 = _get(ag, url, **{"If-None-Match": 'W/"x", ' + h["ETag"]})
            assert r304.status_code == 304 and r304.content == b"", (url, r304.status_code)
            assert r304.headers["ETag"] == h["ETag"], r304.headers
            assert _get(ag, url, **{"If-None-Match": '"0"'}).status_code == 200
        root = _get(ag, "/")
        assert root.status_code == 200 and root.content == _read(files["/index.html"])
        head = requests.head(ag.url + "/vendor/chart.min.js", timeout=30)
        assert head.status_code == 200 and head.content == b""
        assert int(head.headers["Content-Length"]) == len(_read(CHARTJS))

        # The API as before: the token is needed, and answers carry the
        # API's own CSP and X-Frame-Options.
        for path in ("/api/v1/tasks", "/api/v1/agent", "/api/v1/settings", "/metrics"):
            r = ag.api("GET", path, token=False)
            assert r.status_code == 401, (path, r.status_code)
            assert r.headers["Content-Security-Policy"] == API_CSP, r.headers
            assert r.headers["X-Frame-Options"] == "DENY", r.headers
        r = ag.api("GET", "/api/v1/tasks", expect=200)
        assert r.headers["Content-Security-Policy"] == API_CSP, r.headers
        assert r.headers["X-Frame-Options"] == "DENY", r.headers
        assert ag.api("POST", "/index.html", body={}, token=False).status_code == 401
        # Unknown paths: 404 (with the token; without it, 401 as before).
        for path in ("/nope.html", "/js/", "/vendor/", "/index.html/x", "/api/v1/nope"):
            assert ag.api("GET", path).status_code == 404, path
        assert ag.api("GET", "/nope.html", token=False).status_code == 401


def test_console_off(ctx):
    """[agent] console = false: the console's paths are 404, the API is as
    before; a bad value is refused by dth config check and the agent."""
    ctx.write_config(extra="[agent]\nconsole = false\n")
    with Agent(ctx) as ag:
        for path in ("/", "/index.html", "/vendor/chart.min.js"):
            assert ag.api("GET", path).status_code == 404, path
            assert ag.api("GET", path, token=False).status_code == 401, path
        ag.api("GET", "/api/v1/agent", expect=200)
    ctx.write_config(extra="[agent]\nconsole = maybe\n")
    _, out, _ = ctx.run_dth(["config", "check", "--config", ctx.config, "--offline"],
                            check_exit=2)
    assert "bad value for console in [agent]" in out, out
    ctx.run_dth(["agent", "--config", ctx.config, "--state", ctx.state,
                 "--listen", "127.0.0.1:%d" % lib._free_port()], check_exit=2, timeout=30)


def _sync_help(ctx):
    """--flag -> (argument, default) from dth sync --help."""
    _, out, _ = ctx.run_dth(["sync", "--help"])
    flags = {}
    for line in out.splitlines():
        m = re.match(r"\s+--([a-z0-9-]+)(?: (\S+))?\s{2,}(.*)", line)
        if m:
            d = re.search(r"\(default ([^)]*)\)\s*$", m.group(3))
            flags[m.group(1)] = (m.group(2), d.group(1) if d else None)
    return flags


def test_settings(ctx):
    """GET /api/v1/settings: the table, as dth sync --help shows it."""
    with Agent(ctx) as ag:
        doc = ag.api("GET", "/api/v1/settings", expect=200).json()
    by = {s["name"]: s for s in doc["settings"]}
    ps = by["part_size"]
    assert ps["type"] == "size" and ps["default"] == "8M" and ps["kinds"] == ["s3"], ps
    assert ps["min"] == 5 * lib.MiB and ps["arg"] == "SIZE", ps
    assert by["concurrency"]["default"] == {"s3": "16", "image": "8"}, by["concurrency"]
    assert by["sse"]["words"] == ["AES256", "aws:kms"], by["sse"]
    assert by["source"]["required"] and by["schedule"]["agent_only"], by
    assert doc["name_rule"] == {"min_bytes": 1, "max_bytes": 255}, doc["name_rule"]
    prov = {p["name"]: p for p in doc["providers"]}
    assert prov["aws"] == {"name": "aws", "needs_endpoint": False,
                           "default_region": "us-east-1"}, prov
    assert prov["ceph"]["needs_endpoint"] and prov["aws-cn"]["default_region"] is None, prov
    # Every flag of dth sync that the table makes is a setting with the
    # same argument and default, and the other way round.
    flags = _sync_help(ctx)
    cli = {s["name"]: s for s in doc["settings"] if s["cli"] and "s3" in s["kinds"]}
    for name, s in cli.items():
        flag = name.replace("_", "-")
        if s["type"] == "bool" and s["default"] == "true":
            flag = "no-" + flag  # the help shows the form that changes something
        assert flag in flags, (flag, sorted(flags))
        arg, default = flags[flag]
        assert arg == s["arg"], (flag, arg, s)
        want = s["default"]["s3"] if isinstance(s["default"], dict) else s["default"]
        if s["type"] != "bool":
            assert default == want or default.startswith(want + ","), (flag, default, s)
    own = {"config", "dry-run", "task", "state", "json", "no-progress", "help", "make-shard-plan"}
    table = {n.replace("_", "-") for n in cli} | {"no-" + n.replace("_", "-") for n in cli}
    assert set(flags) - own <= table, set(flags) - own - table


def _tasks(ag):
    return sorted(t["name"] for t in ag.api("GET", "/api/v1/tasks", expect=200).json()["tasks"])


def test_dry_run(ctx):
    """?dry_run=true checks a definition as the real call does and changes
    nothing: the task list, the manifest's tasks and the definition stay."""
    src, dst = ctx.bucket("a"), ctx.bucket("b")
    good = {"name": "dry", "type": "s3", "source": "src:" + src, "destination": "dst:" + dst,
            "schedule": "every 1h", "part_size": "16M"}
    with Agent(ctx) as ag:
        r = ag.api("POST", "/api/v1/tasks?dry_run=true", body=good, expect=200).json()
        assert r["valid"] is True and r["definition"]["part_size"] == 16 * lib.MiB, r
        assert r["definition"]["name"] == "dry" and r["definition"]["schedule"] == "every 1h", r
        assert _tasks(ag) == []
        bad = dict(good, part_size="1K")
        e = ag.api("POST", "/api/v1/tasks?dry_run=true", body=bad, expect=400).json()["error"]
        assert e["code"] == "invalid" and e["field"] == "part_size", e
        real = ag.api("POST", "/api/v1/tasks", body=bad, expect=400).json()["error"]
        assert real == e, (real, e)
        e = ag.api("POST", "/api/v1/tasks?dry_run=true", body=dict(good, schedule="every 2x"),
                   expect=400).json()["error"]
        assert e["field"] == "schedule", e
        e = ag.api("POST", "/api/v1/tasks?dry_run=true",
                   body=dict(good, source="/etc"), expect=400).json()["error"]
        assert e["field"] == "source" and "local_sources" in e["message"], e
        e = ag.api("POST", "/api/v1/tasks?dry_run=perhaps", body=good, expect=400).json()
        assert e["error"]["field"] == "dry_run", e
        assert _tasks(ag) == []
        _, out, _ = ctx.run_dth(["manifest", "--state", ctx.state, "--json", "tasks"])
        assert '"dry"' not in out, out

        # The real task, then dry updates of it: nothing changes.
        ag.api("POST", "/api/v1/tasks", body=dict(good, enabled=False), expect=201)
        assert ag.api("POST", "/api/v1/tasks?dry_run=true", body=good,
                      expect=409).json()["error"]["field"] == "name"
        before = ag.task("dry")["definition"]
        upd = dict(good, destination="dst:" + dst + "/other")
        del upd["name"]
        r = ag.api("PUT", "/api/v1/tasks/dry?dry_run=true", body=upd, expect=200).json()
        assert r["valid"] and r["definition"]["destination"] == "dst:%s/other" % dst, r
        e = ag.api("PUT", "/api/v1/tasks/dry?dry_run=true", body=dict(upd, concurrency=0),
                   expect=400).json()["error"]
        assert e["field"] == "concurrency", e
        ag.api("PUT", "/api/v1/tasks/nosuch?dry_run=true", body=upd, expect=404)
        assert ag.task("dry")["definition"] == before
        assert _tasks(ag) == ["dry"]
    # After a restart the stored definition is still the first one.
    with Agent(ctx) as ag:
        assert ag.task("dry")["definition"] == before


def test_check_remotes(ctx):
    """POST /api/v1/agent/actions/check-remotes: radosgw with good
    credentials is ok, with a wrong secret refused, a closed port
    unreachable; a second POST during the round starts nothing; no secret
    and no key id in any answer."""
    secret = lib.register_secret("NotTheSecret-77e1")
    keyid = "KEYID-NOT-SHOWN-5e2"
    bad = lib.remote_section("badsecret", "a", key=keyid, secret=secret)
    dead = lib.remote_section("dead", "a", endpoint_url="http://127.0.0.1:%d" % lib._free_port())
    ctx.write_config(extra=bad + dead)
    with Agent(ctx) as ag:
        remotes = {r["name"]: r for r in ag.api("GET", "/api/v1/agent", expect=200).json()["remotes"]}
        assert set(remotes) >= {"src", "dst", "badsecret", "dead"}, remotes
        assert all(r["check"] is None for r in remotes.values()), remotes
        assert remotes["src"]["provider"] == "ceph" and remotes["src"]["region"] == "us-east-1"
        assert remotes["src"]["requester_pays"] is False, remotes["src"]
        first = ag.api("POST", "/api/v1/agent/actions/check-remotes", expect=202).json()
        assert first["already_running"] is False and first["remotes"] == len(remotes), first
        texts = [json.dumps(first)]

        def done():
            doc = ag.api("GET", "/api/v1/agent", expect=200)
            texts.append(doc.text)
            rs = {r["name"]: r for r in doc.json()["remotes"]}
            return rs if all(r["check"] and r["check"]["status"] != "checking"
                             for r in rs.values()) else None
        rs = lib.wait_for(done, 60, interval=0.2)
        assert rs, texts[-1]
        assert rs["src"]["check"]["status"] == "ok", rs["src"]
        assert rs["src"]["check"]["call"] == "HeadBucket" and "message" not in rs["src"]["check"]
        assert rs["dst"]["check"]["status"] == "ok", rs["dst"]
        assert rs["badsecret"]["check"]["status"] == "refused", rs["badsecret"]
        assert rs["badsecret"]["check"]["message"], rs["badsecret"]
        assert rs["dead"]["check"]["status"] == "unreachable", rs["dead"]
        for r in rs.values():
            c = r["check"]
            assert c["seconds"] >= 0 and abs(c["checked_at"] - time.time()) < 120, c

        # A round once ended, another may start.
        again = ag.api("POST", "/api/v1/agent/actions/check-remotes", expect=202).json()
        texts.append(json.dumps(again))
        assert again["already_running"] is False, again
        rs2 = lib.wait_for(done, 60, interval=0.2)
        assert rs2 and rs2["src"]["check"]["checked_at"] >= rs["src"]["check"]["checked_at"]
        ag.api("GET", "/api/v1/agent/actions/check-remotes", expect=405)
        for t in texts:
            assert secret not in t and keyid not in t, t


def test_check_remotes_busy_and_stop(ctx):
    """A remote that accepts connections and never answers holds a round:
    a POST meanwhile answers already_running and starts nothing, and
    SIGTERM stops the agent at once all the same."""
    import socket
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    port = srv.getsockname()[1]
    try:
        ctx.write_config(extra=lib.remote_section(
            "silent", "a", endpoint_url="http://127.0.0.1:%d" % port))
        ag = Agent(ctx).start()
        try:
            ag.api("POST", "/api/v1/agent/actions/check-remotes", expect=202)
            r = ag.api("POST", "/api/v1/agent/actions/check-remotes", expect=202).json()
            assert r == {"already_running": True}, r
            rs = {x["name"]: x for x in ag.api("GET", "/api/v1/agent", expect=200).json()["remotes"]}
            assert rs["silent"]["check"]["status"] == "checking", rs["silent"]
            assert isinstance(rs["silent"]["check"]["started_at"], int), rs["silent"]

            def src_ok():
                rs = {x["name"]: x for x in
                      ag.api("GET", "/api/v1/agent", expect=200).json()["remotes"]}
                return (rs["src"]["check"] or {}).get("status") == "ok" and rs
            rs = lib.wait_for(src_ok, 30)
            assert rs and rs["silent"]["check"]["status"] == "checking", rs
            assert ag.api("POST", "/api/v1/agent/actions/check-remotes",
                          expect=202).json() == {"already_running": True}
        finally:
            # The silent remote's probe would take minutes (two stalls of
            # 60 s): the stop cuts it short.
            assert ag.stop(timeout=20) == 0
    finally:
        srv.close()


def test_series(ctx):
    """GET /api/v1/tasks/NAME/series: 5 s samples from the task's creation;
    over a run, the bytes add up to the bytes at the destination (boto3) and
    the copies to its objects; a second, unchanged run adds none."""
    a, b = lib.s3("a"), lib.s3("b")
    src, dst = ctx.bucket("a"), ctx.bucket("b")
    _objects(a, src, "s/", 30, 7, size=50000)
    big = lib.GeneratedObject(41, 20 * lib.MiB)  # multipart: its parts count as they go
    big.put(a, src, "s/big")
    with Agent(ctx) as ag:
        r = ag.api("GET", "/api/v1/tasks/nosuch/series", expect=404).json()
        assert r["error"]["code"] == "not_found", r
        body = {"name": "ser", "type": "s3", "source": "src:%s/s/" % src,
                "destination": "dst:" + dst, "schedule": "every 1h"}
        ag.api("POST", "/api/v1/tasks", body=body, expect=201)
        ag.wait_runs("ser", 1)
        sizes = {k: lib.head(b, dst, k)["ContentLength"] for k in lib.list_all(b, dst)}
        assert len(sizes) == 31, sorted(sizes)

        def counted():
            doc = ag.api("GET", "/api/v1/tasks/ser/series", expect=200).json()
            s = doc["samples"]
            return doc if sum(x["copied"] for x in s) == 31 else None
        doc = lib.wait_for(counted, 30, interval=0.5)
        assert doc, ag.api("GET", "/api/v1/tasks/ser/series").text
        s = doc["samples"]
        assert doc["interval_seconds"] == 5, doc
        assert sum(x["bytes"] for x in s) == sum(sizes.values()), (s, sum(sizes.values()))
        assert sum(x["failed"] for x in s) == 0 and sum(x["skipped"] for x in s) == 0, s
        ts = [x["t"] for x in s]
        assert ts == sorted(ts) and len(set(ts)) == len(ts), ts
        assert all(t % 5 == 0 for t in ts[1:]), ts

        # An unchanged rescan: 31 skipped, nothing more copied.
        ag.api("POST", "/api/v1/tasks/ser/actions/run", expect=202)
        ag.wait_runs("ser", 2)

        def skipped():
            s = ag.api("GET", "/api/v1/tasks/ser/series", expect=200).json()["samples"]
            return s if sum(x["skipped"] for x in s) == 31 else None
        s = lib.wait_for(skipped, 30, interval=0.5)
        assert s, ag.api("GET", "/api/v1/tasks/ser/series").text
        assert sum(x["copied"] for x in s) == 31 and sum(x["bytes"] for x in s) == \
            sum(sizes.values()), s


def test_events_ring(ctx):
    """GET /api/v1/tasks/NAME/events: the events POSTed to the webhook,
    newest first, with their outcome (accepted, ignored with a reason,
    refused bodies), non-UTF-8 keys in their printable form; at most the
    last 100."""
    src, dst = ctx.bucket("a"), ctx.bucket("b")
    ctx.write_config(extra=_task_section("hook", "src:%s/in/" % src, "dst:" + dst,
                                         schedule="every 1h", events="webhook"))
    rec = lambda bucket, key, name="ObjectCreated:Put": {  # noqa: E731
        "eventSource": "aws:s3", "eventName": name,
        "s3": {"bucket": {"name": bucket}, "object": {"key": key, "sequencer": "00"}}}
    with Agent(ctx) as ag:
        ag.wait_runs("hook", 1)
        assert ag.api("GET", "/api/v1/tasks/hook/events", expect=200).json() == {"events": []}
        assert ag.api("GET", "/api/v1/tasks/hook/events", token=False).status_code == 401
        ag.api("GET", "/api/v1/tasks/nosuch/events", expect=404)
        body = {"Records": [rec(src, "in/a.txt"), rec(src, "in/gone", "ObjectRemoved:Delete"),
                            rec("otherbucket", "in/x"), rec(src, "elsewhere/y"),
                            rec(src, "in/caf%C3%A9%FF")]}
        r = ag.api("POST", "/api/v1/tasks/hook/events", body=body, expect=202).json()
        assert r["accepted"] == 3 and r["ignored"] == 2, r
        ag.api("POST", "/api/v1/tasks/hook/events", raw="not json", expect=400)
        ev = ag.api("GET", "/api/v1/tasks/hook/events", expect=200).json()["events"]
        got = [(e["source"], e["kind"], e["key"], e["outcome"]) for e in ev]
        assert got == [("webhook", "body", "", "refused"),
                       ("webhook", "put", "in/caf\u00e9\\xff", "accepted"),
                       ("webhook", "put", "elsewhere/y", "ignored"),
                       ("webhook", "put", "in/x", "ignored"),
                       ("webhook", "delete", "in/gone", "accepted"),
                       ("webhook", "put", "in/a.txt", "accepted")], got
        assert ev[0]["reason"] and ev[2]["reason"] == "outside the prefix", ev
        assert ev[3]["reason"] == "another bucket", ev
        assert "reason" not in ev[1], ev
        assert all(abs(e["t"] - time.time()) < 120 for e in ev), ev
        # Bounded: the last 100 of 130 events.
        many = {"Records": [rec(src, "in/m%03d" % i) for i in range(130)]}
        ag.api("POST", "/api/v1/tasks/hook/events", body=many, expect=202)
        ev = ag.api("GET", "/api/v1/tasks/hook/events", expect=200).json()["events"]
        assert len(ev) == 100, len(ev)
        assert ev[0]["key"] == "in/m129" and ev[-1]["key"] == "in/m030", (ev[0], ev[-1])
