#!/usr/bin/env bash
# install-amazon-aws.sh PYTHON COLLECTIONS_PATH
# Puts the amazon.aws collection into COLLECTIONS_PATH/ansible_collections/amazon/aws, taken from
# the `ansible` package's wheel on PyPI (Galaxy is not reachable from every machine this runs on).
# The wheel is kept under .cache/wheels and the collection is unpacked once per pinned version,
# so a second call is a no-op.
set -euo pipefail
python=$1 collections=$2
# ansible 12.3.0 is the package release for ansible-core 2.19; it ships amazon.aws 10.x.
ansible_version=12.3.0
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
wheels="$root/.cache/wheels"
target="$collections/ansible_collections/amazon/aws"
stamp="$target/.okera-from-ansible-$ansible_version"
if [ -e "$stamp" ]; then
  exit 0
fi
mkdir -p "$wheels"
wheel=$(ls "$wheels"/ansible-"$ansible_version"-py3-none-any.whl 2>/dev/null || true)
if [ -z "$wheel" ]; then
  echo "install-amazon-aws: downloading the ansible $ansible_version wheel (about 50 MB, once) ..." >&2
  "$python" -m pip download --disable-pip-version-check --progress-bar off --no-deps --only-binary=:all: \
    --dest "$wheels" "ansible==$ansible_version" >/dev/null
  wheel="$wheels/ansible-$ansible_version-py3-none-any.whl"
fi
rm -rf "$target"
mkdir -p "$target"
"$python" - "$wheel" "$target" <<'EOF'
import os
import sys
import zipfile

wheel, target = sys.argv[1:]
prefix = "ansible_collections/amazon/aws/"
count = 0
with zipfile.ZipFile(wheel) as archive:
    for name in archive.namelist():
        if not name.startswith(prefix) or name.endswith("/"):
            continue
        destination = os.path.join(target, name[len(prefix):])
        os.makedirs(os.path.dirname(destination), exist_ok=True)
        with archive.open(name) as source, open(destination, "wb") as sink:
            sink.write(source.read())
        count += 1
if not count:
    sys.exit("install-amazon-aws: no amazon.aws collection in %s" % wheel)
print("install-amazon-aws: %d files of amazon.aws in %s" % (count, target), file=sys.stderr)
EOF
touch "$stamp"
