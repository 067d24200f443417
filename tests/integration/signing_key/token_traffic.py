"""A client that asks for and uses tokens the whole time a rotation runs, and counts refusals.

In a loop: a user token signed with the key the key store holds at that moment (what an auth
server gives out), verified with the keys the cluster lists at that moment, and sent to Okera's
REST API; and the system token the token Secret holds, sent to the REST API too.
"""
from __future__ import annotations

import collections
import json
import threading
import time
import urllib.error
import urllib.request
from typing import Callable, Dict, Optional

from okera_auth.module_utils import keys, tokens


class TokenTraffic:
    def __init__(self, rest_url: str, read_signing_key: Callable[[], bytes], read_secret: Callable[[str, str], Optional[str]],
                 pause: float = 0.1, authserver_url: Optional[str] = None) -> None:
        """``authserver_url``: also ask a node's okera-authserver for a token each time and use it."""
        self.authserver_url = authserver_url
        self.rest_url = rest_url
        self.read_signing_key = read_signing_key
        self.read_secret = read_secret
        self.pause = pause
        self.counts: Dict[str, int] = collections.Counter()
        self.failures = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "TokenTraffic":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(30)

    def snapshot(self) -> Dict[str, int]:
        return dict(self.counts)

    def _ask(self, token: str, what: str) -> None:
        request = urllib.request.Request(self.rest_url + "/api/databases", headers={"Authorization": "Bearer " + token})
        self.counts["requests"] += 1
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                answer.read()
            self.counts["answered"] += 1
        except urllib.error.HTTPError as error:
            kind = "refused" if error.code in (401, 403) else "unavailable"
            self.counts[kind] += 1
            self.failures.append("%s: %s %d %s" % (time.strftime("%H:%M:%S"), what, error.code, error.read()[:200]))
        except OSError as error:
            self.counts["unavailable"] += 1
            self.failures.append("%s: %s %s" % (time.strftime("%H:%M:%S"), what, error))

    def _from_authserver(self, listed) -> None:
        try:
            with urllib.request.urlopen(self.authserver_url + "/janedoe?format=json", timeout=10) as answer:
                node_token = json.loads(answer.read())["token"]
        except (OSError, ValueError, KeyError) as error:
            self.counts["authserver_failed"] += 1
            self.failures.append("%s: auth server %s" % (time.strftime("%H:%M:%S"), error))
            return
        self.counts["authserver_issued"] += 1
        if not tokens.verify(node_token, listed, ["RS512"], subject="janedoe").valid:
            self.counts["not_verifying"] += 1
        self._ask(node_token, "auth server token")

    def _run(self) -> None:
        signer_of = [None, None]  # the key text last read and its signer (loading a key takes tens of ms)
        while not self._stop.is_set():
            key_text = self.read_signing_key()
            if key_text != signer_of[0]:
                signer_of[:] = [key_text, tokens.Signer(keys.load_private_key(key_text), "RS512")]
            signer = signer_of[1]
            user_token = tokens.mint(signer, tokens.TokenSpec(subject="janedoe", ttl=3600)).token
            self.counts["issued"] += 1
            listed = keys.load_public_keys(self.read_secret("okera-config", "JWT_PUBLIC_KEY"))
            if not tokens.verify(user_token, listed, ["RS512"], subject="janedoe").valid:
                self.counts["not_verifying"] += 1
            self._ask(user_token, "user token")
            self._ask(self.read_secret("secrets", "SYSTEM_TOKEN_0"), "system token")
            if self.authserver_url:
                self._from_authserver(listed)
            self._stop.wait(self.pause)
