"""The roles' preflights against hostile variables, in one ansible-playbook run (check mode): a value
that would break out of the systemd unit or the tmpfiles.d entry, place a file elsewhere, or is no
duration fails in one line naming its variable, before anything is done on the node or the cluster."""
from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

PLAYBOOK = Path(__file__).resolve().parent / "playbooks" / "roles_hostile_variables.yml"
# A cluster the system token role would read from: never reached, as the preflight fails first.
CLUSTER = {"system_token_kubernetes": False, "system_token_s3_objects": ["s3://okera-tokens/system.token"],
           "system_token_public_keys": ["unused"], "system_token_private_key_content": "unused"}
CRONJOB = {"system_token_cronjob_image": "registry.example.com/okera-auth-rotation:1",
           "system_token_cronjob_output_dir": "rendered", "system_token_public_keys": ["unused"],
           "system_token_private_key_secret": {"name": "okera-signing-key", "key": "private.pem"}}
PASTED_KEY = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIOkwkRxqu6nD6sFoiUmBvQ9kZsJ6nKLmXGkCDgN8qOjX\n-----END PRIVATE KEY-----"

# host: (role group, the hostile variables, the variable the failure must name)
HOSTS = {
    "unit_name_traversal": ("authservers", {"authserver_service_name": "../../../tmp/okera-x"}, "authserver_service_name"),
    "token_dir_newline": ("authservers", {"authserver_token_dir": "/srv/tokens\nR! /etc - - - -"}, "authserver_token_dir"),
    "unit_name_trailing_newline": ("authservers", {"authserver_service_name": "okera-authserver\n"}, "authserver_service_name"),
    "python_with_arguments": ("authservers", {"authserver_python": "/usr/bin/python3 -c import os"}, "authserver_python"),
    "install_dir_specifier": ("authservers", {"authserver_install_dir": "/opt/okera%n"}, "authserver_install_dir"),
    "token_dir_mode_newline": ("authservers", {"authserver_token_dir_mode": "0750\nR /"}, "authserver_token_dir_mode"),
    "user_with_space": ("authservers", {"authserver_user": "okera root"}, "authserver_user"),
    "socket_traversal": ("authservers", {"authserver_unix_socket": "/run/okera/../sock"}, "authserver_unix_socket"),
    "network_newline": ("authservers", {"authserver_private_key_secret_id": "okera/key",
                                        "authserver_aws_allowed_networks": ["10.0.0.0/8\nExecStartPre=+/bin/id"]},
                        "authserver_aws_allowed_networks"),
    "ttl_superscript": ("clusters", dict(CLUSTER, system_token_ttl="²"), "system_token_ttl"),
    "s3_key_newline": ("clusters", dict(CLUSTER, system_token_s3_objects=["s3://okera-tokens/system.token\nx"]),
                       "system_token_s3_objects"),
    "ttl_shorter_than_threshold": ("clusters", dict(CLUSTER, system_token_ttl="1d", system_token_rotate_before="7d"),
                                   "system_token_ttl"),
    "two_signing_keys": ("clusters", dict(CLUSTER, system_token_private_key_path="/etc/okera/key.pem"),
                         "system_token_private_key_path"),
    "rotate_before_overflow": ("clusters", dict(CLUSTER, system_token_rotate_before="99999999999999999999d"),
                               "system_token_rotate_before"),
    # Resolved on the controller to a text holding Jinja (as a value read from a file would be), which the
    # rotation's pod would evaluate from its inventory.
    "cronjob_jinja_value": ("cronjobs", dict(CRONJOB, system_token_subject="{{ '{{' }} lookup('pipe', 'id') }}"),
                            "system_token_subject"),
    "key_text_as_path": ("signing_keys", {"signing_key_store": "file", "signing_key_private_key_path": PASTED_KEY},
                         "signing_key_private_key_path"),
    "key_size_weak": ("signing_keys", {"signing_key_store": "file", "signing_key_private_key_path": "/nonexistent",
                                       "signing_key_size": 1024}, "signing_key_size"),
    "grace_period_nan": ("signing_keys", {"signing_key_store": "file", "signing_key_private_key_path": "/nonexistent",
                                          "signing_key_grace_period": "NaN"}, "signing_key_grace_period"),
}


def _inventory(tmp_path: Path) -> Path:
    groups: dict = {}
    for host, (group, variables, _name) in HOSTS.items():
        groups.setdefault(group, {"hosts": {}})["hosts"][host] = variables
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump({"all": {"vars": {"ansible_connection": "local"}, "children": groups}}))
    return path


def _failures(stdout: str) -> dict:
    """host -> the message of its failed task, from the default callback's lines."""
    found = {}
    for host, result in re.findall(r"^(?:fatal|failed): \[([^\]]+)\].*? => (\{.*\})$", stdout, re.MULTILINE):
        found.setdefault(host, json.loads(result)["msg"])
    return found


def test_hostile_variables_fail_in_the_preflight_naming_the_variable(run_playbook, tmp_path):
    done = run_playbook(PLAYBOOK, "-i", str(_inventory(tmp_path)), "--check")
    failures = _failures(done.stdout)
    assert done.returncode == 2, done.stdout[-3000:]
    for host, (_group, _variables, name) in HOSTS.items():
        message = failures.get(host)
        assert message is not None, "%s did not fail:\n%s" % (host, done.stdout[-3000:])
        assert name in message and "\n" not in message and "Traceback" not in message, (host, message)
        assert "BEGIN" not in message and "MC4CAQAw" not in message, (host, message)
        # Only the variable at fault (and one it must agree with) is named, not every rule of the role.
        assert len(set(re.findall(r"\b(?:authserver|system_token|signing_key)_\w+", message)) - {name}) <= 2, (host, message)
        assert re.search(r"^%s\s*:.*\bchanged=0\b.*\bfailed=1\b" % host, done.stdout, re.MULTILINE), host
    assert not (tmp_path / "rendered").exists()
