"""Modules that often make no cluster call do not import the kubernetes library (half a second of
every run): a plan of tokens kept in S3, a REST check given its URL."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def _run(module: str, args: dict, tmp_path) -> tuple:
    """(result, the modules imported) of one module run as Ansible runs it: its own process."""
    args_file = tmp_path / "args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    code = ("import runpy, sys\n"
            "try:\n"
            "    runpy.run_module('ansible_collections.okera.auth.plugins.modules.%s', run_name='__main__')\n"
            "finally:\n"
            "    sys.stderr.write(repr(sorted(name for name in sys.modules if name.split('.')[0] == 'kubernetes')))\n"
            % module)
    result = subprocess.run([sys.executable, "-c", code, str(args_file)], capture_output=True, text=True,
                            timeout=60, check=False, env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    return json.loads(result.stdout), result.stderr


@pytest.mark.parametrize("module, args, expected", [
    ("system_token_plan", {"tokens": {}, "secret_keys": ["s3://bucket/system-token"], "algorithm": "RS512"},
     {"rotate_keys": ["s3://bucket/system-token"]}),
    ("okera_rest_check", {"url": "https://okera.example.com:8083/"},
     {"url": "https://okera.example.com:8083", "url_from": "given", "checked": False}),
])
def test_runs_without_importing_kubernetes(module, args, expected, tmp_path, rsa_public_pem):
    if module == "system_token_plan":
        args["public_key_content"] = [rsa_public_pem.decode()]
    result, imported = _run(module, args, tmp_path)
    assert not result.get("failed"), result
    assert {name: result[name] for name in expected} == expected
    assert imported == "[]"


def test_the_library_is_imported_when_a_cluster_call_is_made(tmp_path):
    # The control: the same module, asked to find the REST API from its Service, does import it
    # (and fails in one line: the kubeconfig does not exist).
    result, imported = _run("okera_rest_check", {"kubeconfig": str(tmp_path / "missing")}, tmp_path)
    assert result["failed"] and result["msg"].startswith("cannot find the Okera REST API: ")
    assert "\n" not in result["msg"]
    assert "'kubernetes'" in imported
