# Functions shared by start-registry.sh and start-auth-registry.sh, which source this file: a
# private Docker registry (Debian's docker-registry, distribution 2.8) with its own config in a
# directory of its own, served in the background on a loopback address. Not a script to run.
# The functions expect `set -euo pipefail`; registry_serve ends the calling script on failure.

# registry_status ADDR: prints the HTTP status code of http://ADDR/v2/ (000 when nothing answers).
registry_status() {
  curl -s -o /dev/null -w '%{http_code}' "http://$1/v2/" 2>/dev/null || true
}

# registry_answers ADDR: succeeds when http://ADDR/v2/ answers without an HTTP error (an open registry).
registry_answers() {
  curl -sf "http://$1/v2/" >/dev/null 2>&1
}

# registry_answers_401 ADDR: succeeds when http://ADDR/v2/ asks for authentication.
registry_answers_401() {
  [ "$(registry_status "$1")" = 401 ]
}

# registry_write_config DIR ADDR: creates DIR/storage and writes DIR/config.yml: log level warn,
# filesystem storage under DIR/storage with deletes enabled, HTTP on ADDR. A caller appends its
# own sections (auth) to the file afterwards.
registry_write_config() {
  local dir=$1 addr=$2
  mkdir -p "$dir/storage"
  cat >"$dir/config.yml" <<CONFIG
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
http:
  addr: $addr
CONFIG
}

# registry_serve DIR WAIT_SECONDS AWAITED READY_CHECK ADDR: starts `docker-registry serve
# DIR/config.yml` in the background, detached, appending to DIR/registry.log, then runs
# `READY_CHECK ADDR` every 0.5 s. Returns once it succeeds, with the registry's pid in
# REGISTRY_PID. Exits the calling script with 1, quoting the log's last 40 lines, when the
# process ends first or after WAIT_SECONDS; AWAITED says what was awaited in that message
# (e.g. "http://ADDR/v2/").
registry_serve() {
  local dir=$1 wait_seconds=$2 awaited=$3 ready_check=$4 addr=$5
  local log=$dir/registry.log i
  nohup docker-registry serve "$dir/config.yml" >>"$log" 2>&1 </dev/null &
  REGISTRY_PID=$!
  disown || true
  for ((i = 0; i < wait_seconds * 2; i++)); do
    if "$ready_check" "$addr"; then
      return 0
    fi
    if ! kill -0 "$REGISTRY_PID" 2>/dev/null; then
      echo "docker-registry exited before answering on $addr; last lines of $log:" >&2
      tail -n 40 "$log" >&2 || true
      exit 1
    fi
    sleep 0.5
  done
  echo "docker-registry did not answer $awaited within ${wait_seconds}s; last lines of $log:" >&2
  tail -n 40 "$log" >&2 || true
  exit 1
}
