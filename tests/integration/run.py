#!/usr/bin/env python3
"""Run the dth integration tests (no pytest needed).

usage: run.py [-k PATTERN]... [-x] [--list]

Discovers tests/integration/test_*.py and their test_* functions (in file
order), runs each with a fresh lib.Context (passed when the function takes an
argument), and prints one line per test:
    ok NAME (1.2s)
    FAIL NAME: reason        (then the traceback and the tail of dth's stderr)
    skip NAME: reason
and finally "N passed, N failed" (", N skipped" when some were skipped).
NAME is module.function; -k keeps tests whose NAME contains PATTERN (any of
several -k). Exit status 1 when a test failed.
"""

import argparse
import importlib
import inspect
import os
import signal
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import lib  # noqa: E402


def discover():
    tests = []
    for fn in sorted(os.listdir(HERE)):
        if not (fn.startswith("test_") and fn.endswith(".py")):
            continue
        modname = fn[:-3]
        try:
            mod = importlib.import_module(modname)
        except Exception:  # a broken module fails as one test
            tb = traceback.format_exc()

            def broken(_tb=tb):
                raise AssertionError("cannot import module:\n" + _tb)

            tests.append(("%s.<import>" % modname, broken))
            continue
        funcs = [(name, f) for name, f in vars(mod).items()
                 if name.startswith("test_") and inspect.isfunction(f) and f.__module__ == modname]
        funcs.sort(key=lambda nf: nf[1].__code__.co_firstlineno)
        tests += [("%s.%s" % (modname, name), f) for name, f in funcs]
    return tests


def tail(text, lines=40):
    ls = text.rstrip("\n").splitlines()
    return "\n".join(ls[-lines:])


def indent(text, pre="    "):
    return "\n".join(pre + line for line in text.splitlines())


def main():
    # Started in the background by a non-interactive shell, SIGINT is
    # ignored, and the children would inherit that (libfuse then installs no
    # handler for it): give them the default.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    ap = argparse.ArgumentParser(description="dth integration tests")
    ap.add_argument("-k", action="append", default=[], metavar="PATTERN",
                    help="run only tests whose name contains PATTERN (repeatable)")
    ap.add_argument("-x", action="store_true", help="stop at the first failure")
    ap.add_argument("--list", action="store_true", help="list the tests and exit")
    opts = ap.parse_args()

    tests = discover()
    if opts.k:
        tests = [t for t in tests if any(p in t[0] for p in opts.k)]
    if opts.list:
        for name, _ in tests:
            print(name)
        return 0

    root = os.environ.get("DTH_TEST_WORKDIR")
    if root:
        os.makedirs(root, exist_ok=True)
    else:
        root = tempfile.mkdtemp(prefix="dth-it.")
        os.environ["DTH_TEST_WORKDIR"] = root
    print("# dth integration tests: %d tests, dth %s, work dir %s" % (len(tests), lib.dth_bin(), root),
          flush=True)

    passed = failed = skipped = 0
    t_all = time.monotonic()
    for name, fn in tests:
        t0 = time.monotonic()
        ctx = None
        ok = False
        try:
            ctx = lib.Context(name, root)
            if inspect.signature(fn).parameters:
                fn(ctx)
            else:
                fn()
            ctx.check_no_secrets()
            ok = True
            passed += 1
            print("ok %s (%.1fs)" % (name, time.monotonic() - t0), flush=True)
        except lib.Skip as e:
            ok = True
            skipped += 1
            print("skip %s: %s" % (name, e), flush=True)
        except KeyboardInterrupt:
            print("FAIL %s: interrupted" % name, flush=True)
            failed += 1
            break
        except BaseException as e:  # noqa: B902 - report every failure
            failed += 1
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            print("FAIL %s: %s" % (name, reason), flush=True)
            print(indent(traceback.format_exc().rstrip()), flush=True)
            print("    --- after %.1fs" % (time.monotonic() - t0), flush=True)
            if ctx is not None:
                if ctx.last_cmd:
                    print("    --- last dth command: %s" % " ".join(ctx.last_cmd), flush=True)
                err = ctx.last_stderr
                bg = getattr(ctx, "_bg_err", None)
                if bg and os.path.exists(bg):
                    with open(bg, "rb") as f:
                        err = (err + "\n[background run]\n" + f.read().decode("utf-8", "replace"))
                if err.strip():
                    print("    --- last dth stderr (tail):", flush=True)
                    print(indent(tail(err)), flush=True)
                print("    --- test dir kept: %s" % ctx.dir, flush=True)
        finally:
            if ctx is not None:
                ctx.cleanup(ok)
        if failed and opts.x:
            break

    print("# integration time %.1fs" % (time.monotonic() - t_all), flush=True)
    line = "%d passed, %d failed" % (passed, failed)
    if skipped:
        line += ", %d skipped" % skipped
    print(line, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
