"""The module secretsmanager_secret_stages against moto's server: the staging labels of the signing-key
store (generate, promote, restore, discard_previous) as Secrets Manager moves them, check mode that
predicts without writing, and one-line errors that never carry a value."""
from __future__ import annotations

import json

import pytest

OLD = "-----BEGIN PRIVATE KEY-----\nthe-old-key-that-must-not-leak\n-----END PRIVATE KEY-----\n"
NEW = "-----BEGIN PRIVATE KEY-----\nthe-new-key-that-must-not-leak\n-----END PRIVATE KEY-----\n"
SECRET = "okera/jwt-signing"


@pytest.fixture
def aws(moto) -> dict:
    return {"endpoint_url": moto.url, "region": "us-east-1", "access_key": "testing-access-key", "secret_key": "testing-secret-key"}


@pytest.fixture
def secrets(moto):
    client = moto.client("secretsmanager")
    client.create_secret(Name=SECRET, SecretString=OLD)
    return client


def _module():
    from ansible_collections.okera.auth.plugins.modules import secretsmanager_secret_stages
    return secretsmanager_secret_stages


def _labels(secrets) -> dict:
    """Label -> (version id, value) as Secrets Manager holds them."""
    found = {}
    for version in secrets.list_secret_version_ids(SecretId=SECRET)["Versions"]:
        value = secrets.get_secret_value(SecretId=SECRET, VersionId=version["VersionId"])["SecretString"]
        for label in version.get("VersionStages", []):
            found[label] = (version["VersionId"], value)
    return found


def test_the_store_actions_move_labels_as_secrets_managers_rotation_does(run_module, aws, secrets):
    module = _module()

    def stages(**wanted):
        return dict(aws, secret_id=SECRET, stages=wanted)

    original = _labels(secrets)["AWSCURRENT"][0]
    results = []

    def run(args, **options):
        result, failed = run_module(module, args, **options)
        assert not failed, result
        results.append(result)
        return result

    # generate: the new key as a new version labelled AWSPENDING; check mode predicts and writes nothing.
    predicted = run(stages(AWSPENDING=NEW), check_mode=True, diff=True)
    assert predicted["changed"] and "AWSPENDING" in predicted["diff"]["after"] and "AWSPENDING" not in _labels(secrets)
    assert run(stages(AWSPENDING=NEW))["changed"]
    assert not run(stages(AWSPENDING=NEW))["changed"], "a label already on the value is left alone"
    pending = _labels(secrets)["AWSPENDING"]
    assert pending[1] == NEW and _labels(secrets)["AWSCURRENT"] == (original, OLD)

    # promote: AWSCURRENT to the pending version; Secrets Manager labels the old one AWSPREVIOUS.
    promote = stages(AWSCURRENT=NEW, AWSPENDING=None)
    predicted = run(promote, check_mode=True)
    promoted = run(promote)
    assert predicted["stages"] == promoted["stages"], "check mode predicts what Secrets Manager does"
    assert _labels(secrets) == {"AWSCURRENT": pending, "AWSPREVIOUS": (original, OLD)}

    # restore (a failed switch): AWSCURRENT back to the very version that was current, the new key pending.
    run(stages(AWSCURRENT=OLD, AWSPENDING=NEW, AWSPREVIOUS=None))
    assert _labels(secrets) == {"AWSCURRENT": (original, OLD), "AWSPENDING": pending}

    # discard_previous (retire), after a promotion again.
    run(promote)
    run(stages(AWSPREVIOUS=None))
    assert _labels(secrets) == {"AWSCURRENT": pending}
    for result in results:
        assert "must-not-leak" not in json.dumps(result)


@pytest.mark.parametrize("secret_id, endpoint, expected", [
    ("okera/no-such-secret", None, "secret okera/no-such-secret: it does not exist"),
    (SECRET, "http://127.0.0.1:9", "endpoint http://127.0.0.1:9 is unreachable"),
])
def test_missing_secret_and_unreachable_endpoint_are_one_line_errors(run_module, aws, secrets, secret_id, endpoint, expected):
    args = dict(aws, secret_id=secret_id, stages={"AWSPENDING": NEW})
    if endpoint:
        args["endpoint_url"] = endpoint
    result, failed = run_module(_module(), args)
    assert failed and expected in result["msg"] and "\n" not in result["msg"]
    assert "must-not-leak" not in json.dumps(result) and "AWSPENDING" not in _labels(secrets)


def test_awscurrent_cannot_be_removed(run_module, aws, secrets):
    result, failed = run_module(_module(), dict(aws, secret_id=SECRET, stages={"AWSCURRENT": None}))
    assert failed and "AWSCURRENT cannot be null" in result["msg"]
