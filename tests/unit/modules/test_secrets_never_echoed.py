"""Whatever a user puts into a textual option by mistake - a private key, a token, base64 of a
key, a long text - the module's output (result, message, diff) never carries it: messages quote
user values through errors.shown(), which names such a value by its length only."""
from __future__ import annotations

import base64
import importlib
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from okera_auth.module_utils import tokens

OPTIONS = {
    "jwt_token": ["subject", "issuer", "groups", "audience", "ttl", "expires_at", "not_before", "kid",
                  "path", "private_key_path", "algorithm", "renew_before"],
    "jwt_token_info": ["path", "public_key_path", "algorithms", "issuer", "audience", "subject", "leeway"],
    "signing_key_pair": ["algorithm", "path", "size"],
}
LIST_OPTIONS = {"groups", "audience", "public_key_path", "algorithms"}
PATH_OPTIONS = {"path", "public_key_path", "private_key_path"}


@pytest.fixture(scope="module")
def material(rsa_key_pem, rsa_private_key):
    """Secrets as a user might paste them, and the part of each that must never be seen."""
    pem = rsa_key_pem.decode()
    body = pem.splitlines()[5]
    token = tokens.mint(tokens.Signer(rsa_private_key), tokens.TokenSpec(subject="jane")).token
    signature = token.rsplit(".", 1)[1]
    wrapped = base64.b64encode(rsa_key_pem).decode()
    return {"pem": (pem, body), "token": (token, signature), "base64 key": (wrapped, wrapped[200:260])}


def _arguments(name, option, value, key_dir, tmp_path, token):
    given_value = [value] if option in LIST_OPTIONS else value
    if name == "jwt_token":
        arguments = {"private_key_path": str(key_dir / "private.pem"), "subject": "jane",
                     "path": str(tmp_path / "t.token")}
        if option in ("expires_at",):
            arguments["ttl"] = None
    elif name == "jwt_token_info":
        arguments = {"token": token, "public_key_path": [str(key_dir / "public.pem")]}
        if option == "path":
            del arguments["token"]
    else:
        arguments = {"path": str(tmp_path / "k.pem")}
    arguments[option] = given_value
    return {key: item for key, item in arguments.items() if item is not None}


def _module(name):
    return importlib.import_module("ansible_collections.okera.auth.plugins.modules." + name)


@pytest.mark.parametrize("name, option", [(name, option) for name, options in OPTIONS.items()
                                          for option in options])
@given(kind=st.sampled_from(["pem", "token", "base64 key", "long text"]),
       prefix=st.sampled_from(["", " ", "/tmp/", "x"]),
       long_text=st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=90, max_size=300))
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_secret_in_any_textual_option_never_reaches_the_output(run_module, material, key_dir, tmp_path_factory,
                                                                 rsa_private_key, monkeypatch, name, option, kind,
                                                                 prefix, long_text):
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))  # a relative path given is written there
    if kind == "long text":
        value, hidden = long_text, long_text
    else:
        value, hidden = material[kind]
        value = prefix + value
    token = tokens.mint(tokens.Signer(rsa_private_key), tokens.TokenSpec(subject="jane")).token
    arguments = _arguments(name, option, value, key_dir, tmp_path_factory.mktemp("t"), token)
    result, failed = run_module(_module(name), arguments, diff=True)
    if kind == "long text" and (not failed or option in PATH_OPTIONS):
        # A long subject or issuer is a valid claim, and so returned; a long path is named in
        # messages (paths are withheld only when shaped like a key or a token).
        return
    # invocation is Ansible's echo of the options as given (shown at -vvv), not the module's word
    result.pop("invocation", None)
    assert hidden not in json.dumps(result), result.get("msg")
    if failed:
        assert "\n" not in result["msg"]
