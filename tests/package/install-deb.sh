#!/usr/bin/env bash
# ctest package_install (tests/package.cmake): installs the .deb package_deb built with
# dpkg, in a throwaway root (an overlay over this machine's root, in a private mount
# namespace, discarded at the end), and checks what its maintainer scripts did: the
# groundmist-sync system user, /var/lib/groundmist-sync private to it, the service
# enabled, the conffile registered. systemd cannot start the service here (it is not
# PID 1 in a container, nor in the throwaway root), so the server is started as the unit
# would start it: as that user, in that folder, with the packaged conf's environment
# and flags; it must answer /healthz and create its files, private, in the data folder.
# Then remove (data, user kept) and purge (settings gone, data still kept).
# Skips (77) where it cannot make the throwaway root: not root, or no overlay mounts.
# Usage: install-deb.sh OUT   (OUT/groundmist-sync.deb, from check-deb.sh)
set -euo pipefail
out=$1
deb=$out/groundmist-sync.deb
[ -f "$deb" ] || { echo "FAIL: no $deb (package_deb builds it)" >&2; exit 1; }
skip() { echo "skipped: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "installing a package in a throwaway root needs root"
command -v unshare >/dev/null || skip "no unshare"

work=$(mktemp -d "${TMPDIR:-/tmp}/gm-deb-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/upper" "$work/work" "$work/root"
cp "$deb" "$work/groundmist-sync.deb"
cp "$(dirname "$0")/install-deb-inside.sh" "$work/inside.sh"

set +e
unshare --mount --propagation private bash -euo pipefail -c '
  w=$1
  mount -t overlay overlay -o "lowerdir=/,upperdir=$w/upper,workdir=$w/work" "$w/root" 2>"$w/mount.err" || exit 77
  mount --bind /proc "$w/root/proc"
  mount --bind /dev "$w/root/dev"
  mount -t tmpfs tmpfs "$w/root/run"
  mount -t tmpfs tmpfs "$w/root/tmp"
  cp "$w/groundmist-sync.deb" "$w/inside.sh" "$w/root/tmp/"
  chroot "$w/root" bash /tmp/inside.sh /tmp/groundmist-sync.deb
' inside "$work"
rc=$?
set -e
if [ $rc -eq 77 ] && [ -s "$work/mount.err" ]; then skip "no overlay mount here: $(cat "$work/mount.err")"; fi
exit $rc
