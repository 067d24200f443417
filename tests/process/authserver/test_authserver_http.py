"""okera-authserver over real HTTP on 127.0.0.1: the tutorial, answers, endpoints, bad input."""
from __future__ import annotations

import http.client
import json
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from authserver_process import Daemon, public_pem, raw_exchange, verify_with_library, verify_with_openssl
from okera_auth.module_utils.keys import load_public_keys
from okera_auth.module_utils.tokens import decode_unverified, verify


@pytest.fixture(scope="module")
def refusing_daemon(pem_key, tmp_path_factory):
    """One server shared by the bad-input tests: none of them may ever leave a file."""
    daemon = Daemon(tmp_path_factory.mktemp("refusing"), pem_key, [])
    yield daemon
    daemon.kill()


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def test_tutorial_command_prints_a_token_that_verifies(start_daemon, pem_key):
    daemon = start_daemon()
    result = subprocess.run(
        ["bash", "-c", "TOKEN=$(curl -s http://foo:bar@localhost:%d/janedoe) && cat $TOKEN"
         % daemon.port], capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    checked = verify_with_library(token, pem_key, subject="janedoe")
    assert checked.valid, checked.reason
    assert checked.claims["exp"] - checked.claims["iat"] == 24 * 3600
    assert verify_with_openssl(token, pem_key)
    assert "Generated token: %s/janedoe." % daemon.directory in daemon.log()
    assert token not in daemon.log()


def test_no_tls_library_is_loaded(refusing_daemon):
    """Plain HTTP only: the system's libssl (ssl, _hashlib) stays out of a sidecar's memory."""
    assert refusing_daemon.get("/healthz")[0] == 200
    mapped = Path("/proc/%d/maps" % refusing_daemon.process.pid).read_text()
    assert "cryptography" in mapped  # the maps are the server's own and list its libraries
    assert not [line for line in mapped.splitlines() if "libssl" in line or "_ssl." in line or "_hashlib." in line]


def test_body_is_the_token_file_path(start_daemon):
    daemon = start_daemon()
    status, headers, body = daemon.get("/janedoe")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain")
    path = Path(body)
    assert path.parent == daemon.directory
    assert path.name.startswith("janedoe.") and path.name.endswith(".token")
    assert path.name.split(".")[1].isdigit()


def test_openssh_format_key_signs_tokens(start_daemon, openssh_key):
    daemon = start_daemon(key=openssh_key)
    answer = daemon.token_json("janedoe")
    assert verify_with_library(answer["token"], openssh_key).valid
    assert verify_with_openssl(answer["token"], openssh_key)


@pytest.mark.parametrize("how", ["accept", "query"])
def test_json_answer_has_path_token_and_expiry(start_daemon, pem_key, how):
    daemon = start_daemon()
    if how == "accept":
        status, headers, body = daemon.get("/janedoe", {"Accept": "application/json"})
    else:
        status, headers, body = daemon.get("/janedoe?format=json")
    assert status == 200 and headers["Content-Type"] == "application/json"
    answer = json.loads(body)
    assert set(answer) == {"path", "token", "expires_at"}
    assert Path(answer["path"]).read_text() == answer["token"]
    claims = decode_unverified(answer["token"]).claims
    assert answer["expires_at"] == claims["exp"] and isinstance(answer["expires_at"], int)
    assert verify_with_library(answer["token"], pem_key).valid


def test_claims_options_reach_the_token(start_daemon, pem_key, tmp_path):
    groups = tmp_path / "groups.json"
    groups.write_text(json.dumps({"janedoe": ["analysts", "admins"]}))
    daemon = start_daemon("--ttl", "90m", "--issuer", "cluster-a", "--audience", "okera",
                          "--audience", "presto", "--claim", "tenant=blue",
                          "--claim", "tier=3", "--groups-file", str(groups), "-a", "RS256")
    token = daemon.token_json("janedoe")["token"]
    checked = verify_with_library(token, pem_key, algorithm="RS256", issuer="cluster-a",
                                  audience="presto")
    assert checked.valid, checked.reason
    claims = checked.claims
    assert claims["exp"] - claims["iat"] == 90 * 60
    assert claims["aud"] == ["okera", "presto"]
    assert claims["groups"] == ["analysts", "admins"]
    assert claims["tenant"] == "blue" and claims["tier"] == 3
    assert verify_with_openssl(token, pem_key, "-sha256")
    other = decode_unverified(daemon.token_json("johndoe")["token"]).claims
    assert "groups" not in other


def test_jwks_publishes_the_signing_key(start_daemon, pem_key):
    daemon = start_daemon()
    status, _headers, body = daemon.get("/.well-known/jwks.json")
    assert status == 200
    keys = json.loads(body)["keys"]
    assert len(keys) == 1 and keys[0]["use"] == "sig" and keys[0]["alg"] == "RS512"
    token = daemon.token_json("janedoe")["token"]
    assert decode_unverified(token).header["kid"] == keys[0]["kid"]
    assert "d" not in keys[0] and "p" not in keys[0]
    assert verify(token, load_public_keys(body), ["RS512"]).valid


def test_healthz_reports_ok_then_unavailable_when_directory_goes(start_daemon):
    daemon = start_daemon()
    status, _headers, body = daemon.get("/healthz")
    assert status == 200 and json.loads(body)["status"] == "ok"
    daemon.directory.rename(daemon.directory.with_name("moved"))
    status, _headers, body = daemon.get("/healthz")
    assert status == 503 and json.loads(body)["status"] == "unavailable"
    assert "is gone" in json.loads(body)["reason"]
    status, _headers, body = daemon.get("/janedoe")
    assert status == 503 and "no token written" in body and "is gone" in body
    assert list(daemon.directory.with_name("moved").iterdir()) == []


def test_metrics_count_tokens_errors_and_latency(start_daemon):
    daemon = start_daemon("--disable-delete")
    for _round in range(3):
        assert daemon.get("/janedoe")[0] == 200
    assert daemon.get("/a%2Fb")[0] == 400
    status, headers, body = daemon.get("/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "okera_authserver_tokens_issued_total 3" in body
    assert 'okera_authserver_errors_total{kind="bad_user"} 1' in body
    assert 'okera_authserver_request_duration_seconds_bucket{le="+Inf"} 4' in body
    assert "okera_authserver_files_pending_deletion 0" in body


def test_pending_deletions_gauge_counts_owed_files(start_daemon):
    daemon = start_daemon("--delete-after", "60s")
    daemon.get("/janedoe")
    daemon.get("/johndoe")
    assert "okera_authserver_files_pending_deletion 2" in daemon.get("/metrics")[2]


BAD_NAMES = [
    "/..", "/.", "/%2e%2e", "/%2E%2E", "/%2e%2e%2fetc%2fpasswd", "/a%2Fb", "/a%2fb",
    "/%00", "/jane%00doe", "/", "/.hidden", "/-dash", "/a..b", "/%252e%252e",
    "/" + "a" * 129, "/jane%20doe", "/%C3%A9", "/jane*", "/jane%5c..",
]


@pytest.mark.parametrize("path", BAD_NAMES)
def test_bad_user_names_are_refused_and_write_nothing(refusing_daemon, path):
    daemon = refusing_daemon
    status, _headers, body = daemon.get(path)
    assert status == 400, body
    assert body.startswith("bad user name:") and body.count("\n") == 1
    assert list(daemon.directory.iterdir()) == []
    assert sorted(p.name for p in daemon.workdir.iterdir()) == ["daemon.log", "daemon.out", "tokens"]


@pytest.mark.parametrize("path, problem", [
    ("/alice#frag", "'#' is not allowed in a user name"),
    ("/jane%20doe", "' ' is not allowed in a user name"),
    ("/a%2Fb", "'/' is not allowed in a user name"),
    ("/.hidden", "a user name may not start with '.'"),
    ("/-dash", "a user name may not start with '-'"),
    ("/a..b", "'..' is not allowed in a user name"),
])
def test_a_bad_user_name_is_told_what_is_wrong_with_it(refusing_daemon, path, problem):
    status, _headers, body = refusing_daemon.get(path)
    assert status == 400 and body.startswith("bad user name: %s: it may hold only" % problem), body


def test_longest_allowed_name_is_served(start_daemon):
    daemon = start_daemon()
    status, _headers, body = daemon.get("/" + "a" * 128)
    assert status == 200 and Path(body).exists()


@pytest.mark.parametrize("raw_path", [b"/../etc/passwd", b"/tokens/../x", b"/a\x00b"])
def test_raw_traversal_and_nul_are_refused(refusing_daemon, raw_path):
    daemon = refusing_daemon
    answer = raw_exchange(daemon.port, b"GET " + raw_path + b" HTTP/1.1\r\nHost: x\r\n"
                          b"Connection: close\r\n\r\n")
    assert status_of(answer) == 400
    assert list(daemon.directory.iterdir()) == []


@pytest.mark.parametrize("path", ["/a/b", "/.well-known/other", "/metrics/x"])
def test_unknown_paths_are_404(refusing_daemon, path):
    daemon = refusing_daemon
    status = daemon.get(path)[0]
    assert status == 404


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "HEAD", "OPTIONS"])
def test_other_methods_are_405(refusing_daemon, method):
    daemon = refusing_daemon
    connection = daemon.connection()
    connection.request(method, "/janedoe", body=b"x" if method in ("POST", "PUT") else None)
    response = connection.getresponse()
    assert response.status == 405 and response.getheader("Allow") == "GET"
    connection.close()
    assert list(daemon.directory.iterdir()) == []


def test_ipv6_loopback_serves_tokens_or_is_a_one_line_error(
        start_daemon, run_authserver, pem_key, tmp_path):
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:  # no IPv6 on this machine: the server must say so in one line
        result = run_authserver("-k", str(pem_key), "-g", "0", "-d", str(tmp_path / "t"),
                                "-p", "0", "--bind", "::1")
        assert result.returncode == 2 and result.stderr.count("\n") == 1
        assert "cannot listen on ::1 port 0" in result.stderr
        return
    daemon = start_daemon("--bind", "::1")
    assert "Listening on http://[::1]:%d" % daemon.port in daemon.log()
    connection = http.client.HTTPConnection("::1", daemon.port, timeout=10)
    connection.request("GET", "/janedoe")
    response = connection.getresponse()
    assert response.status == 200 and Path(response.read().decode()).exists()
    connection.close()


def test_basic_auth_credentials_are_ignored(start_daemon):
    daemon = start_daemon()
    status, _headers, body = daemon.get("/janedoe", {"Authorization": "Basic Zm9vOmJhcg=="})
    assert status == 200 and Path(body).exists()


def test_absolute_form_target_is_served(start_daemon):
    daemon = start_daemon()
    answer = raw_exchange(daemon.port, b"GET http://localhost:5001/janedoe HTTP/1.1\r\n"
                          b"Host: localhost\r\nConnection: close\r\n\r\n")
    assert status_of(answer) == 200
    assert answer.split(b"\r\n\r\n", 1)[1].startswith(str(daemon.directory).encode())


def test_keep_alive_serves_many_requests_on_one_connection(start_daemon):
    daemon = start_daemon()
    connection = daemon.connection()
    paths = set()
    for _round in range(20):
        connection.request("GET", "/janedoe")
        response = connection.getresponse()
        assert response.status == 200 and response.getheader("Connection") is None
        paths.add(response.read())
    connection.close()
    assert len(paths) == 20


def test_pipelined_requests_are_answered_in_order(start_daemon):
    daemon = start_daemon()
    request = b"GET /%s HTTP/1.1\r\nHost: x\r\n\r\n"
    answer = raw_exchange(daemon.port, request % b"alice" + request % b"bob"
                          + b"GET /carol HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    bodies = [part for part in answer.split(b"HTTP/1.1 200 OK") if part]
    assert len(bodies) == 3
    assert [b"/alice." in bodies[0], b"/bob." in bodies[1], b"/carol." in bodies[2]] == [True] * 3


def test_http_1_0_closes_unless_keep_alive_asked(start_daemon):
    daemon = start_daemon()
    answer = raw_exchange(daemon.port, b"GET /janedoe HTTP/1.0\r\n\r\n")
    assert status_of(answer) == 200 and b"Connection: close" in answer


def test_oversized_request_head_is_431_and_closed(start_daemon):
    daemon = start_daemon()
    answer = raw_exchange(daemon.port, b"GET /janedoe HTTP/1.1\r\nX-Big: " + b"a" * 20000
                          + b"\r\n\r\n")
    assert status_of(answer) == 431
    assert daemon.get("/janedoe")[0] == 200


@pytest.mark.parametrize("head", [
    b"GARBAGE\r\n\r\n",
    b"GET /janedoe\r\n\r\n",
    b"GET /janedoe HTTP/2.0\r\n\r\n",
    b"GET /janedoe HTTP/1.1\r\nno colon here\r\n\r\n",
    b"GET /janedoe HTTP/1.1\r\nX: a\r\n folded\r\n\r\n",
    b"GET /janedoe HTTP/1.1\r\nContent-Length: x\r\n\r\n",
    b"GET /jane doe HTTP/1.1\r\n\r\n",
    b"GET /jan\xc3\xa9 HTTP/1.1\r\n\r\n",
])
def test_malformed_requests_are_400_and_closed(refusing_daemon, head):
    daemon = refusing_daemon
    answer = raw_exchange(daemon.port, head)
    assert status_of(answer) == 400 and b"Connection: close" in answer
    assert list(daemon.directory.iterdir()) == []


def test_slow_client_is_cut_off_while_others_are_served(start_daemon):
    daemon = start_daemon("--header-timeout", "1")
    slow = socket.create_connection(("127.0.0.1", daemon.port), timeout=10)
    slow.sendall(b"GET /janedoe HTTP/1.1\r\n")
    started = time.monotonic()
    served = 0
    while time.monotonic() - started < 0.8:
        assert daemon.get("/johndoe")[0] == 200
        served += 1
    slow.sendall(b"X-Slow: 1\r\n")  # still trickling, but the head is overdue
    assert slow.recv(100) == b""  # the server closed it
    elapsed = time.monotonic() - started
    slow.close()
    assert served >= 3 and 0.9 <= elapsed < 5
    assert 'kind="header_timeout"} 1' in daemon.get("/metrics")[2]


def test_connection_limit_closes_the_oldest_idle_connection_for_a_new_one(start_daemon):
    daemon = start_daemon("--max-connections", "2")
    holders = [daemon.connection() for _round in range(2)]
    for holder in holders:
        holder.request("GET", "/janedoe")
        assert holder.getresponse().read()
    answer = raw_exchange(daemon.port, b"GET /janedoe HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert status_of(answer) == 200  # the oldest idle holder made room
    holders[0].sock.settimeout(10)
    assert holders[0].sock.recv(100) == b""  # closed by the server, between requests
    # One slot is free again (the exchange above closed its own): nothing else is closed.
    assert "okera_authserver_connections_evicted_total 1" in daemon.get("/metrics")[2]
    holders[1].request("GET", "/janedoe")
    assert holders[1].getresponse().status == 200
    for holder in holders:
        holder.close()


@pytest.mark.slow
def test_two_hundred_parallel_clients_get_distinct_valid_tokens(start_daemon, pem_key):
    daemon = start_daemon("--disable-delete")
    answers, failures = [], []
    lock = threading.Lock()
    start_together = threading.Barrier(200)

    def client(number: int) -> None:
        connection = daemon.connection(timeout=60)
        try:
            connection.connect()
            start_together.wait(30)  # 200 connections open, then all ask at once
            for _round in range(2):
                connection.request("GET", "/user%d?format=json" % (number % 7))
                response = connection.getresponse()
                body = response.read()
                with lock:
                    (answers if response.status == 200 else failures).append(body)
        except Exception as error:  # noqa: BLE001 - every failure is counted, none hidden
            with lock:
                failures.append(repr(error).encode())
        finally:
            connection.close()

    threads = [threading.Thread(target=client, args=(number,)) for number in range(200)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert failures == []
    documents = [json.loads(body) for body in answers]
    assert len(documents) == 400
    assert len({d["path"] for d in documents}) == 400
    assert len({d["token"] for d in documents}) == 400
    assert len(daemon.token_files()) == 400
    entries = load_public_keys(public_pem(pem_key).read_bytes())
    for document in documents:
        assert Path(document["path"]).read_text() == document["token"]
        assert verify(document["token"], entries, ["RS512"]).valid
