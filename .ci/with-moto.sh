#!/usr/bin/env bash
# Runs the given command with a moto_server on a free 127.0.0.1 port, its URL
# in EC2OPS_MOTO_ENDPOINT, and stops the server on every exit path.
# Installs moto[server] with pip (in a virtualenv under .cache/) only where
# moto_server is missing.
set -uo pipefail

MOTO_VERSION=5.2.1
root=$(cd "$(dirname "$0")/.." && pwd)

find_moto() {
  if command -v moto_server >/dev/null 2>&1; then command -v moto_server; return 0; fi
  if [ -x "$root/.cache/moto-venv/bin/moto_server" ]; then echo "$root/.cache/moto-venv/bin/moto_server"; return 0; fi
  return 1
}

install_moto() {
  echo "with-moto: moto_server not found; installing moto[server]==$MOTO_VERSION with pip" >&2
  if python3 -m venv "$root/.cache/moto-venv" >/dev/null 2>&1; then
    "$root/.cache/moto-venv/bin/python" -m pip install --quiet "moto[server]==$MOTO_VERSION" && return 0
  fi
  python3 -m pip install --quiet --user "moto[server]==$MOTO_VERSION" \
    || python3 -m pip install --quiet --user --break-system-packages "moto[server]==$MOTO_VERSION" \
    || return 1
  PATH="$PATH:$(python3 -m site --user-base)/bin"
  export PATH
}

moto=$(find_moto) || { install_moto && moto=$(find_moto); } || moto=""
if [ -z "$moto" ]; then
  if [ "${CI:-}" = "true" ]; then
    echo "with-moto: could not install moto[server]; wire tests cannot run under CI=true" >&2
    exit 1
  fi
  echo "with-moto: moto_server unavailable; wire tests will skip" >&2
  exec "$@"
fi

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
log=$(mktemp)
MOTO_EC2_LOAD_DEFAULT_AMIS=false "$moto" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
pid=$!
cleanup() {
  kill "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  rm -f "$log"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

endpoint="http://127.0.0.1:$port"
ready=0
for _ in $(seq 1 240); do
  if python3 - "$endpoint" <<'PY' 2>/dev/null
import sys, urllib.request
urllib.request.urlopen(urllib.request.Request(sys.argv[1] + "/moto-api/reset", method="POST"), timeout=2)
PY
  then ready=1; break; fi
  if ! kill -0 "$pid" 2>/dev/null; then break; fi
  sleep 0.25
done
if [ "$ready" != 1 ]; then
  echo "with-moto: moto_server did not start on $endpoint; its log:" >&2
  cat "$log" >&2
  exit 1
fi
echo "with-moto: moto_server ($moto) on $endpoint" >&2

export EC2OPS_MOTO_ENDPOINT="$endpoint"
"$@"
