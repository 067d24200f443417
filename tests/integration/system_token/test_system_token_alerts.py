"""The alerts entry point (playbooks/render_alert_rules.yml): a rule file promtool accepts, each rule tested
with `promtool test rules` (when it fires, when it does not, with each cluster's own thresholds), the same
groups in a PrometheusRule, and a Grafana dashboard whose queries parse and name only exported metrics."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest
import yaml

from okera_auth.module_utils import metrics

REPO_ROOT = Path(__file__).resolve().parents[3]
PLAYBOOK = REPO_ROOT / "playbooks" / "render_alert_rules.yml"
PROMTOOL = shutil.which("promtool")
AUTHSERVER_METRICS = {
    "okera_authserver_tokens_issued_total", "okera_authserver_tokens_in_progress", "okera_authserver_errors_total",
    "okera_authserver_request_duration_seconds_bucket", "okera_authserver_files_pending_deletion",
    "okera_authserver_open_connections", "okera_authserver_key_reloads_total",
    "okera_authserver_key_reload_failures_total", "okera_authserver_key_info",
    "okera_authserver_key_loaded_timestamp_seconds"}
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian package prometheus) is not installed; "
                                                             "scripts/test.sh installs it")


def _render(workdir: Path, collections: Path, extra: Dict[str, object]) -> subprocess.CompletedProcess:
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
               ANSIBLE_PYTHON_INTERPRETER=sys.executable)
    return subprocess.run([str(Path(sys.executable).with_name("ansible-playbook")), str(PLAYBOOK),
                           "-e", json.dumps(extra)], capture_output=True, text=True, env=env, cwd=workdir,
                          timeout=300, check=False)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, collections_path) -> Path:
    out = tmp_path_factory.mktemp("alerts") / "out"
    done = _render(out.parent, collections_path, {"system_token_alerts_output_dir": str(out)})
    assert done.returncode == 0, done.stdout + done.stderr
    again = _render(out.parent, collections_path, {"system_token_alerts_output_dir": str(out)})
    assert "changed=0" in again.stdout, "a second run changes nothing"
    return out


def _promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, cwd=cwd, timeout=120, check=False)


def _rules(rendered: Path) -> dict:
    return yaml.safe_load((rendered / "okera-auth.rules.yml").read_text())


@needs_promtool
def test_the_rule_file_passes_promtool_check(rendered):
    done = _promtool("check", "rules", "okera-auth.rules.yml", cwd=rendered)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 9 rules found" in done.stdout


def test_the_prometheusrule_carries_the_same_groups(rendered):
    manifest = yaml.safe_load((rendered / "okera-auth-prometheusrule.yml").read_text())
    assert (manifest["apiVersion"], manifest["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")
    assert manifest["metadata"]["name"] == "okera-auth" and manifest["metadata"]["namespace"] == "default"
    assert manifest["spec"]["groups"] == _rules(rendered)["groups"]
    assert set(manifest) == {"apiVersion", "kind", "metadata", "spec"}


def test_every_token_rule_reads_only_metrics_the_check_exports(rendered):
    exported = set(metrics.FAMILIES) | AUTHSERVER_METRICS
    for group in _rules(rendered)["groups"]:
        for rule in group["rules"]:
            assert set(re.findall(r"okera_[a-z_]+", rule["expr"])) <= exported, rule["alert"]
            assert rule["labels"]["severity"] in ("warning", "critical")
            assert rule["annotations"]["summary"] and rule["annotations"]["description"]


# ---- promtool test rules --------------------------------------------------------------------------

def _series(name: str, values: str, **labels: str) -> dict:
    text = ",".join('%s="%s"' % item for item in labels.items())
    return {"series": "%s{%s}" % (name, text), "values": values}


TOKEN = {"job": "node", "instance": "controller:9100", "namespace": "okera", "secret": "secrets"}


def _token(cluster: str, expires: int, rotate_before: int = 7 * 86400, alert_before: int = 3 * 86400,
           minutes: int = 3000) -> List[dict]:
    """A cluster whose token expires at `expires` (seconds after 0, where promtool's clock starts)."""
    key = dict(TOKEN, cluster=cluster, key="SYSTEM_TOKEN_0", subject="okera_system_user")
    return [_series("okera_system_token_expiry_timestamp_seconds", "%d+0x%d" % (expires, minutes), **key),
            _series("okera_system_token_valid", "1+0x%d" % minutes, **key),
            _series("okera_system_token_rotate_before_seconds", "%d+0x%d" % (rotate_before, minutes),
                    **dict(TOKEN, cluster=cluster)),
            _series("okera_system_token_alert_before_seconds", "%d+0x%d" % (alert_before, minutes),
                    **dict(TOKEN, cluster=cluster))]


def _alerts(alertname: str, eval_time: str, *labels: Dict[str, str]) -> dict:
    return {"alertname": alertname, "eval_time": eval_time,
            "exp_alerts": [{"exp_labels": dict(entry)} for entry in labels]}


def _token_labels(cluster: str, severity: str) -> Dict[str, str]:
    return dict(TOKEN, cluster=cluster, key="SYSTEM_TOKEN_0", subject="okera_system_user", severity=severity)


INVALID_DESCRIPTION = (
    "Secret okera/secrets key SYSTEM_TOKEN_1 of cluster eu is missing, unreadable, expired, or does not verify "
    "with the cluster's JWT_PUBLIC_KEY and JWT_ALGORITHM. okera.auth.check_system_token says why; "
    "okera.auth.rotate_system_token replaces it.")

UNIT_TESTS = [
    {   # eu: 5 days left, rotation threshold 7d, alert threshold 3d; us: 20 days left but its own threshold
        # is 30d; fresh: 60 days left.
        "interval": "1m",
        "input_series": (_token("eu", 5 * 86400) + _token("us", 20 * 86400, rotate_before=30 * 86400)
                         + _token("fresh", 60 * 86400)),
        "alert_rule_test": [
            _alerts("OkeraSystemTokenNotRotated", "23h"),  # pending: the next rotation may still come
            _alerts("OkeraSystemTokenNotRotated", "1d1m", _token_labels("eu", "warning"),
                    _token_labels("us", "warning")),
            _alerts("OkeraSystemTokenExpiresSoon", "1d1m"),
            _alerts("OkeraSystemTokenExpiresSoon", "2d1m", _token_labels("eu", "critical")),
            _alerts("OkeraSystemTokenInvalid", "2d1m"),
            _alerts("OkeraSystemTokenCheckStale", "2d1m"),  # no check-time series here: nothing stale
        ],
    },
    {   # A missing key (valid 0) pages at once, with the annotations filled in.
        "interval": "1m",
        "input_series": [_series("okera_system_token_valid", "1+0x10", **dict(TOKEN, cluster="eu", key="SYSTEM_TOKEN_0",
                                                                              subject="okera_system_user")),
                         _series("okera_system_token_valid", "0+0x10", **dict(TOKEN, cluster="eu", key="SYSTEM_TOKEN_1",
                                                                              subject=""))],
        "alert_rule_test": [{
            "alertname": "OkeraSystemTokenInvalid", "eval_time": "1m",
            # An empty label value is no label at all in Prometheus.
            "exp_alerts": [{"exp_labels": dict(TOKEN, cluster="eu", key="SYSTEM_TOKEN_1", severity="critical"),
                            "exp_annotations": {"summary": "Okera system token of eu is missing or does not verify",
                                                "description": INVALID_DESCRIPTION}}]}],
    },
    {   # The last successful check at 0 (then failures, counted): stale after 3h, failing at once.
        "interval": "1m",
        "input_series": [
            _series("okera_system_token_last_check_timestamp_seconds", "0+0x300",
                    **dict(TOKEN, cluster="eu", key="SYSTEM_TOKEN_0", subject="okera_system_user")),
            _series("okera_system_token_read_errors_total", "0 0 0 1+0x10 2+0x300",
                    **dict(TOKEN, cluster="eu", key="SYSTEM_TOKEN_0")),
            _series("okera_system_token_read_errors_total", "0+0x300", **dict(TOKEN, cluster="us", key="SYSTEM_TOKEN_0"))],
        "alert_rule_test": [
            _alerts("OkeraSystemTokenCheckStale", "2h59m"),
            _alerts("OkeraSystemTokenCheckStale", "3h1m", _token_labels("eu", "warning")),
            _alerts("OkeraSystemTokenCheckFailing", "2m"),
            _alerts("OkeraSystemTokenCheckFailing", "10m", dict(TOKEN, cluster="eu", key="SYSTEM_TOKEN_0",
                                                                severity="warning")),
            _alerts("OkeraSystemTokenMetricsAbsent", "3h1m"),
        ],
    },
    {   # No token metrics at all: absent for 3h.
        "interval": "1m",
        "input_series": [_series("up", "1+0x300", job="node", instance="controller:9100")],
        "alert_rule_test": [_alerts("OkeraSystemTokenMetricsAbsent", "2h"),
                            _alerts("OkeraSystemTokenMetricsAbsent", "3h1m", {"severity": "warning"})],
    },
    {   # node1 fails, is slow and could not reload its key; node2 only gets bad user names, fast.
        "interval": "1m",
        "input_series": [
            _series("okera_authserver_errors_total", "0+1x30", job="authserver", instance="node1:5001", kind="issue_failed"),
            _series("okera_authserver_errors_total", "0+5x30", job="authserver", instance="node2:5001", kind="bad_user"),
            _series("okera_authserver_request_duration_seconds_bucket", "0+0x30", job="authserver", instance="node1:5001", le="0.5"),
            _series("okera_authserver_request_duration_seconds_bucket", "0+10x30", job="authserver", instance="node1:5001", le="1"),
            _series("okera_authserver_request_duration_seconds_bucket", "0+10x30", job="authserver", instance="node1:5001", le="+Inf"),
            _series("okera_authserver_request_duration_seconds_bucket", "0+10x30", job="authserver", instance="node2:5001", le="0.01"),
            _series("okera_authserver_request_duration_seconds_bucket", "0+10x30", job="authserver", instance="node2:5001", le="0.5"),
            _series("okera_authserver_request_duration_seconds_bucket", "0+10x30", job="authserver", instance="node2:5001", le="+Inf"),
            _series("okera_authserver_key_reload_failures_total", "0 0 1+0x30", job="authserver", instance="node1:5001"),
            _series("okera_authserver_key_reload_failures_total", "0+0x30", job="authserver", instance="node2:5001")],
        "alert_rule_test": [
            _alerts("OkeraAuthServerErrors", "5m"),
            _alerts("OkeraAuthServerErrors", "16m", {"job": "authserver", "instance": "node1:5001", "severity": "warning"}),
            _alerts("OkeraAuthServerSlow", "16m", {"job": "authserver", "instance": "node1:5001", "severity": "warning"}),
            _alerts("OkeraAuthServerKeyReloadFailed", "5m", {"job": "authserver", "instance": "node1:5001",
                                                             "severity": "warning"}),
        ],
    },
]


@needs_promtool
def test_each_rule_fires_when_it_should_and_only_then(rendered, tmp_path):
    rules = _rules(rendered)
    tested = {case["alertname"] for test in UNIT_TESTS for case in test["alert_rule_test"]}
    assert tested == {rule["alert"] for group in rules["groups"] for rule in group["rules"]}, "every rule is tested"
    # Annotations are compared exactly; those with $value are left to the Invalid case's check above.
    for group in rules["groups"]:
        for rule in group["rules"]:
            if rule["alert"] != "OkeraSystemTokenInvalid":
                rule.pop("annotations")
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules))
    (tmp_path / "tests.yml").write_text(yaml.safe_dump({"rule_files": ["rules.yml"], "evaluation_interval": "1m",
                                                        "tests": UNIT_TESTS}))
    done = _promtool("test", "rules", "tests.yml", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


# ---- settings ---------------------------------------------------------------------------------------

@needs_promtool
def test_names_labels_and_thresholds_can_be_set(tmp_path, collections_path):
    out = tmp_path / "out"
    done = _render(tmp_path, collections_path, {
        "system_token_alerts_output_dir": str(out), "system_token_alerts_name": "okera-prod",
        "system_token_alerts_labels": {"team": "data"}, "system_token_alerts_stale_after": "90m",
        "system_token_alerts_rotation_grace": "36h", "system_token_alerts_authserver_latency": 1.5,
        "system_token_alerts_rule_namespace": "monitoring",
        "system_token_alerts_rule_labels": {"release": "kube-prometheus-stack"}})
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(path.name for path in out.iterdir()) == [
        "okera-prod-dashboard.json", "okera-prod-prometheusrule.yml", "okera-prod.rules.yml"]
    rules = {rule["alert"]: rule for group in yaml.safe_load((out / "okera-prod.rules.yml").read_text())["groups"]
             for rule in group["rules"]}
    assert rules["OkeraSystemTokenNotRotated"]["for"] == "129600s"
    assert rules["OkeraSystemTokenCheckStale"]["expr"].endswith("> 5400")
    assert rules["OkeraAuthServerSlow"]["expr"].endswith("> 1.5")
    assert all(rule["labels"]["team"] == "data" for rule in rules.values())
    manifest = yaml.safe_load((out / "okera-prod-prometheusrule.yml").read_text())
    assert manifest["metadata"]["namespace"] == "monitoring"
    assert manifest["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert _promtool("check", "rules", "okera-prod.rules.yml", cwd=out).returncode == 0


@pytest.mark.parametrize("settings", [
    {},
    {"system_token_alerts_labels": {"bad-name": "x"}},
    {"system_token_alerts_labels": {"severity": "page"}},
    {"system_token_alerts_stale_after": "soon"},
    {"system_token_alerts_name": "Okera Auth"},
], ids=["no_output_dir", "label_name", "severity_label", "duration", "name"])
def test_bad_settings_are_refused_before_writing(tmp_path, collections_path, settings):
    out = tmp_path / "out"
    variables = dict({"system_token_alerts_output_dir": str(out)}, **settings)
    if not settings:
        variables = {}
    done = _render(tmp_path, collections_path, variables)
    assert done.returncode != 0 and not out.exists()
    assert "system_token_alerts_" in done.stdout and "Traceback" not in done.stdout + done.stderr


# ---- the dashboard ------------------------------------------------------------------------------------

def _dashboard_queries(rendered: Path) -> List[str]:
    dashboard = json.loads((rendered / "okera-auth-dashboard.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def test_the_dashboard_is_grafana_json_with_a_datasource_and_cluster_variable(rendered):
    dashboard = json.loads((rendered / "okera-auth-dashboard.json").read_text())
    assert dashboard["uid"] == "okera-auth" and dashboard["schemaVersion"] >= 36
    assert [variable["name"] for variable in dashboard["templating"]["list"]] == ["datasource", "cluster"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"]) and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${datasource}"
    exported = set(metrics.FAMILIES) | AUTHSERVER_METRICS
    for query in _dashboard_queries(rendered):
        assert set(re.findall(r"okera_[a-z_]+", query)) <= exported, query


@needs_promtool
def test_every_dashboard_query_parses(rendered, tmp_path):
    queries = [query.replace("$cluster", ".+") for query in _dashboard_queries(rendered)]
    group = {"name": "dashboard", "rules": [{"record": "dashboard:query%d" % number, "expr": query}
                                            for number, query in enumerate(queries)]}
    (tmp_path / "queries.yml").write_text(yaml.safe_dump({"groups": [group]}))
    done = _promtool("check", "rules", "queries.yml", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
