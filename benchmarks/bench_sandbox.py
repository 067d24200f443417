"""The sandbox cluster's API under load on 127.0.0.1, and how long a rollout restart takes.

Prints p50/p99 latency and requests/s for GET of the token Secret, a merge PATCH of it (each
write saves the whole state to disk) and a labelled LIST of pods, over keep-alive TLS
connections from 1 and 4 client threads; then the time from a restart patch to a complete
rollout of the 2-replica Deployment (pods start 0.5 s after creation). Not part of the test run.

    python benchmarks/bench_sandbox.py [--requests 400]
"""
from __future__ import annotations

import argparse
import http.client
import json
import ssl
import tempfile
import threading
import time
from typing import Callable, List


class Client:
    def __init__(self, port: int, token: str, ca_file: str) -> None:
        context = ssl.create_default_context(cafile=ca_file)
        self.connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=30)
        self.headers = {"Authorization": "Bearer " + token}

    def call(self, method: str, path: str, body=None, content_type: str = "application/json") -> dict:
        headers = dict(self.headers)
        if body is not None:
            headers["Content-Type"] = content_type
        self.connection.request(method, path, None if body is None else json.dumps(body), headers)
        response = self.connection.getresponse()
        answer = json.loads(response.read())
        if response.status >= 300:
            raise RuntimeError("%s %s answered %d" % (method, path, response.status))
        return answer


def measure(make_client: Callable[[], Client], threads: int, requests: int,
            call: Callable[[Client, int], None]) -> str:
    latencies: List[float] = []
    lock = threading.Lock()

    def worker() -> None:
        client = make_client()
        mine = []
        for number in range(requests // threads):
            started = time.perf_counter()
            call(client, number)
            mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)
    started = time.perf_counter()
    workers = [threading.Thread(target=worker) for _thread in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    return "p50 %6.2f ms  p99 %6.2f ms  %5.0f req/s" % (
        latencies[len(latencies) // 2] * 1000, latencies[int(len(latencies) * 0.99)] * 1000,
        len(latencies) / elapsed)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args()
    from okera_auth.sandbox.server import SandboxServer
    from okera_auth.sandbox.pki import server_context
    from okera_auth.sandbox.statedir import StateDir, init_sandbox

    with tempfile.TemporaryDirectory() as directory:
        state = StateDir(directory + "/sandbox")
        settings = init_sandbox(state)
        server = SandboxServer(state.store(), state.users(settings),
                               ssl_context=server_context(*state.ensure_certificates()))
        server.start()
        try:
            def make_client() -> Client:
                return Client(server.port, settings.admin_token, state.ca_cert)
            secret = "/api/v1/namespaces/default/secrets/secrets"
            calls = {
                "GET secret": lambda client, number: client.call("GET", secret),
                "PATCH secret": lambda client, number: client.call(
                    "PATCH", secret, {"metadata": {"annotations": {
                        "n": "%s-%d" % (threading.current_thread().name, number)}}},
                    "application/merge-patch+json"),
                "LIST pods by label": lambda client, number: client.call(
                    "GET", "/api/v1/namespaces/default/pods?labelSelector=app.kubernetes.io%2Fpart-of%3Dokera"),
            }
            for threads in (1, 4):
                for name, call in calls.items():
                    print("%-20s %d thread(s): %s" % (name, threads, measure(make_client, threads, args.requests, call)))
            client = make_client()
            path = "/apis/apps/v1/namespaces/default/deployments/cdas-rest-server"
            started = time.perf_counter()
            client.call("PATCH", path, {"spec": {"template": {"metadata": {"annotations": {
                "kubectl.kubernetes.io/restartedAt": "bench"}}}}}, "application/strategic-merge-patch+json")
            while True:
                deployment = client.call("GET", path)
                status = deployment["status"]
                if (status.get("observedGeneration") == deployment["metadata"]["generation"]
                        and status.get("updatedReplicas") == status.get("availableReplicas") == 2
                        and status.get("replicas") == 2):
                    break
                time.sleep(0.02)
            print("rollout restart of 2 replicas complete after %.2f s" % (time.perf_counter() - started))
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
