#!/usr/bin/env bash
# The main job, end to end, with no cluster: start a local sandbox cluster whose system token
# expires in 2 days, rotate it with playbooks/rotate_system_token.yml, and show before and after
# (the token, the pods, and what Okera's REST API answers with the token the Secret holds).
# Sets up .venv on first use (ansible-core 2.19, requirements.txt, this checkout: no test
# tools); later runs reuse it, and scripts/test.sh adds its tools to the same virtualenv. The sandbox is a rehearsal tool; production runs point the inventory at real clusters.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

bash scripts/setup-venv.sh .venv python3 'ansible-core>=2.19,<2.20' requirements.txt
venv="$root/.venv"
# Ansible finds okera.auth as this checkout.
mkdir -p .cache/collections/ansible_collections/okera
ln -sfn "$root" .cache/collections/ansible_collections/okera/auth
export ANSIBLE_COLLECTIONS_PATH="$root/.cache/collections" ANSIBLE_NOCOLOR="${ANSIBLE_NOCOLOR:-}"

work="$root/.cache/demo"
state="$work/sandbox"
sandbox="$venv/bin/okera-auth-sandbox"
mkdir -p "$work"
"$sandbox" stop --state-dir "$state" >/dev/null 2>&1 || true
echo "demo: creating a sandbox cluster whose system token expires in 2 days ..."
"$sandbox" init --state-dir "$state" --token-ttl 2d --force
"$sandbox" start --state-dir "$state" --port 0
trap '"$sandbox" stop --state-dir "$state" >/dev/null' EXIT
# The simulated services start a moment after the server: show the cluster once they are up.
echo "demo: waiting for the sandbox's pods to be ready ..."
for _ in $(seq 100); do
  "$sandbox" status --state-dir "$state" --json | "$venv/bin/python" -c \
    'import json, sys; report = json.load(sys.stdin); sys.exit(report["pods_ready"] < max(1, report["pods_total"]))' \
    && break
  sleep 0.3
done

# One inventory host per cluster, run locally; the key that signs lives with the sandbox.
cat >"$work/inventory.yml" <<INVENTORY
okera_clusters:
  hosts:
    sandbox:
      ansible_connection: local
      ansible_python_interpreter: $venv/bin/python
      system_token_kubeconfig: $state/kubeconfig
      system_token_private_key_path: $state/signing-key.pem
      system_token_backup_dir: $work/backups
INVENTORY

# Ask the cluster's Okera REST API what a user would ask, with the system token the Secret holds:
# found like any client outside the cluster finds it (Service cdas-rest-server's load balancer),
# printed like curl -s -w ' -> %{http_code}', never printing the token itself.
rest_check() {
  KUBECONFIG="$state/kubeconfig" "$venv/bin/python" - <<'PYTHON'
import base64, json, urllib.error, urllib.request
from kubernetes import client, config

core = client.CoreV1Api(config.new_client_from_config())
service = core.read_namespaced_service("cdas-rest-server", "default")
url = "http://%s:%d" % (service.status.load_balancer.ingress[0].ip, service.spec.ports[0].port)
token = base64.b64decode(core.read_namespaced_secret("secrets", "default").data["SYSTEM_TOKEN_0"]).decode()
print("Service default/cdas-rest-server: LoadBalancer %s" % url)
for path, bearer in (("/api/info", False), ("/api/get-user", True), ("/api/databases", True)):
    request = urllib.request.Request(url + path, headers={"Authorization": "Bearer " + token} if bearer else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, body = response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        status, body = error.code, json.loads(error.read())
    shown = " -H 'Authorization: Bearer <SYSTEM_TOKEN_0>'" if bearer else ""
    print("$ curl%s %s%s -> %d %s" % (shown, url, path, status, json.dumps(body)))
PYTHON
}

echo
echo "=== before"
"$sandbox" status --state-dir "$state"
rest_check
echo
echo "=== ansible-playbook -i $work/inventory.yml playbooks/rotate_system_token.yml"
started=$SECONDS
"$venv/bin/ansible-playbook" -i "$work/inventory.yml" playbooks/rotate_system_token.yml
echo "(rotation took $((SECONDS - started)) s)"
echo
echo "=== after"
"$sandbox" status --state-dir "$state"
rest_check
echo
echo "=== ansible-playbook -i $work/inventory.yml playbooks/check_system_token.yml (metrics for node_exporter's textfile collector)"
"$venv/bin/ansible-playbook" -i "$work/inventory.yml" playbooks/check_system_token.yml \
  -e system_token_metrics_textfile="$work/okera_system_token.prom" | sed -n '/^PLAY RECAP/,$p'
echo "$work/okera_system_token.prom:"
grep -v '^# HELP' "$work/okera_system_token.prom"
