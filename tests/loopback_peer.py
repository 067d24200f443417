"""A peer a test scripts on 127.0.0.1: each connection's request head is read, then handed to
``answer`` in a thread of its own."""
from __future__ import annotations

import socket
import threading


class LoopbackPeer:
    """Subclasses say what to do with each request in ``answer(connection, request_head)``."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return "http://127.0.0.1:%d" % self.port

    def answer(self, connection: socket.socket, request: bytes) -> None:
        raise NotImplementedError

    def _accept(self) -> None:
        while True:
            try:
                connection, _address = self.listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        with connection:
            request = b""
            try:
                while b"\r\n\r\n" not in request:
                    chunk = connection.recv(65536)
                    if not chunk:
                        return
                    request += chunk
                self.answer(connection, request)
            except OSError:
                pass  # the client gave up

    def close(self) -> None:
        self.listener.close()
