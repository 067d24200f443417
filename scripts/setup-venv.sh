#!/usr/bin/env bash
# setup-venv.sh VENV PYTHON ANSIBLE_CORE_SPEC [REQUIREMENTS...]
# Creates (or adds to) a virtualenv with the given ansible-core, the requirement files, and
# the okera_auth package of this checkout (editable: okera-authserver and okera-auth-sandbox
# run the working tree's code). A stamp per set of inputs makes a second call a no-op, so the
# demo (requirements.txt) and the tests (plus requirements-test.txt) share one virtualenv.
set -euo pipefail
venv=$1 python=$2 core_spec=$3
shift 3
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
stamp=$( { echo "$python $core_spec"; cat "$root/pyproject.toml" "$@"; } | sha256sum | cut -d' ' -f1)
if [ -x "$venv/bin/python" ] && [ -e "$venv/.okera-stamp-$stamp" ]; then
  exit 0
fi
log="$venv.install.log"
pip_install() {
  if ! "$venv/bin/python" -m pip install --disable-pip-version-check --progress-bar off "$@" >>"$log" 2>&1; then
    echo "setup-venv: pip install $* failed; the last lines of $log:" >&2
    tail -n 25 "$log" >&2
    exit 1
  fi
}
: >"$log"
if [ ! -x "$venv/bin/python" ]; then
  echo "setup-venv: creating $venv with $("$python" -V 2>&1) ..." >&2
  "$python" -m venv "$venv"
fi
requirement_args=()
for file in "$@"; do requirement_args+=(-r "$file"); done
echo "setup-venv: installing $core_spec and $* into $venv (about a minute the first time; log: $log) ..." >&2
pip_install "$core_spec" "${requirement_args[@]}"
echo "setup-venv: installing okera-auth from this checkout (editable) ..." >&2
pip_install --no-deps -e "$root"
touch "$venv/.okera-stamp-$stamp"
echo "setup-venv: $venv is ready" >&2
