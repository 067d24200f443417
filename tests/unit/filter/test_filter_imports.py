"""Ansible imports every filter file of the collection in each task's worker process once any of
its filters is used (`okera.auth.shown` in a role's fail message loads `rbac.py` too), so a
filter file that pulled in the kubernetes library cost every such task about a quarter second."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

FILTER_DIR = Path(__file__).resolve().parents[3] / "plugins" / "filter"
HEAVY_LIBRARIES = ("kubernetes", "boto3", "botocore", "jwt")


def test_filter_plugins_import_no_heavy_library():
    names = sorted(path[:-3] for path in os.listdir(FILTER_DIR) if path.endswith(".py"))
    assert "rbac" in names and "jwt" in names
    code = ("import sys\n"
            "for name in %r:\n"
            "    __import__('ansible_collections.okera.auth.plugins.filter.' + name)\n"
            "print(sorted({module.split('.')[0] for module in sys.modules} & set(%r)))\n" % (names, HEAVY_LIBRARIES))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True,
                            env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    assert result.stdout.strip() == "[]"
