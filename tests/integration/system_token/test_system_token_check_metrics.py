"""check_system_token.yml with metrics: a node_exporter textfile shared by clusters and a Pushgateway group per
cluster, written as the official parser reads them, and a cluster that cannot be read counted, not forgotten."""
from __future__ import annotations

import base64
import json
import socket

import pytest
import yaml
from playbook_runs import CHECK, recap
from prometheus_client.parser import text_string_to_metric_families

from pushgateway_stub import PushgatewayStub

pytestmark = pytest.mark.slow


@pytest.fixture
def gateway():
    stub = PushgatewayStub().start()
    yield stub
    stub.stop()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _samples(text: str) -> dict:
    return {(sample.name, sample.labels.get("cluster"), sample.labels.get("key")): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def test_check_writes_what_it_found_and_counts_a_cluster_it_cannot_read(
        make_sandbox, write_inventory, run_playbook, gateway, tmp_path):
    sandbox = make_sandbox(token_ttl="2d")
    claims = _claims(sandbox.secret_value())
    down = yaml.safe_load(sandbox.kubeconfig.read_text())
    down["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:%d" % _closed_port()
    (tmp_path / "down.kubeconfig").write_text(yaml.safe_dump(down))
    textfile = tmp_path / "textfile" / "okera_system_token.prom"
    textfile.parent.mkdir()
    inventory = write_inventory(
        {"good": sandbox, "down": {"system_token_kubeconfig": str(tmp_path / "down.kubeconfig")}},
        system_token_metrics_textfile=str(textfile), system_token_metrics_pushgateway_url=gateway.url)

    done = run_playbook(CHECK, "-i", str(inventory), "--forks", "2")
    # good: its token expires within the default 3d, a finding; down: the cluster cannot be read.
    assert done.returncode != 0
    counters = recap(done.stdout)
    assert counters["good"]["failed"] == 1 and counters["down"]["failed"] == 1
    assert "expiring within 3d" in done.stdout and "connection refused" in done.stdout, done.stdout[-6000:]
    assert "Traceback" not in done.stdout + done.stderr

    samples = _samples(textfile.read_text())
    assert samples[("okera_system_token_expiry_timestamp_seconds", "good", "SYSTEM_TOKEN_0")] == claims["exp"]
    assert samples[("okera_system_token_issued_timestamp_seconds", "good", "SYSTEM_TOKEN_0")] == claims["iat"]
    assert samples[("okera_system_token_valid", "good", "SYSTEM_TOKEN_0")] == 1
    assert samples[("okera_system_token_read_errors_total", "good", "SYSTEM_TOKEN_0")] == 0
    assert samples[("okera_system_token_alert_before_seconds", "good", None)] == 3 * 86400
    assert samples[("okera_system_token_read_errors_total", "down", "SYSTEM_TOKEN_0")] == 1
    assert ("okera_system_token_valid", "down", "SYSTEM_TOKEN_0") not in samples, "nothing known yet"
    assert oct(textfile.stat().st_mode & 0o777) == "0o644"

    pushed = gateway.values(job="okera_system_token", cluster="good")
    labels = frozenset({"cluster": "good", "namespace": "default", "secret": "secrets", "key": "SYSTEM_TOKEN_0",
                        "subject": "okera_system_user"}.items())
    assert pushed[("okera_system_token_expiry_timestamp_seconds", labels)] == claims["exp"]
    assert [(push.method, push.path) for push in gateway.pushes() if "/cluster/down" in push.path] == [
        ("POST", "/metrics/job/okera_system_token/cluster/down")]
    assert sandbox.secret_value() not in textfile.read_text() + json.dumps([r.body for r in gateway.requests])

    relaxed = run_playbook("okera.auth.check_system_token", "-i", str(inventory), "-l", "good",
                           "-e", "system_token_alert_before=1d")
    assert relaxed.returncode == 0, relaxed.stdout[-3000:]
    assert recap(relaxed.stdout)["good"]["changed"] == 1, "the alert threshold, a finding, changed"
    samples = _samples(textfile.read_text())
    assert samples[("okera_system_token_alert_before_seconds", "good", None)] == 86400
    assert samples[("okera_system_token_read_errors_total", "down", "SYSTEM_TOKEN_0")] == 1, "other clusters kept"
