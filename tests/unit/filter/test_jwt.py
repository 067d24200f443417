"""Filters jwt_claims, jwt_header, jwt_expires_in."""
from __future__ import annotations

import pytest

from okera_auth.module_utils import tokens


@pytest.fixture
def filters():
    from ansible_collections.okera.auth.plugins.filter.jwt import FilterModule
    return FilterModule().filters()


@pytest.fixture
def token(rsa_private_key):
    return tokens.mint(tokens.Signer(rsa_private_key), tokens.TokenSpec(subject="a", ttl=3600)).token


def test_claims_header_and_expiry(filters, token):
    assert filters["jwt_claims"](token)["sub"] == "a"
    assert filters["jwt_header"](token)["alg"] == "RS512"
    assert 3590 < filters["jwt_expires_in"](token) <= 3600


def test_errors_are_filter_errors(filters, rsa_private_key):
    from ansible.errors import AnsibleFilterError
    with pytest.raises(AnsibleFilterError, match="jwt_claims: a JWT has three"):
        filters["jwt_claims"]("nope")
    with pytest.raises(AnsibleFilterError, match="expects a token text"):
        filters["jwt_header"](42)
    no_exp = tokens.Signer(rsa_private_key).sign({"sub": "a"})
    with pytest.raises(AnsibleFilterError, match="no numeric exp"):
        filters["jwt_expires_in"](no_exp)
