"""The short proof: 50k events through the whole embedded pipeline under every fault and the
hostile corpus; every ledger line must add up (``python -m deploy.proof``, as ``make proof``
runs it at 1M events)."""

from __future__ import annotations

import subprocess
import sys

from .conftest import REPO


def test_the_short_proof_adds_up(tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "deploy.proof",
        "--events",
        "50000",
        "--rates",
        "2500",
        "--fault-rate",
        "1000",
        "--warmup-s",
        "5",
        "--data-dir",
        str(tmp_path / "proof"),
    ]
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=1200)
    out = result.stdout
    ledger = [line for line in out.splitlines() if line.startswith("LEDGER ")]
    failed = [line for line in ledger if not line.endswith(" ok")]
    assert not failed, out[-8000:] + result.stderr[-4000:]
    assert len(ledger) >= 13, out[-8000:]
    assert "RECOVERY fault=sink-sigkill-3" in out and "LATENCY phase=faults-1000/s" in out
    assert result.returncode == 0 and "PROOF ok" in out, out[-8000:] + result.stderr[-4000:]
