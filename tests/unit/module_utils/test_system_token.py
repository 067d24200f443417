"""The system-token plan: which token to rotate and why, in the order of the reasons, never a traceback."""
from __future__ import annotations

import base64
import json
import time

import pytest

from okera_auth.module_utils import keys, system_token, tokens
from okera_auth.module_utils.errors import AlgorithmError, ClaimsError, KeyLoadError

DAY = 86400
FIELDS = {"key", "present", "subject", "issuer", "groups", "expires_at", "issued_at", "expires_in", "days_left",
          "keep_issuer", "keep_groups", "valid", "rotate", "why", "summary",
          "genuine", "catalog_admin", "new_groups", "new_groups_from"}


def _b64(value) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.fixture
def now() -> int:
    # Verification checks exp against the real clock, so the plan's clock is the real one too.
    return int(time.time())


@pytest.fixture
def cluster(rsa_public_pem) -> system_token.ClusterKeys:
    return system_token.cluster_keys([rsa_public_pem.decode()], "rsa512")


@pytest.fixture
def mint(rsa_private_key, now):
    """mint(ttl_seconds, key=rsa_private_key, algorithm=RS512, **spec) -> token text."""

    def make(ttl: int, key=None, algorithm: str = "RS512", **spec) -> str:
        spec = dict({"subject": "okera_system_user", "issuer": "prod", "groups": ["okera_admins"]}, **spec)
        signer = tokens.Signer(key or rsa_private_key, algorithm)
        return tokens.mint(signer, tokens.TokenSpec(ttl=ttl, **spec), now=now).token

    return make


def _plan_one(token, cluster, now, rotate_before="7d", force=False) -> system_token.TokenPlan:
    return system_token.plan_rotation({"SYSTEM_TOKEN_0": token}, ["SYSTEM_TOKEN_0"], cluster,
                                      rotate_before, force=force, now=now)[0]


def test_missing_token_is_rotated_with_issuer_and_groups_of_the_readable_one(mint, cluster, now):
    plan = system_token.plan_rotation({"SYSTEM_TOKEN_0": mint(30 * DAY)}, ["SYSTEM_TOKEN_0", "SYSTEM_TOKEN_1"],
                                      cluster, "7d", now=now)
    missing = plan[1]
    assert (missing.present, missing.rotate, missing.valid, missing.why) == (False, True, False, "missing")
    assert (missing.keep_issuer, missing.keep_groups) == ("prod", ["okera_admins"])
    assert missing.summary == "SYSTEM_TOKEN_1: sub=- iss=- expires - (- days left), missing: rotate"
    assert plan[0].summary.endswith("(30.0 days left), more than 7d left: keep")


def test_unreadable_token_is_rotated_with_the_reason(cluster, now):
    plan = _plan_one("not-a-token", cluster, now)
    assert plan.present and plan.rotate and not plan.valid
    assert plan.why == "unreadable (a JWT has three dot-separated parts; this one has 1)"
    assert plan.summary.startswith("SYSTEM_TOKEN_0: sub=- iss=- expires - (- days left), unreadable (")


def test_token_signed_with_another_key_does_not_verify(mint, cluster, now, other_rsa_private_key):
    plan = _plan_one(mint(30 * DAY, key=other_rsa_private_key), cluster, now)
    assert plan.rotate and not plan.valid
    assert plan.why.startswith("does not verify with the cluster key (the signature does not verify")
    # What it says is still shown, and kept for the new token.
    assert (plan.subject, plan.issuer, plan.days_left) == ("okera_system_user", "prod", 30.0)


def test_token_of_another_algorithm_does_not_verify(mint, cluster, now):
    plan = _plan_one(mint(30 * DAY, algorithm="PS512"), cluster, now)
    assert plan.rotate and "algorithm 'PS512' is not allowed" in plan.why


def test_expiring_token_is_rotated_and_summarised(mint, cluster, now):
    plan = _plan_one(mint(2 * DAY), cluster, now)
    assert plan.valid and plan.rotate and plan.why == "expires within 7d"
    assert plan.summary == ("SYSTEM_TOKEN_0: sub=okera_system_user iss=prod expires %s (2.0 days left), "
                            "expires within 7d: rotate" % tokens.iso8601(now + 2 * DAY))


def test_token_with_exactly_the_threshold_left_is_kept(mint, cluster, now):
    plan = _plan_one(mint(7 * DAY), cluster, now)
    assert not plan.rotate and plan.why == "more than 7d left"


def test_force_rotates_a_fresh_token(mint, cluster, now):
    plan = _plan_one(mint(30 * DAY), cluster, now, force=True)
    assert plan.valid and plan.rotate and plan.why == "forced"


def test_fresh_token_is_kept(mint, cluster, now):
    plan = _plan_one(mint(30 * DAY), cluster, now, rotate_before="36h")
    assert plan.valid and not plan.rotate and plan.why == "more than 36h left"
    assert plan.summary.endswith("(30.0 days left), more than 36h left: keep")
    assert (plan.expires_in, plan.expires_at) == (30 * DAY, tokens.iso8601(now + 30 * DAY))


def test_the_first_reason_wins(mint, cluster, now, other_rsa_private_key):
    assert _plan_one("garbage", cluster, now, force=True).why.startswith("unreadable")
    expiring_elsewhere = mint(DAY, key=other_rsa_private_key)
    assert _plan_one(expiring_elsewhere, cluster, now, force=True).why.startswith("does not verify")
    assert _plan_one(mint(DAY), cluster, now, force=True).why == "expires within 7d"


def test_own_issuer_and_groups_win_over_the_fallback(mint, cluster, now):
    first, second = mint(DAY, issuer="eu", groups=["a"]), mint(DAY, issuer="us", groups=["b"])
    plan = system_token.plan_rotation({"T0": "garbage", "T1": first, "T2": second, "T9": mint(DAY, issuer="x")},
                                      ["T0", "T1", "T2", "T3"], cluster, "7d", now=now)
    assert [(entry.keep_issuer, entry.keep_groups) for entry in plan] == [
        ("eu", ["a"]), ("eu", ["a"]), ("us", ["b"]), ("eu", ["a"])]


def test_no_readable_token_leaves_nothing_to_keep(cluster, now):
    plan = system_token.plan_rotation({}, ["SYSTEM_TOKEN_0"], cluster, "7d", now=now)[0]
    assert (plan.keep_issuer, plan.keep_groups) == (None, [])


def test_as_dict_has_exactly_the_plan_fields(mint, cluster, now):
    entry = _plan_one(mint(2 * DAY), cluster, now).as_dict()
    assert set(entry) == FIELDS
    json.dumps(entry)  # plain data


def _signed(claims: dict, private_key) -> str:
    return tokens.Signer(private_key).sign(claims)


@pytest.mark.parametrize("make, reason", [
    (lambda key, now: "garbage", "unreadable (a JWT has three"),
    (lambda key, now: "", "unreadable (the token is empty)"),
    (lambda key, now: "A" * 200_000, "unreadable (the token is 200000 characters long"),
    (lambda key, now: "eyJ.e30.", "unreadable (the token's header is not JSON)"),
    (lambda key, now: "%s.%s.sig" % (_b64({"alg": "RS512"}), _b64(b"[" * 5000)), "unreadable ("),
    (lambda key, now: base64.b64encode(_signed({"sub": "s", "exp": now + DAY}, key).encode()).decode(),
     "unreadable (a JWT has three dot-separated parts; this one has 1: it looks base64-encoded"),
    (lambda key, now: 12345, "unreadable (the value is not text)"),
    (lambda key, now: None, "unreadable (the value is not text)"),
    (lambda key, now: _signed({"sub": 7, "exp": now + 30 * DAY}, key), "unreadable (the token's sub claim is not a text)"),
    (lambda key, now: _signed({"sub": "s", "iss": ["x"], "exp": now + 30 * DAY}, key), "unreadable (the token's iss"),
    (lambda key, now: _signed({"sub": "s", "groups": "admins", "exp": now + 30 * DAY}, key),
     "unreadable (the token's groups claim is not a list of texts)"),
    (lambda key, now: _signed({"sub": "s", "exp": str(now + 30 * DAY)}, key), "does not verify with the cluster key ("),
    (lambda key, now: _signed({"sub": "s", "exp": 1e300}, key), "does not verify with the cluster key ("),
    (lambda key, now: _signed({"sub": "s"}, key), "does not verify with the cluster key (the token has no 'exp' claim)"),
    (lambda key, now: "%s.%s.%s" % (_b64({"alg": "x" * 5000}), _b64({"exp": now + DAY}), _b64(b"s")),
     "does not verify with the cluster key (the token's algorithm"),
])
def test_hostile_values_are_rotated_without_a_traceback(make, reason, cluster, now, rsa_private_key):
    value = make(rsa_private_key, now)
    plan = _plan_one(value, cluster, now)
    assert plan.rotate and not plan.valid and plan.why.startswith(reason), plan.why
    assert len(plan.summary) < 400, "a hostile token cannot flood the report"
    if isinstance(value, str) and len(value) > 3:
        assert value not in json.dumps(plan.as_dict())
    # A hostile token lends nothing to the others.
    assert plan.keep_issuer is None and plan.keep_groups == []


def test_a_huge_subject_is_shortened_in_the_summary(mint, cluster, now):
    plan = _plan_one(mint(30 * DAY, subject="s" * 20_000), cluster, now)
    assert plan.valid and plan.subject == "s" * 20_000 and len(plan.summary) < 400


def test_bad_threshold_is_refused(cluster, now):
    with pytest.raises(ClaimsError, match="duration"):
        system_token.plan_rotation({}, ["SYSTEM_TOKEN_0"], cluster, "soon", now=now)


def test_keys_and_algorithm_come_from_the_configuration_without_given_keys(rsa_public_pem, other_rsa_private_key):
    other_pem = keys.public_key_pem(other_rsa_private_key.public_key())
    config = {"JWT_PUBLIC_KEY": rsa_public_pem.decode() + "," + other_pem, "JWT_ALGORITHM": " rsa256\n"}
    found = system_token.cluster_keys([], None, config)
    assert found.algorithm == "RS256" and len(found.entries) == 2
    assert [entry.key.public_numbers() for entry in keys.load_public_keys(found.public_jwks())] == \
        [entry.key.public_numbers() for entry in keys.load_public_keys(rsa_public_pem.decode() + other_pem)]
    assert system_token.cluster_keys([], "PS512", config).algorithm == "PS512"
    assert system_token.cluster_keys([], None, {"JWT_PUBLIC_KEY": other_pem}).algorithm == "RS512"


def test_given_keys_win_and_ignore_the_configured_algorithm(rsa_public_pem, other_rsa_private_key):
    other_pem = keys.public_key_pem(other_rsa_private_key.public_key())
    found = system_token.cluster_keys([other_pem], None, {"JWT_PUBLIC_KEY": rsa_public_pem.decode(),
                                                          "JWT_ALGORITHM": "RS256"})
    assert found.algorithm == "RS512" and len(found.entries) == 1
    assert keys.public_key_pem(keys.load_public_keys(found.public_jwks())[0].key) == other_pem


def test_public_jwks_hold_only_public_halves(rsa_private_key):
    jwk = dict(keys.public_jwk(rsa_private_key.public_key()), d="private-part", kid="k1")
    found = system_token.cluster_keys([json.dumps({"keys": [jwk]})])
    assert json.loads(found.public_jwks()) == {"keys": [keys.public_jwk(rsa_private_key.public_key())]}


@pytest.mark.parametrize("config, message", [
    (None, "Secret okera/okera-config does not exist: set system_token_config_secret_name"),
    ({"JWT_ALGORITHM": "RS512"}, "Secret okera/okera-config has no key JWT_PUBLIC_KEY: set system_token_config_secret_name"),
])
def test_configuration_without_public_key_says_what_to_set(config, message):
    with pytest.raises(KeyLoadError) as raised:
        system_token.cluster_keys([], None, config, "Secret okera/okera-config")
    assert str(raised.value).startswith(message)
    assert "system_token_public_keys" in str(raised.value) and "\n" not in str(raised.value)


def test_bad_keys_and_algorithms_are_refused(rsa_public_pem):
    with pytest.raises(KeyLoadError, match="no public key found"):
        system_token.cluster_keys(["garbage"])
    with pytest.raises(AlgorithmError, match="refused"):
        system_token.cluster_keys([rsa_public_pem.decode()], "HS256")
