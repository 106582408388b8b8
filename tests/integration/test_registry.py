"""dth image inspect/tags/repos against real registries (docker-registry 2.8
from tests/harness/registry.sh, images from tests/harness/make-images.sh):
anonymous (src), basic (dst) and bearer-token (token) auth; manifests read
byte for byte as skopeo reads them; listings; refused credentials; missing
repositories; schema 1 refused."""

import hashlib
import json
import os
import subprocess

import lib

IMAGES = ("test/tiny:v1", "test/tiny:multi", "test/docker:v2s2")
WRONG_PASS = "WrongPass-dth-4b9e1Z"
HARNESS = os.path.join(lib.REPO, "tests", "harness")


@lib.module_fixture
def images():
    """Make sure the test images are there (make-images.sh once if not)."""
    lib.registry_url("src")
    try:
        lib.skopeo_raw("src", IMAGES[0])
    except subprocess.CalledProcessError:
        d = os.environ.get("DTH_TEST_REG_DIR")
        if not d:
            lib.skip("test images missing and DTH_TEST_REG_DIR not set")
        subprocess.run(["bash", os.path.join(HARNESS, "make-images.sh"), d], check=True,
                       stdout=subprocess.DEVNULL, timeout=600)
    return True


def _config(ctx):
    text = (lib.registry_section("src", "src")
            + lib.registry_section("dst", "dst", lib.REG_USER, lib.REG_PASS)
            + lib.registry_section("token", "token", lib.REG_USER, lib.REG_PASS)
            + lib.registry_section("anon", "token")
            + lib.registry_section("dstbad", "dst", lib.REG_USER, WRONG_PASS)
            + lib.registry_section("tokbad", "token", lib.REG_USER, WRONG_PASS))
    ctx.write_config(text)


def _image(ctx, *args, check_exit=0):
    return ctx.run_dth(["image"] + list(args[:1]) + ["--config", ctx.config] + list(args[1:]),
                       check_exit=check_exit)


def _raw_bytes(ctx, remote, image):
    exe = lib.dth_bin()
    p = subprocess.run([exe, "image", "inspect", "--raw", "--config", ctx.config,
                        "%s:%s" % (remote, image)], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=ctx.base_env(), timeout=120)
    ctx.last_stderr = p.stderr.decode("utf-8", "replace")
    assert p.returncode == 0, "dth image inspect --raw %s:%s exited %d" % (
        remote, image, p.returncode)
    return p.stdout


def _check_raw(ctx, remote, which):
    images()
    _config(ctx)
    for img in IMAGES:
        got = _raw_bytes(ctx, remote, img)
        want = lib.skopeo_raw(which, img)
        assert got == want, "%s %s: manifest bytes differ from skopeo's" % (remote, img)
        # and the digest reported without --raw is the SHA-256 of those bytes
        _, out, _ = _image(ctx, "inspect", "%s:%s" % (remote, img))
        info = json.loads(out)
        assert info["digest"] == "sha256:" + hashlib.sha256(want).hexdigest(), info
        assert info["size"] == len(want), info
        # umoci leaves mediaType out of its image manifests (optional in OCI)
        mt = json.loads(want).get("mediaType") or "application/vnd.oci.image.manifest.v1+json"
        assert info["mediaType"] == mt, (info["mediaType"], mt)


def test_raw_anonymous(ctx):
    _check_raw(ctx, "src", "src")


def test_raw_basic(ctx):
    _check_raw(ctx, "dst", "dst")


def test_raw_bearer(ctx):
    _check_raw(ctx, "token", "token")


def test_raw_bearer_anonymous_pull(ctx):
    _check_raw(ctx, "anon", "token")


def test_inspect_index_and_digest(ctx):
    images()
    _config(ctx)
    _, out, _ = _image(ctx, "inspect", "token:test/tiny:multi")
    info = json.loads(out)
    assert info["kind"] == "index", info
    plats = sorted(m["platform"] for m in info["manifests"])
    assert plats == ["linux/amd64", "linux/arm64"], plats
    # each child by digest, and the index by digest, give the same bytes
    for m in info["manifests"]:
        raw = _raw_bytes(ctx, "token", "test/tiny@" + m["digest"])
        assert "sha256:" + hashlib.sha256(raw).hexdigest() == m["digest"]
        assert len(raw) == m["size"]
    raw = _raw_bytes(ctx, "token", "test/tiny@" + info["digest"])
    assert raw == lib.skopeo_raw("token", "test/tiny:multi")
    _, out, _ = _image(ctx, "inspect", "dst:test/docker:v2s2")
    info = json.loads(out)
    assert info["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json", info
    assert info["kind"] == "image" and info["config"].startswith("sha256:"), info
    assert len(info["layers"]) == 2, info


def test_tags_and_repos(ctx):
    images()
    _config(ctx)
    for remote in ("src", "dst", "token"):
        _, out, _ = _image(ctx, "tags", remote + ":test/tiny")
        assert sorted(out.split()) == ["multi", "v1"], (remote, out)
        _, out, _ = _image(ctx, "tags", remote + ":test/docker")
        assert out.split() == ["v2s2"], (remote, out)
        _, out, _ = _image(ctx, "repos", remote + ":")
        repos = out.split()
        assert "test/tiny" in repos and "test/docker" in repos, (remote, repos)
        assert repos == sorted(repos), repos


def test_wrong_password(ctx):
    images()
    _config(ctx)
    for remote in ("dstbad", "tokbad"):
        for args in (("inspect", remote + ":test/tiny:v1"), ("tags", remote + ":test/tiny")):
            rc, out, err = _image(ctx, *args, check_exit=3)
            assert WRONG_PASS not in out + err, "the password was printed"
            assert "username and password" in err, err
            assert out == "", out


def test_anonymous_refused_catalog(ctx):
    images()
    _config(ctx)
    # the token server grants anonymous users pull only: no catalog
    rc, out, err = _image(ctx, "repos", "anon:", check_exit=3)
    assert "401" in err and "anonymous" in err, err


def test_missing(ctx):
    images()
    _config(ctx)
    for remote in ("src", "dst", "token"):
        rc, out, err = _image(ctx, "inspect", remote + ":test/no-such-repo:v1", check_exit=3)
        assert "test/no-such-repo" in err and "unknown" in err.lower(), err
        rc, out, err = _image(ctx, "inspect", remote + ":test/tiny:no-such-tag", check_exit=3)
        assert "MANIFEST_UNKNOWN" in err, err
        rc, out, err = _image(ctx, "tags", remote + ":test/no-such-repo", check_exit=3)
        assert "NAME_UNKNOWN" in err, err


def test_usage_errors(ctx):
    _config(ctx)
    _image(ctx, "inspect", "src:Bad_Repo", check_exit=2)
    _image(ctx, "inspect", "nosuchremote:test/tiny", check_exit=2)
    _image(ctx, "inspect", "src:test/tiny@sha256:1234", check_exit=2)
    _image(ctx, "tags", "src:test/tiny:v1", check_exit=2)
    _image(ctx, "repos", "src:test", check_exit=2)
    _image(ctx, "frobnicate", "src:test", check_exit=2)
    ctx.write_config("[remote plain]\ntype = registry\nurl = http://127.0.0.1:1\n")
    rc, out, err = _image(ctx, "tags", "plain:x", check_exit=2)
    assert "insecure" in err, err


def test_schema1_refused(ctx):
    images()
    d = os.environ.get("DTH_TEST_REG_DIR")
    if not d or not os.path.exists(os.path.join(d, "schema1.ok")):
        lib.skip("no schema 1 image (make-images.sh could not push one)")
    _config(ctx)
    rc, out, err = _image(ctx, "inspect", "src:test/old:schema1", check_exit=1)
    assert "schema 1" in err, err
    assert out == ""


def test_unreachable(ctx):
    ctx.write_config("[remote gone]\ntype = registry\nurl = http://127.0.0.1:9\ninsecure = true\nretries = 1\n")
    rc, out, err = _image(ctx, "tags", "gone:x", check_exit=3)
    assert "127.0.0.1" in err, err
