"""rotate_system_token.yml against sandbox clusters: real ansible-playbook runs, real API calls."""
from __future__ import annotations

import base64
import json
import os
import ssl
import stat
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml
from cryptography.hazmat.primitives import serialization

from okera_auth.module_utils import keys, tokens
from playbook_runs import ROTATE, recap

pytestmark = pytest.mark.slow


def _claims(token: str) -> dict:
    return tokens.decode_unverified(token).claims


def _all_ready(sandbox) -> bool:
    status = sandbox.status()
    return status["pods_total"] > 0 and status["pods_ready"] == status["pods_total"]


def _verifies_with_cluster_key(sandbox, token: str) -> bool:
    entries = keys.load_public_keys((sandbox.state_dir / "public-key.pem").read_bytes())
    return tokens.verify(token, entries, ["RS512"], subject="okera_system_user").valid


def _output(done) -> str:
    return done.stdout + done.stderr


def _assert_nothing_secret_in(output: str, token: str, *key_files) -> None:
    """Neither the token (as text or as the Secret's base64) nor any key line appears."""
    secrets = {"token signature": token.split(".")[2], "token base64": base64.b64encode(token.encode()).decode()[20:80]}
    for key_file in key_files:
        secrets.update(("%s line %d" % (key_file.name, number), line)
                       for number, line in enumerate(key_file.read_text().splitlines()[1:-1]))
    leaked = [what for what, value in secrets.items() if value in output]
    assert not leaked, leaked


def test_expiring_token_is_rotated_then_a_second_run_changes_nothing(make_sandbox, write_inventory, run_playbook, tmp_path):
    sandbox = make_sandbox(token_ttl="2d")
    old = sandbox.secret_value()
    inventory = write_inventory({"sandbox": sandbox})

    done = run_playbook(ROTATE, "-i", str(inventory))
    assert done.returncode == 0, _output(done)[-4000:]
    new = sandbox.secret_value()
    assert new != old and _verifies_with_cluster_key(sandbox, new)
    claims = _claims(new)
    assert claims["sub"] == "okera_system_user"
    assert claims["iss"] == _claims(old)["iss"] and claims["groups"] == _claims(old)["groups"]
    assert 29.9 * 86400 < claims["exp"] - time.time() <= 30 * 86400
    assert _all_ready(sandbox)
    assert all(sandbox.restart_annotations().values()), "every workload was restarted"
    backups = list((tmp_path / "backups").iterdir())
    assert len(backups) == 1 and stat.S_IMODE(backups[0].stat().st_mode) == 0o600
    assert base64.b64decode(json.loads(backups[0].read_text())["data"]["SYSTEM_TOKEN_0"]).decode() == old
    assert "expires within 7d: rotate" in done.stdout

    version = sandbox.secret().metadata.resource_version
    again = run_playbook(ROTATE, "-i", str(inventory))
    assert again.returncode == 0, _output(again)[-4000:]
    assert recap(again.stdout)["sandbox"]["changed"] == 0
    assert sandbox.secret().metadata.resource_version == version
    assert "more than 7d left: keep" in again.stdout


def test_force_rotates_a_fresh_token_by_fqcn(make_sandbox, write_inventory, run_playbook):
    sandbox = make_sandbox(token_ttl="30d")
    old = sandbox.secret_value()
    inventory = write_inventory({"sandbox": sandbox})
    pods_before = {pod.metadata.uid for pod in sandbox.core().list_namespaced_pod("default").items}
    done = run_playbook("okera.auth.rotate_system_token", "-i", str(inventory), "-e", "system_token_force=true",
                        "-e", '{"system_token_groups": ["okera_catalog_admins", "ops"]}', "-e", "system_token_issuer=prod",
                        "-e", "system_token_restart_mode=delete_pods")
    assert done.returncode == 0, _output(done)[-4000:]
    new = sandbox.secret_value()
    assert new != old and _verifies_with_cluster_key(sandbox, new)
    assert _claims(new)["groups"] == ["okera_catalog_admins", "ops"] and _claims(new)["iss"] == "prod"
    assert _all_ready(sandbox)
    pods_after = {pod.metadata.uid for pod in sandbox.core().list_namespaced_pod("default").items}
    assert pods_after and not pods_after & pods_before, "every pod was replaced"
    assert not any(sandbox.restart_annotations().values()), "delete_pods mode does not roll out"


def test_several_token_keys_and_a_signing_key_kept_in_a_secret(make_sandbox, write_inventory, run_playbook):
    sandbox = make_sandbox(token_ttl="30d")
    old = sandbox.secret_value()
    sandbox.core().create_namespaced_secret("default", {"metadata": {"name": "jwt-signing"}, "data": {
        "private.pem": base64.b64encode(sandbox.signing_key.read_bytes()).decode()}})
    inventory = write_inventory({"sandbox": {
        "system_token_kubeconfig": str(sandbox.kubeconfig),
        "system_token_private_key_secret": {"name": "jwt-signing", "key": "private.pem"},
        "system_token_secret_keys": ["SYSTEM_TOKEN_0", "SYSTEM_TOKEN_1"]}})
    done = run_playbook(ROTATE, "-i", str(inventory))
    assert done.returncode == 0, _output(done)[-4000:]
    assert "SYSTEM_TOKEN_0: sub=okera_system_user" in done.stdout and "more than 7d left: keep" in done.stdout
    assert "SYSTEM_TOKEN_1: sub=- iss=- expires - (- days left), missing: rotate" in done.stdout
    assert sandbox.secret_value() == old, "the fresh token is kept"
    added = sandbox.secret_value("SYSTEM_TOKEN_1")
    assert _verifies_with_cluster_key(sandbox, added)
    # Issuer and groups come from the token that is there.
    assert {name: _claims(added)[name] for name in ("sub", "iss", "groups")} == {
        name: _claims(old)[name] for name in ("sub", "iss", "groups")}


def test_check_mode_reports_and_changes_nothing(make_sandbox, write_inventory, run_playbook, tmp_path):
    sandbox = make_sandbox(token_ttl="2d")
    version = sandbox.secret().metadata.resource_version
    inventory = write_inventory({"sandbox": sandbox})
    done = run_playbook(ROTATE, "-i", str(inventory), "--check", "--diff")
    assert done.returncode == 0, _output(done)[-4000:]
    assert "expires within 7d: rotate" in done.stdout
    assert recap(done.stdout)["sandbox"]["changed"] >= 2  # the patch and the restart it would do
    assert sandbox.secret().metadata.resource_version == version
    assert not any(sandbox.restart_annotations().values())
    assert not (tmp_path / "backups").exists()


def test_token_signed_with_another_key_is_refused_before_anything_changes(
        make_sandbox, write_inventory, run_playbook, tmp_path, other_rsa_private_key):
    sandbox = make_sandbox(token_ttl="2d")
    old, version = sandbox.secret_value(), sandbox.secret().metadata.resource_version
    wrong_key = tmp_path / "wrong.pem"
    wrong_key.write_bytes(other_rsa_private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    inventory = write_inventory({"sandbox": {"system_token_kubeconfig": str(sandbox.kubeconfig),
                                             "system_token_private_key_path": str(wrong_key)}})
    done = run_playbook(ROTATE, "-i", str(inventory), "-vvv")
    assert done.returncode != 0
    _assert_nothing_secret_in(_output(done), old, wrong_key)
    assert "does not verify with the cluster's public key(s)" in done.stdout
    assert "(the signature does not verify with any of the " in done.stdout, "the reason is given"
    assert "nothing was changed" in done.stdout
    assert recap(done.stdout)["sandbox"]["changed"] == 0, "minting in memory is no change"
    assert sandbox.secret_value() == old and sandbox.secret().metadata.resource_version == version
    assert not any(sandbox.restart_annotations().values())


def test_pods_that_never_become_ready_bring_the_old_token_back(make_sandbox, write_inventory, run_playbook):
    sandbox = make_sandbox(token_ttl="2d")
    old = sandbox.secret_value()
    # The simulated services reject any token issued from now on: the new one, not the old one.
    sandbox.set_fault(rejectTokensIssuedAfter=str(int(time.time())))
    time.sleep(1.1)
    inventory = write_inventory({"sandbox": sandbox}, system_token_wait_timeout=8)
    done = run_playbook(ROTATE, "-i", str(inventory), "-vvv")
    assert done.returncode != 0
    _assert_nothing_secret_in(_output(done), old, sandbox.signing_key)
    assert "not ready after" in done.stdout
    assert "the previous token(s) were put back" in done.stdout
    assert "and the workloads restarted with them" in done.stdout
    assert sandbox.secret_value() == old
    assert _all_ready(sandbox)


def test_a_token_changed_meanwhile_by_someone_else_is_not_marked_done_but_rolled_back(
        make_sandbox, write_inventory, run_playbook):
    sandbox = make_sandbox(token_ttl="2d")
    old = sandbox.secret_value()
    signer = tokens.Signer(keys.load_private_key_file(str(sandbox.signing_key)))
    # A token the cluster accepts as well (the old one's issuer and catalog-admin groups).
    theirs = tokens.mint(signer, tokens.TokenSpec(subject="okera_system_user", issuer=_claims(old).get("iss"),
                                                  groups=_claims(old)["groups"], ttl=3600)).token
    stop = threading.Event()

    def other_writer() -> None:
        # As soon as the rotation's patch is stored, another writer puts its own token in.
        while not stop.is_set():
            if sandbox.secret_value() != old:
                sandbox.core().patch_namespaced_secret("secrets", "default", {"data": {
                    "SYSTEM_TOKEN_0": base64.b64encode(theirs.encode()).decode()}})
                return
            time.sleep(0.02)

    writer = threading.Thread(target=other_writer)
    writer.start()
    try:
        done = run_playbook(ROTATE, "-i", str(write_inventory({"sandbox": sandbox})))
    finally:
        stop.set()
        writer.join()
    assert done.returncode != 0
    assert "no longer holds the new token(s): it was changed meanwhile by someone else" in done.stdout, done.stdout[-3000:]
    assert "the previous token(s) were put back" in done.stdout
    assert sandbox.secret_value() == old and _all_ready(sandbox)
    assert "okera.auth/rotation-unfinished" not in (sandbox.secret().metadata.annotations or {})


class _ConflictingProxy(BaseHTTPRequestHandler):
    """Forwards to the sandbox; before forwarding a PATCH of Secret `secrets` it writes the Secret
    itself (as a concurrent writer would), so the sandbox answers that PATCH with a real 409."""

    upstream = ""
    upstream_tls = None
    conflicts_left = 0
    concurrent_writer = None

    def _forward(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)) or None
        if self.command == "PATCH" and self.path.endswith("/secrets/secrets") and type(self).conflicts_left > 0:
            type(self).conflicts_left -= 1
            type(self).concurrent_writer()
        forwarded = urllib.request.Request(self.upstream + self.path, data=body, method=self.command,
                                           headers={name: value for name, value in self.headers.items()
                                                    if name.lower() not in ("host", "content-length")})
        try:
            with urllib.request.urlopen(forwarded, timeout=30, context=self.upstream_tls) as response:
                status, payload, content_type = response.status, response.read(), response.headers.get("Content-Type")
        except urllib.error.HTTPError as error:
            status, payload, content_type = error.code, error.read(), error.headers.get("Content-Type")
        self.send_response(status)
        self.send_header("Content-Type", content_type or "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_PATCH = do_POST = do_DELETE = _forward

    def log_message(self, *args):
        pass


def test_conflicting_writes_are_retried_and_kept(make_sandbox, write_inventory, run_playbook, tmp_path):
    sandbox = make_sandbox(token_ttl="2d")
    writes = []

    def concurrent_writer():
        writes.append(len(writes) + 1)
        sandbox.core().patch_namespaced_secret("secrets", "default", {"data": {
            "WRITTEN_MEANWHILE": base64.b64encode(str(len(writes)).encode()).decode()}})

    _ConflictingProxy.upstream, _ConflictingProxy.conflicts_left = sandbox.url, 2
    _ConflictingProxy.upstream_tls = ssl.create_default_context(cafile=str(sandbox.state_dir / "ca.crt"))
    _ConflictingProxy.concurrent_writer = staticmethod(concurrent_writer)
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), _ConflictingProxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        kubeconfig = yaml.safe_load(sandbox.kubeconfig.read_text())
        kubeconfig["clusters"][0]["cluster"]["server"] = "http://127.0.0.1:%d" % proxy.server_address[1]
        proxied = tmp_path / "proxied-kubeconfig"
        proxied.write_text(yaml.safe_dump(kubeconfig))
        os.chmod(proxied, 0o600)
        inventory = write_inventory({"sandbox": {"system_token_kubeconfig": str(proxied),
                                                 "system_token_private_key_path": str(sandbox.signing_key)}})
        done = run_playbook(ROTATE, "-i", str(inventory))
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert done.returncode == 0, _output(done)[-4000:]
    assert writes == [1, 2]
    assert "2 conflict(s) retried" in done.stdout
    assert _verifies_with_cluster_key(sandbox, sandbox.secret_value())
    assert sandbox.secret_value("WRITTEN_MEANWHILE") == "2", "the concurrent write is kept"


def test_two_clusters_in_one_run(make_sandbox, write_inventory, run_playbook):
    expiring, fresh = make_sandbox("expiring", token_ttl="1d"), make_sandbox("fresh", token_ttl="30d")
    before = {"expiring": expiring.secret_value(), "fresh": fresh.secret_value()}
    inventory = write_inventory({"expiring": expiring, "fresh": fresh})
    done = run_playbook(ROTATE, "-i", str(inventory), "--forks", "2")
    assert done.returncode == 0, _output(done)[-4000:]
    counters = recap(done.stdout)
    assert counters["expiring"]["changed"] > 0 and counters["fresh"]["changed"] == 0
    assert expiring.secret_value() != before["expiring"] and fresh.secret_value() == before["fresh"]
    assert _verifies_with_cluster_key(expiring, expiring.secret_value())
    # Each cluster signs with its own key: a token of one is refused by the other.
    assert not _verifies_with_cluster_key(fresh, expiring.secret_value())


def test_very_verbose_output_has_no_token_or_key(make_sandbox, write_inventory, run_playbook):
    sandbox = make_sandbox(token_ttl="2d")
    old = sandbox.secret_value()
    inventory = write_inventory({"sandbox": sandbox})
    done = run_playbook(ROTATE, "-i", str(inventory), "-vvv", "--diff")
    assert done.returncode == 0, _output(done)[-4000:]
    output = _output(done)
    new = sandbox.secret_value()
    assert new != old
    _assert_nothing_secret_in(output, old, sandbox.signing_key)
    _assert_nothing_secret_in(output, new)
    assert (sandbox.state_dir / "admin.token").read_text().strip() not in output, "the API bearer token"
    assert "censored" in output  # the no_log tasks did run
