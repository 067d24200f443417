#!/usr/bin/env bash
# Builds the root file system of a test node: Debian bookworm booted by systemd, reached over
# SSH, with the Python the authserver role installs into. Writes OUTPUT (a .tar.zst).
# nodes.sh caches the result keyed on this file's hash: any change here rebuilds the image.
set -euo pipefail

output=${1:?usage: build-image.sh OUTPUT.tar.zst}
suite=bookworm
packages=systemd,systemd-sysv,dbus,python3,python3-venv,openssh-server,curl,iproute2,sudo

# The host's own Debian mirror: the first non-security URI of its deb822 sources.
mirror=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
[[ -n "$mirror" ]] || { echo "no Debian mirror in /etc/apt/sources.list.d/debian.sources" >&2; exit 1; }

work=$(mktemp -d "$(dirname "$output")/.image.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/rootfs

debootstrap --variant=minbase --include="$packages" "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -n 30 "$work/debootstrap.log" >&2; exit 1; }

# Each node gets its own machine id at first boot (an empty file tells systemd to make one).
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"

# Host keys are made per node at boot, never baked into the shared image.
rm -f "$root"/etc/ssh/ssh_host_*
mkdir -p "$root/etc/systemd/system/ssh.service.d"
cat >"$root/etc/systemd/system/ssh.service.d/host-keys.conf" <<'UNIT'
[Service]
ExecStartPre=
ExecStartPre=/usr/bin/ssh-keygen -A
ExecStartPre=/usr/sbin/sshd -t
UNIT

# No nameserver answers inside the test network: fail fast instead of waiting on lookups.
printf 'options timeout:1 attempts:1\n' >"$root/etc/resolv.conf"

# Nothing to do on a console nobody reads.
chroot "$root" systemctl mask console-getty.service getty@tty1.service >/dev/null 2>&1

mkdir -p "$root/root/.ssh"
chmod 0700 "$root/root/.ssh"

rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb

tar -C "$root" --numeric-owner --xattrs --acls -I 'zstd -T0 -3' -cf "$work/rootfs.tar.zst" .
mv "$work/rootfs.tar.zst" "$output"
