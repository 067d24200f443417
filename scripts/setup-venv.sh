#!/usr/bin/env bash
# setup-venv.sh VENV PYTHON ANSIBLE_CORE_SPEC [REQUIREMENTS...]
# Creates (or reuses) a virtualenv with the given ansible-core, the requirement files, and
# the okera_auth package of this checkout (editable: okera-authserver and okera-auth-sandbox
# run the working tree's code). A stamp of the inputs makes a second call a no-op.
set -euo pipefail
venv=$1 python=$2 core_spec=$3
shift 3
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
stamp=$( { echo "$python $core_spec"; cat "$root/pyproject.toml" "$@"; } | sha256sum | cut -d' ' -f1)
if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.okera-stamp" 2>/dev/null)" = "$stamp" ]; then
  exit 0
fi
log="$venv.install.log"
pip_install() {
  if ! "$venv/bin/python" -m pip install --disable-pip-version-check "$@" >>"$log" 2>&1; then
    echo "setup-venv: pip install $* failed; the last lines of $log:" >&2
    tail -n 25 "$log" >&2
    exit 1
  fi
}
echo "setting up $venv (ansible-core $core_spec) ..." >&2
: >"$log"
"$python" -m venv "$venv"
requirement_args=()
for file in "$@"; do requirement_args+=(-r "$file"); done
pip_install "$core_spec" "${requirement_args[@]}"
pip_install --no-deps -e "$root"
echo "$stamp" >"$venv/.okera-stamp"
