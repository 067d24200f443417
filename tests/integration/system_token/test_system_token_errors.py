"""Clusters that cannot be used give one clear line each, and check_system_token.yml reports and alerts."""
from __future__ import annotations

import socket

import pytest
import yaml
from playbook_runs import CHECK, ROTATE, recap

pytestmark = pytest.mark.slow


def _kubeconfig_variant(sandbox, path, **changes):
    """A copy of the sandbox's kubeconfig with another server, token or current context."""
    config = yaml.safe_load(sandbox.kubeconfig.read_text())
    if "server" in changes:
        config["clusters"][0]["cluster"]["server"] = changes["server"]
    if "token" in changes:
        config["users"][0]["user"]["token"] = changes["token"]
    if "context" in changes:
        config["current-context"] = changes["context"]
    path.write_text(yaml.safe_dump(config))
    return str(path)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _failure_line(output: str, host: str) -> str:
    """The message of the role's final "Fail with what went wrong" for host."""
    lines = [line for line in output.splitlines() if line.startswith("fatal: [%s]" % host)]
    return lines[-1] if lines else ""


def test_unauthorized_forbidden_and_unreachable_clusters_say_what_to_check(
        make_sandbox, write_inventory, run_playbook, tmp_path):
    sandbox = make_sandbox(token_ttl="2d")
    old, version = sandbox.secret_value(), sandbox.secret().metadata.resource_version
    key = str(sandbox.signing_key)
    inventory = write_inventory({
        "unauthorized": {"system_token_kubeconfig": _kubeconfig_variant(sandbox, tmp_path / "kc401", token="wrong-token"),
                         "system_token_private_key_path": key},
        "forbidden": {"system_token_kubeconfig": str(sandbox.kubeconfig), "system_token_context": "okera-sandbox-readonly",
                      "system_token_private_key_path": key},
        "unreachable": {"system_token_kubeconfig": _kubeconfig_variant(
            sandbox, tmp_path / "kcdown", server="https://127.0.0.1:%d" % _closed_port()),
            "system_token_private_key_path": key},
    })
    done = run_playbook(ROTATE, "-i", str(inventory), "--forks", "3")
    assert done.returncode != 0
    assert all(counters["failed"] == 1 for counters in recap(done.stdout).values())

    unauthorized = _failure_line(done.stdout, "unauthorized")
    assert "rejected the credentials (401 Unauthorized)" in unauthorized
    assert "wrong-token" not in done.stdout + done.stderr
    # The read-only user may read: it fails at the patch, and nothing is changed.
    forbidden = _failure_line(done.stdout, "forbidden")
    assert "forbidden (403)" in forbidden and "grant the user RBAC permission" in forbidden
    assert "nothing was changed" in forbidden
    unreachable = _failure_line(done.stdout, "unreachable")
    assert "connection refused" in unreachable and "is the cluster running" in unreachable
    assert sandbox.secret_value() == old and sandbox.secret().metadata.resource_version == version


def test_check_reports_days_left_and_fails_below_the_threshold(make_sandbox, write_inventory, run_playbook):
    expiring, fresh = make_sandbox("expiring", token_ttl="2d"), make_sandbox("fresh", token_ttl="30d")
    inventory = write_inventory({"expiring": expiring, "fresh": fresh})
    done = run_playbook(CHECK, "-i", str(inventory), "-e", "system_token_alert_before=3d")
    assert done.returncode != 0
    counters = recap(done.stdout)
    assert counters["expiring"]["failed"] == 1 and counters["fresh"]["failed"] == 0
    assert counters["fresh"]["changed"] == 0
    assert "sub=okera_system_user iss=okera-sandbox" in done.stdout
    assert "(2.0 days left)" in done.stdout and "(30.0 days left)" in done.stdout
    assert "expiring within 3d" in _failure_line(done.stdout, "expiring")

    relaxed = run_playbook("okera.auth.check_system_token", "-i", str(inventory), "-e", "system_token_alert_before=1d")
    assert relaxed.returncode == 0, relaxed.stdout[-3000:]
