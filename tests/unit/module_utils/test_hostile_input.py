"""Hostile tokens and keys: every answer is a clean verdict or a one-line error of ours.

Tokens come from files, Secrets and requests that nobody vouches for; keys from configuration
that may hold the wrong thing. Whatever they hold, decoding, verifying, reporting and the
filters answer with a value, an invalid verdict with its reason, or a one-line error of the
library that never repeats a key: no traceback, no unbounded work, no echo of huge input.
"""
from __future__ import annotations

import base64
import json
import math

import pytest
from ansible.errors import AnsibleFilterError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from okera_auth.module_utils import keys, tokens
from okera_auth.module_utils.errors import ClaimsError, KeyLoadError, TokenFormatError

FAR_FUTURE = 4_000_000_000  # 2096: a real expiry that is never the problem in these tests

# Date values that are not RFC 7519 NumericDates, as JSON text: what Python's json makes of
# NaN/Infinity literals, numbers outside any calendar, and the wrong types.
HOSTILE_DATES = ["1e300", "-1e300", "NaN", "Infinity", "-Infinity", "1" + "0" * 400,
                 "-1" + "0" * 400, '"9999999999"', '"1800000000"', "true", "false", "null",
                 "[]", "{}", "[1800000000]"]

_SETTINGS = settings(max_examples=60, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])

# Any JSON value, including what json reads from NaN/Infinity literals and ints of any size.
json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers(min_value=-10 ** 400, max_value=10 ** 400)
    | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children,
                                                                      max_size=4),
    max_leaves=20)


def _short(literal: str) -> str:
    return literal if len(literal) < 16 else literal[:8] + "..."


def _segment(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _signed(private_key, payload_json: str, algorithm: str = "EdDSA") -> str:
    """A token whose payload is exactly ``payload_json`` (any text), truly signed by the key."""
    signer = tokens.Signer(private_key, algorithm)
    signing_input = _segment(json.dumps(signer.header).encode()) + "." + _segment(payload_json.encode())
    signature = signer.signature(signing_input.encode("ascii"))
    return signing_input + "." + _segment(signature)


def _entries(private_key):
    return keys.load_public_keys(keys.public_key_pem(private_key.public_key()))


def _one_line(text: str) -> bool:
    return bool(text) and "\n" not in text and "\r" not in text


def _nested(levels: int) -> str:
    return "[" * levels + "]" * levels


@pytest.fixture(scope="module")
def filters():
    from ansible_collections.okera.auth.plugins.filter.jwt import FilterModule
    return FilterModule().filters()


# --- Dates: exp, nbf and iat must be finite JSON numbers within the calendar ------------------

@pytest.mark.parametrize("name", tokens.NUMERIC_DATE_CLAIMS)
@pytest.mark.parametrize("literal", HOSTILE_DATES, ids=_short)
def test_hostile_numeric_date_is_invalid_with_the_claim_named(ed25519_private_key, name, literal):
    claims = {"sub": "okera_system_user", "exp": FAR_FUTURE}
    payload = json.dumps(claims)[:-1] + ', "%s": %s}' % (name, literal)
    token = _signed(ed25519_private_key, payload)
    result = tokens.verify(token, _entries(ed25519_private_key), ["EdDSA"])
    assert result.valid is False
    assert "'%s'" % name in result.reason and _one_line(result.reason)


@pytest.mark.parametrize("literal", HOSTILE_DATES, ids=_short)
def test_hostile_exp_reports_no_expiry_and_no_error(ed25519_private_key, filters, literal):
    token = _signed(ed25519_private_key, '{"sub": "a", "exp": %s, "nbf": %s, "iat": %s}'
                    % (literal, literal, literal))
    claims = tokens.decode_unverified(token).claims
    assert tokens.expiry_facts(claims) == {"expires_at": None, "expires_in": None, "expired": None}
    summary = tokens.token_summary(token)
    assert "malformed" not in summary and set(summary["claims"]) == {"sub", "exp", "nbf", "iat"}
    assert filters["jwt_claims"](token).keys() == claims.keys()
    with pytest.raises(AnsibleFilterError, match="no numeric exp") as raised:
        filters["jwt_expires_in"](token)
    assert _one_line(str(raised.value))


@pytest.mark.parametrize("literal", HOSTILE_DATES, ids=_short)
def test_hostile_date_in_kept_token_is_a_renewal_reason(rsa_private_key, literal):
    signer = tokens.Signer(rsa_private_key)
    spec = tokens.TokenSpec(subject="okera_system_user")
    token = _signed(rsa_private_key, '{"sub": "okera_system_user", "exp": %s}' % literal, "RS512")
    reason = tokens.renewal_reason(token, signer, spec, renew_before=3600)
    assert reason and "'exp'" in reason and _one_line(reason)


def test_text_exp_is_refused_though_it_reads_as_a_number(ed25519_private_key):
    """PyJWT takes int("9999999999"): a text exp would verify and never be shown to expire."""
    token = _signed(ed25519_private_key, '{"sub": "a", "exp": "9999999999"}')
    result = tokens.verify(token, _entries(ed25519_private_key), ["EdDSA"])
    assert result.valid is False and "'exp'" in result.reason and "NumericDate" in result.reason
    assert tokens.expiry_facts(result.claims)["expires_at"] is None


@pytest.mark.parametrize("epoch, text", [
    (253402300799, "9999-12-31T23:59:59Z"),
    (-62135596800, "0001-01-01T00:00:00Z"),
    (0, "1970-01-01T00:00:00Z"),
    (1800000000.9, "2027-01-15T08:00:00Z"),
])
def test_iso8601_spans_the_whole_calendar(epoch, text):
    assert tokens.iso8601(epoch) == text
    assert tokens.expiry_facts({"exp": epoch}, now=0)["expires_at"] == text


@pytest.mark.parametrize("epoch", [1e300, -1e300, math.nan, math.inf, -math.inf, 10 ** 400, 10 ** 5000,
                                   253402300800, -62135596801, True, "1800000000", None],
                         ids=lambda epoch: _short(str(epoch)) if isinstance(epoch, float) else type(epoch).__name__)
def test_iso8601_refuses_what_is_no_time_in_one_line(epoch):
    with pytest.raises(ClaimsError) as raised:
        tokens.iso8601(epoch)
    assert _one_line(str(raised.value))


@given(st.integers(min_value=-62135596800, max_value=253402300799))
def test_iso8601_round_trips_through_parse_time(epoch):
    assert tokens.parse_time(tokens.iso8601(epoch)) == epoch


@given(json_values)
def test_expiry_facts_answer_for_any_exp(exp):
    facts = tokens.expiry_facts({"exp": exp}, now=1_800_000_000)
    if tokens.is_numeric_date(exp):
        assert facts["expires_in"] == int(exp - 1_800_000_000) and facts["expires_at"].endswith("Z")
    else:
        assert facts == {"expires_at": None, "expires_in": None, "expired": None}


# Real times, times outside the calendar, and what passes for a number only after int().
dates = st.one_of(st.integers(min_value=0, max_value=2 * FAR_FUTURE), st.floats(),
                  st.integers(min_value=-10 ** 400, max_value=10 ** 400),
                  st.integers(min_value=0, max_value=2 * FAR_FUTURE).map(str), json_values)


SIGNED_CLAIMS = st.fixed_dictionaries({"exp": dates}, optional={
    "nbf": dates, "iat": dates, "sub": json_values | st.just("okera_system_user"),
    "iss": json_values | st.just("prod"), "aud": json_values | st.just("okera"),
    "jti": json_values, "groups": json_values})
EXPECTED_CLAIMS = st.fixed_dictionaries({}, optional={
    "issuer": st.just("prod"), "audience": st.just(["okera"]), "subject": st.just("okera_system_user")})


@_SETTINGS
@given(SIGNED_CLAIMS, EXPECTED_CLAIMS)
def test_verify_gives_a_verdict_for_any_signed_claims(ed25519_private_key, claims, expected):
    token = _signed(ed25519_private_key, json.dumps(claims))
    result = tokens.verify(token, _entries(ed25519_private_key), ["EdDSA"], **expected)
    assert result.valid is False or all(tokens.is_numeric_date(claims[name])
                                        for name in tokens.NUMERIC_DATE_CLAIMS if name in claims)
    assert result.valid or _one_line(result.reason)


@pytest.mark.parametrize("field, value", [("expires_at", 10 ** 20), ("expires_at", -10 ** 20),
                                          ("ttl", 10 ** 20), ("not_before", -10 ** 20)])
def test_minting_refuses_times_that_verify_would_refuse(ed25519_private_key, field, value):
    spec = tokens.TokenSpec(subject="a", **{field: value})
    with pytest.raises(ClaimsError, match="years 1 to 9999"):
        tokens.mint(tokens.Signer(ed25519_private_key, "EdDSA"), spec, now=1_800_000_000)


# --- Bounded work: size and nesting are checked before parsing --------------------------------

def test_deeply_nested_claim_is_a_format_error_not_a_recursion_error(ed25519_private_key, filters):
    # 20,000 levels fit in the size bound; json alone would raise RecursionError on them.
    token = _signed(ed25519_private_key, '{"sub": "a", "exp": %d, "c": %s}'
                    % (FAR_FUTURE, _nested(20_000)))
    assert len(token) <= tokens.MAX_TOKEN_SIZE
    for read in (tokens.decode_unverified,
                 lambda t: tokens.verify(t, _entries(ed25519_private_key), ["EdDSA"])):
        with pytest.raises(TokenFormatError, match="nests JSON deeper than 32 levels"):
            read(token)
    with pytest.raises(AnsibleFilterError, match="nests JSON deeper"):
        filters["jwt_claims"](token)
    assert "nests JSON deeper" in tokens.token_summary(token)["malformed"]


def test_deeply_nested_header_is_a_format_error():
    token = _segment(('{"alg": "RS512", "x": %s}' % _nested(20_000)).encode()) + ".e30.c2ln"
    with pytest.raises(TokenFormatError, match="header nests JSON deeper"):
        tokens.decode_unverified(token)


def test_hundred_thousand_nested_lists_are_refused_by_size(ed25519_private_key):
    token = _signed(ed25519_private_key, '{"sub": "a", "c": %s}' % _nested(100_000))
    with pytest.raises(TokenFormatError, match="characters long") as raised:
        tokens.decode_unverified(token)
    assert _one_line(str(raised.value))


def test_nesting_up_to_the_bound_is_read_and_brackets_in_texts_do_not_count(ed25519_private_key):
    deepest = "[" * (tokens.MAX_JSON_DEPTH - 1) + "]" * (tokens.MAX_JSON_DEPTH - 1)  # + the object
    token = _signed(ed25519_private_key, json.dumps({"sub": "a", "exp": FAR_FUTURE, "deep": json.loads(deepest),
                                                     "text": "[{" * 500 + '"\\' * 50}))
    result = tokens.verify(token, _entries(ed25519_private_key), ["EdDSA"])
    assert result.valid and result.claims["text"].startswith("[{[{")
    one_more = _signed(ed25519_private_key, '{"sub": "a", "deep": [%s]}' % deepest)
    with pytest.raises(TokenFormatError, match="nests"):
        tokens.decode_unverified(one_more)


def _depth(value) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


@given(st.recursive(st.text(alphabet='[]{}"\\ ab'), lambda children: st.lists(children, max_size=3)
                    | st.dictionaries(st.text(alphabet='[]{}"\\ ab', max_size=4), children, max_size=3),
                    max_leaves=20),
       st.integers(min_value=0, max_value=2 * tokens.MAX_JSON_DEPTH))
def test_nesting_bound_measures_json_as_the_parser_does(value, levels):
    for level in range(levels):
        value = [value] if level % 2 else {"[{": value}
    payload = {"v": value}
    token = _segment(b'{"alg":"EdDSA"}') + "." + _segment(json.dumps(payload).encode()) + ".c2ln"
    if _depth(payload) <= tokens.MAX_JSON_DEPTH:
        assert tokens.decode_unverified(token).claims == payload
    else:
        with pytest.raises(TokenFormatError, match="nests"):
            tokens.decode_unverified(token)


@pytest.mark.parametrize("as_bytes", [False, True])
def test_oversize_token_is_refused_before_decoding_without_echo(ed25519_private_key, filters, as_bytes):
    padding = "p" * (10 * 1024 * 1024)  # 10 MiB of claims: a valid token in every other way
    token = _signed(ed25519_private_key, json.dumps({"sub": "a", "exp": FAR_FUTURE, "pad": padding}))
    given_token = token.encode("ascii") if as_bytes else token
    for read in (tokens.decode_unverified,
                 lambda t: tokens.verify(t, _entries(ed25519_private_key), ["EdDSA"])):
        with pytest.raises(TokenFormatError, match="at most %d are read" % tokens.MAX_TOKEN_SIZE) as raised:
            read(given_token)
        assert _one_line(str(raised.value)) and len(str(raised.value)) < 200
    assert len(json.dumps(tokens.token_summary(token))) < 300
    with pytest.raises(AnsibleFilterError, match="characters long"):
        filters["jwt_header"](given_token)


def test_token_at_the_size_bound_is_still_read(ed25519_private_key):
    base = _signed(ed25519_private_key, json.dumps({"sub": "a", "exp": FAR_FUTURE, "pad": ""}))
    # Every 3 bytes of padding are 4 base64url characters.
    pad = "p" * ((tokens.MAX_TOKEN_SIZE - len(base)) * 3 // 4)
    token = _signed(ed25519_private_key, json.dumps({"sub": "a", "exp": FAR_FUTURE, "pad": pad}))
    assert tokens.MAX_TOKEN_SIZE - 4 <= len(token) <= tokens.MAX_TOKEN_SIZE
    assert tokens.verify(token, _entries(ed25519_private_key), ["EdDSA"]).valid


@given(st.one_of(st.text(), st.binary(),
                 st.lists(st.one_of(st.text(), st.binary().map(_segment),
                                    json_values.map(lambda v: _segment(json.dumps(v).encode()))),
                          min_size=3, max_size=3).map(".".join)))
def test_decode_answers_or_raises_one_line_for_any_input(token):
    try:
        decoded = tokens.decode_unverified(token)
    except TokenFormatError as error:
        assert _one_line(str(error))
    else:
        assert isinstance(decoded.header, dict) and isinstance(decoded.claims, dict)
        tokens.expiry_facts(decoded.claims)
    tokens.token_summary(token if isinstance(token, str) else token.decode("latin-1"))


# --- Keys: JWKs that are symmetric, malformed or hostile are refused in one line --------------

SECRET = "s3cr3t-k3y-m4t3r14l-DO-NOT-ECHO"


def _key_error(text) -> str:
    with pytest.raises(KeyLoadError) as raised:
        keys.load_public_keys(text)
    message = str(raised.value)
    assert _one_line(message) and SECRET not in message
    return message


@pytest.mark.parametrize("document", [
    {"kty": "oct", "k": SECRET},  # not even base64url: PyJWT would raise InvalidKeyError
    {"kty": "oct", "k": base64.urlsafe_b64encode(SECRET.encode()).decode()},
    {"keys": [{"kty": "oct", "k": SECRET, "kid": "shared"}]},
])
def test_symmetric_jwk_is_refused_without_repeating_the_secret(document):
    message = _key_error(json.dumps(document))
    assert "symmetric (oct)" in message


@pytest.mark.parametrize("document, words", [
    ({"kty": "RSA", "e": "AQAB", "k": SECRET}, "not a valid RSA public key"),
    ({"kty": "RSA", "n": SECRET + "AA", "e": "AQAB"}, "not a valid RSA public key"),  # 33 chars: bad base64
    ({"kty": "RSA", "n": 12345, "e": "AQAB", "d": SECRET}, "not a valid RSA public key"),
    ({"kty": "RSA", "n": "AQAB", "e": "AQAB", "alg": ["RS256"], "x": SECRET}, "not a valid RSA"),
    ({"kty": "RSA", "n": "AQAB", "e": "AQAB", "alg": "HS256", "x": SECRET}, "not a valid RSA"),
    ({"kty": "EC", "crv": "P-256", "x": SECRET, "y": SECRET}, "not a valid EC public key"),
    ({"kty": "EC", "crv": SECRET, "x": "AAAA", "y": "AAAA"}, "not a valid EC public key"),
    ({"kty": "OKP", "crv": "X25519", "x": SECRET}, "not a valid OKP public key"),
    ({"kty": SECRET}, "no usable kty"),
    ({"kty": ["RSA"], "n": SECRET}, "no usable kty"),
    ({"kty": {"RSA": SECRET}}, "no usable kty"),
    ({"k": SECRET}, "no usable kty"),
    ({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
      "kid": [SECRET]}, "kid that is not a text"),
    ({"keys": {"kty": "oct", "k": SECRET}}, '"keys" member is not a list'),
    ({"keys": SECRET}, '"keys" member is not a list'),
    ({"keys": []}, "has no keys"),
    ({"keys": [SECRET]}, "not a JSON object"),
])
def test_malformed_jwk_is_refused_in_one_line_without_key_text(document, words):
    assert words in _key_error(json.dumps(document))


def test_deeply_nested_jwks_is_refused_in_one_line():
    assert "does not parse" in _key_error('{"keys": %s}' % _nested(100_000))


@_SETTINGS
@given(st.dictionaries(
    st.sampled_from(("kty", "n", "e", "crv", "x", "y", "k", "d", "alg", "kid", "use", "keys")),
    st.one_of(st.sampled_from(("RSA", "EC", "OKP", "oct", "P-256", "Ed25519", "RS256", "HS256",
                               "AQAB", SECRET, "!!" + SECRET)),
              json_values.map(lambda value: [SECRET, value])),
    max_size=7))
def test_any_jwk_loads_or_is_refused_without_key_text(document):
    try:
        entries = keys.load_public_keys(json.dumps(document))
    except KeyLoadError as error:
        assert _one_line(str(error)) and SECRET not in str(error)
    else:
        assert all(isinstance(entry.kid, str) for entry in entries)


@_SETTINGS
@given(st.sampled_from(("-----BEGIN PUBLIC KEY-----\n%s\n-----END PUBLIC KEY-----",
                        "-----BEGIN CERTIFICATE-----\n%s\n-----END CERTIFICATE-----",
                        "ssh-rsa %s", "ssh-ed25519 %s", "{%s}", "%s")),
       st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=", max_size=80))
def test_any_key_text_loads_or_is_refused_without_echo(form, noise):
    text = form % (noise + SECRET.replace("-", "") + noise)
    try:
        keys.load_public_keys(text)
    except KeyLoadError as error:
        assert _one_line(str(error)) and SECRET.replace("-", "") not in str(error)


def test_private_key_given_as_public_key_is_refused_without_key_text(rsa_key_pem):
    message = _key_error(rsa_key_pem.decode())
    assert "private key" in message
    body = b"".join(rsa_key_pem.splitlines()[1:-1]).decode()
    assert not any(body[start:start + 16] in message for start in range(0, len(body) - 16, 16))
