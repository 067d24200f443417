"""system_token_metrics with a textfile: check mode, diff, a failed check, file mode, one-line failures."""
from __future__ import annotations

import stat

import pytest
from prometheus_client.parser import text_string_to_metric_families

from okera_auth.module_utils import tokens


@pytest.fixture
def module():
    from ansible_collections.okera.auth.plugins.modules import system_token_metrics
    return system_token_metrics


def _plan(valid=True, subject="okera_system_user"):
    return [{"key": "SYSTEM_TOKEN_0", "present": True, "subject": subject, "valid": valid,
             "expires_at": "2027-01-15T08:00:00Z", "issued_at": "2026-12-16T08:00:00Z", "why": "more than 7d left"}]


def _args(path, **more):
    return dict({"cluster": "prod-eu", "namespace": "okera", "secret": "secrets",
                 "secret_keys": ["SYSTEM_TOKEN_0"], "textfile": str(path)}, **more)


def _values(text):
    return {(item.name, item.labels.get("key")): item.value
            for family in text_string_to_metric_families(text) for item in family.samples}


def test_check_mode_predicts_a_change_and_writes_nothing(module, run_module, tmp_path):
    path = tmp_path / "okera.prom"
    result, failed = run_module(module, _args(path, plan=_plan()), check_mode=True, diff=True)
    assert not failed and result["changed"] and not path.exists()
    assert result["diff"]["before"] == "" and "okera_system_token_valid{" in result["diff"]["after"]


def test_writes_once_then_reports_no_change_while_the_findings_stay(module, run_module, tmp_path):
    path = tmp_path / "okera.prom"
    first, failed = run_module(module, _args(path, plan=_plan(), rotate_before="7d", alert_before="3d"))
    assert not failed and first["changed"] and first["textfile"] == str(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    values = _values(path.read_text())
    assert values[("okera_system_token_expiry_timestamp_seconds", "SYSTEM_TOKEN_0")] == 1_800_000_000
    assert values[("okera_system_token_rotate_before_seconds", None)] == 7 * 86400
    assert first["read_errors"] == {"SYSTEM_TOKEN_0": 0} and first["series"] == 7
    again, _failed = run_module(module, _args(path, plan=_plan(), rotate_before="7d", alert_before="3d"))
    assert again["changed"] is False
    assert run_module(module, _args(path, plan=_plan(valid=False)))[0]["changed"] is True


def test_a_failed_check_counts_and_keeps_the_last_findings(module, run_module, tmp_path):
    path = tmp_path / "okera.prom"
    run_module(module, _args(path, plan=_plan()))
    result, failed = run_module(module, _args(path, error="get Secret okera/secrets: forbidden (403)"))
    assert not failed and result["changed"] and result["read_errors"] == {"SYSTEM_TOKEN_0": 1}
    assert result["error"].startswith("get Secret")
    values = _values(path.read_text())
    assert values[("okera_system_token_valid", "SYSTEM_TOKEN_0")] == 1
    assert "forbidden" not in path.read_text(), "messages are returned, not written as labels"


def test_mode_and_common_file_arguments_apply(module, run_module, tmp_path):
    path = tmp_path / "okera.prom"
    result, failed = run_module(module, _args(path, plan=_plan(), mode="0640"))
    assert not failed and stat.S_IMODE(path.stat().st_mode) == 0o640
    again, _failed = run_module(module, _args(path, plan=_plan(), mode="u=rw,g=r,o=r"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o644 and again["changed"] is True
    same, _failed = run_module(module, _args(path, plan=_plan(), mode="o=r"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o644 and same["changed"] is False


def test_a_file_name_node_exporter_ignores_draws_a_warning(module, run_module, tmp_path, monkeypatch):
    # Caught at the source: once controller code is imported (as the filter tests do), ansible-core
    # routes a module's warnings to its display instead of the result.
    warned = []
    monkeypatch.setattr(module.AnsibleModule, "warn", lambda self, text: warned.append(text))
    result, failed = run_module(module, _args(tmp_path / "okera.txt", plan=_plan()))
    assert not failed and any("reads only files ending in .prom" in text for text in warned)


@pytest.mark.parametrize("args, message", [
    ({"error": "x", "plan": []}, "mutually exclusive"),
    ({}, "one of the following is required: plan, error"),
    ({"plan": [], "rotate_before": "soon"}, "soon"),
    ({"plan": [], "textfile": None}, "give textfile or pushgateway_url"),
    ({"plan": [], "pushgateway_url": "http://u:p@h:9091"}, "carries credentials"),
    ({"plan": [{"valid": True}]}, "plan entry 0 has no key"),
])
def test_bad_options_fail_with_one_line(module, run_module, tmp_path, args, message):
    result, failed = run_module(module, _args(tmp_path / "okera.prom", **args))
    assert failed and message in result["msg"] and "\n" not in result["msg"]


def test_a_missing_directory_fails_with_what_to_do(module, run_module, tmp_path):
    result, failed = run_module(module, _args(tmp_path / "nowhere" / "okera.prom", plan=_plan()))
    assert failed and "create it" in result["msg"]


def test_the_plan_of_a_real_token_carries_no_token_into_the_metrics(module, run_module, tmp_path,
                                                                    rsa_private_key, rsa_public_pem):
    from okera_auth.module_utils import keys, system_token
    token = tokens.mint(tokens.Signer(rsa_private_key), tokens.TokenSpec(subject="okera_system_user", ttl=86400)).token
    cluster = system_token.ClusterKeys(keys.load_public_keys(rsa_public_pem.decode()), "RS512")
    plan = [entry.as_dict() for entry in system_token.plan_rotation({"SYSTEM_TOKEN_0": token}, ["SYSTEM_TOKEN_0"],
                                                                    cluster, "7d")]
    path = tmp_path / "okera.prom"
    result, failed = run_module(module, _args(path, plan=plan), diff=True)
    assert not failed
    values = _values(path.read_text())
    claims = tokens.decode_unverified(token).claims
    assert values[("okera_system_token_issued_timestamp_seconds", "SYSTEM_TOKEN_0")] == claims["iat"]
    assert values[("okera_system_token_expiry_timestamp_seconds", "SYSTEM_TOKEN_0")] == claims["exp"]
    for part in token.split("."):
        assert part not in path.read_text() and part not in str(result)
