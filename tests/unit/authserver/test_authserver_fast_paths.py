"""The request path's short cuts say exactly what the general code says: claims serialised
without the JSON encoder, token files written in place, log lines written in batches, counters
kept in memory shared by worker processes, --processes auto within the cgroup's CPU quota."""
from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest

from okera_auth.authserver import options
from okera_auth.authserver.events import EventLog, Metrics, MetricsTable
from okera_auth.authserver.issuer import PAGE_BYTES, ClaimRules, TokenDirectory, TokenIssuer
from okera_auth.module_utils.errors import FileExistsWriteError
from okera_auth.module_utils.tokens import Signer, build_claims, decode_unverified, verify
from okera_auth.module_utils.keys import load_public_keys


@pytest.mark.parametrize("rules, groups", [
    (ClaimRules(ttl=60), None),
    (ClaimRules(ttl=3600, jti=False), None),
    (ClaimRules(ttl=60, issuer="cluster-a", audience=("okera",)), ["analysts"]),
    (ClaimRules(ttl=60, issuer="c", audience=("a", "b"), claims={"tier": 3, "x": {"y": [1]}}), []),
    (ClaimRules(ttl=60, claims={"note": "caf\u00e9 \"q\""}), ["g\u00fcest", "a\\b"]),
])
def test_claims_are_build_claims_own(tmp_path, rsa_private_key, rules, groups):
    issuer = TokenIssuer(str(tmp_path), Signer(rsa_private_key), rules,
                         {"jane.doe@x": groups} if groups is not None else {})
    token, expires_at = issuer.mint("jane.doe@x", 1000)
    decoded = decode_unverified(token)
    expected = build_claims(rules.spec_for("jane.doe@x", groups), 1000)
    assert list(decoded.claims) == list(expected) and expires_at == expected["exp"]
    assert ("jti" in decoded.claims) == rules.jti
    decoded.claims.pop("jti", None)
    expected.pop("jti", None)
    assert decoded.claims == expected
    assert decoded.header == Signer(rsa_private_key).header


def test_tokens_verify_and_follow_a_reloaded_key(tmp_path, rsa_private_key):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    issuer = TokenIssuer(str(tmp_path), Signer(rsa_private_key), ClaimRules(ttl=60))
    second = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    issuer.replace_signer(Signer(second))
    token, _expires = issuer.mint("janedoe")
    public = second.public_key().public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.SubjectPublicKeyInfo)
    assert verify(token, load_public_keys(public), ["RS512"]).valid
    assert decode_unverified(token).header["kid"] == Signer(second).kid


@pytest.fixture
def directory(tmp_path):
    path = tmp_path / "tokens"
    path.mkdir(mode=0o750)
    handle = TokenDirectory(str(path))
    yield path, handle
    handle.close()


def test_a_token_file_is_made_in_place_with_its_mode_whatever_the_umask(directory):
    path, handle = directory
    old = os.umask(0o077)
    try:
        from okera_auth.authserver import issuer
        issuer._UMASK.refresh()
        written = handle.write("janedoe.1.token", b"t" * 100, 0o640, os.getgid())
    finally:
        os.umask(old)
        issuer._UMASK.refresh()
    info = os.stat(written)
    assert stat.S_IMODE(info.st_mode) == 0o640 and info.st_gid == os.getgid()
    assert Path(written).read_bytes() == b"t" * 100
    assert os.listdir(path) == ["janedoe.1.token"]  # no temp name, no link
    with pytest.raises(FileExistsWriteError):
        handle.write("janedoe.1.token", b"other", 0o640, None)
    assert Path(written).read_bytes() == b"t" * 100


def test_a_token_bigger_than_a_page_is_linked_into_place(directory):
    path, handle = directory
    data = b"t" * (PAGE_BYTES + 1)
    written = handle.write("janedoe.2.token", data, 0o600, None)
    assert Path(written).read_bytes() == data and os.listdir(path) == ["janedoe.2.token"]
    assert stat.S_IMODE(os.stat(written).st_mode) == 0o600


def test_the_probe_learns_the_group_new_files_get(directory):
    path, handle = directory
    handle.probe(os.getgid())
    assert handle.created_gid == os.stat(path).st_gid or handle.created_gid == os.getegid()
    assert os.listdir(path) == []


class _Later:
    def __init__(self) -> None:
        self.calls = []

    def __call__(self, delay, callback) -> None:
        self.calls.append((delay, callback))


def test_deleted_lines_are_batched_and_never_overtake_other_lines():
    stream = io.StringIO()
    log = EventLog("text", stream)
    later = _Later()
    log.buffer_with(later)
    log.event("deleted", "Deleted token: /t/a.1.token")
    log.event("deleted", "Deleted token: /t/a.2.token")
    assert stream.getvalue() == "" and len(later.calls) == 1  # one flush for the batch
    log.event("generated", "Generated token: /t/a.3.token")  # written at once, after them
    lines = stream.getvalue().splitlines()
    assert [line.split(" ", 2)[2] for line in lines] == [
        "Deleted token: /t/a.1.token", "Deleted token: /t/a.2.token",
        "Generated token: /t/a.3.token"]
    log.event("deleted", "Deleted token: /t/a.4.token")
    later.calls[-1][1]()
    assert stream.getvalue().splitlines()[-1].endswith("Deleted token: /t/a.4.token")


def test_a_flushed_batch_is_written_in_whole_lines_of_at_most_a_pipe_buffer():
    class Recorder(io.StringIO):
        writes: list = []

        def write(self, text: str) -> int:
            self.writes.append(text)
            return super().write(text)

    stream = Recorder()
    log = EventLog("text", stream)
    log.buffer_with(_Later())
    for index in range(200):
        log.event("deleted", "Deleted token: /run/okera/tokens/user%03d.1796242404453693277.token"
                  % index)
    log.flush()
    assert len(stream.writes) > 1
    assert all(len(chunk.encode()) <= 4096 and chunk.endswith("\n") for chunk in stream.writes)
    assert stream.getvalue().count("\n") == 200


def test_metrics_of_every_worker_add_up_and_survive_a_restarted_worker():
    table = MetricsTable(3)
    workers = [Metrics(table, index) for index in range(3)]
    for index, metrics in enumerate(workers):
        metrics.tokens_issued += index + 1
        metrics.error("bad_user")
        metrics.latency.observe(0.002)
        metrics.publish(pending_deletions=index, open_connections=1)
    workers[0].key_reloads += 1
    text = workers[2].render(2, 1, "kid")
    assert "okera_authserver_tokens_issued_total 6\n" in text
    assert 'okera_authserver_errors_total{kind="bad_user"} 3' in text
    assert 'okera_authserver_request_duration_seconds_bucket{le="0.0025"} 3' in text
    assert "okera_authserver_files_pending_deletion 3\n" in text
    assert "okera_authserver_key_reloads_total 1\n" in text
    assert 'okera_authserver_process_tokens_issued_total{process="1"} 2' in text
    replacement = Metrics(table, 1)
    replacement.restart_row()
    assert replacement.tokens_issued == 2 and table.total("open_connections") == 2


def test_auto_processes_follow_the_cgroup_quota(tmp_path, monkeypatch):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert options.cgroup_cpu_limit(str(tmp_path)) == 2
    (tmp_path / "cpu.max").write_text("50000 100000\n")
    assert options.cgroup_cpu_limit(str(tmp_path)) == 1
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert options.cgroup_cpu_limit(str(tmp_path)) is None
    monkeypatch.setattr(options, "usable_cpus", lambda: 64)
    monkeypatch.setattr(options, "cgroup_cpu_limit", lambda: None)
    assert options.auto_processes() == options.AUTO_PROCESSES_MAX
    monkeypatch.setattr(options, "cgroup_cpu_limit", lambda: 1)
    assert options.auto_processes() == 1
