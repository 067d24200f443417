"""One sandbox cluster per test module of the cluster tests."""
from __future__ import annotations

import pytest

from sandbox_cluster import Sandbox


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    cluster = Sandbox(tmp_path_factory.mktemp("sandbox") / "state", token_ttl="30d")
    yield cluster
    cluster.stop()
