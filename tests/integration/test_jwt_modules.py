"""jwt_token / jwt_token_info / filters through a real ansible-playbook run on localhost."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

PLAYBOOK = Path(__file__).parent / "playbooks" / "jwt_modules.yml"


@pytest.fixture
def workdir(tmp_path, key_dir):
    directory = tmp_path / "work"
    shutil.copytree(key_dir, directory)
    return directory


def test_mint_keep_force_check_verify_tamper(run_playbook, workdir):
    done = run_playbook(PLAYBOOK, "-e", "workdir=%s" % workdir, "-v")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    recap = re.search(r"localhost\s+: ok=(\d+)\s+changed=(\d+).*failed=(\d+)", done.stdout)
    assert recap and recap.group(3) == "0"
    # check mode's prediction, the mint, the forced mint and the tampered copy
    assert int(recap.group(2)) == 4


def test_token_and_key_never_in_verbose_output(run_playbook, workdir):
    done = run_playbook(PLAYBOOK, "-e", "workdir=%s" % workdir, "-vvv")
    assert done.returncode == 0, done.stdout[-3000:]
    token = (workdir / "system.token").read_text().strip()
    key_line = (workdir / "private.pem").read_text().splitlines()[1]
    output = done.stdout + done.stderr
    assert token.split(".")[2] not in output
    assert key_line not in output
