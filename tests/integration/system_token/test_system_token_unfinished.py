"""A rotation stopped half way is never taken for done: it says where things stand, and the next run finishes it."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from playbook_runs import CHECK, ROTATE, recap

pytestmark = [pytest.mark.slow, pytest.mark.scenario]
MARKER = "okera.auth/rotation-unfinished"


def _output(done) -> str:
    return done.stdout + done.stderr


def _failure_line(output: str, host: str = "sandbox") -> str:
    lines = [line for line in output.splitlines() if line.startswith("fatal: [%s]" % host)]
    return lines[-1] if lines else ""


def _marker(sandbox):
    return (sandbox.secret().metadata.annotations or {}).get(MARKER)


def _runs(sandbox, token: str) -> bool:
    """Every pod is ready and started with ``token``."""
    status = sandbox.status()
    digest = hashlib.sha256(token.encode()).hexdigest()
    return status["pods_total"] > 0 and status["pods_ready"] == status["pods_total"] and all(
        pod["token_sha256"] == digest for pod in status["pods"])


# After the first PATCH of Secret `secrets`, every other one gets 503, as when the API server goes
# away in the middle of a rotation (the sandbox's own fault injection, okera-auth-sandbox fault).
SECRET_WRITES_STOP_AFTER_ONE = {"method": "PATCH", "path": "/api/v1/namespaces/default/secrets/secrets", "status": 503,
                                "after": 1, "message": "the API server is going away"}


def test_a_rollback_that_cannot_write_says_where_things_stand_and_the_next_run_finishes(
        make_sandbox, write_inventory, run_playbook, tmp_path):
    sandbox = make_sandbox(token_ttl="2d")
    old = sandbox.secret_value()
    # The check fails (the REST service refuses tokens issued from now on), and the rollback's
    # write fails too (the API server is gone by then): the new token stays, and must be finished.
    sandbox.set_fault(restRejectsTokensIssuedAfter=str(int(time.time())))
    time.sleep(1.1)
    sandbox.set_faults(SECRET_WRITES_STOP_AFTER_ONE)
    inventory = write_inventory({"sandbox": sandbox}, system_token_rest_wait_timeout=5)
    done = run_playbook(ROTATE, "-i", str(inventory))
    sandbox.set_faults()
    assert done.returncode != 0
    new = sandbox.secret_value()
    assert new != old and _marker(sandbox)
    failure = _failure_line(done.stdout)
    backups = list((tmp_path / "backups").iterdir())
    assert len(backups) == 1
    # One line: the first error, what the Secret holds now, that it is marked, and the backup.
    assert "Ask Okera's REST API" in failure and "/api/get-user answered 401" in failure
    assert "the rollback could not write the Secret" in failure and "the API server is going away" in failure
    assert "it still holds the NEW token(s) (SYSTEM_TOKEN_0 sha256:%s..." % hashlib.sha256(
        new.encode()).hexdigest()[:12] in failure
    assert "the next run restarts, waits and checks" in failure
    assert "backup of the previous token(s): %s" % backups[0] in failure
    assert new not in _output(done) and old not in _output(done)

    check = run_playbook(CHECK, "-i", str(write_inventory({"sandbox": sandbox})))
    assert check.returncode != 0 and "did not finish" in _failure_line(check.stdout)

    # The cluster is healthy again; the next scheduled run finishes the job instead of calling it done.
    sandbox.core().delete_namespaced_config_map("okera-sandbox-faults", "default")
    inventory = write_inventory({"sandbox": sandbox})
    again = run_playbook(ROTATE, "-i", str(inventory))
    assert again.returncode == 0, _output(again)[-4000:]
    assert "more than 7d left: keep" in again.stdout
    assert "a rotation of SYSTEM_TOKEN_0 started" in again.stdout and "did not finish" in again.stdout
    assert recap(again.stdout)["sandbox"]["changed"] >= 2
    assert "%s knows the token as okera_system_user" % sandbox.rest_url in again.stdout
    assert sandbox.secret_value() == new and _marker(sandbox) is None
    assert _runs(sandbox, new)

    done_now = run_playbook(ROTATE, "-i", str(inventory))
    assert done_now.returncode == 0 and recap(done_now.stdout)["sandbox"]["changed"] == 0


def test_a_rotation_killed_after_the_patch_is_finished_by_the_next_run(
        make_sandbox, write_inventory, ansible_env, run_playbook, tmp_path):
    sandbox = make_sandbox(token_ttl="2d")
    old = sandbox.secret_value()
    inventory = write_inventory({"sandbox": sandbox})
    playbook_command = str(Path(sys.executable).with_name("ansible-playbook"))
    running = subprocess.Popen([playbook_command, str(ROTATE), "-i", str(inventory)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ansible_env, cwd=tmp_path,
                               start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while sandbox.secret_value() == old:
            assert running.poll() is None, "the rotation ended before writing"
            assert time.monotonic() < deadline, "the rotation did not write within 180 s"
            time.sleep(0.1)
    finally:
        os.killpg(running.pid, signal.SIGKILL)
        running.wait(timeout=60)
    new = sandbox.secret_value()
    assert new != old and _marker(sandbox), "written together with its marker"
    assert json.loads(_marker(sandbox))["keys"]["SYSTEM_TOKEN_0"] == "sha256:" + hashlib.sha256(new.encode()).hexdigest()

    again = run_playbook(ROTATE, "-i", str(inventory))
    assert again.returncode == 0, _output(again)[-4000:]
    assert "did not finish: the Secret holds the token(s) it wrote" in again.stdout
    assert recap(again.stdout)["sandbox"]["changed"] >= 2
    assert sandbox.secret_value() == new and _marker(sandbox) is None
    sandbox.wait_until_ready()
    assert _runs(sandbox, new)
