"""Secret data helpers: hashes instead of values, and 0600 backups that restore by merge patch."""
from __future__ import annotations

import base64
import hashlib
import json
import os
import stat

from okera_auth.module_utils._k8s.secrets import SecretData, backup_file_name, value_hash, write_backup


def test_values_are_shown_as_sha256_only():
    assert value_hash(b"abc") == "sha256:" + hashlib.sha256(b"abc").hexdigest()
    assert value_hash(None) is None
    secret = SecretData("ns", "s", True, "1", "Opaque", {"A": b"x"})
    assert secret.hashes(["A", "B"]) == {"A": value_hash(b"x"), "B": None}


def test_backup_is_0600_in_a_0700_directory_and_is_a_restoring_merge_patch(tmp_path):
    directory = tmp_path / "backups"
    path = backup_file_name(str(directory), "okera", "secrets", "prod/cluster 1")
    assert os.path.basename(path).startswith("prod-cluster-1_okera_secrets_") and path.endswith(".json")
    current = SecretData("okera", "secrets", True, "7", "Opaque", {"SYSTEM_TOKEN_0": b"old.token.value", "OTHER": b"x"})
    write_backup(path, current, ["SYSTEM_TOKEN_0", "SYSTEM_TOKEN_1"])
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    document = json.load(open(path))
    assert document["metadata"] == {"name": "secrets", "namespace": "okera"}
    assert base64.b64decode(document["data"]["SYSTEM_TOKEN_0"]) == b"old.token.value"
    assert document["data"]["SYSTEM_TOKEN_1"] is None  # absent before: the merge patch removes it
    assert "OTHER" not in document["data"]
    assert os.listdir(directory) == [os.path.basename(path)]  # no temp file left
