#!/usr/bin/env bash
# Real systemd test nodes on one machine: Debian booted by systemd-nspawn, each node in its
# own network namespace, all joined by a bridge in a hub namespace and reached from the host
# over SSH. Run as root on a Debian host (install-host-deps.sh installs what it needs).
#
#   nodes.sh image                 build the node image, or reuse the cached one; print its path
#   nodes.sh up NAME...            boot nodes (tears everything down again if any step fails)
#   nodes.sh down                  stop nodes, unmount overlays, delete namespaces and veths
#   nodes.sh exec NAME CMD...      run a command inside a node
#   nodes.sh list                  "NAME ADDRESS" per running node
#
# Environment:
#   OKERA_NODES_STATE   state directory (SSH key, overlays, logs)   default /var/tmp/okera-auth-nodes
#   OKERA_NODES_PREFIX  prefix of namespace, veth and bridge names  default okn
#   OKERA_NODES_NET     first three octets of the test /24          default 10.213.47
#   OKERA_NODES_CACHE   image cache                                 default ~/.cache/okera-auth/nodes
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
state=${OKERA_NODES_STATE:-/var/tmp/okera-auth-nodes}
prefix=${OKERA_NODES_PREFIX:-okn}
net=${OKERA_NODES_NET:-10.213.47}
cache=${OKERA_NODES_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/okera-auth/nodes}
hub=$prefix-hub
bridge=${prefix}br
host_veth=${prefix}-host
host_address=$net.1

die() { echo "nodes.sh: $*" >&2; exit 1; }

image() {
    local key path
    key=$(sha256sum "$here/build-image.sh" | cut -c1-16)
    path=$cache/$key/rootfs.tar.zst
    if [[ ! -s $path ]]; then
        mkdir -p "$cache/$key"
        echo "nodes.sh: building node image $key (debootstrap, about 2 min)" >&2
        bash "$here/build-image.sh" "$path"
        # Images of older build scripts are never used again.
        find "$cache" -mindepth 1 -maxdepth 1 -type d -not -name "$key" -exec rm -rf {} +
    fi
    echo "$path"
}

# Shared read-only lower layer, unpacked once per image.
lower_dir() {
    local tarball=$1 lower
    lower=$state/lower-$(basename "$(dirname "$tarball")")
    if [[ ! -f $lower.ready ]]; then
        rm -rf "$state"/lower-*
        mkdir -p "$lower"
        tar -C "$lower" --numeric-owner --xattrs --acls -I zstd -xf "$tarball"
        touch "$lower.ready"
    fi
    echo "$lower"
}

network_up() {
    ip netns add "$hub"
    ip -n "$hub" link add "$bridge" type bridge
    ip -n "$hub" link set "$bridge" up
    ip -n "$hub" link set lo up
    ip link add "$host_veth" type veth peer name "${prefix}-h" netns "$hub"
    ip -n "$hub" link set "${prefix}-h" master "$bridge" up
    ip addr add "$host_address/24" dev "$host_veth"
    ip link set "$host_veth" up
}

node_network_up() {
    local name=$1 address=$2 index=$3
    ip netns add "$prefix-$name"
    ip -n "$hub" link add "${prefix}-n$index" type veth peer name host0 netns "$prefix-$name"
    ip -n "$hub" link set "${prefix}-n$index" master "$bridge" up
    ip -n "$prefix-$name" addr add "$address/24" dev host0
    ip -n "$prefix-$name" link set host0 up
    ip -n "$prefix-$name" link set lo up
    ip -n "$prefix-$name" route add default via "$host_address"
}

# The nspawn process's child is the node's PID 1.
leader_pid() {
    local name=$1 nspawn
    nspawn=$(cat "$state/nodes/$name/nspawn.pid" 2>/dev/null) || return 1
    pgrep -P "$nspawn" | head -n 1
}

up() {
    (($#)) || die "up needs node names"
    [[ ! -e $state/nodes ]] || die "nodes are already up (state in $state); run 'nodes.sh down' first"
    trap 'status=$?; if ((status)); then echo "nodes.sh: start failed, tearing down" >&2; down; fi' EXIT
    local tarball lower
    tarball=$(image)
    mkdir -p "$state/nodes"
    lower=$(lower_dir "$tarball")
    [[ -f $state/id_ed25519 ]] || ssh-keygen -q -t ed25519 -N '' -C okera-auth-nodes -f "$state/id_ed25519"

    network_up
    local hosts="127.0.0.1 localhost"$'\n'"::1 localhost ip6-localhost"$'\n'"$host_address controller"$'\n'
    local index=10 name
    for name in "$@"; do
        index=$((index + 1))
        hosts+="$net.$index $name"$'\n'
    done

    index=10
    for name in "$@"; do
        index=$((index + 1))
        local dir=$state/nodes/$name address=$net.$index
        mkdir -p "$dir/upper" "$dir/work" "$dir/root"
        echo "$address" >"$dir/address"
        # Node-specific files go into the upper layer, so the shared image stays key-free.
        mkdir -p "$dir/upper/etc" "$dir/upper/root/.ssh"
        printf '%s' "$hosts" >"$dir/upper/etc/hosts"
        echo "$name" >"$dir/upper/etc/hostname"
        install -m 0600 "$state/id_ed25519.pub" "$dir/upper/root/.ssh/authorized_keys"
        chmod 0700 "$dir/upper/root/.ssh"
        mount -t overlay overlay -o "lowerdir=$lower,upperdir=$dir/upper,workdir=$dir/work" "$dir/root"
        node_network_up "$name" "$address" "$index"
        setsid systemd-nspawn --boot --register=no --keep-unit --console=passive \
            --network-namespace-path="/run/netns/$prefix-$name" \
            -D "$dir/root" -M "$name" >"$dir/console.log" 2>&1 </dev/null &
        echo $! >"$dir/nspawn.pid"
    done

    for name in "$@"; do
        wait_for_ssh "$name"
    done
    trap - EXIT
    list
}

wait_for_ssh() {
    local name=$1 address deadline
    address=$(cat "$state/nodes/$name/address")
    deadline=$((SECONDS + 60))
    until ssh_node "$name" true 2>/dev/null; do
        if ((SECONDS > deadline)) || ! kill -0 "$(cat "$state/nodes/$name/nspawn.pid")" 2>/dev/null; then
            tail -n 30 "$state/nodes/$name/console.log" >&2
            die "node $name ($address) did not answer on SSH"
        fi
        sleep 0.5
    done
}

ssh_node() {
    local name=$1
    shift
    ssh -q -i "$state/id_ed25519" -o BatchMode=yes -o StrictHostKeyChecking=no \
        -o UserKnownHostsFile=/dev/null -o ConnectTimeout=2 \
        "root@$(cat "$state/nodes/$name/address")" "$@"
}

# Everything up() may have created, each step tolerant of it not existing: down also cleans
# after a start that failed halfway, or after a crashed run.
down() {
    set +e
    local dir name pid
    for dir in "$state"/nodes/*/; do
        [[ -d $dir ]] || continue
        pid=$(cat "$dir/nspawn.pid" 2>/dev/null)
        if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid"
        fi
    done
    for dir in "$state"/nodes/*/; do
        [[ -d $dir ]] || continue
        pid=$(cat "$dir/nspawn.pid" 2>/dev/null)
        local waited=0
        while [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && ((waited < 100)); do
            sleep 0.1
            waited=$((waited + 1))
        done
        [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
        mountpoint -q "$dir/root" && umount "$dir/root"
        name=$(basename "$dir")
        ip netns del "$prefix-$name" 2>/dev/null
    done
    # Namespaces of nodes whose state directory is gone (a crashed run).
    for name in $(ip netns list | awk '{print $1}'); do
        [[ $name == "$prefix"-* && $name != "$hub" ]] && ip netns del "$name"
    done
    ip link del "$host_veth" 2>/dev/null
    ip netns del "$hub" 2>/dev/null
    rm -rf "$state/nodes"
    set -e
}

list() {
    local dir
    for dir in "$state"/nodes/*/; do
        [[ -f $dir/address ]] && echo "$(basename "$dir") $(cat "$dir/address")"
    done
    return 0
}

node_exec() {
    local name=${1:?exec needs a node name} pid
    shift
    pid=$(leader_pid "$name") || die "node $name is not running"
    nsenter -t "$pid" -a "$@"
}

command=${1:-}
shift || true
case $command in
    image) image ;;
    up) up "$@" ;;
    down) down ;;
    exec) node_exec "$@" ;;
    list) list ;;
    *) die "usage: nodes.sh image|up NAME...|down|exec NAME CMD...|list" ;;
esac
