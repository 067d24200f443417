"""The rotation proves the cluster works: Okera's REST API must list the databases with the new token."""
from __future__ import annotations

import base64
import hashlib
import json
import time
import urllib.request

import pytest

from playbook_runs import ROTATE, recap

pytestmark = pytest.mark.slow


def _output(done) -> str:
    return done.stdout + done.stderr


def _failure_line(output: str, host: str = "sandbox") -> str:
    lines = [line for line in output.splitlines() if line.startswith("fatal: [%s]" % host)]
    return lines[-1] if lines else ""


def _all_ready_with(sandbox, token: str) -> bool:
    """Every pod is ready and started with ``token``."""
    status = sandbox.status()
    digest = hashlib.sha256(token.encode()).hexdigest()
    return (status["pods_total"] > 0 and status["pods_ready"] == status["pods_total"]
            and all(pod["token_sha256"] == digest for pod in status["pods"]))


def _databases(url: str, token: str) -> list:
    request = urllib.request.Request(url + "/api/databases", headers={"Authorization": "Bearer " + token})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_the_rotation_ends_by_listing_the_databases_with_the_new_token(make_sandbox, write_inventory, run_playbook):
    sandbox = make_sandbox(token_ttl="2d")
    inventory = write_inventory({"sandbox": sandbox})
    done = run_playbook(ROTATE, "-i", str(inventory))
    assert done.returncode == 0, _output(done)[-4000:]
    new = sandbox.secret_value()
    assert "SYSTEM_TOKEN_0: %s knows the token as okera_system_user and lists 3 database(s) " \
           "(default, okera_sample, okera_system)" % sandbox.rest_url in done.stdout
    assert _all_ready_with(sandbox, new)
    assert "okera_system" in _databases(sandbox.rest_url, new)


def test_a_cluster_that_refuses_the_new_token_gets_the_old_one_back(make_sandbox, write_inventory, run_playbook):
    sandbox = make_sandbox(token_ttl="2d")
    old = sandbox.secret_value()
    # The pods start with any good token, but the REST service refuses tokens issued from now on.
    sandbox.set_fault(restRejectsTokensIssuedAfter=str(int(time.time())))
    time.sleep(1.1)
    inventory = write_inventory({"sandbox": sandbox}, system_token_rest_wait_timeout=5)
    done = run_playbook(ROTATE, "-i", str(inventory))
    assert done.returncode != 0
    failure = _failure_line(done.stdout)
    assert "Ask Okera's REST API for the databases with the token(s), at %s" % sandbox.rest_url in failure
    assert "/api/get-user answered 401" in failure and "restRejectsTokensIssuedAfter" in failure
    assert "the previous token(s) were put back" in failure
    assert sandbox.secret_value() == old
    sandbox.wait_until_ready()
    assert _all_ready_with(sandbox, old)


def test_a_cluster_without_a_findable_rest_api_fails_before_any_change_unless_told(
        make_sandbox, write_inventory, run_playbook):
    sandbox = make_sandbox(token_ttl="2d")
    old, version = sandbox.secret_value(), sandbox.secret().metadata.resource_version
    rest_url = sandbox.rest_url
    # Reached through an ingress of its own, say: the Service has no load balancer to find it by.
    sandbox.core().patch_namespaced_service("cdas-rest-server", "default", {"spec": {"type": "ClusterIP"}})
    inventory = write_inventory({"sandbox": sandbox})

    done = run_playbook(ROTATE, "-i", str(inventory))
    assert done.returncode != 0 and recap(done.stdout)["sandbox"]["changed"] == 0
    failure = _failure_line(done.stdout)
    assert "system_token_rest_url" in failure and "system_token_rest_check false" in failure
    assert "nothing has been changed" in failure
    assert "Service default/cdas-rest-server is of type ClusterIP, not LoadBalancer" in failure
    assert sandbox.secret_value() == old and sandbox.secret().metadata.resource_version == version

    given = run_playbook(ROTATE, "-i", str(inventory), "-e", "system_token_rest_url=%s/" % rest_url)
    assert given.returncode == 0, _output(given)[-4000:]
    assert "%s knows the token as okera_system_user" % rest_url in given.stdout
    rotated = sandbox.secret_value()
    assert rotated != old

    unchecked = run_playbook(ROTATE, "-i", str(inventory), "-e", "system_token_force=true",
                             "-e", "system_token_rest_check=false")
    assert unchecked.returncode == 0, _output(unchecked)[-4000:]
    assert "knows the token as" not in unchecked.stdout
    assert sandbox.secret_value() != rotated


def test_check_mode_finds_the_rest_api_but_asks_it_nothing(make_sandbox, write_inventory, run_playbook):
    sandbox = make_sandbox(token_ttl="2d")
    inventory = write_inventory({"sandbox": sandbox})
    done = run_playbook(ROTATE, "-i", str(inventory), "--check")
    assert done.returncode == 0, _output(done)[-4000:]
    assert "Find the Okera REST API" in done.stdout and "knows the token as" not in done.stdout


def test_groups_without_a_catalog_admin_are_refused_before_the_patch(
        make_sandbox, write_inventory, run_playbook, tmp_path):
    sandbox = make_sandbox(token_ttl="2d")
    old, version = sandbox.secret_value(), sandbox.secret().metadata.resource_version
    inventory = write_inventory({"sandbox": sandbox})
    done = run_playbook(ROTATE, "-i", str(inventory), "-e", '{"system_token_groups": ["not_an_admin_group"]}')
    assert done.returncode != 0 and recap(done.stdout)["sandbox"]["changed"] == 0
    failure = _failure_line(done.stdout)
    assert "the new token's groups (not_an_admin_group, from system_token_groups) include none of the cluster's " \
           "catalog admins (okera_catalog_admins, from CATALOG_ADMINS of Secret default/okera-config)" in failure
    assert "set system_token_groups" in failure and "nothing has been changed" in failure
    assert sandbox.secret_value() == old and sandbox.secret().metadata.resource_version == version
    assert not (tmp_path / "backups").exists()


def test_a_token_the_cluster_did_not_sign_lends_no_groups(make_sandbox, write_inventory, run_playbook,
                                                          other_rsa_private_key):
    from okera_auth.module_utils import tokens

    sandbox = make_sandbox(token_ttl="2d")
    planted = tokens.mint(tokens.Signer(other_rsa_private_key, "RS512"), tokens.TokenSpec(
        subject="okera_system_user", issuer="planted", groups=["planted_admins"], ttl=86400)).token
    sandbox.core().patch_namespaced_secret("secrets", "default", {"data": {
        "SYSTEM_TOKEN_0": base64.b64encode(planted.encode()).decode()}})
    inventory = write_inventory({"sandbox": sandbox})
    done = run_playbook(ROTATE, "-i", str(inventory))
    assert done.returncode == 0, _output(done)[-4000:]
    assert "does not verify with the cluster key" in done.stdout
    claims = tokens.decode_unverified(sandbox.secret_value()).claims
    assert claims["groups"] == ["okera_catalog_admins"], "the catalog admins, not the planted groups"
    assert "iss" not in claims


def test_delete_pods_waits_only_for_pods_something_recreates(make_sandbox, write_inventory, run_playbook):
    sandbox = make_sandbox(token_ttl="2d")
    bare = sandbox.core().create_namespaced_pod("default", {"metadata": {"name": "debug-shell"}, "spec": {
        "containers": [{"name": "shell", "image": "busybox:1.36"}]}})
    sandbox.wait_until_ready()
    inventory = write_inventory({"sandbox": sandbox}, system_token_restart_mode="delete_pods")
    done = run_playbook(ROTATE, "-i", str(inventory))
    # Waiting for the bare pod's replacement would run out system_token_wait_timeout and roll back.
    assert done.returncode == 0, _output(done)[-4000:]
    assert "pod default/debug-shell left alone: no controller recreates it" in _output(done)
    assert sandbox.core().read_namespaced_pod("debug-shell", "default").metadata.uid == bare.metadata.uid
    new = sandbox.secret_value()
    status = sandbox.status()
    digest = hashlib.sha256(new.encode()).hexdigest()
    assert all(pod["token_sha256"] == digest for pod in status["pods"] if pod["name"] != "debug-shell")


def test_a_key_setting_that_names_a_file_says_so_in_one_line(make_sandbox, write_inventory, run_playbook, tmp_path):
    sandbox = make_sandbox(token_ttl="2d")
    old = sandbox.secret_value()
    # Okera reads the key from where JWT_PUBLIC_KEY says (so does the sandbox, for local files).
    key_file = tmp_path / "jwt-public.pem"
    key_file.write_text((sandbox.state_dir / "public-key.pem").read_text())
    sandbox.core().patch_namespaced_secret("okera-config", "default", {"data": {
        "JWT_PUBLIC_KEY": base64.b64encode(str(key_file).encode()).decode()}})
    inventory = write_inventory({"sandbox": sandbox})
    done = run_playbook(ROTATE, "-i", str(inventory))
    assert done.returncode != 0 and recap(done.stdout)["sandbox"]["changed"] == 0
    failure = _failure_line(done.stdout)
    assert "Secret default/okera-config JWT_PUBLIC_KEY names where Okera reads the key (%s), not the key itself: " \
           "give the key's PEM text in system_token_public_keys" % key_file in failure
    assert "groups" not in failure and sandbox.secret_value() == old
    given = run_playbook(ROTATE, "-i", str(inventory), "-e", json.dumps(
        {"system_token_public_keys": [key_file.read_text()]}))
    assert given.returncode == 0, _output(given)[-4000:]
    assert sandbox.secret_value() != old
    assert "knows the token as okera_system_user" in given.stdout
