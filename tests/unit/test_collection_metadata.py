"""meta/runtime.yml: the k8s action group holds exactly the modules that take the cluster options."""
from __future__ import annotations

from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_k8s_action_group_is_every_module_with_the_cluster_options():
    runtime = yaml.safe_load((REPO_ROOT / "meta" / "runtime.yml").read_text())
    cluster_modules = sorted(path.stem for path in (REPO_ROOT / "plugins" / "modules").glob("*.py")
                             if "okera.auth.k8s_auth" in path.read_text())
    assert cluster_modules and sorted(runtime["action_groups"]["k8s"]) == cluster_modules
