"""A signing key kept in AWS Secrets Manager, read by amazon.aws's secretsmanager_secret lookup
(moto's server stands in for AWS), feeds jwt_token and the authserver role's key tasks
(authserver_private_key_content); no key text in -vvv output or in errors."""
from __future__ import annotations

import grp
import os
import pwd
import stat
from pathlib import Path

import pytest

from okera_auth.module_utils import keys, tokens

PLAYBOOK = Path(__file__).parent / "playbooks" / "mint_with_secretsmanager_key.yml"


def _key_lines(pem: bytes):
    """Distinctive parts of a PEM: its base64 lines (each would show a leak)."""
    return [line for line in pem.decode().splitlines() if not line.startswith("-----")]


def _assert_no_key_text(output: str, pem: bytes) -> None:
    leaked = [number for number, line in enumerate(_key_lines(pem)) if line in output]
    assert not leaked, "lines %s of the private key appear in the output" % leaked


@pytest.fixture
def workdir(tmp_path, key_dir) -> Path:
    directory = tmp_path / "work"
    directory.mkdir()
    (directory / "public.pem").write_bytes((key_dir / "public.pem").read_bytes())
    return directory


def test_key_from_secrets_manager_mints_and_is_written_by_the_authserver_role_with_no_key_text_at_vvv(
        run_playbook, aws_env, moto, workdir, rsa_key_pem, rsa_public_pem):
    moto.client("secretsmanager").create_secret(Name="okera/jwt-signing", SecretString=rsa_key_pem.decode())

    owner = "key_owner=%s key_group=%s" % (pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name)
    done = run_playbook(PLAYBOOK, "-vvv", "-e", "workdir=%s" % workdir, "-e", "secret_id=okera/jwt-signing", "-e", owner,
                        env=aws_env)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    token = (workdir / "system.token").read_text().strip()
    assert tokens.verify(token, keys.load_public_keys(rsa_public_pem), ["RS512"]).valid
    node_key = workdir / "private_key.pem"
    assert node_key.read_bytes() == rsa_key_pem and stat.S_IMODE(node_key.stat().st_mode) == 0o400
    _assert_no_key_text(output, rsa_key_pem)
    assert token.split(".")[2] not in output


def test_missing_secret_and_unreachable_endpoint_are_one_line_errors(run_playbook, aws_env, moto, workdir, rsa_key_pem):
    moto.client("secretsmanager").create_secret(Name="okera/jwt-signing", SecretString=rsa_key_pem.decode())

    missing = run_playbook(PLAYBOOK, "-e", "workdir=%s" % workdir, "-e", "secret_id=okera/no-such-key", env=aws_env)
    assert missing.returncode != 0
    assert "okera/no-such-key" in missing.stdout and "Traceback" not in missing.stdout + missing.stderr
    assert not (workdir / "system.token").exists()

    closed = dict(aws_env, OKERA_TEST_AWS_ENDPOINT="http://127.0.0.1:9")
    unreachable = run_playbook(PLAYBOOK, "-e", "workdir=%s" % workdir, "-e", "secret_id=okera/jwt-signing", env=closed)
    assert unreachable.returncode != 0
    assert "127.0.0.1:9" in unreachable.stdout and "Traceback" not in unreachable.stdout + unreachable.stderr
    for done in (missing, unreachable):
        _assert_no_key_text(done.stdout + done.stderr, rsa_key_pem)
