"""/metrics names the signing key (kid, algorithm, type, size) and when it was loaded; a reload moves both,
a failed reload neither; the whole exposition reads with the official parser."""
from __future__ import annotations

import os
import re
import shutil
import signal
import time

from prometheus_client.parser import text_string_to_metric_families

from authserver_process import ssh_keygen
from okera_auth.module_utils.tokens import decode_unverified


def _metrics(daemon) -> dict:
    status, headers, body = daemon.get("/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    return {family.name: family for family in text_string_to_metric_families(body)}


def _key(daemon):
    families = _metrics(daemon)
    (info,) = families["okera_authserver_key_info"].samples  # the info-metric convention: a gauge of 1
    (loaded,) = families["okera_authserver_key_loaded_timestamp_seconds"].samples
    return info.labels, loaded.value


def test_metrics_name_the_signing_key_and_when_it_was_loaded(start_daemon, pem_key, second_pem_key, tmp_path):
    key = tmp_path / "key.pem"
    shutil.copy(pem_key, key)
    before_start = time.time()
    daemon = start_daemon(key=key)
    kid = decode_unverified(daemon.token_json("janedoe")["token"]).header["kid"]
    labels, loaded = _key(daemon)
    assert labels == {"kid": kid, "algorithm": "RS512", "key_type": "RSA", "key_size": "2048"}
    assert before_start - 1 <= loaded <= time.time()
    assert _metrics(daemon)["okera_authserver_key_loaded_timestamp_seconds"].type == "gauge"

    # A key that does not fit the algorithm: the reload fails, the old key and its time stay.
    (tmp_path / "ec").mkdir()
    ec_key = ssh_keygen(tmp_path / "ec", "-t", "ecdsa", "-b", "256", "-m", "PEM")
    shutil.copy(ec_key, tmp_path / "key.new")
    os.replace(tmp_path / "key.new", key)
    daemon.signal(signal.SIGHUP)
    daemon.wait_for_log(re.compile(r"Reload failed"))
    assert _key(daemon) == (labels, loaded)

    shutil.copy(second_pem_key, tmp_path / "key.new")
    os.replace(tmp_path / "key.new", key)
    daemon.signal(signal.SIGHUP)
    new_kid = daemon.wait_for_log(re.compile(r"Reloaded key kid=(\S+)")).group(1)
    new_labels, reloaded = _key(daemon)
    assert new_labels == dict(labels, kid=new_kid) and new_kid != kid
    assert reloaded >= loaded


def test_every_family_of_metrics_reads_with_the_official_parser(start_daemon):
    daemon = start_daemon()
    daemon.token_json("janedoe")
    daemon.get("/not..valid")
    families = _metrics(daemon)
    assert families["okera_authserver_request_duration_seconds"].type == "histogram"
    assert families["okera_authserver_errors"].type == "counter"
    assert {sample.labels["kind"] for sample in families["okera_authserver_errors"].samples} >= {"bad_user"}
