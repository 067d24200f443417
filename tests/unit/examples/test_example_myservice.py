"""The tutorial's service, ported: its pure parts (credentials, the REST answer, settings)."""
from __future__ import annotations

import base64

import bcrypt
import pytest

from okera_auth.examples.myservice import (
    DatabaseLister, ServiceSettings, basic_credentials, database_names, load_users, parse_settings,
)
from okera_auth.module_utils.errors import OkeraAuthError


def _basic(text: bytes) -> str:
    return "Basic " + base64.b64encode(text).decode()


def test_basic_credentials_are_what_curl_sends_for_a_url_with_userinfo():
    # curl http://test:test@localhost:5010 sends Authorization: Basic base64("test:test")
    assert basic_credentials(_basic(b"test:test")) == ("test", "test")
    assert basic_credentials(_basic(b"jane:pa:ss")) == ("jane", "pa:ss")
    assert basic_credentials("basic " + base64.b64encode(b"a:").decode()) == ("a", "")


@pytest.mark.parametrize("header", [None, "", "Bearer abc", "Basic !!!", _basic(b"no-colon"), _basic(b":pw"),
                                    "Basic " + base64.b64encode("é:x".encode("latin-1")).decode()])
def test_anything_else_is_no_credentials(header):
    assert basic_credentials(header) is None


@pytest.mark.parametrize("document", [
    ["default", "okera_sample"],
    {"databases": ["default", "okera_sample"]},
    {"databases": [{"name": "default"}, {"name": "okera_sample", "description": "x"}]},
    [{"name": "default"}, {"name": "okera_sample"}],
])
def test_database_names_from_the_shapes_a_rest_api_answers(document):
    assert database_names(document) == ["default", "okera_sample"]


@pytest.mark.parametrize("document", [{}, {"databases": "default"}, [1], [{"id": 3}], "default", None])
def test_other_answers_are_refused(document):
    with pytest.raises(ValueError):
        database_names(document)


def test_settings_come_from_flags_then_environment_then_defaults():
    assert parse_settings([], {}) == ServiceSettings()
    environ = {"MYSERVICE_PORT": "6010", "OKERA_REST_URL": "https://okera:8083", "MYSERVICE_BIND": "0.0.0.0"}
    settings = parse_settings([], environ)
    assert (settings.port, settings.rest_url, settings.bind) == (6010, "https://okera:8083", "0.0.0.0")
    assert parse_settings(["--port", "7010"], environ).port == 7010


@pytest.mark.parametrize("url, message", [("", "no REST API URL given"), ("okera:8083", "must start with http")])
def test_a_missing_or_bad_rest_url_is_one_line(url, message):
    with pytest.raises(OkeraAuthError, match=message):
        DatabaseLister(ServiceSettings(rest_url=url))


def test_databases_url_is_the_rest_api_path():
    assert DatabaseLister(ServiceSettings(rest_url="https://okera:8083/")).url == "https://okera:8083/api/databases"


def test_users_file_takes_bcrypt_lines_only(tmp_path):
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(4)).decode()
    good = tmp_path / "good"
    good.write_text("# comment\n\ntest:%s\nother:%s\n" % (hashed, hashed.replace("$2b$", "$2y$", 1)))
    assert set(load_users(str(good))) == {"test", "other"}
    bad = tmp_path / "bad"
    bad.write_text("test:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n")
    with pytest.raises(OkeraAuthError, match="line 1: not user:bcrypt-hash"):
        load_users(str(bad))


@pytest.mark.parametrize("timeout", ["0", "-1", "nan", "inf", "1e30"])
def test_a_timeout_the_client_cannot_use_is_refused_at_start(timeout):
    with pytest.raises(OkeraAuthError, match="is not a number of seconds above 0"):
        parse_settings(["--timeout", timeout, "--rest-url", "http://127.0.0.1:8083"], {})
