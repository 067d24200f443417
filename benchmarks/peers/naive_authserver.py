"""A token daemon written the way the tutorials do it, for bench_authserver.py: the standard
library's ThreadingHTTPServer and PyJWT (the key loaded once, not per request), the same job as
okera-authserver (GET /<user>: an RS512 JWT with sub, iat, exp, jti and a kid header, written to
<dir>/<user>.<nanos>.token with mode 0640 and the group given, the path answered, the file deleted
after the delete window by one background thread).

    python naive_authserver.py --key KEY.pem --directory DIR --gid GID [--port 0] [--delete-after 10]
"""
from __future__ import annotations

import argparse
import base64
import collections
import hashlib
import os
import re
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives import serialization

USER = re.compile(r"[A-Za-z0-9_@][A-Za-z0-9._@-]{0,127}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--key", required=True)
    parser.add_argument("--directory", required=True)
    parser.add_argument("--gid", type=int, default=os.getgid())
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delete-after", type=float, default=10.0)
    options = parser.parse_args()
    with open(options.key, "rb") as handle:
        key = serialization.load_pem_private_key(handle.read(), password=None)
    public_der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    kid = base64.urlsafe_b64encode(hashlib.sha256(public_der).digest()).rstrip(b"=").decode()
    os.makedirs(options.directory, mode=0o750, exist_ok=True)
    pending: collections.deque = collections.deque()
    lock = threading.Lock()

    def delete_later() -> None:
        while True:
            time.sleep(0.1)
            now = time.monotonic()
            while pending and pending[0][0] <= now:
                _due, path = pending.popleft()
                try:
                    os.unlink(path)
                except OSError:
                    pass

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            user = self.path[1:].split("?")[0]
            if not USER.fullmatch(user) or ".." in user:
                self.send_error(400)
                return
            now = int(time.time())
            token = jwt.encode({"sub": user, "iat": now, "exp": now + 86400,
                                "jti": secrets.token_hex(16)}, key, algorithm="RS512",
                               headers={"kid": kid})
            with lock:
                path = os.path.join(options.directory, "%s.%d.token" % (user, time.time_ns()))
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
            try:
                os.fchmod(descriptor, 0o640)
                os.fchown(descriptor, -1, options.gid)
                os.write(descriptor, token.encode())
            finally:
                os.close(descriptor)
            pending.append((time.monotonic() + options.delete_after, path))
            body = path.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args) -> None:
            pass

    threading.Thread(target=delete_later, daemon=True).start()
    server = ThreadingHTTPServer(("127.0.0.1", options.port), Handler)
    server.daemon_threads = True
    print("Listening on http://127.0.0.1:%d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
