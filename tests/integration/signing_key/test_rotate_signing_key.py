"""rotate_signing_key.yml against a sandbox cluster: real ansible-playbook runs while a client keeps
asking for and using tokens, and a failure injected at each stage."""
from __future__ import annotations

import base64
import hashlib
import json
import re
import stat
import time
from pathlib import Path

import pytest

from okera_auth.module_utils import keys, tokens
from okera_auth.module_utils.signing_key import ROTATION_ANNOTATION, fingerprint
from authserver_process import Daemon
from token_traffic import TokenTraffic

pytestmark = [pytest.mark.slow, pytest.mark.scenario]

ROTATE_SIGNING_KEY = Path(__file__).resolve().parents[3] / "playbooks" / "rotate_signing_key.yml"
DAY = 86400
# The pod-template annotation of the role authserver_sidecar: the key's hash, so a new key rolls the pods.
SIDECAR_KEY_HASH = "okera.auth/private-key-sha256"


def _output(done) -> str:
    return done.stdout + done.stderr


def _listed(sandbox) -> list:
    return [fingerprint(entry.key) for entry in keys.load_public_keys(sandbox.secret_value("JWT_PUBLIC_KEY", "okera-config"))]


def _fp(private_pem) -> str:
    return fingerprint(keys.load_private_key(private_pem))


def _marker(sandbox):
    value = (sandbox.secret("okera-config").metadata.annotations or {}).get(ROTATION_ANNOTATION)
    return json.loads(value) if value else None


def _changed(output: str) -> int:
    return int(re.search(r"^sandbox\s+:.*changed=(\d+)", output, re.MULTILINE).group(1))


def _stage_times(output: str) -> str:
    found = re.search(r"stages done in this run: ([^;\"]+)", output)
    return found.group(1).strip() if found else "-"


def _system_token_key(sandbox) -> str:
    """The fingerprint of the key the system token verifies with, among the keys the cluster lists."""
    token = sandbox.secret_value()
    for entry in keys.load_public_keys(sandbox.secret_value("JWT_PUBLIC_KEY", "okera-config")):
        if tokens.verify(token, [entry], ["RS512"], subject="okera_system_user").valid:
            return fingerprint(entry.key)
    return "none"


def _assert_nothing_secret_in(output: str, *private_pems: str) -> None:
    for pem in private_pems:
        for line in pem.strip().splitlines()[1:-1]:
            assert line not in output, "a private key line is in the output"


def _all_ready(sandbox) -> bool:
    status = sandbox.status()
    return status["pods_total"] > 0 and status["pods_ready"] == status["pods_total"]


def _node_signs_with(node) -> str:
    status, _headers, body = node.get("/.well-known/jwks.json")
    assert status == 200, body
    return json.loads(body)["keys"][0]["kid"]


def test_full_rotation_while_a_client_uses_tokens_refuses_none(sandbox, node_authserver, write_inventory, run_playbook, tmp_path):
    key_file = tmp_path / "okera-jwt.pem"
    key_file.write_bytes(sandbox.signing_key.read_bytes())
    key_file.chmod(0o600)
    old = key_file.read_text()
    original_token = sandbox.secret_value()
    inventory = write_inventory(node_authserver, signing_key_private_key_path=str(key_file))
    runs = []
    traffic = TokenTraffic(sandbox.rest_url, key_file.read_text, lambda name, key: sandbox.secret_value(key, name),
                           authserver_url=node_authserver.url)
    assert _node_signs_with(node_authserver) == _fp(old)

    def run(label: str, *args: str):
        before = traffic.snapshot()
        started = time.monotonic()
        done = run_playbook(ROTATE_SIGNING_KEY, "-i", str(inventory), *args)
        seconds = time.monotonic() - started
        after = traffic.snapshot()
        runs.append((label, seconds, _stage_times(done.stdout), after.get("requests", 0) - before.get("requests", 0),
                     after.get("refused", 0) - before.get("refused", 0)))
        assert done.returncode == 0, _output(done)[-5000:]
        return done

    with traffic:
        time.sleep(1)
        switched = run("1-3 generate, publish, switch", "-vvv")
        new = key_file.read_text()
        assert _fp(new) != _fp(old) and Path(str(key_file) + ".previous").read_text() == old
        assert not Path(str(key_file) + ".next").exists()
        assert _listed(sandbox) == [_fp(old), _fp(new)]
        assert _system_token_key(sandbox) == _fp(new) and sandbox.secret_value() != original_token
        assert _marker(sandbox)["stage"] == "switched"
        assert "probe token (new key)" in switched.stdout
        assert _node_signs_with(node_authserver) == _fp(new) and node_authserver.key_path.read_text() == new
        assert stat.S_IMODE(node_authserver.key_path.stat().st_mode) == 0o400
        assert node_authserver.process.poll() is None, "reloaded, not restarted"
        _assert_nothing_secret_in(_output(switched), old, new)
        for token in (original_token, sandbox.secret_value()):
            assert token.split(".")[2] not in _output(switched), "a token is in the -vvv output"

        early = run("4 before the grace period", "-e", "signing_key_now=%d" % (time.time() + DAY - 3600))
        assert _changed(early.stdout) == 0 and _listed(sandbox) == [_fp(old), _fp(new)]
        assert "the old key stays listed until" in early.stdout

        run("4 retire", "-e", "signing_key_now=%d" % (time.time() + DAY + 60))
        time.sleep(1)
    assert _listed(sandbox) == [_fp(new)]
    assert _marker(sandbox) is None and not Path(str(key_file) + ".previous").exists()
    assert _system_token_key(sandbox) == _fp(new) and _all_ready(sandbox)
    assert all(stat.S_IMODE(path.stat().st_mode) == 0o600 for path in (tmp_path / "backups").iterdir())
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

    counts = traffic.snapshot()
    print("\nsigning-key rotation in the sandbox (%s):" % time.strftime("%Y-%m-%d"))
    for label, seconds, stages, requests, refused in runs:
        print("  %-28s run %5.1f s  stages: %-32s token requests %4d, refused %d" % (label, seconds, stages, requests, refused))
    print("  total: %(requests)d REST requests with %(issued)d user tokens signed with the store's key and "
          "%(authserver_issued)d from the node's auth server; " % counts
          + "refused %d, unavailable %d, not verifying %d" % (counts.get("refused", 0), counts.get("unavailable", 0),
                                                              counts.get("not_verifying", 0)))
    assert counts["requests"] > 50 and counts["authserver_issued"] > 20 and not counts.get("authserver_failed")
    assert counts.get("refused", 0) == 0 and counts.get("not_verifying", 0) == 0, traffic.failures[:10]
    assert counts.get("unavailable", 0) == 0, traffic.failures[:10]


def test_a_failure_at_each_stage_is_rolled_back_and_the_next_run_goes_on(sandbox, node_authserver, write_inventory, run_playbook):
    old = sandbox.signing_key.read_text()
    original_token = sandbox.secret_value()
    sandbox.core().create_namespaced_secret("default", {"metadata": {"name": "jwt-signing"}, "data": {
        "private.pem": base64.b64encode(old.encode()).decode()}})
    _add_sidecar(sandbox, old)
    inventory = write_inventory(node_authserver, signing_key_store="secret",
                                signing_key_private_key_secret={"name": "jwt-signing", "key": "private.pem"},
                                signing_key_authserver_sidecars=[{"secret_name": "token-client-authserver-key", "deployment": "token-client"}],
                                signing_key_sidecar_log_check=SIMULATED_SIDECAR_LOGS)
    outputs = []

    def store() -> dict:
        data = sandbox.secret("jwt-signing").data or {}
        return {key: base64.b64decode(value).decode() for key, value in data.items()}

    def run(*args: str):
        started = time.monotonic()
        done = run_playbook(ROTATE_SIGNING_KEY, "-i", str(inventory), *args)
        seconds = time.monotonic() - started
        print("  run %d (rc %d) %5.1f s  stages: %s" % (len(outputs) + 1, done.returncode, seconds, _stage_times(done.stdout)))
        outputs.append(_output(done))
        return done

    def clear_faults() -> None:
        sandbox.core().delete_namespaced_config_map("okera-sandbox-faults", "default")

    # Check mode says what a run would do and changes nothing.
    checked = run("--check")
    assert checked.returncode == 0 and "check mode: this run would generate" in checked.stdout, checked.stdout[-3000:]
    assert _changed(checked.stdout) == 0 and store() == {"private.pem": old} and _marker(sandbox) is None

    # Stage 2: the REST API refuses tokens issued from now on (the probe token of the new key).
    sandbox.set_fault(restRejectsTokensIssuedAfter=str(int(time.time())))
    time.sleep(1.1)
    failed = run("-e", "signing_key_stop_after=publish")
    assert failed.returncode != 0
    assert re.search(r"publishing the new key \S+ failed - .*the previous key list was put back", failed.stdout), failed.stdout[-3000:]
    assert _listed(sandbox) == [_fp(old)] and _marker(sandbox) is None and _all_ready(sandbox)
    pending = store()["private.pem.next"]
    assert store()["private.pem"] == old and _fp(pending) != _fp(old)
    clear_faults()

    # Stage 3: pods refuse system tokens issued from now on (the re-minted one) and never get ready;
    # the publish stage before it (pods restarted with the old token) goes through.
    sandbox.set_fault(rejectTokensIssuedAfter=str(int(time.time())))
    time.sleep(1.1)
    failed = run("-e", "signing_key_wait_timeout=6")
    assert failed.returncode != 0
    assert "stage published (old" in failed.stdout, "the publish stage before the switch went through"
    assert "switching the signers to the new key" in failed.stdout and "both keys stay listed" in failed.stdout, failed.stdout[-3000:]
    assert store() == {"private.pem": old, "private.pem.next": pending}
    assert node_authserver.key_path.read_text() == old and _node_signs_with(node_authserver) == _fp(old)
    assert _sidecar_key(sandbox) == (old, hashlib.sha256(old.encode()).hexdigest()), "the sidecar has the old key back"
    assert sandbox.secret_value() == original_token and _marker(sandbox)["stage"] == "published"
    assert _listed(sandbox) == [_fp(old), _fp(pending)]
    clear_faults()
    sandbox.wait_until_ready()
    assert run().returncode == 0, outputs[-1][-4000:]
    assert store() == {"private.pem": pending, "private.pem.previous": old}
    assert _system_token_key(sandbox) == _fp(pending) and _marker(sandbox)["stage"] == "switched"
    assert _node_signs_with(node_authserver) == _fp(pending)
    assert _sidecar_key(sandbox) == (pending, hashlib.sha256(pending.encode()).hexdigest())

    # Stage 4: the REST API refuses the system token after the old key is gone.
    switched_token = sandbox.secret_value()
    sandbox.set_fault(restRejectsTokensIssuedAfter=str(tokens.decode_unverified(switched_token).claims["iat"] - 1))
    failed = run("-e", "signing_key_now=%d" % (time.time() + DAY + 60))
    assert failed.returncode != 0
    assert re.search(r"retiring the old key \S+ failed - .*the old key \S+ is listed again", failed.stdout), failed.stdout[-3000:]
    assert _listed(sandbox) == [_fp(old), _fp(pending)] and _marker(sandbox)["stage"] == "switched"
    assert store() == {"private.pem": pending, "private.pem.previous": old} and _all_ready(sandbox)
    clear_faults()
    assert run("-e", "signing_key_now=%d" % (time.time() + DAY + 60)).returncode == 0, outputs[-1][-4000:]
    assert _listed(sandbox) == [_fp(pending)] and _marker(sandbox) is None
    assert store() == {"private.pem": pending} and _all_ready(sandbox)
    for output in outputs:
        _assert_nothing_secret_in(output, old, pending)


def _secrets_manager_labels(client, secret_id: str) -> dict:
    """Staging label -> (version id, value) of a Secrets Manager secret."""
    found = {}
    for version_id, labels in client.describe_secret(SecretId=secret_id)["VersionIdsToStages"].items():
        value = client.get_secret_value(SecretId=secret_id, VersionId=version_id)["SecretString"]
        found.update({label: (version_id, value) for label in labels})
    return found


# The sidecar's pods here are simulated: their logs never name a key, so the check that each signs with
# the new key would fail them; tests/containers runs it against a real auth server (sandbox --podman).
SIMULATED_SIDECAR_LOGS = False


def _add_sidecar(sandbox, key_pem: str) -> None:
    """A workload with an auth server sidecar as the role authserver_sidecar makes it: its key Secret and
    the key's hash on the pod template."""
    sandbox.core().create_namespaced_secret("default", {"metadata": {"name": "token-client-authserver-key"}, "data": {
        "private.pem": base64.b64encode(key_pem.encode()).decode()}})
    labels = {"app": "token-client"}
    sandbox.apps().create_namespaced_deployment("default", {
        "metadata": {"name": "token-client", "labels": labels},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels, "annotations": {SIDECAR_KEY_HASH: hashlib.sha256(key_pem.encode()).hexdigest()}},
            "spec": {"containers": [
                {"name": "authserver", "image": "okera-authserver:sandbox", "volumeMounts": [{"name": "key", "mountPath": "/etc/okera-authserver"}]},
                {"name": "app", "image": "token-client:sandbox"}],
                "volumes": [{"name": "key", "secret": {"secretName": "token-client-authserver-key"}}]}}}})


def _wait_for_sidecar_pods(sandbox, timeout: float = 60.0) -> dict:
    """_sidecar_pods once the controller has made them and they are ready."""
    deadline = time.monotonic() + timeout
    while not _sidecar_pods(sandbox):
        assert time.monotonic() < deadline, "the sidecar's pods did not become ready"
        time.sleep(0.2)
    return _sidecar_pods(sandbox)


def _sidecar_key(sandbox) -> tuple:
    """The key in the sidecar's Secret and the key hash on its pod template."""
    secret = base64.b64decode(sandbox.secret("token-client-authserver-key").data["private.pem"]).decode()
    return secret, sandbox.apps().read_namespaced_deployment("token-client", "default").spec.template.metadata.annotations[SIDECAR_KEY_HASH]


def _sidecar_pods(sandbox) -> dict:
    """uid -> the key hash annotation of the sidecar's ready pods."""
    pods = sandbox.core().list_namespaced_pod("default", label_selector="app=token-client").items
    return {pod.metadata.uid: (pod.metadata.annotations or {}).get(SIDECAR_KEY_HASH) for pod in pods
            if any(condition.type == "Ready" and condition.status == "True" for condition in pod.status.conditions or [])}


def test_keys_in_secrets_manager_and_a_sidecar_switch_in_one_run(sandbox, write_inventory, run_playbook, aws_env, moto,
                                                                 tmp_path, request):
    old = sandbox.signing_key.read_text()
    secrets = moto.client("secretsmanager")
    original_version = secrets.create_secret(Name="okera/jwt-signing", SecretString=old)["VersionId"]
    _add_sidecar(sandbox, old)
    pods_before = _wait_for_sidecar_pods(sandbox)
    original_token = sandbox.secret_value()
    # A node whose auth server fetches its key from the same secret itself: reloaded, given no file.
    node = Daemon(tmp_path / "node", None, ["--private-key-secret-id", "okera/jwt-signing", "--aws-region", "us-east-1",
                                            "--aws-endpoint-url", moto.url, "--ttl", "1h"], env=moto.environment())
    request.addfinalizer(node.stop)
    # The system token's re-minting at the switch is the other tests' subject: left out here to keep this run short.
    inventory = write_inventory(node, {"authserver_private_key_secret_id": "okera/jwt-signing"},
                                signing_key_store="secretsmanager", signing_key_private_key_secret_id="okera/jwt-signing",
                                signing_key_aws={"endpoint_url": moto.url}, signing_key_system_token=False,
                                signing_key_authserver_sidecars=[{"secret_name": "token-client-authserver-key", "deployment": "token-client"}],
                                signing_key_sidecar_log_check=SIMULATED_SIDECAR_LOGS)

    started = time.monotonic()
    done = run_playbook(ROTATE_SIGNING_KEY, "-i", str(inventory), "-vvv", env=aws_env)
    print("\n  secretsmanager store and a sidecar, stages 1-3: run %.1f s  stages: %s"
          % (time.monotonic() - started, _stage_times(done.stdout)))
    assert done.returncode == 0, _output(done)[-5000:]
    labels = _secrets_manager_labels(secrets, "okera/jwt-signing")
    assert sorted(labels) == ["AWSCURRENT", "AWSPREVIOUS"], "the pending label is gone once the key is current"
    new = labels["AWSCURRENT"][1]
    assert labels["AWSPREVIOUS"] == (original_version, old), "the old key is the version that was current"
    assert _fp(new) != _fp(old) and _listed(sandbox) == [_fp(old), _fp(new)]
    assert sandbox.secret_value() == original_token and _marker(sandbox)["stage"] == "switched"

    new_hash = hashlib.sha256(new.encode()).hexdigest()
    assert _sidecar_key(sandbox) == (new, new_hash)
    template = sandbox.apps().read_namespaced_deployment("token-client", "default").spec.template.metadata.annotations
    assert "kubectl.kubernetes.io/restartedAt" in template
    pods_after = _sidecar_pods(sandbox)
    assert pods_after and not set(pods_after) & set(pods_before), "the sidecar's pods were replaced"
    assert set(pods_after.values()) == {new_hash}
    assert _node_signs_with(node) == _fp(new) and node.process.poll() is None, "the node fetched the new key on reload"
    node_token = node.token_json("janedoe")["token"]
    public_keys = [keys.public_key_pem(keys.load_private_key(pem).public_key()) for pem in (new, old)]
    assert [tokens.verify(node_token, keys.load_public_keys(pem), ["RS512"]).valid for pem in public_keys] == [True, False]
    assert not list((tmp_path / "node").glob("*.pem")), "no key file is written for a node that fetches its key"
    _assert_nothing_secret_in(_output(done), old, new)
