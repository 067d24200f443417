"""Files the modules read because a user named them: each is read with a bound, a device or a
FIFO is refused at once, and a failure is one line that never carries the file's content."""
from __future__ import annotations

import importlib
import os

import pytest

KEY_OPTIONS = [
    ("jwt_token", "private_key_path", {"subject": "a", "return_content": True}),
    ("jwt_token", "path", {"subject": "a"}),
    ("jwt_token_info", "path", {}),
    ("jwt_token_info", "public_key_path", {"token": "x.y.z"}),
    ("signing_key_pair", "path", {}),
]


def _module(name):
    return importlib.import_module("ansible_collections.okera.auth.plugins.modules." + name)


@pytest.fixture
def complete_args(key_dir):
    """The options besides the one under test that each module needs to reach its read."""
    def complete(name, option, extra):
        arguments = dict(extra)
        if name == "jwt_token" and option != "private_key_path":
            arguments["private_key_path"] = str(key_dir / "private.pem")
        if name == "jwt_token_info" and option == "public_key_path":
            return dict(arguments, **{option: ["PLACEHOLDER"]})
        return arguments
    return complete


def _with(arguments, option, path):
    value = [path] if arguments.get(option) == ["PLACEHOLDER"] else path
    return dict(arguments, **{option: value})


@pytest.mark.parametrize("name, option, extra", KEY_OPTIONS)
@pytest.mark.parametrize("source", ["/dev/zero", "fifo", "big"])
def test_unbounded_or_blocking_files_are_refused_in_one_line(run_module, complete_args, tmp_path,
                                                             name, option, extra, source):
    if name == "jwt_token_info" and option == "public_key_path":
        from okera_auth.module_utils import keys, tokens
        signer = tokens.Signer(keys.generate_private_key("ES256"), "ES256")
        extra = dict(extra, token=tokens.mint(signer, tokens.TokenSpec(subject="a"), 0).token)
    target = tmp_path / "named"
    if source == "/dev/zero":
        target.symlink_to("/dev/zero")
    elif source == "fifo":
        os.mkfifo(target)
    else:
        target.write_bytes(b"-----BEGIN PRIVATE KEY-----\n" + b"A" * (1024 * 1024 + 1))
    result, failed = run_module(_module(name), _with(complete_args(name, option, extra), option, str(target)))
    expected = "larger than 1 MiB" if source == "big" else "is not a regular file"
    assert failed and expected in result["msg"] and str(target) in result["msg"]
    assert "\n" not in result["msg"] and "AAAA" not in result["msg"]
    if source == "big":
        assert target.stat().st_size == 1024 * 1024 + 29
