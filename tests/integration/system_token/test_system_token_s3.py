"""System tokens kept as S3 objects (Okera's EMR and non-Kubernetes deployments), rotated by the
system_token role against moto's server (a real local S3 and Secrets Manager API): versioned and
unversioned buckets, public keys as s3:// paths, a signing key read from Secrets Manager by
amazon.aws's lookup, and one inventory with a Kubernetes (sandbox) cluster beside S3 clusters."""
from __future__ import annotations

import threading
import time

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from okera_auth.module_utils import keys, tokens
from playbook_runs import CHECK, ROTATE, recap

pytestmark = pytest.mark.slow

SECRET_ID = "okera/jwt-signing"


def _lookup(endpoint: str) -> str:
    return ("{{ lookup('amazon.aws.secretsmanager_secret', '%s', endpoint_url='%s', region='us-east-1', "
            "access_key='testing-access-key', secret_key='testing-secret-key') }}" % (SECRET_ID, endpoint))


def _aws_options(moto) -> dict:
    return {"endpoint_url": moto.url, "region": "us-east-1", "access_key": "testing-access-key",
            "secret_key": "testing-secret-key"}


def _token(private_key, ttl: int, groups=("okera_admins",)) -> str:
    spec = tokens.TokenSpec(subject="okera_system_user", issuer="emr-issuer", groups=list(groups), ttl=ttl)
    return tokens.mint(tokens.Signer(private_key, "RS512"), spec).token


def _bucket(s3, name: str, versioned: bool) -> None:
    s3.create_bucket(Bucket=name)
    if versioned:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})


def _get(s3, bucket: str, key: str) -> str:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()


def _verifies(token: str, public_pem: bytes) -> bool:
    return tokens.verify(token, keys.load_public_keys(public_pem), ["RS512"], subject="okera_system_user").valid


def _assert_no_secret(output: str, private_pems, token_list) -> None:
    lines = {line for pem in private_pems for line in pem.decode().splitlines() if not line.startswith("-----")}
    assert not [line for line in lines if line in output], "private key text in the output"
    assert not [token for token in token_list if token.split(".")[2] in output], "a token in the output"


def _s3_host(moto, uri: str, public_keys, **more) -> dict:
    return dict({"system_token_kubernetes": False, "system_token_s3_objects": [uri], "system_token_public_keys": public_keys,
                 "system_token_aws": _aws_options(moto), "system_token_private_key_content": _lookup(moto.url)}, **more)


def test_s3_and_kubernetes_clusters_rotate_side_by_side_with_a_key_from_secrets_manager(
        make_sandbox, write_inventory, run_playbook, aws_env, moto, tmp_path):
    """Versioned bucket (previous version kept, public key as an s3:// path), unversioned bucket
    (backup copy), and a sandbox cluster: all signed with the key from Secrets Manager, -vvv clean;
    a second run changes nothing and the check playbook passes on all three."""
    sandbox = make_sandbox(token_ttl="2d")
    pem = sandbox.signing_key.read_bytes()
    public_pem = (sandbox.state_dir / "public-key.pem").read_bytes()
    private_key = load_pem_private_key(pem, None)
    s3 = moto.client("s3")
    moto.client("secretsmanager").create_secret(Name=SECRET_ID, SecretString=pem.decode())
    _bucket(s3, "okera-versioned", versioned=True)
    _bucket(s3, "okera-plain", versioned=False)
    s3.put_object(Bucket="okera-versioned", Key="keys/public.pem", Body=public_pem)
    old_versioned = _token(private_key, 2 * 86400)
    old_plain = _token(private_key, 3600)
    s3.put_object(Bucket="okera-versioned", Key="prod/system.token", Body=old_versioned.encode())
    s3.put_object(Bucket="okera-plain", Key="system.token", Body=old_plain.encode())
    old_sandbox = sandbox.secret_value()
    inventory = write_inventory({
        # Its token in the Secret and, as well, in an S3 object that does not exist yet.
        "sandbox": {"system_token_kubeconfig": str(sandbox.kubeconfig), "system_token_private_key_content": _lookup(moto.url),
                    "system_token_rest_check": False, "system_token_s3_objects": ["s3://okera-plain/sandbox/system.token"],
                    "system_token_aws": _aws_options(moto)},
        "emr-versioned": _s3_host(moto, "s3://okera-versioned/prod/system.token", ["s3://okera-versioned/keys/public.pem"]),
        "emr-plain": _s3_host(moto, "s3://okera-plain/system.token", [public_pem.decode()]),
    })

    done = run_playbook(ROTATE, "-i", str(inventory), "-vvv", env=aws_env)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-5000:]
    counters = recap(done.stdout)
    assert all(counters[host]["changed"] > 0 for host in ("sandbox", "emr-versioned", "emr-plain")), counters

    new_versioned = _get(s3, "okera-versioned", "prod/system.token")
    versions = s3.list_object_versions(Bucket="okera-versioned", Prefix="prod/system.token")["Versions"]
    assert len(versions) == 2
    previous = [version for version in versions if not version["IsLatest"]][0]
    assert s3.get_object(Bucket="okera-versioned", Key="prod/system.token",
                         VersionId=previous["VersionId"])["Body"].read().decode() == old_versioned
    assert "kept as version %s" % previous["VersionId"] in done.stdout

    new_plain = _get(s3, "okera-plain", "system.token")
    backups = [item["Key"] for item in s3.list_objects_v2(Bucket="okera-plain", Prefix="system.token")["Contents"]
               if item["Key"] != "system.token"]
    assert len(backups) == 1 and backups[0].startswith("system.token.backup-")
    assert _get(s3, "okera-plain", backups[0]) == old_plain

    new_sandbox = sandbox.secret_value()
    new_sandbox_s3 = _get(s3, "okera-plain", "sandbox/system.token")
    # Minted in the same second with the same claims, it may equal the Secret's token: both are fresh.
    assert _verifies(new_sandbox_s3, public_pem)
    assert tokens.decode_unverified(new_sandbox_s3).claims["exp"] - time.time() > 29.9 * 86400
    for old, new in ((old_versioned, new_versioned), (old_plain, new_plain), (old_sandbox, new_sandbox)):
        assert new != old and _verifies(new, public_pem)
        assert 29.9 * 86400 < tokens.decode_unverified(new).claims["exp"] - time.time() <= 30 * 86400
    assert tokens.decode_unverified(new_plain).claims["groups"] == ["okera_admins"]
    assert tokens.decode_unverified(new_plain).claims["iss"] == "emr-issuer"
    everything = [old_versioned, old_plain, old_sandbox, new_versioned, new_plain, new_sandbox, new_sandbox_s3]
    _assert_no_secret(output, [pem], everything)

    again = run_playbook(ROTATE, "-i", str(inventory), env=aws_env)
    assert again.returncode == 0, (again.stdout + again.stderr)[-4000:]
    assert all(counters["changed"] == 0 for counters in recap(again.stdout).values()), recap(again.stdout)
    assert len(s3.list_object_versions(Bucket="okera-versioned", Prefix="prod/system.token")["Versions"]) == 2

    checked = run_playbook(CHECK, "-i", str(inventory), env=aws_env)
    assert checked.returncode == 0, (checked.stdout + checked.stderr)[-4000:]
    assert all(counters["failed"] == 0 for counters in recap(checked.stdout).values()), checked.stdout[-3000:]
    assert len(recap(checked.stdout)) == 3
    for uri in ("s3://okera-plain/system.token", "s3://okera-versioned/prod/system.token", "s3://okera-plain/sandbox/system.token"):
        assert uri in checked.stdout


def test_s3_check_mode_writes_nothing_and_check_playbook_flags_an_expiring_object(
        write_inventory, run_playbook, aws_env, moto, rsa_private_key, rsa_key_pem, rsa_public_pem, key_dir):
    s3 = moto.client("s3")
    moto.client("secretsmanager").create_secret(Name=SECRET_ID, SecretString=rsa_key_pem.decode())
    _bucket(s3, "okera-emr", versioned=True)
    old = _token(rsa_private_key, 3600)
    s3.put_object(Bucket="okera-emr", Key="system.token", Body=old.encode())
    inventory = write_inventory({"emr": _s3_host(moto, "s3://okera-emr/system.token", [rsa_public_pem.decode()])})

    checked = run_playbook(CHECK, "-i", str(inventory), env=aws_env)
    assert checked.returncode != 0
    assert "s3://okera-emr/system.token" in checked.stdout and "expiring within 3d" in checked.stdout

    dry = run_playbook(ROTATE, "-i", str(inventory), "--check", "--diff", env=aws_env)
    assert dry.returncode == 0, (dry.stdout + dry.stderr)[-4000:]
    assert "s3://okera-emr/system.token would be replaced (check mode)" in dry.stdout
    assert len(s3.list_object_versions(Bucket="okera-emr")["Versions"]) == 1
    assert _get(s3, "okera-emr", "system.token") == old
    _assert_no_secret(dry.stdout + dry.stderr, [rsa_key_pem], [old])


def test_s3_errors_are_one_line_and_change_nothing(write_inventory, run_playbook, aws_env, moto, rsa_private_key,
                                                   rsa_key_pem, other_rsa_private_key):
    from cryptography.hazmat.primitives import serialization

    s3 = moto.client("s3")
    moto.client("secretsmanager").create_secret(Name=SECRET_ID, SecretString=rsa_key_pem.decode())
    _bucket(s3, "okera-emr", versioned=False)
    old = _token(rsa_private_key, 3600)
    s3.put_object(Bucket="okera-emr", Key="system.token", Body=old.encode())
    other_public = other_rsa_private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    missing = write_inventory({"emr": _s3_host(moto, "s3://no-such-bucket/system.token", [other_public])})
    done = run_playbook(ROTATE, "-i", str(missing), env=aws_env)
    assert done.returncode != 0
    assert "bucket no-such-bucket does not exist" in done.stdout and "Traceback" not in done.stdout + done.stderr

    # The cluster's public key is another key's: the new token would not verify; S3 is not touched.
    wrong_host = _s3_host(moto, "s3://okera-emr/system.token", [other_public], system_token_force=True,
                          system_token_groups=["okera_admins"])
    wrong = write_inventory({"emr": wrong_host})
    done = run_playbook(ROTATE, "-i", str(wrong), env=aws_env)
    assert done.returncode != 0
    assert "does not verify with the cluster's public key(s)" in done.stdout and "nothing was changed" in done.stdout, done.stdout[-3000:]
    assert [item["Key"] for item in s3.list_objects_v2(Bucket="okera-emr")["Contents"]] == ["system.token"]
    assert _get(s3, "okera-emr", "system.token") == old
    _assert_no_secret(done.stdout + done.stderr, [rsa_key_pem], [old])


def test_a_failed_s3_write_puts_the_objects_already_written_back(
        write_inventory, run_playbook, aws_env, moto, rsa_private_key, rsa_key_pem, rsa_public_pem):
    """Two objects: as soon as the first is replaced, another writer changes the second, whose
    write is then refused; the first gets its previous token back and the message says so."""
    s3 = moto.client("s3")
    moto.client("secretsmanager").create_secret(Name=SECRET_ID, SecretString=rsa_key_pem.decode())
    _bucket(s3, "okera-emr", versioned=True)
    first, second = _token(rsa_private_key, 3600), _token(rsa_private_key, 7200)
    s3.put_object(Bucket="okera-emr", Key="a.token", Body=first.encode())
    s3.put_object(Bucket="okera-emr", Key="b.token", Body=second.encode())
    host = _s3_host(moto, "s3://okera-emr/a.token", [rsa_public_pem.decode()])
    host["system_token_s3_objects"] = ["s3://okera-emr/a.token", "s3://okera-emr/b.token"]
    inventory = write_inventory({"emr": host})
    meanwhile = "written by someone else"
    stop = threading.Event()

    def other_writer() -> None:
        client = moto.client("s3")
        while not stop.is_set():
            if len(client.list_object_versions(Bucket="okera-emr", Prefix="a.token")["Versions"]) > 1:
                client.put_object(Bucket="okera-emr", Key="b.token", Body=meanwhile.encode())
                return
            time.sleep(0.02)

    writer = threading.Thread(target=other_writer)
    writer.start()
    try:
        done = run_playbook(ROTATE, "-i", str(inventory), env=aws_env)
    finally:
        stop.set()
        writer.join()
    assert done.returncode != 0
    assert "s3://okera-emr/b.token changed since it was read" in done.stdout, done.stdout[-3000:]
    assert "the previous token was put back in s3://okera-emr/a.token" in done.stdout, done.stdout[-3000:]
    assert _get(s3, "okera-emr", "a.token") == first
    assert _get(s3, "okera-emr", "b.token") == meanwhile
    # The replaced value stays as a version too: old, new, old again.
    assert len(s3.list_object_versions(Bucket="okera-emr", Prefix="a.token")["Versions"]) == 3
    _assert_no_secret(done.stdout + done.stderr, [rsa_key_pem], [first, second])
