"""Token rules: durations, claims, minting (checked by openssl too), verification, renewal."""
from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from okera_auth.module_utils import keys, tokens
from okera_auth.module_utils.errors import AlgorithmError, ClaimsError, TokenFormatError

NOW = 1_800_000_000


def _b64(value) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _entries(*private_keys):
    return [keys.PublicKeyEntry(key.public_key(), keys.jwk_thumbprint(key.public_key()))
            for key in private_keys]


@pytest.fixture(scope="module")
def ec_keys():
    return {"ES256": ec.generate_private_key(ec.SECP256R1()),
            "ES384": ec.generate_private_key(ec.SECP384R1()),
            "ES512": ec.generate_private_key(ec.SECP521R1())}


@pytest.fixture
def signer(rsa_private_key):
    return tokens.Signer(rsa_private_key, "rsa512")


@pytest.mark.parametrize("text, seconds", [
    ("30d", 30 * 86400), ("24h", 86400), ("90m", 5400), ("45s", 45), ("1h30m", 5400),
    ("2w", 14 * 86400), ("3600", 3600), (600, 600), (" 7D ", 7 * 86400),
])
def test_durations_parse(text, seconds):
    assert tokens.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "tomorrow", "10y", "-5", "0", "1.5h", True, "h"])
def test_bad_durations_are_refused(text):
    with pytest.raises(ClaimsError, match="duration"):
        tokens.parse_duration(text)


@pytest.mark.parametrize("text, epoch", [
    ("2030-01-01T00:00:00Z", 1893456000), ("2030-01-01", 1893456000),
    ("2030-01-01T01:00:00+01:00", 1893456000), ("1893456000", 1893456000), (1893456000, 1893456000),
])
def test_times_parse(text, epoch):
    assert tokens.parse_time(text) == epoch


def test_bad_time_is_refused():
    with pytest.raises(ClaimsError, match="ISO 8601"):
        tokens.parse_time("next tuesday")


@pytest.mark.parametrize("algorithm", ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"])
def test_rsa_tokens_verify_with_pyjwt_and_openssl(rsa_private_key, rsa_public_pem, algorithm,
                                                  openssl_verifies):
    minted = tokens.mint(tokens.Signer(rsa_private_key, algorithm), tokens.TokenSpec(subject="jane"))
    assert jwt.decode(minted.token, rsa_private_key.public_key(), algorithms=[algorithm])["sub"] == "jane"
    assert openssl_verifies(minted.token, rsa_public_pem, algorithm)


@pytest.mark.parametrize("algorithm", ["ES256", "ES384", "ES512"])
def test_ec_tokens_verify_with_pyjwt_and_openssl(ec_keys, algorithm, openssl_verifies):
    key = ec_keys[algorithm]
    minted = tokens.mint(tokens.Signer(key, algorithm), tokens.TokenSpec(subject="jane"))
    assert jwt.decode(minted.token, key.public_key(), algorithms=[algorithm])["sub"] == "jane"
    assert openssl_verifies(minted.token, keys.public_key_pem(key.public_key()).encode(), algorithm)


def test_eddsa_token_verifies_with_pyjwt_and_openssl(ed25519_private_key, openssl_verifies):
    minted = tokens.mint(tokens.Signer(ed25519_private_key, "EdDSA"), tokens.TokenSpec(subject="x"))
    assert jwt.decode(minted.token, ed25519_private_key.public_key(), algorithms=["EdDSA"])
    pem = keys.public_key_pem(ed25519_private_key.public_key()).encode()
    assert openssl_verifies(minted.token, pem, "EdDSA")


def test_openssl_rejects_a_tampered_token(signer, rsa_public_pem, openssl_verifies):
    token = tokens.mint(signer, tokens.TokenSpec(subject="jane")).token
    header, payload, signature = token.split(".")
    forged = ".".join([header, _b64({"sub": "admin", "exp": NOW}), signature])
    assert not openssl_verifies(forged, rsa_public_pem, "RS512")


def test_system_token_claims(signer):
    minted = tokens.mint(signer, tokens.TokenSpec(
        subject=tokens.SYSTEM_USER, issuer="prod", groups=["okera_admins"],
        ttl=tokens.parse_duration("30d")), now=NOW)
    assert minted.claims == {"sub": "okera_system_user", "iss": "prod", "groups": ["okera_admins"],
                             "iat": NOW, "exp": NOW + 30 * 86400}
    assert minted.header == {"alg": "RS512", "typ": "JWT", "kid": signer.kid}
    assert minted.expires_at == NOW + 30 * 86400


def test_optional_claims_and_extras(signer):
    spec = tokens.TokenSpec(subject="jane", audience=["a", "b"], not_before=NOW - 5,
                            claims={"tenant": "blue"}, jti=True, expires_at=NOW + 60)
    claims = tokens.mint(signer, spec, now=NOW).claims
    assert claims["aud"] == ["a", "b"] and claims["nbf"] == NOW - 5 and claims["exp"] == NOW + 60
    assert claims["tenant"] == "blue" and len(claims["jti"]) == 32


def test_two_tokens_get_distinct_jti(signer):
    spec = tokens.TokenSpec(subject="jane", jti=True)
    assert tokens.mint(signer, spec).claims["jti"] != tokens.mint(signer, spec).claims["jti"]


def test_given_kid_and_no_kid(rsa_private_key):
    assert tokens.Signer(rsa_private_key, kid="key-2026").header["kid"] == "key-2026"
    assert "kid" not in tokens.Signer(rsa_private_key, kid="").header


@pytest.mark.parametrize("spec, message", [
    (tokens.TokenSpec(subject=""), "subject is required"),
    (tokens.TokenSpec(subject="a", groups="admins"), "groups must be a list"),
    (tokens.TokenSpec(subject="a", claims={"sub": "root"}), "reserved claim.*sub.*subject"),
    (tokens.TokenSpec(subject="a", claims={"exp": 1, "groups": []}), "exp, groups"),
    (tokens.TokenSpec(subject="a", expires_at=NOW - 1), "not in the future"),
    (tokens.TokenSpec(subject="a", not_before=NOW + 10, ttl=5), "not before the expiry"),
    (tokens.TokenSpec(subject="a", claims={"x": object()}), "JSON values"),
])
def test_bad_claims_are_refused(signer, spec, message):
    with pytest.raises(ClaimsError, match=message):
        tokens.mint(signer, spec, now=NOW)


def test_signer_refuses_key_that_does_not_fit(rsa_private_key):
    with pytest.raises(AlgorithmError, match="ES256 needs an EC P-256 key"):
        tokens.Signer(rsa_private_key, "ES256")


def test_own_serialisation_reads_back_as_pyjwt_writes_it(signer):
    claims = {"sub": "a", "exp": NOW * 2}
    ours = jwt.api_jws.decode_complete(signer.sign(claims), signer.public_key, algorithms=["RS512"])
    theirs = jwt.api_jws.decode_complete(
        jwt.encode(claims, signer.private_key, "RS512", headers={"kid": signer.kid}),
        signer.public_key, algorithms=["RS512"])
    assert ours["header"] == theirs["header"] and ours["payload"] == theirs["payload"]


# --- verification ---------------------------------------------------------------------------

def test_valid_token_verifies_and_names_its_key(signer, rsa_private_key):
    token = tokens.mint(signer, tokens.TokenSpec(subject="jane", issuer="c1")).token
    result = tokens.verify(token, _entries(rsa_private_key), ["rsa512"], issuer="c1", subject="jane")
    assert result.valid and result.kid == signer.kid and result.claims["sub"] == "jane"


def test_each_configured_key_is_tried(signer, rsa_private_key, other_rsa_private_key):
    token = tokens.mint(tokens.Signer(rsa_private_key, kid=""), tokens.TokenSpec(subject="a")).token
    result = tokens.verify(token, _entries(other_rsa_private_key, rsa_private_key), ["RS512"])
    assert result.valid


def test_wrong_key_is_invalid(signer, other_rsa_private_key):
    token = tokens.mint(signer, tokens.TokenSpec(subject="jane")).token
    result = tokens.verify(token, _entries(other_rsa_private_key), ["RS512"])
    assert not result.valid and "does not verify with any of the 1" in result.reason


def test_algorithm_comes_from_configuration_not_header(signer, rsa_private_key):
    token = tokens.mint(signer, tokens.TokenSpec(subject="jane")).token
    result = tokens.verify(token, _entries(rsa_private_key), ["RS256"])
    assert not result.valid and "'RS512' is not allowed" in result.reason


def test_alg_none_token_is_refused(rsa_private_key):
    token = _b64({"alg": "none", "typ": "JWT"}) + "." + _b64({"sub": "admin", "exp": NOW * 2}) + "."
    result = tokens.verify(token, _entries(rsa_private_key), ["RS512"])
    assert not result.valid and "'none' is not allowed" in result.reason
    with pytest.raises(AlgorithmError):
        tokens.verify(token, _entries(rsa_private_key), ["none"])


def test_hs_rs_confusion_is_refused(rsa_private_key, rsa_public_pem):
    import hashlib
    import hmac
    signing_input = _b64({"alg": "HS256", "typ": "JWT"}) + "." + _b64({"sub": "admin", "exp": NOW * 2})
    mac = hmac.new(rsa_public_pem, signing_input.encode(), hashlib.sha256).digest()
    forged = signing_input + "." + _b64(mac)
    result = tokens.verify(forged, _entries(rsa_private_key), ["RS512"])
    assert not result.valid and "'HS256' is not allowed" in result.reason
    with pytest.raises(AlgorithmError, match="refused"):
        tokens.verify(forged, _entries(rsa_private_key), ["HS256"])


def test_missing_exp_is_refused(signer, rsa_private_key):
    token = signer.sign({"sub": "jane"})
    result = tokens.verify(token, _entries(rsa_private_key), ["RS512"])
    assert not result.valid and "no 'exp' claim" in result.reason


def test_unknown_crit_header_is_refused(rsa_private_key):
    token = jwt.encode({"sub": "a", "exp": NOW * 2}, rsa_private_key, "RS512",
                       headers={"crit": ["x-custom"], "x-custom": 1})
    result = tokens.verify(token, _entries(rsa_private_key), ["RS512"])
    assert not result.valid and "critical header" in result.reason


def test_expired_and_not_yet_valid(signer, rsa_private_key):
    now = int(time.time())
    expired = tokens.mint(signer, tokens.TokenSpec(subject="a", ttl=10), now=now - 100).token
    result = tokens.verify(expired, _entries(rsa_private_key), ["RS512"])
    assert not result.valid and "expired at" in result.reason
    assert tokens.verify(expired, _entries(rsa_private_key), ["RS512"], leeway=200).valid
    early = tokens.mint(signer, tokens.TokenSpec(subject="a", not_before=now + 300), now=now).token
    result = tokens.verify(early, _entries(rsa_private_key), ["RS512"])
    assert not result.valid and "not valid before" in result.reason


def test_expected_issuer_audience_subject(signer, rsa_private_key):
    token = tokens.mint(signer, tokens.TokenSpec(subject="jane", issuer="c1", audience="okera")).token
    entries = _entries(rsa_private_key)
    assert tokens.verify(token, entries, ["RS512"], audience=["other", "okera"]).valid
    assert "issuer 'c1' is not the expected 'c2'" in tokens.verify(
        token, entries, ["RS512"], issuer="c2", audience="okera").reason
    assert "audience" in tokens.verify(token, entries, ["RS512"], audience="x").reason
    assert "subject 'jane' is not the expected 'okera_system_user'" in tokens.verify(
        token, entries, ["RS512"], audience="okera", subject="okera_system_user").reason


def test_kid_narrows_but_never_adds_keys(rsa_private_key, other_rsa_private_key):
    entries = _entries(other_rsa_private_key)
    # A token claiming the other key's kid, signed with a key not configured, stays invalid.
    token = tokens.mint(tokens.Signer(rsa_private_key, kid=entries[0].kid),
                        tokens.TokenSpec(subject="a")).token
    assert not tokens.verify(token, entries, ["RS512"]).valid


def test_key_of_wrong_type_cannot_verify(signer, ed25519_private_key):
    token = tokens.mint(signer, tokens.TokenSpec(subject="a")).token
    result = tokens.verify(token, _entries(ed25519_private_key), ["RS512"])
    assert not result.valid and "none of the 1 given key(s) can verify RS512" in result.reason


@pytest.mark.parametrize("token, message", [
    ("", "empty"),
    ("abc", "three dot-separated parts; this one has 1"),
    ("a.b.c.d", "has 4"),
    ("!!!.e30.c2ln", "header is not base64url"),
    (_b64(b"not json") + ".e30.c2ln", "header is not JSON"),
    (_b64([1]) + ".e30.c2ln", "header is not a JSON object"),
    (_b64({"alg": "RS512"}) + "." + _b64(b"\xff\xfe") + ".c2ln", "payload is not JSON"),
    ("e30.e30.a", "signature is not valid base64url"),
])
def test_malformed_tokens_are_clear_errors(token, message):
    with pytest.raises(TokenFormatError, match=message):
        tokens.decode_unverified(token)


def test_base64_wrapped_token_gets_a_hint(signer):
    wrapped = base64.b64encode(tokens.mint(signer, tokens.TokenSpec(subject="a")).token.encode())
    with pytest.raises(TokenFormatError, match="decode it first"):
        tokens.decode_unverified(wrapped.decode())


def test_token_with_trailing_newline_verifies(signer, rsa_private_key):
    token = tokens.mint(signer, tokens.TokenSpec(subject="a")).token + "\n"
    assert tokens.verify(token.encode(), _entries(rsa_private_key), ["RS512"]).valid


def test_expiry_facts():
    assert tokens.expiry_facts({"exp": NOW + 90}, now=NOW) == {
        "expires_at": "2027-01-15T08:01:30Z", "expires_in": 90, "expired": False}
    assert tokens.expiry_facts({"exp": NOW}, now=NOW)["expired"] is True
    assert tokens.expiry_facts({}, now=NOW)["expires_in"] is None


def test_token_summary_never_holds_the_token(signer):
    token = tokens.mint(signer, tokens.TokenSpec(subject="a", groups=["g"]), now=NOW).token
    summary = tokens.token_summary(token)
    assert summary["claims"]["exp"] == tokens.iso8601(NOW + 86400)
    assert summary["kid"] == signer.kid and len(summary["sha256"]) == 64
    text = json.dumps(summary)
    assert token not in text and token.split(".")[2] not in text


# --- renewal ---------------------------------------------------------------------------------

@pytest.fixture
def spec():
    return tokens.TokenSpec(subject="okera_system_user", groups=["admins"], ttl=30 * 86400)


def test_fresh_matching_token_is_kept(signer, spec):
    now = int(time.time())
    token = tokens.mint(signer, spec, now=now).token
    assert tokens.renewal_reason(token, signer, spec, renew_before=10 * 86400, now=now + 3600) is None


def test_times_alone_never_renew(signer):
    spec = tokens.TokenSpec(subject="a", jti=True, ttl=3600)
    now = int(time.time())
    token = tokens.mint(signer, spec, now=now).token
    assert tokens.renewal_reason(token, signer, spec, renew_before=60, now=now + 5) is None


@pytest.mark.parametrize("change, expected", [
    (dict(groups=["admins", "ops"]), "claims differ: groups"),
    (dict(groups=None), "claims differ: groups"),
    (dict(issuer="c9"), "claims differ: iss"),
    (dict(claims={"tenant": "x"}), "claims differ: tenant"),
    (dict(jti=True), "claims differ: jti"),
    (dict(ttl=3600), "lives longer than the wanted ttl"),
])
def test_changed_wishes_renew(signer, spec, change, expected):
    now = int(time.time())
    token = tokens.mint(signer, spec, now=now).token
    wanted = tokens.TokenSpec(**{**spec.__dict__, **change})
    assert expected in tokens.renewal_reason(token, signer, wanted, renew_before=60, now=now)


def test_token_near_expiry_is_renewed(signer, spec):
    now = int(time.time())
    token = tokens.mint(signer, spec, now=now - 25 * 86400).token
    assert "within renew_before" in tokens.renewal_reason(token, signer, spec, 10 * 86400, now)


def test_token_from_another_key_or_algorithm_is_renewed(signer, rsa_private_key,
                                                        other_rsa_private_key, spec):
    token = tokens.mint(tokens.Signer(other_rsa_private_key), spec).token
    assert "does not verify" in tokens.renewal_reason(token, signer, spec, 60)
    token = tokens.mint(tokens.Signer(rsa_private_key, "RS256"), spec).token
    assert "does not verify" in tokens.renewal_reason(token, signer, spec, 60)


def test_garbage_on_disk_is_renewed(signer, spec):
    assert "malformed" in tokens.renewal_reason("garbage", signer, spec, 60)
    assert tokens.renewal_reason(None, signer, spec, 60) == "there is no token yet"
