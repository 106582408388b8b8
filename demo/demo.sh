#!/bin/bash
# dth in two minutes, on this machine: install what is needed, build, start a
# throw-away Ceph cluster with two S3 endpoints, fill a source bucket, mirror
# it with `dth sync`, show the manifest, mirror again (nothing left to copy),
# and stop the servers.
#
# usage: sudo bash demo/demo.sh      (root only for installing packages)
# Environment: DTH_DEMO_DIR [/tmp/dth-demo], ports DTH_DEMO_PORT_SRC [7880],
# DTH_DEMO_PORT_DST [7881], DTH_DEMO_MON_PORT [7089]; DTH_SKIP_INSTALL=1.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DIR=${DTH_DEMO_DIR:-/tmp/dth-demo}
PORT_SRC=${DTH_DEMO_PORT_SRC:-7880}
PORT_DST=${DTH_DEMO_PORT_DST:-7881}

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

if [ -z "${DTH_SKIP_INSTALL:-}" ]; then
	say "installing dependencies (Debian packages, s3rver)"
	bash tests/install-deps.sh
fi
PY=$(sh tests/harness/pick-python.sh)

say "building"
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build dth >/dev/null
DTH=$ROOT/build/dth

say "starting Ceph with two radosgw endpoints (:$PORT_SRC source, :$PORT_DST destination)"
cleanup() {
	fusermount3 -u "$DIR/mnt" 2>/dev/null || true
	bash tests/harness/ceph.sh stop "$DIR/ceph" || true
	rm -rf "$DIR"
}
trap cleanup EXIT
rm -rf "$DIR"
mkdir -p "$DIR"
DTH_TEST_RGW_PORT_A=$PORT_SRC DTH_TEST_RGW_PORT_B=$PORT_DST \
	DTH_TEST_MON_PORT=${DTH_DEMO_MON_PORT:-7089} DTH_TEST_MEMSTORE_BYTES=2147483648 \
	bash tests/harness/ceph.sh start "$DIR/ceph"

# Two remotes, defined by environment variables (a config file works too).
for side in SRC:$PORT_SRC DST:$PORT_DST; do
	n=${side%%:*}
	export "DTH_REMOTE_${n}_TYPE=s3" "DTH_REMOTE_${n}_PROVIDER=ceph" \
		"DTH_REMOTE_${n}_ENDPOINT=http://127.0.0.1:${side#*:}" "DTH_REMOTE_${n}_REGION=us-east-1" \
		"DTH_REMOTE_${n}_PATH_STYLE=true" "DTH_REMOTE_${n}_ACCESS_KEY_ID=test" \
		"DTH_REMOTE_${n}_SECRET_ACCESS_KEY=test"
done

say "seeding s3://demo-src: 300 small objects and one 40 MiB multipart object"
"$PY" - "http://127.0.0.1:$PORT_SRC" "http://127.0.0.1:$PORT_DST" <<'PYEOF'
import os, sys
from concurrent.futures import ThreadPoolExecutor
import boto3
from botocore.config import Config

def client(url):
    return boto3.client("s3", endpoint_url=url, aws_access_key_id="test",
                        aws_secret_access_key="test", region_name="us-east-1",
                        config=Config(s3={"addressing_style": "path"}, max_pool_connections=32))

src, dst = client(sys.argv[1]), client(sys.argv[2])
src.create_bucket(Bucket="demo-src")
dst.create_bucket(Bucket="demo-dst")
def put(i):
    folder = ("photos", "logs", "reports")[i % 3]
    src.put_object(Bucket="demo-src", Key="%s/item-%04d.dat" % (folder, i),
                   Body=os.urandom(512 + i * 37), ContentType="application/octet-stream",
                   Metadata={"demo": "yes"})
with ThreadPoolExecutor(16) as ex:
    list(ex.map(put, range(300)))
part = 8 * 1024 * 1024
up = src.create_multipart_upload(Bucket="demo-src", Key="videos/big.bin")
parts = []
for n in range(5):
    r = src.upload_part(Bucket="demo-src", Key="videos/big.bin", UploadId=up["UploadId"],
                        PartNumber=n + 1, Body=os.urandom(part))
    parts.append({"PartNumber": n + 1, "ETag": r["ETag"]})
src.complete_multipart_upload(Bucket="demo-src", Key="videos/big.bin", UploadId=up["UploadId"],
                              MultipartUpload={"Parts": parts})
print("seeded 301 objects; videos/big.bin ETag", src.head_object(Bucket="demo-src", Key="videos/big.bin")["ETag"])
PYEOF

STATE=$DIR/state
say "dth sync src:demo-src dst:demo-dst"
"$DTH" sync --state "$STATE" --task demo src:demo-src dst:demo-dst

say "dth manifest stats demo"
"$DTH" manifest --state "$STATE" stats demo

say "a second run: only a listing, nothing to copy"
"$DTH" sync --state "$STATE" --task demo src:demo-src dst:demo-dst

if [ -e /dev/fuse ] && command -v fusermount3 >/dev/null; then
	say "dth mount: the mirror task as a read-only filesystem (listings from the manifest)"
	MNT=$DIR/mnt
	mkdir -p "$MNT"
	"$DTH" mount --manifest --task demo --state "$STATE" "$MNT"
	ls -l "$MNT" "$MNT/videos"
	echo "files: $(find "$MNT" -type f | wc -l); md5 of videos/big.bin through the mount:"
	md5sum "$MNT/videos/big.bin"
	fusermount3 -u "$MNT"
fi

say "done; stopping the servers"
