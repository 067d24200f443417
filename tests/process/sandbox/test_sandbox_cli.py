"""okera-auth-sandbox as scripts use it: init, start, status, stop, and its one-line errors."""
from __future__ import annotations

import json
import os
import re
import socket
import stat

import pytest
from kubernetes import client, config


@pytest.fixture
def started(run_cli, tmp_path):
    state = str(tmp_path / "state")
    done = run_cli("init", "--state-dir", state, "--token-ttl", "2d")
    assert done.returncode == 0, done.stderr
    done = run_cli("start", "--state-dir", state, "--pod-start-delay", "0.1")
    assert done.returncode == 0, done.stderr
    yield state, done.stdout
    run_cli("stop", "--state-dir", state)


def _secret_texts(state: str) -> list:
    texts = []
    for name in ("admin.token", "reader.token", "signing-key.pem"):
        with open(os.path.join(state, name)) as handle:
            texts.append(handle.read().strip())
    return texts


@pytest.mark.slow
def test_start_status_stop(run_cli, started):
    state, start_output = started
    assert "serving https://127.0.0.1:" in start_output
    with open(os.path.join(state, "server.pid")) as handle:
        record = json.load(handle)
    api = config.new_client_from_config(config_file=os.path.join(state, "kubeconfig"))
    assert client.CoreV1Api(api).read_namespaced_secret("secrets", "default").data
    status = run_cli("status", "--state-dir", state, "--json")
    report = json.loads(status.stdout)
    assert report["server"] == {"running": True, "url": record["url"], "pid": record["pid"]}
    assert report["token"]["subject"] == "okera_system_user" and report["token"]["valid"]
    assert 2 * 86400 - 300 < report["token"]["expires_in"] <= 2 * 86400
    assert report["pods_total"] == 5
    text = run_cli("status", "--state-dir", state).stdout
    assert "subject okera_system_user" in text and "cluster accepts it: yes" in text
    stopped = run_cli("stop", "--state-dir", state)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert not os.path.exists(os.path.join(state, "server.pid"))
    assert json.loads(run_cli("status", "--state-dir", state, "--json").stdout)["server"]["running"] is False
    for output in (start_output, status.stdout, text, stopped.stdout):
        assert not any(secret in output for secret in _secret_texts(state))


def test_state_files_are_private(started):
    state = started[0]
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o700
    for name in ("signing-key.pem", "admin.token", "reader.token", "kubeconfig", "cluster.json",
                 "sandbox.json", "server.key"):
        assert stat.S_IMODE(os.stat(os.path.join(state, name)).st_mode) == 0o600, name


def test_second_start_is_refused_while_running(run_cli, started):
    state = started[0]
    done = run_cli("start", "--state-dir", state)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "already serves" in done.stderr


def test_busy_port_is_a_one_line_error(run_cli, tmp_path):
    state = str(tmp_path / "state")
    assert run_cli("init", "--state-dir", state).returncode == 0
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        done = run_cli("start", "--state-dir", state, "--port", str(busy.getsockname()[1]))
    assert done.returncode == 1
    assert done.stderr.startswith("okera-auth-sandbox: error: cannot listen on 127.0.0.1:")
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_load_balancer_addresses_the_rest_api_cannot_answer_at_are_one_line_errors_and_rest_host_listens_everywhere(run_cli, tmp_path):
    state = str(tmp_path / "state")
    assert run_cli("init", "--state-dir", state).returncode == 0
    elsewhere = run_cli("start", "--state-dir", state, "--load-balancer-ip", "127.0.0.2", "--rest-host", "127.0.0.1")
    assert elsewhere.stderr == ("okera-auth-sandbox: error: --rest-host 127.0.0.1: the Okera REST API must answer at the "
                                "load balancer's address 127.0.0.2 (give --rest-host 127.0.0.2 or 0.0.0.0, or leave it out)\n")
    # 203.0.113.7 (TEST-NET-3) is no address of this host.
    foreign = run_cli("start", "--state-dir", state, "--load-balancer-ip", "203.0.113.7")
    assert foreign.returncode == 1 and foreign.stderr.count("\n") == 1, foreign.stderr
    assert foreign.stderr.startswith("okera-auth-sandbox: error: cannot listen on 203.0.113.7:0 for the Okera REST API: ")
    assert "give another --load-balancer-ip, or --rest-host 0.0.0.0" in foreign.stderr
    assert run_cli("start", "--state-dir", state, "--load-balancer-ip", "10.1").stderr.endswith(
        "argument --load-balancer-ip: '10.1' is not an IPv4 address, e.g. 10.89.0.2\n")
    # No server ever ran: no load balancer address is known yet.
    assert "Okera REST API: not served (Service default/cdas-rest-server, LoadBalancer <pending>, plain HTTP)" in run_cli(
        "status", "--state-dir", state).stdout
    # With --rest-host 0.0.0.0 it listens on every address of the host, loopback included.
    started = run_cli("start", "--state-dir", state, "--load-balancer-ip", "203.0.113.7", "--rest-host", "0.0.0.0")
    try:
        assert started.returncode == 0, started.stderr
        port = int(re.search(r"Okera REST API http://203\.0\.113\.7:(\d+)", started.stdout).group(1))
        with socket.create_connection(("127.0.0.1", port), timeout=10):
            pass
    finally:
        run_cli("stop", "--state-dir", state)


@pytest.mark.parametrize("args, message", [
    (["status"], "no sandbox in"),
    (["start"], "no sandbox in"),
    (["init", "--token-ttl", "soon"], "--token-ttl: duration 'soon' is not understood"),
])
def test_errors_are_one_line(run_cli, tmp_path, args, message):
    done = run_cli(*args, "--state-dir", str(tmp_path / "none"))
    assert done.returncode == 1
    assert message in done.stderr and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


@pytest.mark.parametrize("args, message", [
    (["--namespace", "Bad_NS!"], 'Namespace "Bad_NS!" is invalid'),
    (["--config-secret", "Bad!"], 'Secret "Bad!" is invalid'),
    (["--algorithm", "HS256"], "HS256"),
])
@pytest.mark.parametrize("existing", [False, True])
def test_init_that_fails_leaves_nothing_behind(run_cli, tmp_path, args, message, existing):
    """A refused value used to leave keys, certificates and tokens without a sandbox.json."""
    state = tmp_path / "state"
    if existing:
        state.mkdir()
        (state / "notes.txt").write_text("mine")
    done = run_cli("init", "--state-dir", str(state), *args)
    assert done.returncode == 1 and message in done.stderr and done.stderr.count("\n") == 1
    assert (sorted(os.listdir(state)) == ["notes.txt"]) if existing else not state.exists()


def test_init_refuses_to_replace_without_force(run_cli, tmp_path):
    state = str(tmp_path / "state")
    assert run_cli("init", "--state-dir", state).returncode == 0
    before = _secret_texts(state)
    again = run_cli("init", "--state-dir", state)
    assert again.returncode == 1 and "--force" in again.stderr
    assert _secret_texts(state) == before
    assert run_cli("init", "--state-dir", state, "--force").returncode == 0
    assert _secret_texts(state) != before


def test_plain_http_and_config_in_the_token_secret(run_cli, tmp_path):
    state = str(tmp_path / "state")
    done = run_cli("init", "--state-dir", state, "--no-tls", "--config-secret", "secrets")
    assert done.returncode == 0, done.stderr
    assert run_cli("start", "--state-dir", state).returncode == 0
    try:
        api = config.new_client_from_config(config_file=os.path.join(state, "kubeconfig"))
        assert api.configuration.host.startswith("http://")
        data = client.CoreV1Api(api).read_namespaced_secret("secrets", "default").data
        assert {"SYSTEM_TOKEN_0", "JWT_PUBLIC_KEY", "JWT_ALGORITHM"} <= set(data)
        assert json.loads(run_cli("status", "--state-dir", state, "--json").stdout)["token"]["valid"]
    finally:
        run_cli("stop", "--state-dir", state)


def test_broken_certificate_and_stale_pidfile(run_cli, tmp_path):
    state = tmp_path / "state"
    assert run_cli("init", "--state-dir", str(state)).returncode == 0
    (state / "server.crt").write_text("not a certificate")
    done = run_cli("start", "--state-dir", str(state))
    assert done.returncode == 1 and "cannot load the server certificate" in done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    (state / "server.pid").write_text(json.dumps({"pid": 1, "started": "not-init's"}))
    stopped = run_cli("stop", "--state-dir", str(state))
    assert stopped.returncode == 0 and "no server is running" in stopped.stdout
    assert not (state / "server.pid").exists()
