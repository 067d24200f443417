"""The S3 store (module_utils/_aws/s3.py) and the modules s3_object_data / s3_object_data_info
against moto's server: reads, versioned and unversioned backups, check mode, diff, conflicts and
one-line errors that never carry an object's content."""
from __future__ import annotations

import json

import pytest

from okera_auth.module_utils._aws.s3 import S3Error, S3Store, content_hash, parse_s3_uri

TOKEN = "eyJhbGciOiJSUzUxMiJ9.eyJzdWIiOiJva2VyYV9zeXN0ZW1fdXNlciJ9.a-token-that-must-not-leak"
NEWER = "eyJhbGciOiJSUzUxMiJ9.eyJzdWIiOiJva2VyYV9zeXN0ZW1fdXNlciJ9.a-newer-token-that-must-not-leak"


@pytest.fixture
def store(moto) -> S3Store:
    return S3Store(endpoint_url=moto.url, region="us-east-1", access_key="testing-access-key", secret_key="testing-secret-key")


@pytest.fixture
def aws(moto) -> dict:
    return {"endpoint_url": moto.url, "region": "us-east-1", "access_key": "testing-access-key", "secret_key": "testing-secret-key"}


@pytest.fixture
def s3(moto):
    client = moto.client("s3")
    client.create_bucket(Bucket="versioned")
    client.put_bucket_versioning(Bucket="versioned", VersioningConfiguration={"Status": "Enabled"})
    client.create_bucket(Bucket="plain")
    return client


def _modules():
    from ansible_collections.okera.auth.plugins.modules import s3_object_data, s3_object_data_info
    return s3_object_data, s3_object_data_info


@pytest.mark.parametrize("uri", ["", "s3://", "s3://bucket", "s3://bucket/", "https://bucket/key", "s3://UPPER/key", None])
def test_bad_uris_are_refused_in_one_line(uri):
    with pytest.raises(S3Error, match="is not an S3 object URI"):
        parse_s3_uri(uri)


def test_missing_object_reads_as_absent_and_missing_bucket_is_an_error(store, s3):
    assert not store.read(parse_s3_uri("s3://plain/nothing")).exists
    with pytest.raises(S3Error, match="^cannot read s3://no-bucket/key: bucket no-bucket does not exist$"):
        store.read(parse_s3_uri("s3://no-bucket/key"))


def test_versioned_write_keeps_the_previous_version(store, s3):
    location = parse_s3_uri("s3://versioned/system.token")
    first = store.write(location, TOKEN)
    previous = store.read(location)
    assert previous.content == TOKEN and previous.version_id == first.version_id
    second = store.write(location, NEWER, previous)
    assert second.backup_version_id == first.version_id and second.backup_uri is None
    assert second.sha256 == content_hash(NEWER) and store.read(location).content == NEWER
    old = s3.get_object(Bucket="versioned", Key="system.token", VersionId=first.version_id)["Body"].read().decode()
    assert old == TOKEN


def test_unversioned_write_copies_the_previous_value_first(store, s3):
    location = parse_s3_uri("s3://plain/dir/system.token")
    store.write(location, TOKEN)
    written = store.write(location, NEWER, store.read(location), backup_suffix=".bak")
    assert written.backup_uri == "s3://plain/dir/system.token.bak" and written.version_id is None
    assert s3.get_object(Bucket="plain", Key="dir/system.token.bak")["Body"].read().decode() == TOKEN
    assert store.read(location).content == NEWER


def test_unreachable_endpoint_is_one_line_without_content():
    store = S3Store(endpoint_url="http://127.0.0.1:9", region="us-east-1", access_key="a", secret_key="b")
    with pytest.raises(S3Error) as raised:
        store.write(parse_s3_uri("s3://plain/system.token"), TOKEN)
    message = str(raised.value)
    assert "S3 endpoint http://127.0.0.1:9 is unreachable" in message and "\n" not in message and TOKEN not in message


def test_module_check_mode_diff_then_write_then_unchanged(run_module, aws, s3):
    write, info = _modules()
    args = dict(aws, uri="s3://versioned/system.token", content=TOKEN)
    result, failed = run_module(write, args, check_mode=True, diff=True)
    assert not failed and result["changed"] and result["diff"]["before"]["sha256"] is None
    assert result["diff"]["after"]["sha256"] == content_hash(TOKEN)
    assert "Contents" not in s3.list_objects_v2(Bucket="versioned")

    result, failed = run_module(write, args)
    assert not failed and result["changed"] and result["version_id"]
    again, failed = run_module(write, args)
    assert not failed and not again["changed"]

    replaced, failed = run_module(write, dict(args, content=NEWER, expected_sha256=content_hash(TOKEN)), diff=True)
    assert not failed and replaced["changed"] and replaced["backup_version_id"] == result["version_id"]
    for shown in (result, again, replaced):
        assert TOKEN not in json.dumps(shown) and NEWER not in json.dumps(shown)

    read, failed = run_module(info, dict(aws, uris=["s3://versioned/system.token", "s3://plain/none"], return_content=True,
                                         fail_on_missing=False))
    assert not failed and read["data"] == {"s3://versioned/system.token": NEWER}
    assert read["missing"] == ["s3://plain/none"] and read["versioning"] == {"plain": False, "versioned": True}
    hidden, failed = run_module(info, dict(aws, uris=["s3://versioned/system.token"]))
    assert not failed and "data" not in hidden and hidden["hashes"]["s3://versioned/system.token"] == content_hash(NEWER)


def test_module_refuses_to_overwrite_what_another_writer_changed(run_module, aws, s3):
    write, _info = _modules()
    s3.put_object(Bucket="plain", Key="system.token", Body=NEWER.encode())
    result, failed = run_module(write, dict(aws, uri="s3://plain/system.token", content=TOKEN, expected_sha256="absent"))
    assert failed and "changed since it was read" in result["msg"] and "nothing was written" in result["msg"]
    assert s3.get_object(Bucket="plain", Key="system.token")["Body"].read().decode() == NEWER
    assert NEWER not in result["msg"]
