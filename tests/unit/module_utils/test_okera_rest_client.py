"""The REST check's rules: where the API is (from a Service), what counts as working, what is retried."""
from __future__ import annotations

import json
import urllib.error

import pytest

from fake_clock import FakeClock
from okera_auth.module_utils.okera_rest import RestCheckError, base_url, check_cluster, service_url

TOKEN = "eyJhbGciOiJSUzUxMiJ9.eyJzdWIiOiJva2VyYV9zeXN0ZW1fdXNlciJ9.c2lnbmF0dXJl"


def _service(kind="LoadBalancer", ingress=({"ip": "203.0.113.10"},), ports=({"name": "api", "port": 8083},)):
    return {"metadata": {"name": "cdas-rest-server", "namespace": "okera"},
            "spec": {"type": kind, "ports": [dict(port) for port in ports]},
            "status": {"loadBalancer": {"ingress": [dict(entry) for entry in ingress]}}}


def test_the_url_is_the_load_balancers_ingress_and_the_service_port():
    assert service_url(_service()) == "http://203.0.113.10:8083"
    assert service_url(_service(ingress=[{"hostname": "lb.example.com"}]), "https") == "https://lb.example.com:8083"
    assert service_url(_service(ingress=[{"ip": "2001:db8::1"}])) == "http://[2001:db8::1]:8083"
    two = _service(ports=[{"name": "ui", "port": 80}, {"name": "api", "port": 8083}])
    assert service_url(two) == "http://203.0.113.10:80"
    assert service_url(two, port="api") == service_url(two, port="8083") == "http://203.0.113.10:8083"


@pytest.mark.parametrize("service, port, message", [
    (_service(kind="ClusterIP"), None, "is of type ClusterIP, not LoadBalancer"),
    (_service(ingress=[]), None, "has no load balancer ingress yet"),
    (_service(ports=[]), None, "has no ports"),
    (_service(), "web", "has no port named or numbered web (it has: api/8083)"),
])
def test_a_service_that_gives_no_url_says_why(service, port, message):
    with pytest.raises(RestCheckError) as failed:
        service_url(service, port=port)
    assert "Service okera/cdas-rest-server" in str(failed.value) and message in str(failed.value)


@pytest.mark.parametrize("url", ["okera:8083", "ftp://okera", "http://", "http://okera:99999", "http://okera/?a=1"])
def test_a_given_url_must_be_a_base_url(url):
    with pytest.raises(RestCheckError):
        base_url(url)


def test_base_url_drops_the_trailing_slash():
    assert base_url(" https://okera.example.com:8083/ ") == "https://okera.example.com:8083"


class FakeCluster:
    """Answers requests from a table of (path -> list of (status, body)), recording what was sent."""

    def __init__(self, answers):
        self.answers = {path: list(replies) for path, replies in answers.items()}
        self.sent = []

    def __call__(self, request, timeout):
        path = request.full_url.split("8083", 1)[1]
        self.sent.append((path, request.get_header("Authorization")))
        replies = self.answers[path]
        reply = replies.pop(0) if len(replies) > 1 else replies[0]
        if isinstance(reply, Exception):
            raise reply
        status, body = reply
        return status, (body if isinstance(body, bytes) else json.dumps(body).encode())


GOOD = {"/api/info": [(200, {"version": "2.19.0", "is_jwt_enabled": True})],
        "/api/get-user": [(200, {"user": "okera_system_user"})],
        "/api/databases": [(200, ["default", "okera_sample", "okera_system"])]}


def _check(cluster, clock=None, **options):
    clock = clock or FakeClock()
    options = dict({"subject": "okera_system_user", "wait_timeout": 10, "sleep": 2}, **options)
    return check_cluster("http://okera:8083", TOKEN, opener=cluster, clock=clock, sleeper=clock.sleep, **options)


def test_a_working_cluster_answers_who_and_which_databases():
    cluster = FakeCluster(GOOD)
    check = _check(cluster)
    assert check.as_dict() == {"url": "http://okera:8083", "version": "2.19.0", "is_jwt_enabled": True,
                               "user": "okera_system_user", "databases": ["default", "okera_sample", "okera_system"],
                               "database_count": 3, "attempts": 1, "elapsed": 0.0}
    assert cluster.sent == [("/api/info", None), ("/api/get-user", "Bearer " + TOKEN),
                            ("/api/databases", "Bearer " + TOKEN)]


def test_databases_may_come_as_an_object():
    answers = dict(GOOD, **{"/api/databases": [(200, {"databases": [{"name": "default"}]})]})
    assert _check(FakeCluster(answers)).databases == ["default"]


def test_503_and_refused_connections_are_retried_until_the_cluster_answers():
    answers = dict(GOOD, **{"/api/info": [urllib.error.URLError(ConnectionRefusedError(111, "refused")),
                                          (503, {"code": 503, "message": "no pod is ready"}),
                                          (200, {"is_jwt_enabled": True})]})
    clock = FakeClock()
    check = _check(FakeCluster(answers), clock)
    assert check.attempts == 3 and clock.slept == [0.25, 0.25] and check.elapsed == 0.5 and check.version is None


def test_retrying_stops_at_the_deadline_with_the_last_problem():
    answers = dict(GOOD, **{"/api/databases": [(503, {"code": 503, "message": "no cdas-rest-server pod is ready"})]})
    clock = FakeClock()
    with pytest.raises(RestCheckError) as failed:
        _check(FakeCluster(answers), clock, wait_timeout=5)
    assert clock.slept == [0.25, 0.25, 0.5, 1, 2, 1]
    assert str(failed.value) == ("the Okera REST API at http://okera:8083: /api/databases answered 503: "
                                 "no cdas-rest-server pod is ready (7 attempts in 5 s)")


def test_a_refused_token_fails_at_once_without_the_token_in_the_message():
    echo = "The token %s could not be authenticated: Bearer %s" % (TOKEN, TOKEN)
    answers = dict(GOOD, **{"/api/get-user": [(401, {"code": 401, "message": echo})]})
    cluster = FakeCluster(answers)
    with pytest.raises(RestCheckError) as failed:
        _check(cluster)
    assert len(cluster.sent) == 2, "no retry"
    assert "/api/get-user answered 401: The token <token> could not be authenticated" in str(failed.value)
    assert TOKEN not in str(failed.value) and TOKEN.split(".")[2] not in str(failed.value)


@pytest.mark.parametrize("path, reply, message", [
    ("/api/info", (200, {"is_jwt_enabled": False}), "is_jwt_enabled false"),
    ("/api/info", (200, b"<html>"), "/api/info answered 200 without JSON"),
    ("/api/get-user", (200, {"user": "someone_else"}), "answered the user 'someone_else', not 'okera_system_user'"),
    ("/api/databases", (200, {"tables": []}), "did not answer a list of databases"),
    ("/api/databases", (403, b"forbidden"), "/api/databases answered 403: forbidden"),
])
def test_answers_that_are_not_a_working_cluster_fail_with_the_reason(path, reply, message):
    with pytest.raises(RestCheckError) as failed:
        _check(FakeCluster(dict(GOOD, **{path: [reply]})))
    assert message in str(failed.value)


def test_no_token_is_an_error():
    with pytest.raises(RestCheckError):
        check_cluster("http://okera:8083", " ", opener=FakeCluster(GOOD))
