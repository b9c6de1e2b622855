"""The deployment files: the systemd unit verifies, the container recipe does what it promises."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_the_systemd_unit_verifies(tmp_path):
    unit = (ROOT / "deploy" / "abduce-daemon@.service").read_text()
    abduce = Path(sys.executable).with_name("abduce")
    assert abduce.exists()
    instance = tmp_path / "abduce-daemon@test.service"  # the installed path replaced by this venv's script
    instance.write_text(unit.replace("/opt/abduce/.venv/bin/abduce", str(abduce)))
    result = subprocess.run(["systemd-analyze", "verify", str(instance)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    for option in ("Restart=on-failure", "User=abduce", "NoNewPrivileges=yes", "ProtectSystem=strict"):
        assert option in unit


def test_the_dockerfile_installs_cpu_torch_first_and_runs_as_non_root():
    recipe = (ROOT / "deploy" / "Dockerfile").read_text()
    torch_at = recipe.index("torch==2.13.0")
    assert torch_at < recipe.index("pip install --no-cache-dir .")
    user = re.findall(r"^USER (\S+)", recipe, re.M)
    assert user and user[-1] not in ("root", "0")
