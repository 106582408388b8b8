#!/usr/bin/env python3
"""Keep the man pages (doc/*.scd) in step with the program.

usage: check-options.py DTH DOC_DIR [SOURCE_ROOT]

For each page, the options of the matching commands' --help (the program's
own output) must all be named in the page, and every option the page names
must be in one of those --help outputs:

  dth.1           dth --help, dth config check --help, dth version --help
  dth-sync.1      dth sync --help
  dth-mount.1     dth mount --help
  dth-image.1     dth image --help and dth image SUB --help
  dth-manifest.1  dth manifest --help and dth manifest SUB --help
  dth-task.1      dth task --help and dth task SUB --help
  dth-agent.8     dth agent --help

An option is a --long word anywhere in the text, or a short option (-f) at
the start of a --help line or in parentheses, and in bold (*-f*) in a page.
--help may be in any page whose command answers --help with status 0. Each
DTH_* variable a --help names must be in its page too.

dth.conf.5 must name, as *key*, every remote key of remote/remotes.c's key
list (and its DTH_REMOTE_<NAME>_<KEY> form), every task key of the settings
table in agent/taskdef.c (what GET /api/v1/settings serves) and every key of
the [agent] section that cli/cmd_agent.c reads; every task setting of
`dth sync --help` must be one of those task keys.

Exit status: 0 all in step, 1 something is missing (listed), 77 the check
cannot run (no dth binary, or it does not start).
"""
import os
import re
import subprocess
import sys

SKIP = 77

LONG = re.compile(r"(?<![\w-])--([a-z][a-z0-9]*(?:-[a-z0-9]+)*)")
HELP_SHORT = re.compile(r"^\s+(-[A-Za-z])(?:[\s,]|$)|\((-[A-Za-z])\)", re.M)
PAGE_SHORT = re.compile(r"\*(-[A-Za-z])\*")
ENV = re.compile(r"\bDTH_[A-Z][A-Z0-9_]*")

PAGES = {
    "dth.1": [[], ["config", "check"], ["version"]],
    "dth-sync.1": [["sync"]],
    "dth-mount.1": [["mount"]],
    "dth-image.1": [["image"]] + [["image", s] for s in ("inspect", "tags", "repos", "sync")],
    "dth-manifest.1": [["manifest"]]
    + [["manifest", s]
       for s in ("tasks", "ls", "stat", "stats", "diff", "verify", "export", "images")],
    "dth-task.1": [["task"]]
    + [["task", s]
       for s in ("list", "show", "create", "update", "start", "stop", "run", "retry", "delete",
                 "history", "failures", "objects", "images", "webhook", "notify-secret")],
    "dth-agent.8": [["agent"]],
}

problems = []


def problem(msg):
    problems.append(msg)


def run_help(dth, args):
    """(exit status, stdout + stderr) of `dth ARGS --help`."""
    env = dict(os.environ, LC_ALL="C", HOME=os.environ.get("HOME", "/nonexistent"))
    # No configuration or agent of the caller's may change what --help says.
    for k in list(env):
        if k.startswith("DTH_"):
            del env[k]
    try:
        p = subprocess.run([dth] + args + ["--help"], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                           timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        print(f"check-options: cannot run {dth}: {e}", file=sys.stderr)
        sys.exit(SKIP)
    return p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace")


def help_options(text):
    opts = {"--" + m for m in LONG.findall(text)}
    for a, b in HELP_SHORT.findall(text):
        opts.add(a or b)
    return opts


def scd_text(path):
    with open(path, encoding="utf-8") as f:
        raw = f.read()
    return re.sub(r"\\(.)", r"\1", raw)  # scdoc's escapes: \_ \* \[ \\


def page_options(text):
    """The options a page names. In its literal blocks (examples) only the
    words of dth's own command lines count: `systemctl enable --now` is not
    an option of dth."""
    def dth_words(block):
        block = block.group(1).replace("\\\n", " ")
        return "\n".join(m.group(0) for m in
                         re.finditer(r"(?<![\w/.-])dth\s[^|;&\n]*", block))
    text = re.sub(r"^\s*```\n(.*?)^\s*```$", dth_words, text, flags=re.M | re.S)
    opts = {"--" + m for m in LONG.findall(text)}
    opts.update(PAGE_SHORT.findall(text))
    return opts


def c_strings(text):
    """The concatenated C string literals of text (escapes left as they are)."""
    return "".join(re.findall(r'"((?:[^"\\\n]|\\.)*)"', text))


def read(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        problem(f"cannot read {path}: {e}")
        return ""


def check_pages(dth, doc):
    for page, commands in PAGES.items():
        path = os.path.join(doc, page + ".scd")
        if not os.path.exists(path):
            problem(f"{page}: doc/{page}.scd is missing")
            continue
        text = scd_text(path)
        in_page = page_options(text)
        in_help = set()
        env_names = set()
        help_ok = False
        for args in commands:
            rc, out = run_help(dth, args)
            cmd = " ".join(["dth"] + args + ["--help"])
            if "usage" not in out:
                problem(f"{page}: `{cmd}` printed no usage (status {rc})")
                continue
            if rc == 0:
                help_ok = True
            in_help |= help_options(out)
            env_names |= {v.rstrip("_") for v in ENV.findall(out)}
        if not in_help:
            problem(f"{page}: no options found in the --help of its commands")
            continue
        allowed = in_help | ({"--help"} if help_ok else set())
        cmds = ", ".join("dth " + " ".join(a) if a else "dth" for a in commands[:3])
        for o in sorted(in_help - in_page):
            problem(f"{page}: {o} is in the --help of {cmds}... but not in the page")
        for o in sorted(in_page - allowed):
            problem(f"{page}: the page names {o}, which no --help of {cmds}... has")
        for v in sorted(env_names):
            if v not in text:
                problem(f"{page}: {v} is in the --help but not in the page")


def bold_words(text):
    return set(re.findall(r"\*([A-Za-z0-9_.-]+)\*", text))


def check_conf(dth, doc, root):
    path = os.path.join(doc, "dth.conf.5.scd")
    if not os.path.exists(path):
        problem("dth.conf.5: doc/dth.conf.5.scd is missing")
        return
    text = scd_text(path)
    bold = bold_words(text)

    remotes = read(os.path.join(root, "remote", "remotes.c"))
    m = re.search(r"key_list\[\]\s*=\s*(.*?);", remotes, re.S)
    rkeys = [k.strip() for k in c_strings(m.group(1)).split(",")] if m else []
    if len(rkeys) < 10:
        problem("dth.conf.5: could not read the remote keys (key_list) of remote/remotes.c")
    for k in rkeys:
        if k not in bold:
            problem(f"dth.conf.5: remote key {k} is not in the page (as *{k}*)")
        if k.upper() not in bold:
            problem(f"dth.conf.5: DTH_REMOTE_<NAME>_{k.upper()} is not in the page "
                    f"(as *{k.upper()}*)")

    taskdef = read(os.path.join(root, "agent", "taskdef.c"))
    table = re.search(r"taskdef_setting table\[\]\s*=\s*\{(.*?)\n\};", taskdef, re.S)
    tkeys = re.findall(r'^\s*\{"([a-z_]+)",\s*(?:BOTH|S3|IMG)\b', table.group(1),
                       re.M) if table else []
    if len(tkeys) < 10:
        problem("dth.conf.5: could not read the settings table of agent/taskdef.c")
    for k in ["type"] + tkeys:
        if k not in bold:
            problem(f"dth.conf.5: task key {k} is not in the page (as *{k}*)")

    rc, out = run_help(dth, ["sync"])
    part = out.split("the task's settings", 1)
    if len(part) != 2:
        problem("dth.conf.5: `dth sync --help` has no \"the task's settings\" part")
    else:
        settings = re.findall(r"^\s+--([a-z0-9-]+)", part[1], re.M)
        if not settings:
            problem("dth.conf.5: no task settings found in `dth sync --help`")
        for o in settings:
            k = o.replace("-", "_")
            if k not in tkeys and k.startswith("no_"):
                k = k[3:]
            if k not in tkeys:
                problem(f"dth.conf.5: --{o} of `dth sync --help` is no task key of "
                        "agent/taskdef.c")
            elif k not in bold:
                problem(f"dth.conf.5: task key {k} (--{o}) is not in the page")

    agent = read(os.path.join(root, "cli", "cmd_agent.c"))
    akeys = sorted(set(re.findall(r'strcmp\(p->key,\s*"([a-z_]+)"\)', agent)))
    if len(akeys) < 5:
        problem("dth.conf.5: could not read the [agent] keys of cli/cmd_agent.c")
    for k in akeys:
        if k not in bold:
            problem(f"dth.conf.5: [agent] key {k} is not in the page (as *{k}*)")


def main():
    if len(sys.argv) not in (3, 4):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    dth, doc = sys.argv[1], sys.argv[2]
    root = sys.argv[3] if len(sys.argv) == 4 else os.path.dirname(os.path.abspath(doc))
    if not (os.path.isfile(dth) and os.access(dth, os.X_OK)):
        print(f"check-options: no dth binary at {dth}: skipped", file=sys.stderr)
        return SKIP
    check_pages(dth, doc)
    check_conf(dth, doc, root)
    if problems:
        print("man pages out of step with the program:", file=sys.stderr)
        for p in problems:
            print("  " + p, file=sys.stderr)
        print(f"{len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"man pages: {len(PAGES) + 1} pages in step with --help, the remote keys, "
          "the task keys and the [agent] keys")
    return 0


if __name__ == "__main__":
    sys.exit(main())
