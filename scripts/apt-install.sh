#!/usr/bin/env bash
# apt-install.sh PACKAGE... : installs Debian packages, waiting for the locks of another apt-get
# or unattended-upgrades instead of failing at once, and printing only errors.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
lock_wait=(-o DPkg::Lock::Timeout=600)
# DPkg::Lock::Timeout covers the dpkg lock; the package lists' lock of `update` is waited for here.
for attempt in $(seq 60); do
  if apt-get "${lock_wait[@]}" update -qq 2>"${TMPDIR:-/tmp}/apt-update.$$"; then
    break
  fi
  if ! grep -q "lock" "${TMPDIR:-/tmp}/apt-update.$$" || [ "$attempt" -eq 60 ]; then
    cat "${TMPDIR:-/tmp}/apt-update.$$" >&2
    rm -f "${TMPDIR:-/tmp}/apt-update.$$"
    exit 1
  fi
  echo "apt-install: waiting for another package manager to finish ..." >&2
  sleep 10
done
rm -f "${TMPDIR:-/tmp}/apt-update.$$"
apt-get "${lock_wait[@]}" install -y -qq --no-install-recommends "$@" >/dev/null
