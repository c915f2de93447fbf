"""Results as data: the JSON record each notebook writes.

Every reported number is stored as {paper, ours, tolerance, status, note}.
``status`` is ``reproduced`` when |ours - paper| <= tolerance, ``deviates``
otherwise (the note says why), or ``not run`` when this profile did not
compute it. A record names its paper (1 or 2) and the figure or table it
reproduces, and the sources that produced it (:mod:`.provenance`), so that
the claims page can group claims and mark a stale record. A record holds no
time stamp or commit: rerunning the same sources writes the same bytes.
"""
from __future__ import annotations

import json
import math
import platform
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional

import pandas as pd

from ..paths import project_root, results_dir
from .profiles import check_profile
from .provenance import sources
from .tables import comparison_frame

STATUSES = ("reproduced", "deviates", "not run")
PAPERS = {1: "Precise Spiking neurons", 2: "Negative spikes"}


@dataclass
class Comparison:
    name: str
    paper: Any
    ours: Any
    tolerance: Optional[float]
    status: str
    note: str = ""


def judge(paper: Any, ours: Any, tolerance: Optional[float]) -> str:
    """Status of one number (or a boolean / categorical claim when tolerance is None)."""
    if ours is None or (isinstance(ours, float) and math.isnan(ours)):
        return "not run"
    if tolerance is None:
        return "reproduced" if ours == paper else "deviates"
    return "reproduced" if abs(float(ours) - float(paper)) <= tolerance else "deviates"


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for pkg in ("psnn", "torch", "torchvision", "numpy", "scipy", "matplotlib", "pandas", "transformers", "datasets"):
        try:
            found[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    import torch

    if torch.cuda.is_available():  # the GPU the notebook could use (run_device picks it)
        found["gpu"] = torch.cuda.get_device_name(0)
    return found


class Record:
    """Collects a notebook's numbers and writes ``results/<notebook>.json``."""

    def __init__(self, notebook: str, profile: str, parameters: dict[str, Any], seed: int, *,
                 paper: int, target: str) -> None:
        if paper not in PAPERS:
            raise ValueError(f"paper must be one of {sorted(PAPERS)}, got {paper!r}")
        self.notebook = notebook
        self.profile = check_profile(profile)
        self.parameters = parameters
        self.seed = seed
        self.paper = paper
        self.target = target
        self.items: list[Comparison] = []
        self.extra: dict[str, Any] = {}

    def compare(self, name: str, paper: Any, ours: Any, tolerance: Optional[float] = None,
                why: str = "") -> Comparison:
        """Add a number with its paper value; ``why`` explains a deviation (or why it was not run)."""
        status = judge(paper, ours, tolerance)
        note = why if status != "reproduced" else ""
        if status == "deviates" and not why:
            note = "unexplained"
        item = Comparison(name, paper, ours, tolerance, status, note)
        self.items.append(item)
        return item

    @property
    def summary(self) -> dict[str, int]:
        return {s: sum(i.status == s for i in self.items) for s in STATUSES}

    def to_dict(self) -> dict[str, Any]:
        notebook_file = project_root() / "notebooks" / f"{self.notebook}.md"
        return {
            "notebook": self.notebook, "paper": self.paper, "target": self.target, "profile": self.profile,
            "parameters": self.parameters, "seed": self.seed, "versions": _versions(),
            "sources": sources(notebook_file) if notebook_file.exists() else None,
            "summary": self.summary, "results": [asdict(i) for i in self.items], "extra": self.extra,
        }

    @property
    def path(self) -> Path:
        return results_dir(self.profile) / f"{self.notebook}.json"

    def save(self) -> None:
        """Write the record (see :attr:`path`); shows nothing in a notebook."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.to_dict(), indent=1, default=float) + "\n")

    def table(self, prefix: str = "") -> pd.DataFrame:
        """The paper-beside-ours table (claims whose name starts with ``prefix``)."""
        return comparison_frame(i for i in self.items if i.name.startswith(prefix))
