#!/usr/bin/env bash
# Host packages the node scenario needs (Debian/Ubuntu host, run as root):
# debootstrap builds the node image, systemd-container boots it (systemd-nspawn),
# zstd packs the cached image, iproute2/util-linux give namespaces, veths and nsenter,
# openssh-client reaches the nodes.
set -euo pipefail
packages=(debootstrap systemd-container zstd iproute2 util-linux openssh-client procps)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
    bash "$(dirname "${BASH_SOURCE[0]}")/../../scripts/apt-install.sh" "${missing[@]}"
fi
