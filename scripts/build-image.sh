#!/usr/bin/env bash
# Builds the okera-authserver image with podman and no container registry: what an air-gapped
# site needs. (Where a registry is reachable, the role's Containerfile builds as it is: README,
# "Build the auth-server image".)
#   1. the base image: Debian (debootstrap --variant=minbase from this host's Debian mirror) with
#      python3, python3-venv and ca-certificates, imported with `podman import`;
#   2. the wheelhouse: the okera-auth wheel of this checkout and wheels of its dependencies for
#      that Python, made on this host (roles/authserver/files/build-wheelhouse.sh: pip needs a
#      package index or PIP_FIND_LINKS here, and only here);
#   3. the image: the role's Containerfile rendered with authserver_sidecar_wheelhouse (the wheels
#      come from the build context) and built with --pull=never --network=none.
# The base root file system and the wheelhouse are cached (the base keyed on its recipe below),
# so a second run only builds step 3, from podman's layer cache when nothing changed.
#
# Usage: scripts/build-image.sh [--tag IMAGE] [--python PYTHON] [--cache DIR] [-e VAR=VALUE]...
#   --tag IMAGE     the image's name (default: the role's authserver_sidecar_image)
#   --python PATH   the Python that builds the wheelhouse, with pip (default: python3)
#   --cache DIR     where the base root file system and the wheelhouse are kept
#                   (default: .cache/images in this checkout)
#   -e VAR=VALUE    a variable of the role for the Containerfile, e.g.
#                   -e authserver_sidecar_run_as_user=65532 -e authserver_sidecar_fs_group=2000
# Needs, as root: podman, debootstrap, zstd, and ansible (renders the role's Containerfile).
# podman is configured by the environment as usual (CONTAINERS_CONF, CONTAINERS_STORAGE_CONF, ...).
# The last line printed is "IMAGE SIZE_BYTES".
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
role=$root/roles/authserver_sidecar
tag=""
python=python3
cache=${OKERA_IMAGE_CACHE:-$root/.cache/images}
role_vars=()
while (($#)); do
    case $1 in
        --tag) tag=${2:?--tag needs an image name}; shift 2 ;;
        --python) python=${2:?--python needs a path}; shift 2 ;;
        --cache) cache=${2:?--cache needs a directory}; shift 2 ;;
        -e) role_vars+=(-e "${2:?-e needs VAR=VALUE}"); shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "build-image.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

die() { echo "build-image.sh: $*" >&2; exit 1; }
say() { echo "build-image.sh: $*" >&2; }
for command in podman debootstrap zstd ansible; do
    command -v "$command" >/dev/null || die "$command is not installed (apt-get install podman runc debootstrap zstd; ansible from the collection's virtualenv)"
done
[[ -n $tag ]] || tag=$(awk '/^authserver_sidecar_image:/ {print $2}' "$role/defaults/main.yml")
mkdir -p "$cache"

# --- 1. the base image -------------------------------------------------------------------------
suite=bookworm
base_packages=python3,python3-venv,passwd,ca-certificates

base_rootfs() {  # base_rootfs OUTPUT.tar.zst : Debian with python3, packed for `podman import`
    local output=$1 work mirror
    # The host's own Debian mirror: the first non-security URI of its deb822 sources.
    mirror=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
    [[ -n $mirror ]] || die "no Debian mirror in /etc/apt/sources.list.d/debian.sources"
    work=$(mktemp -d "$cache/.base.XXXXXX")
    # shellcheck disable=SC2064  # expand $work now: the trap outlives this function's locals
    trap "rm -rf '$work'" EXIT
    debootstrap --variant=minbase --include="$base_packages" "$suite" "$work/rootfs" "$mirror" \
        >"$work/debootstrap.log" 2>&1 || { tail -n 30 "$work/debootstrap.log" >&2; exit 1; }
    # What a container never reads: package lists and archives, documentation, translations.
    rm -rf "$work"/rootfs/var/lib/apt/lists/* "$work"/rootfs/var/cache/apt/* \
        "$work"/rootfs/var/cache/debconf/*-old "$work"/rootfs/var/log/* \
        "$work"/rootfs/usr/share/doc/* "$work"/rootfs/usr/share/man/* "$work"/rootfs/usr/share/info/* \
        "$work"/rootfs/usr/share/locale/*
    # Files the container runtime provides.
    : >"$work/rootfs/etc/hostname"
    rm -f "$work/rootfs/etc/resolv.conf"
    tar -C "$work/rootfs" --numeric-owner --xattrs --acls -I 'zstd -T0 -3' -cf "$work/rootfs.tar.zst" .
    mv "$work/rootfs.tar.zst" "$output"
    rm -rf "$work"
    trap - EXIT
}

started=$SECONDS
key=$( { declare -f base_rootfs; echo "$suite $base_packages"; } | sha256sum | cut -c1-16)
base_image=localhost/okera-authserver-base:$suite-$key
if ! podman image exists "$base_image"; then
    rootfs=$cache/base-$suite-$key.tar.zst
    if [[ ! -s $rootfs ]]; then
        say "building the base root file system $suite-$key (debootstrap, about 2 min)"
        base_rootfs "$rootfs"
        # Root file systems of older recipes are never used again.
        find "$cache" -maxdepth 1 -name 'base-*.tar.zst' -not -name "$(basename "$rootfs")" -delete
    fi
    python_version=$(tar -I zstd -tf "$rootfs" ./usr/bin/ 2>/dev/null \
        | sed -n 's|^\./usr/bin/python\(3\.[0-9]*\)$|\1|p' | sort -V | tail -n 1)
    [[ -n $python_version ]] || die "no python3.X in $rootfs"
    zstd -dc "$rootfs" | podman import --quiet \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change "LABEL org.okera.auth.python-version=$python_version" \
        --change 'CMD ["/bin/bash"]' \
        - "$base_image" >/dev/null
    say "imported $base_image (Python $python_version) in $((SECONDS - started)) s"
fi
python_version=$(podman image inspect --format '{{ index .Labels "org.okera.auth.python-version" }}' "$base_image")

# --- 2. the wheelhouse --------------------------------------------------------------------------
started=$SECONDS
case $(uname -m) in
    x86_64|amd64) arch=x86_64 ;;
    aarch64|arm64) arch=aarch64 ;;
    *) die "no manylinux wheels are known for $(uname -m)" ;;
esac
# Debian bookworm has glibc 2.36: wheels for any older manylinux fit.
platforms=("manylinux_2_34_$arch" "manylinux_2_28_$arch" "manylinux2014_$arch")
wheelhouse=$cache/wheelhouse-cp${python_version/./}-$arch.tar
bash "$root/roles/authserver/files/build-wheelhouse.sh" "$wheelhouse" "$python" "$root" "$python_version" "" "${platforms[@]}"
say "wheelhouse $(basename "$wheelhouse") ready in $((SECONDS - started)) s"

# --- 3. the image -------------------------------------------------------------------------------
started=$SECONDS
context=$(mktemp -d "$cache/.context.XXXXXX")
trap 'rm -rf "$context"' EXIT
cp "$wheelhouse" "$context/wheelhouse.tar"
ANSIBLE_NOCOLOR=1 ANSIBLE_LOCALHOST_WARNING=false ANSIBLE_INVENTORY_UNPARSED_WARNING=false \
    ansible localhost --connection local --inventory localhost, -m ansible.builtin.template \
    -a "src=$role/templates/Containerfile.j2 dest=$context/Containerfile mode=0644" \
    -e "@$role/defaults/main.yml" -e "authserver_sidecar_image=$tag" \
    -e "authserver_sidecar_base_image=$base_image" -e authserver_sidecar_wheelhouse=wheelhouse.tar \
    -e 'ansible_python_interpreter={{ ansible_playbook_python }}' "${role_vars[@]}" >"$context/render.log" 2>&1 \
    || { cat "$context/render.log" >&2; die "could not render the Containerfile"; }
podman build --pull=never --network=none --file "$context/Containerfile" --tag "$tag" "$context" >"$context/build.log" 2>&1 \
    || { tail -n 40 "$context/build.log" >&2; die "podman build failed"; }
size=$(podman image inspect --format '{{ .Size }}' "$tag")
say "built $tag in $((SECONDS - started)) s: $((size / 1024 / 1024)) MiB (base $suite with Python $python_version)"
echo "$tag $size"
