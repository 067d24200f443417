"""Prometheus metrics of the system token: the text as the official parser reads it, the samples of a
check and of a failed one, the read-error counter carried from run to run, and the textfile."""
from __future__ import annotations

import os
import stat
import threading

import pytest
from prometheus_client.parser import text_string_to_metric_families

from okera_auth.module_utils import metrics
from okera_auth.module_utils.errors import MetricsError

EXPIRES = 1_800_000_000  # 2027-01-15T08:00:00Z
ISSUED = 1_797_408_000  # 2026-12-16T08:00:00Z
NOW = EXPIRES - 5 * 86400
TARGET = metrics.Target("prod-eu", "okera", "secrets")


def _entry(key="SYSTEM_TOKEN_0", subject="okera_system_user", valid=True, expires_at="2027-01-15T08:00:00Z",
           issued_at="2026-12-16T08:00:00Z", present=True, why="more than 3d left"):
    return {"key": key, "subject": subject, "valid": valid, "expires_at": expires_at, "issued_at": issued_at,
            "present": present, "why": why, "summary": "ignored"}


def _parsed(text: str):
    """({(sample name, frozenset(labels)): value}, {family: type}) as prometheus_client reads the text."""
    samples, types = {}, {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for item in family.samples:
            samples[(item.name, frozenset(item.labels.items()))] = item.value
    return samples, types


def _labels(key=None, subject=None, cluster="prod-eu"):
    labels = {"cluster": cluster, "namespace": "okera", "secret": "secrets"}
    if key is not None:
        labels["key"] = key
    if subject is not None:
        labels["subject"] = subject
    return frozenset(labels.items())


TOKEN = _labels("SYSTEM_TOKEN_0", "okera_system_user")
ERRORS = _labels("SYSTEM_TOKEN_0")


def test_a_check_exports_expiry_issue_time_validity_check_time_and_thresholds():
    samples = metrics.check_samples(TARGET, [_entry(), _entry("SYSTEM_TOKEN_1", valid=False)], [], now=NOW,
                                    rotate_before=7 * 86400, alert_before=3 * 86400)
    parsed, types = _parsed(metrics.render(samples))
    assert parsed[(metrics.EXPIRY, TOKEN)] == EXPIRES
    assert parsed[(metrics.ISSUED, TOKEN)] == ISSUED
    assert parsed[(metrics.VALID, TOKEN)] == 1
    assert parsed[(metrics.VALID, _labels("SYSTEM_TOKEN_1", "okera_system_user"))] == 0
    assert parsed[(metrics.LAST_CHECK, TOKEN)] == NOW
    assert parsed[(metrics.READ_ERRORS, ERRORS)] == 0
    assert parsed[(metrics.ROTATE_BEFORE, _labels())] == 7 * 86400
    assert parsed[(metrics.ALERT_BEFORE, _labels())] == 3 * 86400
    assert types == {metrics.EXPIRY: "gauge", metrics.ISSUED: "gauge", metrics.VALID: "gauge",
                     metrics.LAST_CHECK: "gauge", "okera_system_token_read_errors": "counter",
                     metrics.ROTATE_BEFORE: "gauge", metrics.ALERT_BEFORE: "gauge"}
    assert len(parsed) == 2 * 5 + 2


def test_names_follow_prometheus_conventions():
    for name, (kind, text) in metrics.FAMILIES.items():
        assert name.startswith("okera_system_token_")
        assert name.endswith("_total") == (kind == "counter")
        assert "timestamp" not in name or name.endswith("_timestamp_seconds")
        assert text.endswith(".")


def test_a_missing_key_is_invalid_with_no_expiry_and_an_empty_subject():
    entry = _entry("SYSTEM_TOKEN_1", subject=None, valid=False, expires_at=None, issued_at=None, present=False,
                   why="missing")
    parsed, _types = _parsed(metrics.render(metrics.check_samples(TARGET, [entry], [], now=NOW)))
    missing = _labels("SYSTEM_TOKEN_1", "")
    assert parsed[(metrics.VALID, missing)] == 0
    assert (metrics.EXPIRY, missing) not in parsed and (metrics.ISSUED, missing) not in parsed
    assert parsed[(metrics.READ_ERRORS, _labels("SYSTEM_TOKEN_1"))] == 0, "missing is not a read error"


def test_an_unreadable_token_counts_a_read_error_each_run():
    entry = _entry(subject=None, valid=False, expires_at=None, issued_at=None, why="unreadable (not a JWT)")
    first = metrics.check_samples(TARGET, [entry], [], now=NOW)
    second = metrics.check_samples(TARGET, [entry], first, now=NOW + 60)
    parsed, _types = _parsed(metrics.render(second))
    assert parsed[(metrics.READ_ERRORS, ERRORS)] == 2


def test_a_failed_check_keeps_the_last_findings_and_counts_an_error_per_key():
    good = metrics.check_samples(TARGET, [_entry()], [], now=NOW, rotate_before=7 * 86400)
    failed = metrics.failure_samples(TARGET, ["SYSTEM_TOKEN_0", "SYSTEM_TOKEN_1"], good)
    parsed, _types = _parsed(metrics.render(failed))
    assert parsed[(metrics.LAST_CHECK, TOKEN)] == NOW, "the time of the last successful check stays"
    assert parsed[(metrics.EXPIRY, TOKEN)] == EXPIRES
    assert parsed[(metrics.READ_ERRORS, ERRORS)] == 1
    assert parsed[(metrics.READ_ERRORS, _labels("SYSTEM_TOKEN_1"))] == 1
    assert parsed[(metrics.ROTATE_BEFORE, _labels())] == 7 * 86400, "a threshold not given again is kept"
    again = metrics.failure_samples(TARGET, ["SYSTEM_TOKEN_0"], failed)
    assert _parsed(metrics.render(again))[0][(metrics.READ_ERRORS, ERRORS)] == 2
    recovered = metrics.check_samples(TARGET, [_entry()], again, now=NOW + 3600)
    parsed, _types = _parsed(metrics.render(recovered))
    assert parsed[(metrics.READ_ERRORS, ERRORS)] == 2, "a counter never goes down"
    assert parsed[(metrics.LAST_CHECK, TOKEN)] == NOW + 3600


def test_other_clusters_and_a_renamed_secret_are_not_carried_over():
    other = metrics.Target("prod-us", "okera", "secrets")
    renamed = metrics.Target("prod-eu", "okera", "old-secrets")
    previous = (metrics.check_samples(other, [_entry()], [], now=NOW)
                + metrics.failure_samples(renamed, ["SYSTEM_TOKEN_0"], []))
    failed = metrics.failure_samples(TARGET, ["SYSTEM_TOKEN_0"], previous)
    assert {item.label("cluster") for item in failed} == {"prod-eu"}
    assert {item.label("secret") for item in failed} == {"secrets"}
    assert [item.value for item in failed if item.name == metrics.READ_ERRORS] == [1]


@pytest.mark.parametrize("subject", [
    'quote " backslash \\ newline \n end', "ünïcödé ✓", "{braces} = , commas", "\\n literal", "x" * 1000,
    "lone surrogate \ud800"])
def test_label_values_are_escaped_so_the_official_parser_reads_them_back(subject):
    samples = metrics.check_samples(TARGET, [_entry(subject=subject)], [], now=NOW)
    text = metrics.render(samples)
    parsed, _types = _parsed(text)
    expected = subject.encode("utf-8", "replace").decode("utf-8")
    if len(expected) > metrics.MAX_LABEL_VALUE:
        expected = expected[:metrics.MAX_LABEL_VALUE - 3] + "..."
    assert parsed[(metrics.VALID, _labels("SYSTEM_TOKEN_0", expected))] == 1
    assert len(text.splitlines()) == len(metrics.FAMILIES) * 2 - 4 + len(samples), "one line per sample"
    assert {(item.name, item.labels, item.value) for item in metrics.parse_text(text)} == {
        (item.name, tuple(sorted((key, value.encode("utf-8", "replace").decode("utf-8")) for key, value in item.labels)),
         item.value) for item in samples}


@pytest.mark.parametrize("value, text", [(1.0, "1"), (0, "0"), (1.5, "1.5"), (float("nan"), "NaN"),
                                         (float("inf"), "+Inf"), (-float("inf"), "-Inf"), (1e300, "1e+300"),
                                         (1_800_000_000.0, "1800000000")])
def test_values_are_written_as_prometheus_reads_them(value, text):
    assert metrics.format_value(value) == text


def test_help_text_is_escaped():
    assert metrics.escape_help("a\\b\nc") == "a\\\\b\\nc"


def test_the_reader_skips_what_it_cannot_parse():
    text = "\n".join(["# HELP x y", "garbage line here too many fields", 'bad{label="open} 1', "9starts_with_digit 1",
                      'ok{a="1",b="x\\"y"} 2', "plain 3 1700000000000", "", "novalue"])
    assert [(item.name, item.labels, item.value) for item in metrics.parse_text(text)] == [
        ("ok", (("a", "1"), ("b", 'x"y')), 2.0), ("plain", (), 3.0)]


def test_rendering_refuses_unknown_metrics():
    with pytest.raises(MetricsError):
        metrics.render([metrics.Sample("something_else", (), 1)])


def test_findings_ignore_the_time_of_the_check_only():
    first = metrics.check_samples(TARGET, [_entry()], [], now=NOW)
    assert metrics.findings(first) == metrics.findings(metrics.check_samples(TARGET, [_entry()], first, now=NOW + 60))
    assert metrics.findings(first) != metrics.findings(
        metrics.check_samples(TARGET, [_entry(expires_at="2027-02-15T08:00:00Z")], first, now=NOW))


# ---- the textfile -------------------------------------------------------------------------------

def _build(entries, now=NOW):
    return lambda previous: metrics.check_samples(TARGET, entries, previous, now=now)


def test_textfile_is_written_0644_and_a_second_run_changes_no_finding(tmp_path):
    path = tmp_path / "okera_system_token.prom"
    first = metrics.update_textfile(str(path), TARGET, _build([_entry()]))
    assert first.changed and first.before == "" and path.read_text() == first.after
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    second = metrics.update_textfile(str(path), TARGET, _build([_entry()], NOW + 60))
    assert not second.changed
    assert _parsed(path.read_text())[0][(metrics.LAST_CHECK, TOKEN)] == NOW + 60, "the check time is refreshed"
    assert sorted(os.listdir(tmp_path)) == ["okera_system_token.prom"], "no temp file left behind"


def test_textfile_keeps_the_series_of_other_clusters(tmp_path):
    path = str(tmp_path / "all.prom")
    other = metrics.Target("prod-us", "okera", "secrets")
    metrics.update_textfile(path, other, lambda previous: metrics.check_samples(other, [_entry()], previous, now=NOW))
    metrics.update_textfile(path, TARGET, _build([_entry()]))
    clusters = {dict(labels)["cluster"] for (_name, labels) in _parsed(open(path).read())[0]}
    assert clusters == {"prod-eu", "prod-us"}


def test_textfile_in_check_mode_predicts_and_writes_nothing(tmp_path):
    path = tmp_path / "okera_system_token.prom"
    result = metrics.update_textfile(str(path), TARGET, _build([_entry()]), check_mode=True)
    assert result.changed and result.after and not path.exists()


def test_textfile_mode_can_be_chosen(tmp_path):
    path = tmp_path / "okera_system_token.prom"
    metrics.update_textfile(str(path), TARGET, _build([_entry()]), mode=0o640)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_textfile_in_a_missing_directory_says_what_to_do(tmp_path):
    with pytest.raises(MetricsError, match="does not exist: create it"):
        metrics.update_textfile(str(tmp_path / "nowhere" / "x.prom"), TARGET, _build([_entry()]))


def test_textfile_that_is_a_directory_is_refused(tmp_path):
    (tmp_path / "x.prom").mkdir()
    with pytest.raises(MetricsError, match="is a directory"):
        metrics.update_textfile(str(tmp_path / "x.prom"), TARGET, _build([_entry()]))


def test_parallel_clusters_do_not_drop_each_others_series(tmp_path):
    path = str(tmp_path / "all.prom")
    targets = [metrics.Target("cluster-%d" % number, "okera", "secrets") for number in range(8)]

    def write(target):
        for _round in range(5):
            metrics.update_textfile(path, target,
                                    lambda previous: metrics.check_samples(target, [_entry()], previous, now=NOW))

    threads = [threading.Thread(target=write, args=(target,)) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    clusters = {item.label("cluster") for item in metrics.parse_text(open(path).read())}
    assert clusters == {target.cluster for target in targets}


# ---- the Pushgateway's addresses (no network here) ----------------------------------------------

@pytest.mark.parametrize("cluster, path", [
    ("prod-eu", "/metrics/job/okera_system_token/cluster/prod-eu"),
    ("a b&c", "/metrics/job/okera_system_token/cluster/a%20b%26c"),
    ("team/prod", "/metrics/job/okera_system_token/cluster@base64/dGVhbS9wcm9k"),
    ("", "/metrics/job/okera_system_token/cluster@base64/="),
])
def test_group_urls_encode_values_as_the_pushgateway_asks(cluster, path):
    gateway = metrics.Pushgateway("http://127.0.0.1:9091/")
    assert gateway.group_url({"cluster": cluster}) == "http://127.0.0.1:9091" + path


@pytest.mark.parametrize("url, message", [
    ("http://user:secret@pushgateway:9091", "carries credentials"),
    ("ftp://pushgateway", "is not an http:// or https:// URL"),
    ("pushgateway:9091", "is not an http:// or https:// URL"),
])
def test_bad_pushgateway_urls_are_refused_without_showing_credentials(url, message):
    with pytest.raises(MetricsError, match=message) as raised:
        metrics.Pushgateway(url)
    assert "secret" not in str(raised.value)
