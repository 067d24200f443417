"""Fixtures of the container tier: podman with its own configuration, the image built offline
by scripts/build-image.sh, and a sandbox cluster's state for the Okera REST API in the pods.

Run as root by `scripts/test.sh` (step "podman: sidecar pods"); alone:
    .venv/bin/python -m pytest tests/containers
The figures measured on the way (image build, size, pod start, the daemon's memory) are printed
at the end of the run and written to .cache/podman/figures.json.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
import pytest

from podman_harness import FIGURES, REPO_ROOT, Podman, setting_up_failed

IMAGE = "okera-authserver:0.1.0"  # the role's authserver_sidecar_image
CACHE = REPO_ROOT / ".cache"


def pytest_configure(config):
    config.addinivalue_line("markers", "podman: runs containers with podman (scripts/test.sh runs these as their own step)")


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.podman)


def pytest_terminal_summary(terminalreporter):
    if FIGURES:
        terminalreporter.write_sep("-", "container figures")
        for name, value in FIGURES.items():
            terminalreporter.write_line("%s: %s" % (name, value))
        (CACHE / "podman").mkdir(parents=True, exist_ok=True)
        (CACHE / "podman" / "figures.json").write_text(json.dumps(FIGURES, indent=2) + "\n")


@pytest.fixture(scope="session")
def podman() -> Podman:
    """podman on the private storage under .cache/podman; swept before and after the session,
    which must leave no pod, container, volume, secret or network behind."""
    problem = setting_up_failed(shutil.which("podman"))
    if problem:
        pytest.fail(problem)
    runner = Podman(CACHE / "podman")
    runner.sweep()
    yield runner
    left = runner.leftovers()
    runner.sweep()
    # Intermediate images of earlier builds (the image and its base stay cached).
    runner("image", "prune", "--force", check=False, timeout=300)
    assert left == {}, "the tests left these behind: %s" % left


@pytest.fixture(scope="session")
def image(podman) -> str:
    """The auth-server image, built as an air-gapped site builds it (scripts/build-image.sh)."""
    bin_dir = str(Path(sys.executable).parent)
    env = dict(podman.env, PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""))
    started = time.monotonic()
    done = subprocess.run(["bash", str(REPO_ROOT / "scripts" / "build-image.sh"), "--tag", IMAGE,
                           "--python", sys.executable, "--cache", str(CACHE / "images")],
                          capture_output=True, text=True, env=env, timeout=900, check=False)
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr
    tag, size = done.stdout.split()[-2:]
    how = ("cold: base from debootstrap" if "debootstrap" in done.stderr
           else "base root file system cached, imported" if "imported" in done.stderr else "base image cached")
    FIGURES["image build (%s)" % how] = "%.0f s" % seconds
    FIGURES["image size"] = "%.0f MiB" % (int(size) / 1024 / 1024)
    return tag


@pytest.fixture(scope="session")
def sandbox_state(tmp_path_factory) -> Path:
    """A sandbox cluster's state (plain HTTP), initialized on the host; test_sidecar_pods runs its
    server (on a copy) in a container on the pods' internal network, its REST API behind Service
    cdas-rest-server's load balancer as Okera's is. Its signing key is the auth server's key."""
    state = tmp_path_factory.mktemp("sandbox") / "state"
    done = subprocess.run([sys.executable, "-m", "okera_auth.sandbox", "init", "--state-dir", str(state), "--no-tls"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return state
