"""okera-token and okera_auth.client against a real okera-authserver on 127.0.0.1."""
from __future__ import annotations

import json
import os
import pickle
import re
import stat
import subprocess
import sys
import threading
import time

import pytest

from okera_auth.client import (
    ServerAnswerError, TokenClient, TokenFileError, get_token, token_func,
)
from okera_auth.client.transport import resolve_server
from okera_auth.module_utils.tokens import Signer


def _one_line_failure(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith("okera-token: ") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr and "eyJ" not in result.stderr  # no token shown
    return result.stderr


def _printed_token(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr
    assert result.stderr == "" and result.stdout.count("\n") == 1
    return result.stdout.strip()


def _signed(rsa_private_key, subject: str, expires_in: int) -> str:
    now = int(time.time())
    return Signer(rsa_private_key, "RS512").sign({"sub": subject, "iat": now,
                                                  "exp": now + expires_in})


# The command


def test_prints_a_verified_token_for_the_current_user_over_tcp(
        start_authserver, run_okera_token, check_token, client_user):
    server = start_authserver()
    token = _printed_token(run_okera_token("--url", server.url))
    checked = check_token(token)
    assert checked.valid, checked.reason
    assert checked.claims["sub"] == client_user


def test_url_comes_from_the_environment_and_the_flag_wins(start_authserver, run_okera_token,
                                                          check_token, dead_url):
    server = start_authserver()
    from_variable = run_okera_token("bob", "--no-cache", env={"OKERA_AUTHSERVER_URL": server.url})
    assert check_token(_printed_token(from_variable)).claims["sub"] == "bob"
    flag_wins = run_okera_token("bob", "--no-cache", "--url", server.url,
                                env={"OKERA_AUTHSERVER_URL": dead_url})
    assert check_token(_printed_token(flag_wins)).valid


def test_unix_socket_by_flag_and_by_variable(start_authserver, run_okera_token, check_token,
                                             open_dir, client_user, dead_url):
    path = str(open_dir / "authserver.sock")
    start_authserver("--unix-socket", path, "--no-tcp", tcp=False)
    by_flag = _printed_token(run_okera_token("--unix-socket", path, "alice"))
    assert check_token(by_flag).claims["sub"] == "alice"
    by_variable = run_okera_token("--no-cache", env={"OKERA_AUTHSERVER_UNIX_SOCKET": path,
                                                     "OKERA_AUTHSERVER_URL": dead_url})
    assert check_token(_printed_token(by_variable)).claims["sub"] == client_user


def test_cached_token_is_reused_without_asking_again(start_authserver, run_okera_token,
                                                     client_home, client_user):
    server = start_authserver()
    first = _printed_token(run_okera_token("--url", server.url))
    second = _printed_token(run_okera_token("--url", server.url))
    assert first == second
    assert server.tokens_issued() == 1
    cache = client_home / ".cache" / "okera-auth"
    (cached,) = cache.iterdir()
    assert cached.name.startswith(client_user + ".")
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    assert stat.S_IMODE(cached.stat().st_mode) == 0o600
    assert cached.read_text().strip() == first


def test_cache_lives_under_xdg_cache_home(start_authserver, run_okera_token, tmp_path):
    server = start_authserver()
    xdg = tmp_path / "xdg"
    _printed_token(run_okera_token("--url", server.url, env={"XDG_CACHE_HOME": str(xdg)}))
    assert len(list((xdg / "okera-auth").iterdir())) == 1


def test_token_with_less_than_min_valid_left_is_renewed(start_authserver, run_okera_token):
    server = start_authserver("--ttl", "10m")
    first = _printed_token(run_okera_token("--url", server.url, "--min-valid", "15m"))
    second = _printed_token(run_okera_token("--url", server.url, "--min-valid", "15m"))
    assert first != second
    assert server.tokens_issued() == 2


def test_no_cache_asks_every_time_and_writes_nothing(start_authserver, run_okera_token,
                                                     client_home):
    server = start_authserver()
    first = _printed_token(run_okera_token("--url", server.url, "--no-cache"))
    second = _printed_token(run_okera_token("--url", server.url, "--no-cache"))
    assert first != second
    assert server.tokens_issued() == 2
    assert not (client_home / ".cache").exists()


def test_server_down_is_one_line_naming_the_url(run_okera_token, dead_url):
    message = _one_line_failure(run_okera_token("--url", dead_url))
    assert dead_url in message and "connection refused" in message
    assert "start okera-authserver" in message


def test_server_down_uses_a_cached_token_that_has_not_expired(start_authserver, run_okera_token):
    server = start_authserver("--ttl", "4m")  # always within the 5m margin: asked every time
    token = _printed_token(run_okera_token("--url", server.url))
    assert server.stop() == 0
    assert _printed_token(run_okera_token("--url", server.url)) == token


def test_refused_user_name_gives_the_servers_reason(start_authserver, run_okera_token,
                                                    client_home):
    server = start_authserver()
    message = _one_line_failure(run_okera_token("--url", server.url, "../x"))
    assert "refused the request for '../x': bad user name" in message
    assert server.token_files() == []
    assert not (client_home / ".cache").exists()


def test_refused_socket_caller_gives_the_servers_reason(start_authserver, run_okera_token,
                                                        open_dir):
    path = str(open_dir / "authserver.sock")
    start_authserver("--unix-socket", path, "--allowed-uids", "4999", "--no-tcp", tcp=False)
    message = _one_line_failure(run_okera_token("--unix-socket", path))
    assert "refused" in message and "is not allowed on this socket" in message


def test_missing_socket_says_to_start_the_server(run_okera_token, open_dir):
    path = str(open_dir / "nothing.sock")
    message = _one_line_failure(run_okera_token("--unix-socket", path))
    assert "no socket %s" % path in message and "--unix-socket" in message


def test_file_deleted_before_it_is_read_names_the_path(start_authserver, holding_proxy,
                                                       run_okera_token):
    server = start_authserver("--delete-after", "1s")
    proxy = holding_proxy(server)
    proxy.hold = True
    message = _one_line_failure(run_okera_token("--url", proxy.url, "--no-cache"))
    # The daemon logs the deletion just after the unlink the proxy waited for.
    deleted = server.wait_for_log(re.compile(r"Deleted token: (\S+)")).group(1)
    assert "token file %s does not exist" % deleted in message
    assert "--delete-after" in message


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the client as another uid")
def test_unreadable_token_file_says_to_join_the_group(start_authserver, open_dir):
    server = start_authserver("-g", "4242", workdir=open_dir / "server")
    # Load the client (and the idna codec sockets use for host names, and shutil, which argparse
    # imports when it builds the parser) first, then become a user outside group 4242: the
    # interpreter may sit where that user cannot read it.
    run_as = ("import os, shutil, sys, encodings.idna; import okera_auth.client.cli as cli; "
              "os.setgroups([]); "
              "os.setgid(4301); os.setuid(4301); sys.exit(cli.main(sys.argv[1:]))")
    result = subprocess.run([sys.executable, "-c", run_as, "--url", server.url, "--no-cache",
                             "janedoe"], capture_output=True, text=True, timeout=60, check=False,
                            env=dict(os.environ, HOME=str(open_dir)), stdin=subprocess.DEVNULL)
    message = _one_line_failure(result)
    assert "permission denied" in message
    assert "member of the token files' group gid 4242" in message
    assert str(server.directory) in message


def test_okera_home_token_stands_in_when_the_server_is_down(
        run_okera_token, client_home, rsa_private_key, client_user, dead_url):
    token = _signed(rsa_private_key, client_user, 3600)
    (client_home / ".okera").mkdir()
    (client_home / ".okera" / "token").write_text(token + "\n")
    assert _printed_token(run_okera_token("--url", dead_url)) == token
    # It is the current user's token: another user's request still fails.
    assert "connection refused" in _one_line_failure(run_okera_token("--url", dead_url, "bob"))


def test_expired_okera_home_token_is_not_used(run_okera_token, client_home, rsa_private_key,
                                              client_user, dead_url):
    (client_home / ".okera").mkdir()
    home_token = client_home / ".okera" / "token"
    home_token.write_text(_signed(rsa_private_key, client_user, -60))
    message = _one_line_failure(run_okera_token("--url", dead_url))
    assert "%s holds no token that has not expired" % home_token in message


def test_decode_prints_header_claims_and_expiry(start_authserver, run_okera_token, client_user):
    server = start_authserver()
    token = _printed_token(run_okera_token("--url", server.url))
    by_argument = run_okera_token("decode", token)
    assert by_argument.returncode == 0, by_argument.stderr
    report = json.loads(by_argument.stdout)
    assert report["header"]["alg"] == "RS512"
    assert report["claims"]["sub"] == client_user
    assert 86000 < report["expires_in"] <= 86400 and report["expired"] is False
    assert token not in by_argument.stdout
    for args in (("decode",), ("decode", "-")):
        from_stdin = run_okera_token(*args, stdin_text=token + "\n")
        assert from_stdin.returncode == 0, from_stdin.stderr
        assert json.loads(from_stdin.stdout)["claims"] == report["claims"]


def test_decode_of_garbage_is_one_line(run_okera_token):
    message = _one_line_failure(run_okera_token("decode", "not-a-token"))
    assert "cannot decode the token: a JWT has three dot-separated parts" in message
    message = _one_line_failure(run_okera_token("decode", stdin_text="a.b.c\n"))
    assert "cannot decode the token" in message


def test_bad_option_is_one_line_with_exit_code_2(run_okera_token):
    result = run_okera_token("--min-valid", "soon")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "duration 'soon' is not understood" in result.stderr


# The Python client


def test_get_token_over_tcp_and_the_unix_socket(start_authserver, check_token, open_dir):
    path = str(open_dir / "authserver.sock")
    server = start_authserver("--unix-socket", path)
    assert check_token(get_token("alice", url=server.url)).claims["sub"] == "alice"
    assert check_token(get_token("alice", unix_socket=path)).claims["sub"] == "alice"


def test_concurrent_callers_get_valid_tokens_and_keep_the_last_one_while_the_server_stops(
        start_authserver, check_token):
    # Tokens live 1h and must have 2h left to be reused: every call asks the server.
    server = start_authserver("--ttl", "1h")
    results = []  # (monotonic time, token)
    failures = []
    stop_calling = threading.Event()

    def call() -> None:
        while not stop_calling.is_set():
            try:
                results.append((time.monotonic(), get_token("carol", url=server.url,
                                                            min_valid="2h")))
            except Exception as error:  # noqa: BLE001 - collected and asserted below
                failures.append(error)

    threads = [threading.Thread(target=call) for _number in range(32)]
    for thread in threads:
        thread.start()
    time.sleep(0.7)
    assert server.stop() == 0
    stopped_at = time.monotonic()
    time.sleep(0.5)
    stop_calling.set()
    for thread in threads:
        thread.join(30)
    assert failures == []
    tokens = {token for _at, token in results}
    assert all(check_token(token).valid for token in tokens)
    after_stop = {token for at, token in results if at > stopped_at + 0.1}
    assert len(after_stop) == 1, "the last good token stands in once the server is gone"
    assert after_stop < tokens
    # Callers who arrived while a request was under way shared its outcome.
    issued_before_stop = server.log().count("Generated token:")
    assert issued_before_stop < len([at for at, _token in results if at < stopped_at])


def test_file_deleted_between_answer_and_read_keeps_the_last_good_token(
        start_authserver, holding_proxy):
    server = start_authserver("--ttl", "1h", "--delete-after", "1s")
    proxy = holding_proxy(server)
    client = TokenClient(resolve_server(url=proxy.url))
    first = client.get_token("dave", min_valid="2h")
    proxy.hold = True
    assert client.get_token("dave", min_valid="2h") == first
    with pytest.raises(TokenFileError, match="does not exist"):
        TokenClient(resolve_server(url=proxy.url)).get_token("dave", min_valid="2h")


def test_server_restart_keeps_the_last_good_token_then_takes_a_new_one(
        start_authserver, check_token, tmp_path, unused_port):
    server = start_authserver("--ttl", "1h", port=unused_port)
    first = get_token("erin", url=server.url, min_valid="2h")
    assert server.stop() == 0
    assert get_token("erin", url=server.url, min_valid="2h") == first
    restarted = start_authserver("--ttl", "1h", port=unused_port, workdir=tmp_path / "restarted")
    second = get_token("erin", url=restarted.url, min_valid="2h")
    assert second != first and check_token(second).valid


def test_refused_user_is_an_error_not_a_stand_in(start_authserver):
    server = start_authserver()
    with pytest.raises(ServerAnswerError, match="bad user name") as raised:
        get_token("../x", url=server.url)
    assert raised.value.status == 400


def test_token_func_pickles_and_gives_the_remembered_token(start_authserver, check_token):
    server = start_authserver()
    func = token_func("frank", url=server.url)
    copy = pickle.loads(pickle.dumps(func))
    token = copy()
    assert check_token(token).claims["sub"] == "frank"
    assert func() == token
    assert server.tokens_issued() == 1
