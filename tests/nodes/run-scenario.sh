#!/usr/bin/env bash
# Runs a molecule scenario of the collection on real systemd nodes, from a clean clone:
# installs the host packages the nodes need, makes the working tree importable as okera.auth
# and runs `molecule test -s SCENARIO` (default authserver). Run as root.
#   tests/nodes/run-scenario.sh [SCENARIO] [molecule test options...]
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
scenario=${1:-authserver}
shift || true

bash "$here/install-host-deps.sh"

# The working tree as ansible_collections/okera/auth, without installing a copy.
collections=$(mktemp -d)
trap 'rm -rf "$collections"' EXIT
mkdir -p "$collections/ansible_collections/okera"
ln -s "$root" "$collections/ansible_collections/okera/auth"
export ANSIBLE_COLLECTIONS_PATH=$collections${ANSIBLE_COLLECTIONS_PATH:+:$ANSIBLE_COLLECTIONS_PATH}

cd "$root"
start=$SECONDS
molecule test -s "$scenario" "$@"
echo "molecule test -s $scenario: $((SECONDS - start)) s"
