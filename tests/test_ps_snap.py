"""The snap to a PS grid is one definition on every CPU: the product and the sum rounded apart
(psnn_lib.ps.grid.snap), whatever instruction set ATen picks (ATEN_CPU_CAPABILITY)."""
import subprocess
import sys

import pytest
import torch

from psnn_lib.ps.grid import snap

L, DELTA, POINTS = -3.0, 1e-3, 6001

SCRIPT = """
import sys, torch
from psnn_lib.ps.grid import snap
x = torch.load(sys.argv[1])
torch.save(snap(x, {l}, {delta}, {points}).index, sys.argv[2])
""".format(l=L, delta=DELTA, points=POINTS)


def _near_ties() -> torch.Tensor:
    """Every cell boundary of the grid (as float64 rounds it) and its neighbours 1 and 2 ulps
    away, and uniform inputs."""
    mids = L + (torch.arange(POINTS + 1, dtype=torch.float64) - 0.5) * DELTA
    up, down = torch.nextafter(mids, mids + 1), torch.nextafter(mids, mids - 1)
    torch.manual_seed(0)
    return torch.cat([mids, up, down, torch.nextafter(up, up + 1), torch.nextafter(down, down - 1),
                      torch.rand(50000, dtype=torch.float64) * 6 - 3])


def test_snap_is_the_product_then_the_sum_each_rounded():
    x = _near_ties()
    inv = 1.0 / DELTA
    expected = ((x * inv) + (1.5 - L * inv)).clamp(0, POINTS + 1).to(torch.int32)
    assert torch.equal(snap(x, L, DELTA, POINTS).index, expected)


@pytest.mark.parametrize("capability", ["default", "native"])
def test_snap_gives_the_same_index_under_every_cpu_capability(tmp_path, capability):
    """Near-ties snap to the same point whether ATen runs its default (scalar-rounded) kernels or
    the machine's vector ones (where add(alpha=) is a fused multiply-add)."""
    x = _near_ties()
    torch.save(x, tmp_path / "x.pt")
    env = {**__import__("os").environ}
    env.pop("ATEN_CPU_CAPABILITY", None)
    if capability == "default":
        env["ATEN_CPU_CAPABILITY"] = "default"
    subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "x.pt"), str(tmp_path / "i.pt")], env=env,
                   check=True)
    assert torch.equal(torch.load(tmp_path / "i.pt"), snap(x, L, DELTA, POINTS).index)
