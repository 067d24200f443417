# Copyright: okera.auth contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``okera-auth-sandbox``: create, serve, stop and inspect a local sandbox cluster.

Errors are one line on stderr with exit status 1; no token or key is ever printed.
"""

from __future__ import annotations

import argparse
import errno
import ipaddress
import json
import os
import signal
import sys
import threading
import time
from typing import Callable, List, Optional, TextIO

from okera_auth.module_utils.errors import OkeraAuthError, shown
from okera_auth.module_utils.files import write_file_atomic
from okera_auth.module_utils.tokens import parse_duration
from .errors import ApiError, SandboxError
from .faults import FaultInjector, parse_rule, read_rules, write_rules
from .controllers import DEFAULT_LOAD_BALANCER_IP
from .kubelet import is_ready, running_containers
from .okera import CONFIG_SECRET, DEFAULT_ALGORITHM_SETTING, REST_SERVICE, token_report
from .podman import PodmanPods
from .resources import PODS, SERVICE_RESOURCE
from .server import RestListenError, SandboxServer
from .statedir import DEFAULT_GROUPS, DEFAULT_ISSUER, StateDir, init_sandbox
from .pki import server_context

PROGRAM = "okera-auth-sandbox"
STOP_TIMEOUT = 10.0
ANY_ADDRESS = "0.0.0.0"  # --rest-host: every address of the host


# ---- the background server's pidfile ----------------------------------------------------------

def _process_start_time(pid: int) -> Optional[str]:
    """The kernel's start time of ``pid`` (tells a live server from a reused pid), or None."""
    try:
        with open("/proc/%d/stat" % pid, encoding="ascii", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def running_server(state: StateDir) -> Optional[dict]:
    """The pidfile of the server serving ``state``, if that server is alive."""
    try:
        with open(state.pidfile, encoding="utf-8") as handle:
            record = json.load(handle)
        pid = int(record["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if _process_start_time(pid) is None or _process_start_time(pid) != record.get("started"):
        return None
    return record


def _write_pidfile(state: StateDir, url: str, kubeconfig: str, rest_url: Optional[str] = None) -> None:
    pid = os.getpid()
    record = {"pid": pid, "started": _process_start_time(pid), "url": url, "kubeconfig": kubeconfig,
              "rest_url": rest_url}
    write_file_atomic(state.pidfile, json.dumps(record).encode("utf-8"), mode=0o600)


def _remove_pidfile(state: StateDir) -> None:
    try:
        record = running_server(state)
        if record is None or record["pid"] == os.getpid():
            os.unlink(state.pidfile)
    except OSError:
        pass


# ---- commands ---------------------------------------------------------------------------------

def cmd_init(args: argparse.Namespace, out: TextIO) -> int:
    state = StateDir(args.state_dir)
    if running_server(state):
        raise SandboxError("a sandbox server is running from %s: stop it first (%s stop --state-dir %s)"
                           % (state.root, PROGRAM, state.root))
    try:
        ttl = parse_duration(args.token_ttl)
    except OkeraAuthError as error:
        raise SandboxError("--token-ttl: %s" % error) from None
    groups = [group.strip() for group in args.groups.split(",") if group.strip()]
    admins = None if args.catalog_admins is None else [
        group.strip() for group in args.catalog_admins.split(",") if group.strip()]
    settings = init_sandbox(state, namespace=args.namespace, token_ttl=ttl, issuer=args.issuer,
                            groups=groups, algorithm=args.algorithm, tls=args.tls,
                            config_secret=args.config_secret, force=args.force, catalog_admins=admins)
    out.write("%s: initialized %s (namespace %s, system token valid for %s, signing key %s%s)\n"
              % (PROGRAM, state.root, settings.namespace, args.token_ttl, state.signing_key,
                 "" if settings.tls else ", plain HTTP"))
    return 0


def _build_server(args: argparse.Namespace, state: StateDir, log: Callable[[str], None]) -> SandboxServer:
    settings = state.settings()
    rest_host = args.rest_host or args.load_balancer_ip  # checked before anything is written
    if rest_host not in (args.load_balancer_ip, ANY_ADDRESS):
        raise SandboxError("--rest-host %s: the Okera REST API must answer at the load balancer's address %s "
                           "(give --rest-host %s or %s, or leave it out)"
                           % (rest_host, args.load_balancer_ip, args.load_balancer_ip, ANY_ADDRESS))
    use_tls = settings.tls if args.tls is None else args.tls
    context = server_context(*state.ensure_certificates()) if use_tls else None
    store, runtime = state.store(), None
    if args.podman:
        runtime = PodmanPods(store, args.crash_backoff, log=log)
        runtime.check()
    try:
        server = SandboxServer(store, state.users(settings), port=args.port, ssl_context=context,
                               start_delay=args.pod_start_delay, crash_backoff=args.crash_backoff,
                               log=log, log_requests=args.verbose, namespace=settings.namespace,
                               rest_port=args.rest_port, runtime=runtime, faults=FaultInjector(state.faults, log),
                               load_balancer_ip=args.load_balancer_ip, rest_host=rest_host)
    except RestListenError as error:
        hint = ("no interface of this host has that address: give another --load-balancer-ip, or --rest-host %s"
                % ANY_ADDRESS if error.errno == errno.EADDRNOTAVAIL else "give another --rest-port, or 0 for a free one")
        raise SandboxError("cannot listen on %s:%d for the Okera REST API: %s (%s)"
                           % (rest_host, args.rest_port, error.strerror, hint)) from None
    except OSError as error:
        raise SandboxError("cannot listen on 127.0.0.1:%d: %s (give another --port, or 0 for a free one)"
                           % (args.port, error.strerror)) from None
    server.kubeconfig_path = state.write_kubeconfig(settings, server.url, args.kubeconfig)
    return server


def _serve_until_signalled(server: SandboxServer, state: StateDir) -> None:
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    server.start()
    _write_pidfile(state, server.url, server.kubeconfig_path, server.rest_url)
    try:
        stop.wait()
    finally:
        server.stop()
        _remove_pidfile(state)


def _log_to(stream: TextIO) -> Callable[[str], None]:
    def log(line: str) -> None:
        stream.write("%s %s\n" % (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), line))
        stream.flush()
    return log


def cmd_serve(args: argparse.Namespace, out: TextIO) -> int:
    state = StateDir(args.state_dir)
    state.settings()  # fail early, in the caller's terminal, when there is no sandbox
    record = running_server(state)
    if record:
        raise SandboxError("a sandbox server already serves %s at %s (pid %d): stop it first"
                           % (state.root, record["url"], record["pid"]))
    if args.background:
        return _serve_in_background(args, state, out)
    server = _build_server(args, state, _log_to(sys.stderr))
    out.write("%s: serving %s (kubeconfig %s; Okera REST API %s); stop with Ctrl-C\n"
              % (PROGRAM, server.url, server.kubeconfig_path, server.rest_url))
    out.flush()
    _serve_until_signalled(server, state)
    return 0


def _serve_in_background(args: argparse.Namespace, state: StateDir, out: TextIO) -> int:
    """Fork a detached server; answer once it listens (or failed), so scripts can go on at once."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid:
        os.close(write_end)
        with os.fdopen(read_end, encoding="utf-8") as pipe:
            answer = pipe.read()
        if not answer.startswith("ok "):
            os.waitpid(pid, 0)
            raise SandboxError(answer.strip() or "the background server did not start: see %s" % state.log)
        url, rest_url, kubeconfig = answer[3:].strip().split(" ", 2)
        out.write("%s: serving %s in the background (pid %d, kubeconfig %s, Okera REST API %s, log %s)\n"
                  % (PROGRAM, url, pid, kubeconfig, rest_url, state.log))
        return 0
    os.close(read_end)
    os.setsid()
    status = 1
    try:
        with open(state.log, "a", encoding="utf-8") as log_stream, os.fdopen(write_end, "w") as pipe:
            os.chmod(state.log, 0o600)
            try:
                server = _build_server(args, state, _log_to(log_stream))
            except (OkeraAuthError, OSError) as error:
                pipe.write(str(error))
                raise SystemExit(1) from None
            devnull = os.open(os.devnull, os.O_RDWR)
            for descriptor in (0, 1):
                os.dup2(devnull, descriptor)
            os.dup2(log_stream.fileno(), 2)
            server.start()
            _write_pidfile(state, server.url, server.kubeconfig_path, server.rest_url)
            pipe.write("ok %s %s %s\n" % (server.url, server.rest_url, server.kubeconfig_path))
            pipe.close()
            _log_to(log_stream)("serving %s" % server.url)
            stopped = threading.Event()
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda *_: stopped.set())
            stopped.wait()
            server.stop()
            _remove_pidfile(state)
            status = 0
    finally:
        os._exit(status)  # never return into the parent's code after fork


def cmd_stop(args: argparse.Namespace, out: TextIO) -> int:
    state = StateDir(args.state_dir)
    record = running_server(state)
    if record is None:
        _remove_pidfile(state)  # a stale one, left by a killed server
        out.write("%s: no server is running for %s\n" % (PROGRAM, state.root))
        return 0
    os.kill(record["pid"], signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while running_server(state) and time.monotonic() < deadline:
        time.sleep(0.05)
    if running_server(state):
        raise SandboxError("the server (pid %d) did not stop within %ds" % (record["pid"], STOP_TIMEOUT))
    out.write("%s: stopped the server of %s (pid %d)\n" % (PROGRAM, state.root, record["pid"]))
    return 0


def _days(seconds: Optional[int]) -> str:
    if seconds is None:
        return "unknown"
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    return "%s%dd %dh %dm" % (sign, seconds // 86400, seconds % 86400 // 3600, seconds % 3600 // 60)


def status_report(state: StateDir) -> dict:
    settings = state.settings()
    store = state.store()
    record = running_server(state)
    pods = []
    for pod in store.objects(PODS, settings.namespace):
        containers = (pod.get("status") or {}).get("containerStatuses") or []
        waiting = [container["state"]["waiting"].get("reason") for container in containers
                   if "waiting" in (container.get("state") or {})]
        # The hash of the system token the pod's running containers started with (never the token).
        started_with = [((state.get("details") or {}).get("systemToken") or {}).get("sha256")
                        for state in running_containers(store, pod)]
        pods.append({"name": pod["metadata"]["name"], "ready": is_ready(pod),
                     "state": waiting[0] if waiting else (pod.get("status") or {}).get("phase", "Pending"),
                     "restarts": sum(container.get("restartCount", 0) for container in containers),
                     "token_sha256": next((digest for digest in started_with if digest), None)})
    service = store.find(SERVICE_RESOURCE, settings.namespace, REST_SERVICE)
    rest_port = ((service or {}).get("spec", {}).get("ports") or [{}])[0].get("port")
    # The address the server's controllers last wrote into the Service (none before its first start).
    ingress = (((service or {}).get("status") or {}).get("loadBalancer") or {}).get("ingress") or [{}]
    rest = {"service": "%s/%s" % (settings.namespace, REST_SERVICE) if service else None,
            "url": (record or {}).get("rest_url"),
            "load_balancer": "%s:%s" % (ingress[0]["ip"], rest_port) if ingress[0].get("ip") else None}
    return {"state_dir": state.root, "server": {"running": bool(record), "url": (record or {}).get("url"),
                                                "pid": (record or {}).get("pid")},
            "kubeconfig": (record or {}).get("kubeconfig"), "rest": rest,
            "token": token_report(store, settings.namespace, settings.token_secret, settings.config_secret),
            "pods": pods, "pods_ready": sum(1 for pod in pods if pod["ready"]), "pods_total": len(pods)}


def cmd_status(args: argparse.Namespace, out: TextIO) -> int:
    report = status_report(StateDir(args.state_dir))
    if args.json:
        out.write(json.dumps(report, indent=2) + "\n")
        return 0
    server, token = report["server"], report["token"]
    serving = ("serving %s (pid %d)" % (server["url"], server["pid"]) if server["running"]
               else "server stopped")
    out.write("sandbox %s: %s\n" % (report["state_dir"], serving))
    out.write("system token (%s, %s): subject %s, issuer %s, expires %s (in %s), cluster accepts it: %s\n"
              % (token["secret"], token["key"], token["subject"], token["issuer"], token["expires_at"],
                 _days(token["expires_in"]), "yes" if token["valid"] else "no (%s)" % token["reason"]))
    rest = report["rest"]
    if rest["service"]:
        out.write("Okera REST API: %s (Service %s, LoadBalancer %s, plain HTTP)\n"
                  % (rest["url"] or "not served", rest["service"], rest["load_balancer"] or "<pending>"))
    out.write("pods ready: %d of %d\n" % (report["pods_ready"], report["pods_total"]))
    for pod in report["pods"]:
        readiness = "ready" if pod["ready"] else "-"
        out.write("  %-40s %-6s %-26s restarts %d\n" % (pod["name"], readiness, pod["state"], pod["restarts"]))
    return 0


def cmd_fault(args: argparse.Namespace, out: TextIO) -> int:
    """Add a rule to faults.json (a running server applies it to its next request), list or clear them."""
    state = StateDir(args.state_dir)
    state.settings()
    rules = [] if args.clear else read_rules(state.faults)
    wanted = {"method": args.method, "path": args.path, "path_regex": args.path_regex, "status": args.status,
              "retry_after": args.retry_after, "message": args.message, "delay": args.delay, "drop": args.drop,
              "kill": args.kill, "processed": args.processed, "after": args.after, "times": args.times}
    adding = any(value not in (None, False) for name, value in wanted.items() if name != "method")
    if adding:
        rules.append(parse_rule({name: value for name, value in wanted.items() if value not in (None, False)}))
    if adding or args.clear:
        write_rules(state.faults, rules)
    if not rules:
        out.write("%s: no faults in %s\n" % (PROGRAM, state.faults))
    for number, rule in enumerate(rules, 1):
        out.write("%d. %s\n" % (number, rule.describe()))
    return 0


# ---- arguments --------------------------------------------------------------------------------

def _state_dir_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state-dir", required=True, help="the sandbox's directory (created by init)")


def _ipv4_address(text: str) -> str:
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        raise argparse.ArgumentTypeError("%s is not an IPv4 address, e.g. 10.89.0.2" % shown(text)) from None


def _serve_arguments(parser: argparse.ArgumentParser) -> None:
    _state_dir_argument(parser)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1; 0 picks a free one")
    parser.add_argument("--rest-port", type=int, default=0,
                        help="port of Okera's REST API stand-in (plain HTTP, written into Service "
                             "cdas-rest-server); 0 picks a free one")
    parser.add_argument("--load-balancer-ip", type=_ipv4_address, default=DEFAULT_LOAD_BALANCER_IP, metavar="ADDRESS",
                        help="the address every LoadBalancer Service's load balancer reports "
                             "(status.loadBalancer.ingress[0].ip), where the Okera REST API answers "
                             "(default %s)" % DEFAULT_LOAD_BALANCER_IP)
    parser.add_argument("--rest-host", type=_ipv4_address, metavar="ADDRESS",
                        help="the address the Okera REST API listens on: the --load-balancer-ip (default) or "
                             "%s (every address of this host, for a load balancer address it does not have)" % ANY_ADDRESS)
    parser.add_argument("--kubeconfig", help="where to write the kubeconfig (default STATE_DIR/kubeconfig)")
    parser.add_argument("--tls", action=argparse.BooleanOptionalAction, default=None,
                        help="serve HTTPS (the default set by init) or plain HTTP")
    parser.add_argument("--pod-start-delay", type=float, default=0.5,
                        help="seconds from a pod's creation to its containers' start (default 0.5)")
    parser.add_argument("--crash-backoff", type=float, default=2.0,
                        help="seconds before a crashed container is restarted (default 2)")
    parser.add_argument("--verbose", action="store_true", help="log every request, not only errors")
    parser.add_argument("--podman", action="store_true",
                        help="run the pods that are not Okera's for real with podman kube play (their images "
                             "from podman's local storage, no network); the Okera pods stay simulated")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROGRAM, description=(
        "A local Kubernetes API server that simulates an Okera cluster, to rehearse system token "
        "rotation. Not a real cluster: production runs against one."))
    commands = parser.add_subparsers(dest="command", required=True)
    init = commands.add_parser("init", help="create a sandbox: keys, a system token, Secrets, services")
    _state_dir_argument(init)
    init.add_argument("--namespace", default="default")
    init.add_argument("--token-ttl", default="30d", help="lifetime of the system token, e.g. 2d, 12h (default 30d)")
    init.add_argument("--issuer", default=DEFAULT_ISSUER)
    init.add_argument("--groups", default=",".join(DEFAULT_GROUPS), help="comma-separated groups claim")
    init.add_argument("--catalog-admins", help="the cluster's CATALOG_ADMINS, comma-separated (default: the "
                      "--groups); the services refuse a system token in none of them; '' leaves it out")
    init.add_argument("--algorithm", default=DEFAULT_ALGORITHM_SETTING,
                      help="the cluster's JWT_ALGORITHM (RSA512 or RSA256)")
    init.add_argument("--config-secret", default=CONFIG_SECRET,
                      help="Secret holding JWT_PUBLIC_KEY and JWT_ALGORITHM (default okera-config)")
    # kubectl sends credentials only over TLS, so HTTPS is the default.
    init.add_argument("--tls", action=argparse.BooleanOptionalAction, default=True,
                      help="serve HTTPS with a generated CA (default), or plain HTTP (--no-tls)")
    init.add_argument("--force", action="store_true", help="replace an existing sandbox")
    serve = commands.add_parser("serve", help="serve the sandbox's API (foreground unless --background)")
    _serve_arguments(serve)
    serve.add_argument("--background", action="store_true", help="detach; stop with the stop command")
    start = commands.add_parser("start", help="the same as serve --background")
    _serve_arguments(start)
    stop = commands.add_parser("stop", help="stop the background server")
    _state_dir_argument(stop)
    status = commands.add_parser("status", help="the system token's subject and expiry, and pod readiness")
    _state_dir_argument(status)
    status.add_argument("--json", action="store_true", help="print JSON")
    _fault_arguments(commands.add_parser(
        "fault", help="inject a fault into the API server's answers (a rule added to STATE_DIR/faults.json, "
                      "applied from the next request on); without a rule: list them"))
    return parser


def _fault_arguments(fault: argparse.ArgumentParser) -> None:
    _state_dir_argument(fault)
    fault.add_argument("--clear", action="store_true", help="remove every rule first (alone: no faults any more)")
    fault.add_argument("--method", help="GET, POST, PUT, PATCH, DELETE or * (default: any)")
    where = fault.add_mutually_exclusive_group()
    where.add_argument("--path", help="requests whose path starts with this (default: any)")
    where.add_argument("--path-regex", help="requests whose path this regular expression finds something in")
    action = fault.add_mutually_exclusive_group()
    action.add_argument("--status", type=int, help="answer this code with a Kubernetes Status (409, 429, 500, 503, 504, ...)")
    action.add_argument("--drop", action="store_true", help="close the connection without an answer")
    action.add_argument("--kill", action="store_true",
                        help="drop this request and every later one, as a killed API server (until the rules change)")
    fault.add_argument("--processed", action="store_true",
                       help="with --drop/--kill: carry the request out first, then lose the answer")
    fault.add_argument("--delay", type=float, help="seconds to wait first (alone: then answer as usual)")
    fault.add_argument("--retry-after", type=int, help="with --status: the Retry-After header's seconds (429: 1 unless given)")
    fault.add_argument("--message", help="with --status: the Status message (default: the API server's own)")
    fault.add_argument("--after", type=int, help="let the first N matching requests through")
    fault.add_argument("--times", type=int, help="then act on M requests (default: every later one)")


def main(argv: Optional[List[str]] = None, out: TextIO = sys.stdout) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "start":
        args.command, args.background = "serve", True
    handlers = {"init": cmd_init, "serve": cmd_serve, "stop": cmd_stop, "status": cmd_status, "fault": cmd_fault}
    try:
        return handlers[args.command](args, out)
    except (OkeraAuthError, ApiError, OSError) as error:
        # OSError: a state file that cannot be read or written, certificates that do not load.
        sys.stderr.write("%s: error: %s\n" % (PROGRAM, error))
        return 1
    except KeyboardInterrupt:
        return 130
