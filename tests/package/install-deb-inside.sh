#!/usr/bin/env bash
# The part of install-deb.sh that runs inside the throwaway root (chroot): install,
# check, run the server as the unit would, remove, purge. Never run it on a real system.
# Usage: install-deb-inside.sh DEB
set -euo pipefail
deb=$1
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
# A section's summary: "ok" only if none of its checks failed.
counted=0
ok() {
  if [ "$failures" -eq "$counted" ]; then echo "ok: $*"; else echo "not ok: $*"; fi
  counted=$failures
}
data=/var/lib/groundmist-sync
conf=/etc/groundmist-sync/groundmist-sync.conf
unit=/lib/systemd/system/groundmist-sync.service
export DEBIAN_FRONTEND=noninteractive

# This machine's own installation, if any, would hide what the package does.
if dpkg-query -W groundmist-sync >/dev/null 2>&1; then dpkg --purge groundmist-sync >/dev/null; fi
if getent passwd groundmist-sync >/dev/null; then userdel groundmist-sync; fi
rm -rf "$data" /etc/groundmist-sync

dpkg -i "$deb" >/tmp/dpkg-install.log 2>&1 || { cat /tmp/dpkg-install.log >&2; echo "FAIL: dpkg -i" >&2; exit 1; }
[ "$(dpkg-query -W -f='${Status}' groundmist-sync)" = "install ok installed" ] || fail "not installed"
ok "dpkg -i (dependencies satisfied by this machine's packages)"

getent passwd groundmist-sync >/dev/null || fail "no groundmist-sync user"
uid=$(id -u groundmist-sync)
[ "$uid" -lt 1000 ] || fail "groundmist-sync is not a system user (uid $uid)"
shell=$(getent passwd groundmist-sync | cut -d: -f7)
[ "$shell" = /usr/sbin/nologin ] || fail "groundmist-sync's shell is $shell"
[ "$(stat -c '%U:%G %a' "$data")" = "groundmist-sync:groundmist-sync 700" ] ||
  fail "$data is $(stat -c '%U:%G %a' "$data")"
[ "$(stat -c '%U:%G %a' "$conf")" = "root:root 640" ] || fail "$conf is $(stat -c '%U:%G %a' "$conf")"
dpkg-query -W -f='${Conffiles}\n' groundmist-sync | grep -q "^ $conf " || fail "$conf is not a registered conffile"
if command -v deb-systemd-helper >/dev/null; then
  [ "$(readlink /etc/systemd/system/multi-user.target.wants/groundmist-sync.service)" = "$unit" ] ||
    fail "the service is not enabled (no multi-user.target.wants link)"
  ok "user, data folder, conffile, service enabled"
else
  ok "user, data folder, conffile (no deb-systemd-helper here: enabling not checked)"
fi
grep -q 'systemctl start groundmist-sync' /tmp/dpkg-install.log || fail "postinst did not say how to start the service"

if command -v systemd-analyze >/dev/null; then
  if ! report=$(systemd-analyze verify "$unit" 2>&1) || [ -n "$report" ]; then fail "systemd-analyze verify: $report"; fi
  ok "systemd-analyze verify on the installed unit"
fi

# --- the server, started as the unit starts it ---
# The unit's environment: Environment=, then EnvironmentFile= (the file's values win).
# The packaged conf is plain KEY=VALUE lines, which a shell reads the same way.
env_args=("DATA_DIR=$(sed -n 's/^Environment=DATA_DIR=//p' "$unit")")
while IFS= read -r line; do
  case "$line" in ''|'#'*) continue ;; esac
  key=${line%%=*} value=${line#*=}
  value=${value#\"} value=${value%\"}
  env_args+=("$key=$value")
done <"$conf"
args=$(sed -n 's/^GROUNDMIST_SYNC_ARGS="\(.*\)"$/\1/p' "$conf")
workdir=$(sed -n 's/^WorkingDirectory=//p' "$unit")
log=/tmp/serve.log
# --port 0: a free port (the conf's 3031 may be taken on this machine).
# shellcheck disable=SC2086  # the unit splits $GROUNDMIST_SYNC_ARGS at spaces too
(cd "$workdir" && exec setpriv --reuid=groundmist-sync --regid=groundmist-sync --init-groups --no-new-privs \
   env -i PATH=/usr/bin:/bin "${env_args[@]}" /usr/bin/groundmist-sync serve $args --port 0) >"$log" 2>&1 &
pid=$!
port=""
for _ in $(seq 100); do
  port=$(sed -n 's/^groundmist-sync listening on http:\/\/127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$log")
  [ -n "$port" ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$port" ]; then
  fail "the server did not start as the service user: $(cat "$log")"
else
  grep -q "(data: $data)" "$log" || fail "the server does not use $data: $(head -1 "$log")"
  exec 3<>"/dev/tcp/127.0.0.1/$port"
  printf 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3
  reply=$(cat <&3)
  exec 3<&-
  grep -q '"status":"ok"' <<<"$reply" || fail "/healthz answered: $reply"
  kill -TERM "$pid"
  wait "$pid" && rc=0 || rc=$?
  [ "$rc" -eq 0 ] || fail "the server exited $rc on SIGTERM: $(cat "$log")"
  for f in "$data/.groundmist/secret.key" "$data/.groundmist/server.db"; do
    [ "$(stat -c '%U %a' "$f" 2>/dev/null)" = "groundmist-sync 600" ] ||
      fail "$f is $(stat -c '%U %a' "$f" 2>&1)"
  done
  ok "the server ran as groundmist-sync with the packaged settings (/healthz ok, SIGTERM exit 0, its files 0600)"
fi

# --- remove, then purge: the owner's data stays ---
dpkg -r groundmist-sync >/dev/null 2>&1 || fail "dpkg -r"
[ ! -e /usr/bin/groundmist-sync ] || fail "dpkg -r left the program"
[ -f "$conf" ] || fail "dpkg -r removed the settings (a conffile stays until purge)"
[ -f "$data/.groundmist/secret.key" ] || fail "dpkg -r removed the data"
dpkg -P groundmist-sync >/tmp/dpkg-purge.log 2>&1 || fail "dpkg -P: $(cat /tmp/dpkg-purge.log)"
[ ! -e /etc/groundmist-sync ] || fail "dpkg -P left /etc/groundmist-sync"
[ -f "$data/.groundmist/secret.key" ] || fail "dpkg -P removed the data"
[ ! -e /etc/systemd/system/multi-user.target.wants/groundmist-sync.service ] || fail "dpkg -P left the service enabled"
ok "remove and purge keep the data"

if [ "$failures" -ne 0 ]; then
  echo "$failures check(s) failed" >&2
  exit 1
fi
