"""A stand-in for the one call of Okera's REST API the tutorial's service makes:
``GET /api/databases`` with ``Authorization: Bearer <token>``, the token's signature checked
with the public key as the cluster checks it (JWT_PUBLIC_KEY, JWT_ALGORITHM); the answer is
the list of database names, errors are ``{"code": <status>, "message": ...}`` (the shapes the
sandbox cluster's REST stand-in uses).

Until the sandbox cluster serves Okera's REST API, the service's tests run against this.
"""
from __future__ import annotations

import http.server
import json
import threading
from typing import Dict, List, Optional, Sequence

import jwt

DEFAULT_DATABASES = ["default", "okera_sample"]


class OkeraRestStub:
    """An HTTP server on 127.0.0.1 (a free port) answering the user's database names to a token
    that verifies; ``callers`` lists the subject of every accepted token, ``rejected`` counts
    the others."""

    def __init__(self, public_key_pem: bytes, algorithms: Sequence[str] = ("RS512",),
                 databases: Optional[Dict[str, List[str]]] = None) -> None:
        self.public_key_pem = public_key_pem
        self.algorithms = list(algorithms)
        self.databases = databases or {}
        self.callers: List[str] = []
        self.rejected = 0
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                if self.path != "/api/databases":
                    return self._answer(404, {"code": 404, "message": "No such endpoint"})
                scheme, _space, token = (self.headers.get("Authorization") or "").partition(" ")
                if scheme != "Bearer" or not token:
                    stub.rejected += 1
                    return self._answer(401, {"code": 401, "message": "Authentication required"})
                try:
                    claims = jwt.decode(token, stub.public_key_pem, algorithms=stub.algorithms,
                                        options={"require": ["sub", "exp"]})
                except jwt.PyJWTError as error:
                    stub.rejected += 1
                    return self._answer(401, {"code": 401, "message": "The token could not be authenticated: %s" % error})
                stub.callers.append(claims["sub"])
                return self._answer(200, stub.databases.get(claims["sub"], DEFAULT_DATABASES))

            def _answer(self, status, document):
                body = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
