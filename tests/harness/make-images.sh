#!/bin/bash
# Build the test images offline with umoci and push them with skopeo to the
# registries of tests/harness/registry.sh (read from DIR/env):
#   test/tiny:v1       single-arch OCI image manifest (linux/amd64)
#   test/tiny:multi    two-arch OCI image index (amd64 + arm64), copied whole
#   test/docker:v2s2   Docker v2 schema 2 manifest (the same layers, converted)
#   test/old:schema1   Docker schema 1 (signed), src only (it alone accepts it);
#                      skipped with a note if skopeo cannot make one
# on src (anonymous), dst (basic) and token (bearer) alike.
#
# usage: make-images.sh DIR    (DIR as given to registry.sh start)
set -euo pipefail
[ $# -eq 1 ] || {
	echo "usage: $0 DIR" >&2
	exit 2
}
BASE=$1
# shellcheck disable=SC1091
. "$BASE/env"
L=$BASE/oci
S=$(mktemp -d)
trap 'rm -rf "$S"' EXIT
# keep skopeo's credentials and blob cache out of the user's files
export REGISTRY_AUTH_FILE=$BASE/skopeo-auth.json
echo '{}' >"$REGISTRY_AUTH_FILE"

mkdir -p "$S/etc"
echo "hello from the tiny image" >"$S/hello.txt"
echo v1 >"$S/etc/version"
echo arm64 >"$S/arch.txt"
rm -rf "$L"
umoci init --layout "$L"
umoci new --image "$L:tiny"
umoci insert --image "$L:tiny" "$S/hello.txt" /hello.txt
umoci insert --image "$L:tiny" "$S/etc" /etc
umoci config --image "$L:tiny" --config.entrypoint /bin/true --architecture amd64 --os linux
umoci new --image "$L:tiny-arm64"
umoci insert --image "$L:tiny-arm64" "$S/hello.txt" /hello.txt
umoci insert --image "$L:tiny-arm64" "$S/arch.txt" /arch.txt
umoci config --image "$L:tiny-arm64" --config.entrypoint /bin/true --architecture arm64 --os linux

# An OCI index of both, added to the layout's index.json as tag "multi".
python3 - "$L" multi tiny tiny-arm64 <<'EOF'
import hashlib, json, os, sys
layout, tag, srcs = sys.argv[1], sys.argv[2], sys.argv[3:]
path = os.path.join(layout, "index.json")
idx = json.load(open(path))
def name(m):
    return m.get("annotations", {}).get("org.opencontainers.image.ref.name")
def blob(d):
    algo, hexd = d.split(":")
    return os.path.join(layout, "blobs", algo, hexd)
tags = {name(m): m for m in idx["manifests"]}
children = []
for t in srcs:
    m = tags[t]
    cfg = json.load(open(blob(json.load(open(blob(m["digest"])))["config"]["digest"])))
    children.append({"mediaType": m["mediaType"], "digest": m["digest"], "size": m["size"],
                     "platform": {"architecture": cfg["architecture"], "os": cfg["os"]}})
body = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                   "manifests": children}, separators=(",", ":")).encode()
digest = hashlib.sha256(body).hexdigest()
open(os.path.join(layout, "blobs", "sha256", digest), "wb").write(body)
idx["manifests"] = [m for m in idx["manifests"] if name(m) != tag]
idx["manifests"].append({"mediaType": "application/vnd.oci.image.index.v1+json",
                         "digest": "sha256:" + digest, "size": len(body),
                         "annotations": {"org.opencontainers.image.ref.name": tag}})
json.dump(idx, open(path, "w"))
EOF

push() { # URL CREDS...
	local host=${1#http://}
	shift
	skopeo copy -q --dest-tls-verify=false "$@" "oci:$L:tiny" "docker://$host/test/tiny:v1"
	skopeo copy -q --all --dest-tls-verify=false "$@" "oci:$L:multi" "docker://$host/test/tiny:multi"
	skopeo copy -q --format v2s2 --dest-tls-verify=false "$@" "oci:$L:tiny" \
		"docker://$host/test/docker:v2s2"
}
CREDS="$DTH_TEST_REG_USER:$DTH_TEST_REG_PASS"
push "$DTH_TEST_REG_SRC"
push "$DTH_TEST_REG_DST" --dest-creds "$CREDS"
push "$DTH_TEST_REG_TOKEN" --dest-creds "$CREDS"

# Schema 1 (best effort: only src accepts it).
if skopeo copy -q --format v2s1 --dest-tls-verify=false "oci:$L:tiny" \
	"docker://${DTH_TEST_REG_SRC#http://}/test/old:schema1" 2>"$BASE/schema1.err"; then
	touch "$BASE/schema1.ok"
else
	echo "make-images.sh: no schema 1 image ($(head -c 200 "$BASE/schema1.err"))" >&2
fi
echo "make-images.sh: test/tiny:v1, test/tiny:multi, test/docker:v2s2 pushed to src, dst, token"
