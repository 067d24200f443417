"""The rotation under injected API server faults (okera-auth-sandbox fault): killed at each stage, 409 storms,
5xx answers, a slow API. Whatever happens, the run fails in one line with no traceback and no token, and the
cluster is untouched, or runs the old token, or is marked unfinished so that the next run puts it right."""
from __future__ import annotations

import hashlib
import json
import re
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from okera_auth.module_utils import keys, tokens
from playbook_runs import ROTATE, recap

pytestmark = [pytest.mark.slow, pytest.mark.scenario]
MARKER = "okera.auth/rotation-unfinished"
SECRET = "/api/v1/namespaces/default/secrets/secrets"
CONFIG = "/api/v1/namespaces/default/secrets/okera-config"
WORKLOAD = "/apis/apps/v1/namespaces/default/deployments/"
RESTART = r"^/apis/apps/v1/namespaces/default/(deployments|statefulsets)/"


def _output(done) -> str:
    return done.stdout + done.stderr


def _failure_lines(output: str, host: str):
    return [line for line in output.splitlines() if line.startswith("fatal: [%s]" % host)]


def _marker(sandbox):
    return (sandbox.secret().metadata.annotations or {}).get(MARKER)


def _rest_user(sandbox, token: str) -> str:
    """Who Okera's REST API (Service cdas-rest-server) says the token is."""
    request = urllib.request.Request(sandbox.rest_url + "/api/get-user", headers={"Authorization": "Bearer " + token})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())["user"]


def _faults(sandbox):
    """The faults the sandbox's server log says it injected, in order ("PATCH /api/... -> 409 Conflict (...)")."""
    return [line.split("fault: ", 1)[1] for line in (sandbox.state_dir / "server.log").read_text().splitlines()
            if "fault: " in line]


def _injected(sandbox, what: str) -> int:
    """How many requests got ``what`` ("PATCH /api/... -> 409 Conflict")."""
    return sum(line.startswith(what) for line in _faults(sandbox))


def _verifies(sandbox, token: str) -> bool:
    entries = keys.load_public_keys((sandbox.state_dir / "public-key.pem").read_bytes())
    return tokens.verify(token, entries, ["RS512"], subject="okera_system_user").valid


def _runs(sandbox, token: str) -> bool:
    """Every pod is ready and started with ``token``."""
    status = sandbox.status()
    digest = hashlib.sha256(token.encode()).hexdigest()
    return status["pods_total"] > 0 and status["pods_ready"] == status["pods_total"] and all(
        pod["token_sha256"] == digest for pod in status["pods"])


def _assert_failed_in_one_line(done, host: str, *secrets: str) -> str:
    """The host failed once, in one line of the role's own, with no traceback and none of the tokens."""
    output = _output(done)
    # The failed tasks the role rescued are shown too (censored when they carry a token); the role's line is last.
    lines = _failure_lines(done.stdout, host)
    assert lines, output[-3000:]
    assert recap(done.stdout)[host]["failed"] == 1
    assert "Traceback" not in output and "MODULE FAILURE" not in output
    leaked = [number for number, secret in enumerate(secrets) if secret and (secret in output or secret.split(".")[2] in output)]
    assert not leaked, "token(s) %s in the output" % leaked
    message = json.loads(lines[-1].split(" => ", 1)[1])["msg"]
    assert "\n" not in message
    return message


def _assert_put_right(sandbox) -> str:
    """No marker; the Secret's token verifies, every pod runs it and the REST API answers with it."""
    token = sandbox.secret_value()
    assert _marker(sandbox) is None
    assert _verifies(sandbox, token)
    sandbox.wait_until_ready()
    assert _runs(sandbox, token)
    assert _rest_user(sandbox, token) == "okera_system_user"
    return token


# The API server dies (every request from then on dropped) at each stage of a rotation; what the Secret holds
# then: the old token unmarked, the new one marked unfinished, or the old one marked unfinished.
KILLED = {
    "reading": ({"method": "GET", "path": CONFIG, "kill": True}, "untouched"),
    "minted": ({"method": "GET", "path": SECRET, "after": 1, "kill": True}, "untouched"),
    "patch-lost": ({"method": "PATCH", "path": SECRET, "kill": True}, "untouched"),
    "patch-stored": ({"method": "PATCH", "path": SECRET, "kill": True, "processed": True}, "new"),
    "waiting": ({"method": "GET", "path": WORKLOAD, "kill": True}, "new"),
    # The REST check passed (it asks the REST API, not the API server); the server dies at the next request,
    # the read before the marker is removed (the plan's read, the patch's, then this one): the rotation
    # worked, nothing is rolled back.
    "rest-checked": ({"method": "GET", "path": SECRET, "after": 2, "kill": True}, "new"),
    # The REST API refuses the new token, so the rotation rolls back; the server dies at its first restart.
    "rollback": ({"method": "PATCH", "path_regex": RESTART, "after": 3, "kill": True}, "old"),
}
MESSAGES = {
    "reading": ["Read the cluster's verification key(s)", "get Secret default/okera-config: the API server at",
                "closed the connection without an answer"],
    "minted": ["Write the new token(s)", "get Secret default/secrets: the API server at", "; nothing was changed"],
    "patch-lost": ["patch Secret default/secrets: the API server at",
                   "the Secret may hold the new token(s)", "marked unfinished"],
    "patch-stored": ["patch Secret default/secrets: the API server at",
                     "the Secret may hold the new token(s)", "marked unfinished"],
    "waiting": ["Restart the workloads", "read Deployment default/", "the rollback could not write the Secret",
                "it still holds the NEW token(s) (SYSTEM_TOKEN_0 sha256:", "), marked unfinished",
                "the next run restarts, waits and checks"],
    "rest-checked": ["worked but could not be marked finished", "Okera's REST API answered with the new token(s)",
                     "the next run restarts and checks once more"],
    "rollback": ["/api/get-user answered 401", "the previous token(s) were put back",
                 "but the workloads did not become ready again", "stays marked unfinished"],
}


def _sandboxes(make_sandbox, names, token_ttls=None):
    """One sandbox cluster per name (a token expiring in 2 days unless token_ttls says otherwise), started side by side."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(names, pool.map(lambda name: make_sandbox(name, (token_ttls or {}).get(name, "2d")), names)))


def test_an_api_server_killed_at_each_stage_leaves_what_the_next_run_puts_right(make_sandbox, write_inventory, run_playbook):
    # The rollback's cluster has a fresh token, replaced by force: what it gets back needs no rotation afterwards.
    clusters = _sandboxes(make_sandbox, list(KILLED), {"rollback": "30d"})
    old = {stage: sandbox.secret_value() for stage, sandbox in clusters.items()}
    clusters["rollback"].set_fault(restRejectsTokensIssuedAfter=str(int(time.time())))
    time.sleep(1.1)
    for stage, sandbox in clusters.items():
        sandbox.set_faults(KILLED[stage][0])
    hosts = dict(clusters, rollback={"system_token_kubeconfig": str(clusters["rollback"].kubeconfig), "system_token_force": True,
                                     "system_token_private_key_path": str(clusters["rollback"].signing_key)})
    inventory = write_inventory(hosts, system_token_rest_wait_timeout=5)

    done = run_playbook(ROTATE, "-i", str(inventory), "--forks", str(len(clusters)))
    assert done.returncode != 0
    problems = []
    for stage, sandbox in clusters.items():
        sandbox.set_faults()
        # The server died at the request the stage names (the first fault), and stayed dead.
        rule, faults = KILLED[stage][0], _faults(sandbox)
        method, path = faults[0].split(" -> ")[0].split(" ", 1)
        assert method == rule["method"] and re.search(rule.get("path_regex") or "^" + re.escape(rule["path"]), path), stage
        assert all(" -> connection dropped" in line for line in faults), stage
        now = sandbox.secret_value()
        message = _assert_failed_in_one_line(done, stage, old[stage], now)
        missing = [words for words in MESSAGES[stage] if words not in message]
        if missing:
            problems.append("%s: %s not in: %s" % (stage, missing, message))
            continue
        held = KILLED[stage][1]
        if held == "untouched":
            assert now == old[stage] and _marker(sandbox) is None, stage
            assert _runs(sandbox, old[stage]) and _rest_user(sandbox, old[stage]) == "okera_system_user", stage
        else:
            assert (now == old[stage]) == (held == "old") and _marker(sandbox), stage
            assert json.loads(_marker(sandbox))["keys"]["SYSTEM_TOKEN_0"] == "sha256:" + hashlib.sha256(
                now.encode()).hexdigest(), stage

    assert not problems, "\n".join(problems)
    # Faults gone (and the REST API accepting new tokens again): the next run puts every marked cluster right.
    clusters["rollback"].core().delete_namespaced_config_map("okera-sandbox-faults", "default")
    marked = [stage for stage, (_rule, held) in KILLED.items() if held != "untouched"]
    left = {stage: clusters[stage].secret_value() for stage in marked}
    inventory = write_inventory(clusters, system_token_rest_wait_timeout=5)
    again = run_playbook(ROTATE, "-i", str(inventory), "--forks", str(len(marked)), "--limit", ",".join(marked))
    assert again.returncode == 0, _output(again)[-4000:]
    for stage in marked:
        assert recap(again.stdout)[stage]["changed"] >= 2, stage
        # What the Secret holds, new or old, is finished as it is: restarted, checked, unmarked.
        assert _assert_put_right(clusters[stage]) == left[stage], stage
    assert again.stdout.count("did not finish: the Secret holds the token(s) it wrote") == len(marked)


# Each of these clusters meets other faults, all in one run (with 3 s per API request).
TROUBLED = {
    # Fewer conflicts than the retries (5), 5xx answers to reads fewer than their retries (3), a slow API: all ridden out.
    "survives": [{"method": "PATCH", "path": SECRET, "status": 409, "times": 5},
                 {"method": "GET", "path": SECRET, "status": 503, "times": 2},
                 {"method": "GET", "path": CONFIG, "status": 504, "times": 1},
                 {"method": "GET", "path": WORKLOAD, "status": 500, "times": 2},
                 {"method": "GET", "path": WORKLOAD, "delay": 1, "after": 2, "times": 2}],
    "storm": [{"method": "PATCH", "path": SECRET, "status": 409, "times": 6}],
    "unavailable": [{"method": "GET", "path": CONFIG, "status": 503}],
    "slow-read": [{"method": "GET", "path": CONFIG, "delay": 4, "times": 1}],
    # The patch is stored 3.3 s after it came, when the client has given up: read back, then rolled back.
    "slow-write": [{"method": "PATCH", "path": SECRET, "delay": 3.3, "times": 1}],
}


def test_conflicts_5xx_answers_and_a_slow_api_are_ridden_out_or_fail_cleanly(make_sandbox, write_inventory, run_playbook):
    clusters = _sandboxes(make_sandbox, list(TROUBLED))
    old = {name: sandbox.secret_value() for name, sandbox in clusters.items()}
    versions = {name: sandbox.secret().metadata.resource_version for name, sandbox in clusters.items()}
    for name, sandbox in clusters.items():
        sandbox.set_faults(*TROUBLED[name])
    inventory = write_inventory(clusters)

    done = run_playbook(ROTATE, "-i", str(inventory), "--forks", str(len(clusters)),
                        env={"OKERA_AUTH_K8S_REQUEST_TIMEOUT": "3"})
    assert done.returncode != 0
    counters = recap(done.stdout)
    assert counters["survives"]["failed"] == 0, _output(done)[-4000:]
    assert "5 conflict(s) retried" in done.stdout
    survives = clusters["survives"]
    assert _injected(survives, "PATCH %s -> 409 Conflict" % SECRET) == 5
    assert _injected(survives, "GET %s -> 503 ServiceUnavailable" % SECRET) == 2
    assert _injected(survives, "GET %s -> 504 Timeout" % CONFIG) == 1
    assert _injected(survives, "GET %scdas-rest-server -> 500 InternalError" % WORKLOAD) == 2
    assert sum(" -> delayed 1s" in line for line in _faults(survives)) == 2
    assert _assert_put_right(clusters["survives"]) != old["survives"]

    storm = _assert_failed_in_one_line(done, "storm", old["storm"])
    assert "kept changing under us (6 conflicts); run again when other writers are done" in storm
    assert "; nothing was changed" in storm
    unavailable = _assert_failed_in_one_line(done, "unavailable", old["unavailable"])
    assert "get Secret default/okera-config: the API server at" in unavailable
    assert "answered 503 the server is currently unable to handle the request (asked 4 times)" in unavailable
    slow_read = _assert_failed_in_one_line(done, "slow-read", old["slow-read"])
    assert "get Secret default/okera-config: the API server at" in slow_read and "did not answer within 3 s" in slow_read
    for name in ("storm", "unavailable", "slow-read"):
        sandbox = clusters[name]
        assert sandbox.secret().metadata.resource_version == versions[name], "%s: nothing written" % name
        assert _runs(sandbox, old[name]) and _rest_user(sandbox, old[name]) == "okera_system_user", name

    slow_write = _assert_failed_in_one_line(done, "slow-write", old["slow-write"], clusters["slow-write"].secret_value())
    assert "patch Secret default/secrets: the API server at" in slow_write and "did not answer within 3 s" in slow_write
    assert _injected(clusters["slow-write"], "PATCH %s -> delayed 3.3s" % SECRET) == 1
    assert "the previous token(s) were put back (SYSTEM_TOKEN_0 sha256:%s...) and the workloads restarted with them" % (
        hashlib.sha256(old["slow-write"].encode()).hexdigest()[:12]) in slow_write
    assert _assert_put_right(clusters["slow-write"]) == old["slow-write"]
