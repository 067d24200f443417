#!/usr/bin/env bash
# Builds on the controller the wheelhouse the nodes install from, packed as one tar file:
# the okera-auth wheel from SOURCE_DIR plus binary wheels of its dependencies for the nodes'
# Python and platform, or (with PREBUILT_DIR) the wheels of an existing wheelhouse. EXTRAS
# names the package's optional dependencies to add, comma-separated ("aws": boto3), or is "".
# The tar is byte-identical for identical inputs, so copying it to a node is idempotent, and
# the work is skipped while the inputs are those of the last build.
#   build-wheelhouse.sh OUTPUT.tar PYTHON SOURCE_DIR NODE_PYTHON_VERSION EXTRAS PLATFORM...
#   build-wheelhouse.sh OUTPUT.tar --prebuilt PREBUILT_DIR
set -euo pipefail

output=$1
shift
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/wheels"

if [[ $1 == --prebuilt ]]; then
    cp "$2"/*.whl "$work/wheels/"
else
    python=$1 source=$2 python_version=$3 extras=$4
    shift 4
    platforms=("$@")
    # The package is built from a copy of the collection tree: pyproject.toml alone says which
    # files go into it. Left out: dot entries (VCS, virtualenvs, caches), build leftovers, and
    # the tests and benchmarks of a checkout.
    (
        cd "$source"
        find . -mindepth 1 \( -name '.*' -o -name __pycache__ -o -name '*.egg-info' \
            -o -path ./build -o -path ./tests -o -path ./benchmarks \) -prune \
            -o -type f -print0
    ) | sort -z >"$work/files"
    # What the wheelhouse depends on: those files, the target, this recipe.
    fingerprint=$(
        {
            (cd "$source" && xargs -0 sha256sum <"$work/files")
            echo "$python_version ${platforms[*]} [$extras]"
            sha256sum <"${BASH_SOURCE[0]}"
        } | sha256sum | cut -d' ' -f1
    )
    if [[ -s $output && -f $output.fingerprint && $(cat "$output.fingerprint") == "$fingerprint" ]]; then
        exit 0
    fi
    # Build from the copy so the source tree (possibly read-only or shared) gets no build files.
    mkdir -p "$work/src"
    tar -C "$source" --null -T "$work/files" -cf - | tar -C "$work/src" -xf -
    # A fixed timestamp makes the wheel byte-identical for identical sources.
    SOURCE_DATE_EPOCH=315532800 "$python" -m pip wheel --quiet --disable-pip-version-check \
        --no-deps --wheel-dir "$work/wheels" "$work/src"
    platform_args=()
    for platform in "${platforms[@]}"; do
        platform_args+=(--platform "$platform")
    done
    "$python" -m pip download --quiet --disable-pip-version-check --only-binary=:all: \
        --implementation cp --python-version "$python_version" "${platform_args[@]}" \
        --dest "$work/wheels" "$(echo "$work"/wheels/okera_auth-*.whl)${extras:+[$extras]}"
fi

ls "$work"/wheels/okera_auth-*.whl >/dev/null 2>&1 \
    || { echo "no okera_auth wheel in the wheelhouse" >&2; exit 1; }
mkdir -p "$(dirname "$output")"
tar -C "$work/wheels" --sort=name --mtime=@315532800 --owner=0 --group=0 --numeric-owner \
    --format=gnu -cf "$work/wheelhouse.tar" .
mv "$work/wheelhouse.tar" "$output"
if [[ -n ${fingerprint:-} ]]; then
    echo "$fingerprint" >"$output.fingerprint"
else
    rm -f "$output.fingerprint"
fi
