"""Every filter answers or raises one AnsibleFilterError line for any input: wrong types, NaN, huge
numbers and texts, other scripts' digits, newlines, NUL, Jinja, names the API server would refuse;
never a raw Python exception, and never the text of a token given by mistake."""
from __future__ import annotations

import re

import pytest
from hypothesis import example, given, settings, strategies as st

from okera_auth.module_utils import tokens

TOKEN_TEXT = "eyJhbGciOiJSUzUxMiJ9.eyJzdWIiOiJva2VyYV9zeXN0ZW1fdXNlciJ9.c2lnbmF0dXJlLWJ5dGVzLWhlcmU"
JINJA = "{{ lookup('pipe','id') }}"
# Enough examples to meet every kind of value, few enough to cost about a second in all.
CHEAP = settings(max_examples=60, deadline=None)

# What a variable can hold after YAML, JSON or a template: any of these, nested.
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(), st.binary(),
                    st.sampled_from([TOKEN_TEXT, JINJA, "9" * 5000, "²", "١٢d", "1e309s", "-5d", "NaN",
                                     "99999999999999999999d", "24h\x00", "24h\nx"]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=6)


@pytest.fixture(scope="module")
def filters():
    from ansible_collections.okera.auth.plugins.filter.duration import FilterModule as Duration
    from ansible_collections.okera.auth.plugins.filter.jwt import FilterModule as Jwt
    from ansible_collections.okera.auth.plugins.filter.rbac import FilterModule as Rbac
    from ansible_collections.okera.auth.plugins.filter.shown import FilterModule as Shown
    return {**Duration().filters(), **Jwt().filters(), **Rbac().filters(), **Shown().filters()}


def _answer_or_one_line(call, name):
    """call()'s answer, or None after checking that it raised one AnsibleFilterError line."""
    from ansible.errors import AnsibleFilterError
    try:
        return call()
    except AnsibleFilterError as error:
        message = str(error)
        assert message.startswith(name + ":") or message.startswith(name + " ")
        assert "\n" not in message and "\r" not in message and "\x00" not in message
        assert TOKEN_TEXT not in message and "Traceback" not in message
        return None


@CHEAP
@given(values)
@example(float("nan")).via("NaN")
@example(float("inf")).via("an infinity")
@example(10 ** 400).via("a number of 400 digits")
@example("9" * 5000).via("more digits than int() reads")
@example("²").via("a superscript, which str.isdigit takes")
@example("99999999999999999999d").via("a duration past any date")
@example(TOKEN_TEXT).via("a token in the wrong variable")
def test_duration_seconds_is_a_positive_bounded_int_or_one_line(filters, value):
    seconds = _answer_or_one_line(lambda: filters["duration_seconds"](value), "duration_seconds")
    if seconds is not None:
        assert type(seconds) is int and 0 < seconds <= tokens.MAX_DURATION  # pylint: disable=unidiomatic-typecheck  # bool is no answer


@pytest.mark.parametrize("text, seconds", [("1h30m", 5400), (" 7D ", 7 * 86400), (3600.0, 3600),
                                           ("36500d", tokens.MAX_DURATION)])
def test_duration_seconds_reads_what_the_roles_write(filters, text, seconds):
    assert filters["duration_seconds"](text) == seconds


@pytest.mark.parametrize("name", ["jwt_claims", "jwt_header", "jwt_expires_in"])
@CHEAP
@given(value=values)
def test_jwt_filters_answer_or_raise_one_line(filters, name, value):
    _answer_or_one_line(lambda: filters[name](value), name)


_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
names = st.one_of(values, st.from_regex(_SUBDOMAIN, fullmatch=True),
                  st.sampled_from(["okera", "secrets", "../etc", "Okera", "a/b", "a\nb", "-a", "a" * 64, JINJA]))


@CHEAP
@given(namespace=names, secret_name=names, config_secret_name=names, restart_namespace=names,
       restart_kinds=st.one_of(values, st.lists(st.sampled_from(["Deployment", "StatefulSet", "DaemonSet", "Pod"]))),
       restart_names=st.one_of(values, st.lists(names, max_size=3)), rest_service=names)
@example(namespace=["okera"], secret_name="secrets", config_secret_name=None, restart_namespace=None,
         restart_kinds=["Deployment"], restart_names=[], rest_service=None).via("a list for a name")
@example(namespace="okera", secret_name="secrets", config_secret_name=None, restart_namespace=None,
         restart_kinds=5, restart_names=[], rest_service=None).via("a number for a list")
@example(namespace="okera", secret_name="secrets", config_secret_name=None, restart_namespace=None,
         restart_kinds=[{"kind": "Deployment"}], restart_names=[], rest_service=None).via("a mapping for a kind")
@example(namespace="../okera", secret_name="secrets", config_secret_name=None, restart_namespace=None,
         restart_kinds=[], restart_names=["a/../b"], rest_service=None).via("path traversal")
def test_rotation_rbac_rules_name_only_what_kubernetes_accepts_or_raise_one_line(
        filters, namespace, secret_name, config_secret_name, restart_namespace, restart_kinds, restart_names,
        rest_service):
    entries = _answer_or_one_line(lambda: filters["rotation_rbac_rules"](
        namespace, secret_name, config_secret_name=config_secret_name, restart_namespace=restart_namespace,
        restart_kinds=restart_kinds, restart_names=restart_names, rest_service=rest_service), "rotation_rbac_rules")
    for entry in entries or ():
        assert len(entry["namespace"]) <= 63 and _LABEL.fullmatch(entry["namespace"])
        for rule in entry["rules"]:
            assert all(len(name) <= 253 and _SUBDOMAIN.fullmatch(name) for name in rule.get("resourceNames", ()))


def test_duration_seconds_names_the_variable_it_was_given(filters):
    from ansible.errors import AnsibleFilterError
    with pytest.raises(AnsibleFilterError, match=r"^duration_seconds: system_token_ttl: duration 'soon' is not understood"):
        filters["duration_seconds"]("soon", "system_token_ttl")


PEM = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIOkwkRxqu6nD6sFoiUmBvQ9kZsJ6nKLmXGkCDgN8qOjX\n-----END PRIVATE KEY-----"


@CHEAP
@given(values)
@example(PEM).via("a key pasted into a path")
@example(10 ** 5000).via("an int with no printable form")
@example("token-client\nx").via("a name with a newline")
def test_shown_is_one_line_without_key_or_token_text(filters, value):
    text = filters["shown"](value)
    assert isinstance(text, str) and text and "\n" not in text and "\r" not in text
    assert TOKEN_TEXT not in text and "BEGIN" not in text and "MC4CAQAw" not in text


@pytest.mark.parametrize("value, text", [("/etc/okera/key.pem", "'/etc/okera/key.pem'"), (70000, "70000"),
                                         (PEM, "(a value of %d characters, not shown)" % len(PEM))])
def test_shown_quotes_what_may_be_shown(filters, value, text):
    assert filters["shown"](value) == text
