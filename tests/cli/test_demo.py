"""The README's first command runs `kubestep demo`: it must end with exit 0 after printing the
cluster's AWS resources and each operation's numbers."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHARED_HOME = Path(os.environ.get("KUBESTEP_TEST_HOME", ROOT / ".build" / "test-home"))


def test_demo_creates_prints_deletes_and_summarizes():
    env = {**os.environ, "KUBESTEP_HOME": str(SHARED_HOME)}  # reuses the synthesized assembly
    result = subprocess.run(
        [sys.executable, "-m", "kubestep.cli.main", "demo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-4000:]
    assert "Cluster prod: RUNNING" in out
    for kind in ("NLB", "TargetGroup", "AutoScalingGroup", "EBS volume", "LaunchTemplate", "SecurityGroup"):
        assert kind in out
    assert len(re.findall(r"AutoScalingGroup\s+gke-\w+-cp-\d", out)) == 3
    assert re.search(r"resources left with uid \w+: 0", out)
    for operation in ("ProvisionNetwork", "CreateCluster", "DeleteCluster"):
        assert re.search(rf"{operation}\s+SUCCEEDED\s+[\d.]+s\s+\d+\s+\d+\s+\d+", out), operation
