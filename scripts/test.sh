#!/usr/bin/env bash
# Sets up and runs every test of okera.auth on this machine:
#   pytest on ansible-core 2.19 / Python 3.11 (every tier) and 2.21 / Python 3.12+ (every test
#   that runs ansible-core),
#   ansible-test sanity on both, ansible-lint (production profile), ansible-doc of every
#   plugin, the changelog lint, the demo (scripts/demo.sh), molecule on real systemd nodes, and
#   the sidecar pods under podman.
# Usage: scripts/test.sh [--quick]
#   --quick: the unit tier (tests/unit) and the linters, about a minute once set up.
#   Otherwise every tier: tests/unit, tests/process (the daemon and the sandbox as real
#   processes), tests/integration (ansible-playbook), sanity, molecule, and tests/containers
#   (the image built offline by scripts/build-image.sh, the sidecar pods under podman kube play).
# Exits non-zero when any step fails; a skipped test counts as a failure.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 2
quick=false
[ "${1:-}" = "--quick" ] && quick=true

cache="$root/.cache"
mkdir -p "$cache"
passed=0 failed=0 failed_steps=()
# Temporary directories of the steps, removed however the run ends.
scratch=$(mktemp -d "${TMPDIR:-/tmp}/okera-auth-test.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
trap 'exit 130' INT TERM
# Logs read by CI and by people alike: no colour codes or progress bars unless on a terminal.
if [ ! -t 1 ]; then
  export NO_COLOR=1 PY_COLORS=0 ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 PIP_PROGRESS_BAR=off
fi

step() {  # step NAME COMMAND... : run, time and count one step
  local name=$1 started=$SECONDS
  shift
  echo
  echo "=== $name"
  if "$@"; then
    passed=$((passed + 1))
    echo "=== $name: ok ($((SECONDS - started)) s)"
  else
    failed=$((failed + 1))
    failed_steps+=("$name")
    echo "=== $name: FAILED ($((SECONDS - started)) s)"
  fi
}

find_python312() {  # ansible-core 2.21 needs Python 3.12 or newer
  local candidate
  for candidate in python3.13 python3.12 "$(pyenv root 2>/dev/null)"/versions/3.1[23]*/bin/python; do
    if command -v "$candidate" >/dev/null 2>&1 \
        && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}

host_dependencies() {
  # prometheus: promtool checks and unit-tests the rendered alert rules.
  local wanted=(openssl openssh-client curl shellcheck prometheus) missing=() package
  # podman, runc, catatonit: the sidecar pods of tests/containers (podman kube play).
  $quick || wanted+=(podman runc catatonit)
  for package in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
  done
  if ((${#missing[@]})); then
    bash scripts/apt-install.sh "${missing[@]}" || return 1
    # Only its promtool is wanted: Debian's package also starts a Prometheus server (port 9090).
    if [[ " ${missing[*]} " == *" prometheus "* ]] && command -v systemctl >/dev/null 2>&1; then
      systemctl disable --now prometheus >/dev/null 2>&1 || true
    fi
  fi
  $quick || bash tests/nodes/install-host-deps.sh
}

collection_path() {  # ANSIBLE_COLLECTIONS_PATH in which okera.auth is this checkout
  mkdir -p "$cache/collections/ansible_collections/okera"
  ln -sfn "$root" "$cache/collections/ansible_collections/okera/auth"
}

pytest_run() {  # pytest_run VENV LABEL PATHS... ; fails on any failed, errored or skipped test
  local venv=$1 label=$2
  shift 2
  local report="$cache/junit-$label.xml"
  ANSIBLE_COLLECTIONS_PATH="$cache/collections" PATH="$root/$venv/bin:$PATH" \
    "$venv/bin/python" -m pytest -p no:cacheprovider -q -rfEs --junitxml="$report" "$@"
  local status=$?
  "$venv/bin/python" - "$report" <<'EOF' || status=1
import sys
import xml.etree.ElementTree as ElementTree
suites = ElementTree.parse(sys.argv[1]).getroot()
skipped = [case.get("classname") + "::" + case.get("name")
           for case in suites.iter("testcase") if case.find("skipped") is not None]
for name in skipped:
    print("skipped test counts as a failure here:", name)
sys.exit(1 if skipped else 0)
EOF
  return $status
}

sanity_run() {  # ansible-test needs the collection at .../ansible_collections/okera/auth
  local venv=$root/$1 python=$2
  # Outside this work tree: inside it, ansible-test would ask the outer git for the files
  # and find none (the copy is ignored), skipping every target.
  local top
  top=$(mktemp -d "$scratch/sanity.XXXXXX")
  local tree="$top/ansible_collections/okera/auth"
  mkdir -p "$tree"
  git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$tree"
  # ansible-test fetches pip's get-pip.py from a site outside the reachable registries;
  # the stand-in bootstraps pip from the interpreter and installs from the index.
  local pip_version
  pip_version=$(grep -oP "pip='\K[0-9.]+" "$("$venv/bin/python" -c 'import ansible_test, os; print(os.path.dirname(ansible_test.__file__))')/_internal/python_requirements.py")
  mkdir -p ~/.ansible/test/cache
  cp tests/sanity/get_pip_offline.py ~/.ansible/test/cache/get_pip_"${pip_version//./_}".py
  local status=0
  (cd "$tree" && "$venv/bin/ansible-test" sanity --requirements --python "$python" --color no) \
    2>&1 | tee "$top/sanity.log" || status=1
  if grep -q "All targets skipped" "$top/sanity.log"; then
    echo "ansible-test found no files to check"
    status=1
  fi
  rm -rf "$top"
  return $status
}

lint_run() {
  # A scratch ANSIBLE_HOME: ansible-lint also searches ~/.ansible/collections, where an older
  # okera.auth installed by hand would shadow this checkout.
  mkdir -p "$scratch/ansible-home"
  ANSIBLE_HOME="$scratch/ansible-home" ANSIBLE_COLLECTIONS_PATH="$cache/collections" PATH="$root/.venv/bin:$PATH" \
    "$root/.venv/bin/ansible-lint" --profile production --offline playbooks roles
}

doc_run() {
  local venv=$1 plugin status=0
  for plugin in plugins/modules/*.py; do
    plugin=$(basename "$plugin" .py)
    ANSIBLE_COLLECTIONS_PATH="$cache/collections" "$venv/bin/ansible-doc" -t module "okera.auth.$plugin" >/dev/null \
      && echo "ansible-doc module okera.auth.$plugin: ok" || status=1
  done
  for plugin in plugins/filter/*.yml; do
    plugin=$(basename "$plugin" .yml)
    ANSIBLE_COLLECTIONS_PATH="$cache/collections" "$venv/bin/ansible-doc" -t filter "okera.auth.$plugin" >/dev/null \
      && echo "ansible-doc filter okera.auth.$plugin: ok" || status=1
  done
  return $status
}

galaxy_run() {  # the collection builds, installs, its modules are found, and its package builds
  local out="$cache/galaxy"
  rm -rf "$out" && mkdir -p "$out"
  # --force: ansible-galaxy counts a copy in any configured path (ansible-lint leaves one in .ansible/) as installed.
  .venv/bin/ansible-galaxy collection build --output-path "$out" . >/dev/null \
    && .venv/bin/ansible-galaxy collection install --force -p "$out/collections" "$out"/okera-auth-*.tar.gz >/dev/null \
    && ANSIBLE_COLLECTIONS_PATH="$out/collections" .venv/bin/ansible-doc -t module okera.auth.jwt_token 2>&1 | grep -q "$out/collections/ansible_collections/okera/auth/plugins/modules/jwt_token.py" \
    && echo "built and installed $(basename "$out"/okera-auth-*.tar.gz) ($(du -k "$out"/okera-auth-*.tar.gz | cut -f1) KiB)" \
    || return 1
  # The authserver role builds the daemon from the installed collection: its sources must ship.
  .venv/bin/python -m pip wheel --quiet --disable-pip-version-check --no-deps --wheel-dir "$out/wheel" \
      "$out/collections/ansible_collections/okera/auth" \
    && .venv/bin/python - "$out"/wheel/okera_auth-*.whl <<'EOF'
import sys
import zipfile
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
wanted = {"okera_auth/authserver/cli.py", "okera_auth/sandbox/cli.py", "okera_auth/module_utils/tokens.py"}
missing = sorted(wanted - names)
print("package built from the installed collection:", "missing " + ", ".join(missing) if missing else "complete")
sys.exit(1 if missing else 0)
EOF
}

demo_run() {  # the README's first command does its job: rotated, checked by the REST API, metrics written
  local log="$cache/demo.log"
  bash scripts/demo.sh >"$log" 2>&1 || { tail -40 "$log"; return 1; }
  local wanted
  for wanted in "expires within 7d: rotate" "knows the token as okera_system_user and lists 3 database(s)" \
      "Mark the rotation finished" "in 29d 23h"; do
    grep -qF "$wanted" "$log" || { echo "the demo's output lacks: $wanted (see $log)"; return 1; }
  done
  grep -qE '^okera_system_token_valid\{cluster="sandbox",.*\} 1$' "$log" \
    || { echo "the demo's metrics lack okera_system_token_valid 1 (see $log)"; return 1; }
  echo "demo: rotated, the REST API answers with the new token, metrics written ($(grep -c . "$log") lines in $log)"
}

molecule_run() {
  PATH="$root/.venv/bin:$PATH" bash tests/nodes/run-scenario.sh authserver
}

step "host packages" host_dependencies
step "virtualenv ansible-core 2.19 / Python 3.11" \
  bash scripts/setup-venv.sh .venv python3 'ansible-core>=2.19,<2.20' requirements.txt requirements-test.txt
collection_path
# amazon.aws (the Secrets Manager lookup, the S3 tests' AWS plugins) from PyPI's ansible wheel.
# The integration tier in parallel, one file per worker at a time (pytest-xdist): its
# ansible-playbook runs keep one core busy each, and every file starts its own sandboxes and
# moto servers on ports the system picks. The process tier stays serial: some of its tests
# measure descriptor limits and idle timeouts of a single daemon.
parallel=(--numprocesses auto --maxprocesses 4 --dist loadfile)
step "amazon.aws collection" bash scripts/install-amazon-aws.sh .venv/bin/python "$cache/collections"
if $quick; then
  step "pytest unit tier, ansible-core 2.19" pytest_run .venv core2.19-unit tests/unit
else
  step "pytest unit and process tiers, ansible-core 2.19" pytest_run .venv core2.19 tests/unit tests/process
  step "pytest integration tier, ansible-core 2.19" pytest_run .venv core2.19-integration "${parallel[@]}" tests/integration
fi
step "ansible-doc, every plugin" doc_run .venv
step "ansible-lint, production profile" lint_run
step "changelog lint" .venv/bin/antsibull-changelog lint
step "ansible-galaxy collection build and install" galaxy_run
if ! $quick; then
  python312=$(find_python312) || python312=""
  if [ -n "$python312" ]; then
    step "virtualenv ansible-core 2.21 / $("$python312" -V)" \
      bash scripts/setup-venv.sh .venv-2.21 "$python312" 'ansible-core>=2.21,<2.22' requirements.txt requirements-test.txt
    # Run once, above: the process tests of the daemon, the sandbox and the client (those
    # programs never import ansible-core), and the long multi-run scenarios (marker
    # "scenario": the same role tasks and modules as the shorter integration tests run here).
    step "pytest, ansible-core 2.21" pytest_run .venv-2.21 core2.21 -m "not scenario" tests/unit \
      tests/process/k8s tests/process/aws tests/process/metrics
    step "pytest integration tier, ansible-core 2.21" pytest_run .venv-2.21 core2.21-integration -m "not scenario" \
      "${parallel[@]}" tests/integration
    step "ansible-test sanity, ansible-core 2.21" sanity_run .venv-2.21 "$("$python312" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
  else
    step "find Python 3.12+ for ansible-core 2.21" false
  fi
  step "ansible-test sanity, ansible-core 2.19" sanity_run .venv "$(.venv/bin/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
  step "demo: scripts/demo.sh" demo_run
  step "molecule: authserver role on systemd nodes" molecule_run
  step "podman: sidecar pods" pytest_run .venv podman tests/containers
fi

echo
for name in "${failed_steps[@]}"; do echo "failed step: $name"; done
echo "steps: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
