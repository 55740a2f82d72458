#!/usr/bin/env bash
# Starts a real single-node Ceph 16 (one monitor, one manager, one OSD on the RAM object store,
# one RADOS Gateway on 127.0.0.1:7480) for the S3 blob store's tests (DESIGN §8, issue 6),
# following Ceph's manual deployment: monmaptool, ceph-mon --mkfs, ceph osd new, ceph-osd --mkfs,
# radosgw, radosgw-admin user create. No systemd, no containers, cephx off, pool size 1; every
# path (conf, run dir, logs, data, cluster log) lives in one folder. Writes the S3 endpoint and a
# test user's fixed keys to <dir>/s3.env (MOTTAINAI_TEST_S3_* lines, sourceable by a shell).
# Idempotent: exits 0 at once when the gateway already answers; otherwise stops what a previous
# run left (the memstore data died with it) and builds a fresh cluster.
# Environment: CEPH_DIR (default /tmp/mottainai-ceph), CEPH_WAIT_SECONDS (default 60),
# CEPH_MEMSTORE_BYTES (capacity of the RAM OSD, default 8 GiB; only what is stored uses memory).
set -euo pipefail

dir=${CEPH_DIR:-/tmp/mottainai-ceph}
wait_seconds=${CEPH_WAIT_SECONDS:-60}
memstore_bytes=${CEPH_MEMSTORE_BYTES:-8589934592}
rgw_addr=127.0.0.1:7480
endpoint=http://$rgw_addr
conf=$dir/ceph.conf
access_key=MOTTAINAITESTACCESS0
secret_key=mottainai-test-secret-key-0000000000000000
uid=mottainai-test

# RGW answers an anonymous GET / with an empty ListAllMyBucketsResult.
rgw_answers() { curl -sf "$endpoint/" 2>/dev/null | grep -q ListAllMyBucketsResult; }

if rgw_answers; then
  echo "RADOS Gateway already answers on $rgw_addr (keys in $dir/s3.env)"
  exit 0
fi

need=()
for bin in ceph-mon:ceph-mon ceph-mgr:ceph-mgr ceph-osd:ceph-osd radosgw:radosgw ceph:ceph-common; do
  command -v "${bin%%:*}" >/dev/null || need+=("${bin#*:}")
done
if ((${#need[@]})); then
  echo "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

logs() {
  local f
  for f in "$dir"/log/*.log; do
    [ -s "$f" ] || continue
    echo "--- last lines of $f" >&2
    tail -n 25 "$f" >&2
  done
}
fail() {
  echo "start-ceph: $*" >&2
  logs
  exit 1
}

if [ -d "$dir" ] && [ ! -f "$conf" ] && [ -n "$(ls -A "$dir")" ]; then
  echo "start-ceph: $dir exists, is not empty and holds no ceph.conf; refusing to replace it" >&2
  exit 1
fi
if [ -d "$dir" ]; then
  echo "stopping what a previous cluster in $dir left"
  CEPH_DIR=$dir bash "$(dirname "$0")/stop-ceph.sh" >/dev/null || true
  rm -rf "$dir"
fi
mkdir -p "$dir"/{run,log,mon/ceph-a,mgr/ceph-x,osd,rgw}
startup=$dir/log/startup.log

fsid=$(cat /proc/sys/kernel/random/uuid)
cat >"$conf" <<CONF
[global]
fsid = $fsid
mon initial members = a
mon host = v2:127.0.0.1:3300,v1:127.0.0.1:6789
public network = 127.0.0.0/8
auth cluster required = none
auth service required = none
auth client required = none
auth allow insecure global id reclaim = true
ms mon client mode = crc
paxos propose interval = 0.05
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
osd crush chooseleaf type = 0
osd objectstore = memstore
memstore device bytes = $memstore_bytes
run dir = $dir/run
admin socket = $dir/run/\$name.asok
pid file = $dir/run/\$name.pid
log file = $dir/log/\$name.log
mon cluster log file = $dir/log/cluster.log
mon data = $dir/mon/\$cluster-\$id
mgr data = $dir/mgr/\$cluster-\$id
osd data = $dir/osd/\$cluster-\$id
keyring = /dev/null
crash dir = $dir/crash
[client.rgw.a]
rgw frontends = beast endpoint=$rgw_addr
rgw data = $dir/rgw
rgw enable usage log = false
# Deleted data is freed by RGW's garbage collector; after 30 s here instead of 2 h, so that
# repeated test and benchmark runs do not fill the RAM-backed OSD.
rgw gc obj min wait = 30
rgw gc processor period = 30
rgw dns name = localhost
CONF

started=$(date +%s.%N)
echo "creating monitor a (fsid $fsid)"
monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:3300,v1:127.0.0.1:6789]" "$dir/monmap" >/dev/null ||
  fail "monmaptool failed"
ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" 2>>"$startup" || fail "ceph-mon --mkfs failed"
ceph-mon -c "$conf" -i a 2>>"$startup" || fail "ceph-mon did not start"

echo "starting manager x"
ceph-mgr -c "$conf" -i x 2>>"$startup" || fail "ceph-mgr did not start"

echo "creating OSD (memstore, $memstore_bytes bytes)"
osd_uuid=$(cat /proc/sys/kernel/random/uuid)
osd_id=$(timeout 60 ceph -c "$conf" osd new "$osd_uuid" 2>>"$startup") || fail "ceph osd new failed"
mkdir -p "$dir/osd/ceph-$osd_id"
ceph-osd -c "$conf" -i "$osd_id" --mkfs --osd-uuid "$osd_uuid" 2>>"$startup" || fail "ceph-osd --mkfs failed"
ceph-osd -c "$conf" -i "$osd_id" 2>>"$startup" || fail "ceph-osd did not start"

echo "starting RADOS Gateway on $rgw_addr"
radosgw -c "$conf" -n client.rgw.a 2>>"$startup" || fail "radosgw did not start"

ready=""
for ((i = 0; i < wait_seconds * 10; i++)); do
  if rgw_answers; then
    ready=yes
    break
  fi
  sleep 0.1
done
[ -n "$ready" ] || fail "the RADOS Gateway did not answer $endpoint/ within ${wait_seconds}s"

timeout 60 radosgw-admin -c "$conf" -n client.rgw.a user create --uid "$uid" --display-name "Mottainai tests" \
  --access-key "$access_key" --secret "$secret_key" >"$dir/log/user-create.out" 2>&1 ||
  fail "radosgw-admin user create failed: $(tail -n 5 "$dir/log/user-create.out")"

cat >"$dir/s3.env" <<ENV
MOTTAINAI_TEST_S3_ENDPOINT=$endpoint
MOTTAINAI_TEST_S3_REGION=default
MOTTAINAI_TEST_S3_ACCESS_KEY=$access_key
MOTTAINAI_TEST_S3_SECRET_KEY=$secret_key
ENV
elapsed=$(echo "$(date +%s.%N) - $started" | bc 2>/dev/null || echo "?")
echo "Ceph is ready: S3 on $endpoint after ${elapsed}s (conf $conf, keys $dir/s3.env)"
