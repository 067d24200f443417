"""--private-key-secret-id: the server fetches its key from AWS Secrets Manager (moto's server on
127.0.0.1) at start and on SIGHUP, so a rotated key is picked up without a playbook run."""
from __future__ import annotations

import os
import re
import signal

from authserver_process import verify_with_library
from okera_auth.module_utils.tokens import decode_unverified

SECRET = "okera/node-signing-key"


def _aws_args(moto, secret: str = SECRET):
    return ["--private-key-secret-id", secret, "--aws-region", "us-east-1", "--aws-endpoint-url", moto.url]


def _key_lines(path) -> list:
    return [line for line in path.read_text().splitlines() if not line.startswith("-----")]


def test_key_from_secrets_manager_at_start_and_after_sighup(start_daemon, moto, pem_key, second_pem_key):
    secrets = moto.client("secretsmanager")
    secrets.create_secret(Name=SECRET, SecretString=pem_key.read_text())
    daemon = start_daemon(*_aws_args(moto), key=None, env=moto.environment())
    token = daemon.token_json("janedoe")["token"]
    assert verify_with_library(token, pem_key).valid

    secrets.put_secret_value(SecretId=SECRET, SecretString=second_pem_key.read_text())
    daemon.signal(signal.SIGHUP)
    daemon.wait_for_log(re.compile(r"Reloaded key kid="))
    rotated = daemon.token_json("janedoe")["token"]
    assert verify_with_library(rotated, second_pem_key).valid and not verify_with_library(rotated, pem_key).valid

    # A secret deleted meanwhile: the reload fails in one line and the current key stays.
    secrets.delete_secret(SecretId=SECRET, ForceDeleteWithoutRecovery=True)
    daemon.signal(signal.SIGHUP)
    line = daemon.wait_for_log(re.compile(r"error: Reload failed.*")).group(0)
    assert SECRET in line and "the previous key stays in use" in line
    assert verify_with_library(daemon.token_json("janedoe")["token"], second_pem_key).valid
    log = daemon.log()
    assert not [line for line in _key_lines(pem_key) + _key_lines(second_pem_key) if line in log]
    assert decode_unverified(rotated).header["kid"] != decode_unverified(token).header["kid"]


def test_missing_secret_and_unreachable_endpoint_are_one_line_start_errors(run_authserver, moto, tmp_path):
    environment = moto.environment()
    missing = run_authserver(*_aws_args(moto, "okera/no-such-key"), "-d", str(tmp_path / "tokens"),
                             "-g", str(os.getgid()), env=environment)
    assert missing.returncode == 2
    assert "secret okera/no-such-key does not exist in AWS Secrets Manager" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1 and "Traceback" not in missing.stderr

    # A password written into the endpoint's URL is left out of the message.
    unreachable = run_authserver("--private-key-secret-id", SECRET, "--aws-region", "us-east-1", "--aws-endpoint-url",
                                 "http://user:pw-in-url@127.0.0.1:9", "-d", str(tmp_path / "tokens"), "-g", str(os.getgid()),
                                 env=environment)
    assert unreachable.returncode == 2
    assert "AWS Secrets Manager at http://127.0.0.1:9 is unreachable" in unreachable.stderr
    assert "pw-in-url" not in unreachable.stderr
    assert len(unreachable.stderr.strip().splitlines()) == 1


def test_key_and_secret_id_together_are_refused(run_authserver, pem_key, moto):
    both = run_authserver("-k", str(pem_key), *_aws_args(moto), env=moto.environment())
    assert both.returncode == 2 and "not both" in both.stderr and "Traceback" not in both.stderr
