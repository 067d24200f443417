"""Cluster access: auth option resolution, client configuration, and one-line failure messages."""
from __future__ import annotations

import base64
import datetime
import importlib
import ipaddress
import json
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
from kubernetes.client.rest import ApiException

from okera_auth.module_utils._k8s.client import (
    ClusterError, api_path, build_api_client, build_configuration, explain, request, resolve_auth_params,
)

TOKEN = "sekret-token-value-123"


def _kubeconfig(server: str, token: str = TOKEN, context: str = "sandbox") -> dict:
    return {
        "apiVersion": "v1", "kind": "Config", "current-context": context,
        "clusters": [{"name": "c", "cluster": {"server": server}},
                     {"name": "other", "cluster": {"server": "http://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {"token": token}}],
        "contexts": [{"name": context, "context": {"cluster": "c", "user": "u"}},
                     {"name": "elsewhere", "context": {"cluster": "other", "user": "u"}}],
    }


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unset_options_fall_back_to_k8s_auth_variables():
    environ = {"K8S_AUTH_CONTEXT": "env", "K8S_AUTH_HOST": "https://h", "K8S_AUTH_VERIFY_SSL": "no"}
    resolved = resolve_auth_params({"context": "given"}, environ)
    assert resolved["context"] == "given"
    assert resolved["host"] == "https://h"
    assert resolved["validate_certs"] is False


def test_explicit_host_wins_over_kubeconfig_and_sends_the_api_key(tmp_path):
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(_kubeconfig("http://127.0.0.1:9")))
    configuration = build_configuration({"host": "https://10.1.2.3:6443", "kubeconfig": str(path), "api_key": "abc"}, {})
    assert configuration.host == "https://10.1.2.3:6443"
    assert configuration.get_api_key_with_prefix("BearerToken", alias="authorization") == "Bearer abc"


def test_kubeconfig_file_and_context_are_used(tmp_path):
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(_kubeconfig("http://127.0.0.1:9")))
    assert build_configuration({"kubeconfig": str(path)}, {}).host == "http://127.0.0.1:9"
    assert build_configuration({"kubeconfig": str(path), "context": "elsewhere"}, {}).host == "http://127.0.0.1:1"


def test_kubeconfig_given_as_a_dict_and_from_the_environment(tmp_path):
    assert build_configuration({"kubeconfig": _kubeconfig("http://127.0.0.1:7")}, {}).host == "http://127.0.0.1:7"
    path = tmp_path / "kc"
    path.write_text(yaml.safe_dump(_kubeconfig("http://127.0.0.1:8")))
    assert build_configuration({}, {"K8S_AUTH_KUBECONFIG": str(path)}).host == "http://127.0.0.1:8"
    assert build_configuration({}, {"KUBECONFIG": str(path)}).host == "http://127.0.0.1:8"


def test_unknown_context_is_one_line_naming_it(tmp_path):
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(_kubeconfig("http://127.0.0.1:9")))
    with pytest.raises(ClusterError) as error:
        build_configuration({"kubeconfig": str(path), "context": "nope"}, {})
    assert "nope" in str(error.value) and "\n" not in str(error.value)


def test_missing_kubeconfig_and_missing_credentials_say_what_to_set(tmp_path, monkeypatch):
    with pytest.raises(ClusterError, match="does not exist: set kubeconfig"):
        build_configuration({"kubeconfig": str(tmp_path / "absent")}, {})
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ClusterError, match="no cluster credentials"):
        build_configuration({}, {})


def test_missing_ca_cert_file_is_reported(tmp_path):
    with pytest.raises(ClusterError, match="ca_cert .* does not exist"):
        build_configuration({"host": "https://h", "ca_cert": str(tmp_path / "ca.pem")}, {})


def test_username_and_password_become_basic_auth():
    configuration = build_configuration({"host": "https://h", "username": "ann", "password": "pw"}, {})
    assert configuration.get_api_key_with_prefix("BearerToken", alias="authorization") == "Basic " + base64.b64encode(b"ann:pw").decode()


def _api_exception(status: int, message: str) -> ApiException:
    exc = ApiException(status=status, reason="Reason")
    exc.body = json.dumps({"kind": "Status", "message": message})
    return exc


@pytest.mark.parametrize("status, expected", [
    (401, "rejected the credentials (401"),
    (403, "forbidden (403): secrets \"s\" is forbidden: User \"bob\" cannot get"),
    (404, "not found (404)"),
    (409, "conflict (409)"),
])
def test_api_statuses_become_one_line_advice(status, expected):
    error = explain(_api_exception(status, 'secrets "s" is forbidden: User "bob" cannot get resource'),
                    "https://h", "get Secret ns/s")
    assert expected in str(error) and error.status == status
    assert str(error).startswith("get Secret ns/s: ") and "\n" not in str(error)


def test_a_bearer_token_in_a_server_message_is_redacted():
    error = explain(_api_exception(500, "echo Authorization: Bearer %s" % TOKEN), "https://h", "get x")
    assert TOKEN not in str(error) and "<redacted>" in str(error)


def _list_namespaces(api_client):
    return request(api_client, "list namespaces", "GET", "/api/v1/namespaces")


def test_api_paths_quote_names():
    assert api_path("ns", "secrets", "a/b") == "/api/v1/namespaces/ns/secrets/a%2Fb"
    assert api_path("ns", "deployments", group="apps/v1") == "/apis/apps/v1/namespaces/ns/deployments"


def test_connection_refused_is_reported_without_the_token():
    api_client = build_api_client({"kubeconfig": _kubeconfig("http://127.0.0.1:%d" % _closed_port())}, {})
    with pytest.raises(ClusterError) as error:
        _list_namespaces(api_client)
    assert "connection refused" in str(error.value) and "is the cluster running" in str(error.value)
    assert TOKEN not in str(error.value)


def test_unknown_host_is_reported_as_dns():
    api_client = build_api_client({"kubeconfig": _kubeconfig("http://no-such-cluster.invalid:6443")}, {})
    with pytest.raises(ClusterError, match="cannot resolve the API server host"):
        _list_namespaces(api_client)


class _Recorder(BaseHTTPRequestHandler):
    """Answers every request with an empty NamespaceList and remembers the headers."""

    seen: list = []

    def do_GET(self):  # noqa: N802 (http.server naming)
        self.seen.append({name.lower(): value for name, value in self.headers.items()})
        body = json.dumps({"apiVersion": "v1", "kind": "NamespaceList", "metadata": {}, "items": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def recording_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Recorder.seen = []
    yield server
    server.shutdown()
    server.server_close()


def test_requests_carry_bearer_token_and_impersonation(recording_server):
    url = "http://127.0.0.1:%d" % recording_server.server_address[1]
    api_client = build_api_client({"host": url, "api_key": TOKEN, "impersonate_user": "auditor"}, {})
    _list_namespaces(api_client)
    headers = _Recorder.seen[-1]
    assert headers["authorization"] == "Bearer " + TOKEN
    assert headers["impersonate-user"] == "auditor"


def test_kubeconfig_token_is_sent_and_an_explicit_api_key_overrides_it(recording_server):
    url = "http://127.0.0.1:%d" % recording_server.server_address[1]
    _list_namespaces(build_api_client({"kubeconfig": _kubeconfig(url)}, {}))
    assert _Recorder.seen[-1]["authorization"] == "Bearer " + TOKEN
    _list_namespaces(build_api_client({"kubeconfig": _kubeconfig(url), "api_key": "other"}, {}))
    assert _Recorder.seen[-1]["authorization"] == "Bearer other"


def _self_signed(tmp_path, rsa_private_key):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(rsa_private_key.public_key()).serial_number(1)
                   .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
                   .sign(rsa_private_key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(rsa_private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    return cert_path, key_path


def test_untrusted_tls_certificate_says_to_set_ca_cert_and_ca_cert_fixes_it(tmp_path, rsa_private_key):
    cert_path, key_path = _self_signed(tmp_path, rsa_private_key)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = "https://127.0.0.1:%d" % server.server_address[1]
    try:
        with pytest.raises(ClusterError, match="TLS handshake with .* failed .*set ca_cert"):
            _list_namespaces(build_api_client({"host": url, "api_key": TOKEN}, {}))
        _list_namespaces(build_api_client({"host": url, "api_key": TOKEN, "ca_cert": str(cert_path)}, {}))
        with pytest.warns(Warning):  # urllib3 warns about unverified HTTPS, as it should
            _list_namespaces(build_api_client({"host": url, "api_key": TOKEN, "validate_certs": False}, {}))
    finally:
        server.shutdown()
        server.server_close()


# Content of a kubeconfig that must never reach a message: kubeconfigs hold tokens and keys.
MARK = "S3CR"
_marked = st.from_regex(r"S3CR[0-9a-f]{6}", fullmatch=True)
_keys = st.sampled_from(["clusters", "contexts", "users", "current-context", "name", "cluster", "context", "user",
                         "server", "token", "namespace"]) | _marked
_yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | _marked,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_keys, children, max_size=5), max_leaves=20)


def _assert_one_line_without_content(message: str) -> None:
    assert "\n" not in message and MARK not in message, message


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(config=_yaml_values)
def test_any_yaml_that_is_no_usable_kubeconfig_fails_in_one_line_without_its_content(tmp_path, config):
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    for kubeconfig in [str(path)] + ([] if isinstance(config, str) else [config]):  # a string option is a path
        with pytest.raises(ClusterError) as error:
            build_configuration({"kubeconfig": kubeconfig}, {})
        _assert_one_line_without_content(str(error.value))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(before=st.binary(max_size=60) | st.text(max_size=60).map(str.encode), marked=_marked,
       after=st.binary(max_size=60) | st.text(max_size=60).map(str.encode))
def test_any_bytes_as_a_kubeconfig_fail_in_one_line_without_their_content(tmp_path, before, marked, after):
    path = tmp_path / "kubeconfig"
    path.write_bytes(before + b": [" + marked.encode() + b"\n" + after)
    with pytest.raises(ClusterError) as error:
        build_configuration({"kubeconfig": str(path)}, {})
    _assert_one_line_without_content(str(error.value))


PEM = "-----BEGIN PRIVATE KEY-----\nMIIS3CRkeymaterial\n-----END PRIVATE KEY-----\n"


@pytest.mark.parametrize("content, expected", [
    ("a: 1\nnot: [valid S3CR", r"is not valid YAML \(line 2\)"),
    ("- S3CR1\n- S3CR2\n", r"is not a kubeconfig \(a mapping with clusters, contexts and users\)"),
    (PEM, r"is not a kubeconfig \(a mapping with clusters, contexts and users\)"),
    ("clusters: S3CR\ncontexts: []\nusers: []\n", r"is not a kubeconfig"),
    ("\xff\xfeS3CR", r"is not a kubeconfig"),
    ("a: 2024-02-30\nS3CR: 1\n", r"is not valid YAML"),
])
def test_a_kubeconfig_file_that_is_no_kubeconfig_is_named_with_what_it_is(tmp_path, content, expected):
    path = tmp_path / "kubeconfig"
    path.write_text(content)
    with pytest.raises(ClusterError, match="kubeconfig %s %s" % (path, expected)) as error:
        build_configuration({"kubeconfig": str(path)}, {})
    _assert_one_line_without_content(str(error.value))


def test_a_directory_or_a_device_as_kubeconfig_is_named_as_such(tmp_path):
    with pytest.raises(ClusterError, match="kubeconfig %s is a directory" % tmp_path):
        build_configuration({"kubeconfig": str(tmp_path)}, {})
    with pytest.raises(ClusterError, match="is not a regular file"):
        build_configuration({"kubeconfig": "/dev/null"}, {})


@pytest.mark.parametrize("inline", [["S3CR1"], "S3CR\nclusters: []", 7, {"clusters": "S3CR"}, {"users": [{"name": "S3CR"}]}])
def test_an_inline_kubeconfig_of_the_wrong_shape_is_one_line_without_its_content(inline):
    with pytest.raises(ClusterError, match=r"the inline kubeconfig is not a kubeconfig \(a mapping") as error:
        build_configuration({"kubeconfig": inline}, {})
    _assert_one_line_without_content(str(error.value))


def test_a_context_naming_a_missing_user_is_reported_without_the_file_content(tmp_path):
    config = _kubeconfig("http://127.0.0.1:9", context="S3CRctx")
    config["users"] = []
    with pytest.raises(ClusterError, match="the user of context current-context is not among its users") as error:
        build_configuration({"kubeconfig": config}, {})
    _assert_one_line_without_content(str(error.value))
    config = _kubeconfig("http://127.0.0.1:9")
    config["clusters"][0]["cluster"] = {"certificate-authority-data": 12345, "server": "https://h"}
    with pytest.raises(ClusterError, match="a value in it is of the wrong kind"):
        build_configuration({"kubeconfig": config}, {})


MODULES = {
    "k8s_secret_data": {"name": "s", "data": {"K": "a-value-to-set"}},
    "k8s_secret_data_info": {"name": "s"},
    "k8s_pod_log_info": {"name": "p"},
    "k8s_rollout_restart": {},
    "k8s_apply": {"definitions": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}]},
    "okera_rest_check": {},
    "system_token_plan": {"secret_keys": ["SYSTEM_TOKEN_0"], "secret": {"name": "secrets"}},
}


@pytest.mark.parametrize("module_name", sorted(MODULES))
def test_every_cluster_module_fails_in_one_line_on_a_kubeconfig_that_is_none(module_name, run_module, tmp_path):
    module = importlib.import_module("ansible_collections.okera.auth.plugins.modules." + module_name)
    bad = tmp_path / "kubeconfig"
    bad.write_text("users: [{name: u, user: {token: %s-token}}]\nclusters: [valid\n" % MARK)
    for kubeconfig, expected in ((str(bad), "is not valid YAML (line 3)"), (str(tmp_path), "is a directory"),
                                 ([MARK], "the inline kubeconfig is not a kubeconfig")):
        result, failed = run_module(module, dict(MODULES[module_name], kubeconfig=kubeconfig))
        assert failed and expected in result["msg"], result
        _assert_one_line_without_content(result["msg"])
        assert MARK not in json.dumps(result)
