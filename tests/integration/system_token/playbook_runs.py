"""The playbooks under test and how to read their output."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Dict

REPO_ROOT = Path(__file__).resolve().parents[3]
ROTATE = REPO_ROOT / "playbooks" / "rotate_system_token.yml"
CHECK = REPO_ROOT / "playbooks" / "check_system_token.yml"


def recap(output: str) -> Dict[str, Dict[str, int]]:
    """The PLAY RECAP counters of each host."""
    found = {}
    for host, counters in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", output, re.MULTILINE):
        found[host] = {name: int(value) for name, value in re.findall(r"(\w+)=(\d+)", counters)}
    return found
