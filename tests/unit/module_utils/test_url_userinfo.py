"""A user name or password written into a URL never reaches a message (one helper shows URLs)."""
from __future__ import annotations

import json
import socket

import pytest

from okera_auth.client.errors import ClientSettingsError
from okera_auth.client.transport import parse_url
from okera_auth.examples.myservice import DatabaseLister, ServiceSettings
from okera_auth.module_utils import metrics
from okera_auth.module_utils._http import has_userinfo, without_userinfo
from okera_auth.module_utils.errors import MetricsError, OkeraAuthError
from okera_auth.module_utils.okera_rest import RestCheckError, base_url

SECRET = "PASSWORDINURL"
REFUSED = "the URL holds a user name or password: give it without them; the check sends the token"


@pytest.mark.parametrize("url, shown", [
    ("http://user:%s@127.0.0.1:1/x" % SECRET, "http://127.0.0.1:1/x"),
    ("https://%s@okera:8083" % SECRET, "https://okera:8083"),
    ("HTTP://u:p@%s@okera/x" % SECRET, "HTTP://okera/x"),
    ("user:%s@okera:8083" % SECRET, "okera:8083"),
    ("//user:%s@okera" % SECRET, "//okera"),
    ("cannot reach http://u:%s@a/x or s3://k:%s@b" % (SECRET, SECRET), "cannot reach http://a/x or s3://b"),
])
def test_userinfo_is_found_and_left_out_of_what_is_shown(url, shown):
    assert has_userinfo(url.partition("reach ")[2] or url)
    assert without_userinfo(url) == shown


@pytest.mark.parametrize("url", ["https://okera:8083/a@b", "http://okera", "okera:8083", "http://okera/?q=a@b"])
def test_urls_without_userinfo_are_shown_as_given(url):
    assert not has_userinfo(url) and without_userinfo(url) == url


@pytest.mark.parametrize("url", ["http://user:%s@127.0.0.1:1/x" % SECRET, "ftp://u:%s@okera" % SECRET,
                                 "user:%s@okera:8083" % SECRET, "https://%s@okera/?a=1" % SECRET])
def test_the_rest_check_refuses_a_url_with_userinfo_in_one_line_without_it(url):
    with pytest.raises(RestCheckError) as refused:
        base_url(url)
    assert str(refused.value) == REFUSED


def test_okera_rest_check_fails_on_userinfo_without_showing_it(run_module):
    from ansible_collections.okera.auth.plugins.modules import okera_rest_check

    result, failed = run_module(okera_rest_check, {"url": "http://user:%s@127.0.0.1:1/x" % SECRET, "token": "a.b.c"})
    assert failed and REFUSED in result["msg"]
    # The invocation echoes the options as given (url is no secret option); nothing else shows it.
    assert SECRET not in json.dumps({key: value for key, value in result.items() if key != "invocation"})


@pytest.mark.parametrize("url", ["ftp://u:%s@gateway" % SECRET, "u:%s@gateway:9091" % SECRET])
def test_a_pushgateway_url_that_is_not_http_is_shown_without_userinfo(url):
    with pytest.raises(MetricsError) as refused:
        metrics.Pushgateway(url)
    assert SECRET not in str(refused.value)


@pytest.mark.parametrize("url", ["ftp://u:%s@127.0.0.1:6000" % SECRET, "http://u:%s@127.0.0.1:6000/x" % SECRET,
                                 "http://u:%s@127.0.0.1:notaport" % SECRET, "u:%s@127.0.0.1:6000" % SECRET])
def test_the_token_client_names_a_bad_url_without_userinfo(url):
    with pytest.raises(ClientSettingsError) as refused:
        parse_url(url)
    assert SECRET not in str(refused.value) and "127.0.0.1" in str(refused.value)


def test_the_example_service_refuses_a_rest_url_with_userinfo():
    with pytest.raises(OkeraAuthError, match="holds a user name or password") as refused:
        DatabaseLister(ServiceSettings(rest_url="https://u:%s@okera:8083" % SECRET))
    assert SECRET not in str(refused.value)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_aws_endpoint_is_named_without_userinfo():
    pytest.importorskip("boto3")
    from okera_auth.module_utils._aws.s3 import S3Error, S3Store, parse_s3_uri

    store = S3Store(endpoint_url="http://u:%s@127.0.0.1:%d" % (SECRET, _closed_port()), region="us-east-1",
                    access_key="a", secret_key="b")
    with pytest.raises(S3Error) as failed:
        store.read(parse_s3_uri("s3://bucket/key"))
    assert SECRET not in str(failed.value) and "127.0.0.1" in str(failed.value)
