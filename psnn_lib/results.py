"""Results as data: the JSON record each notebook writes, and its tables.

Every reported number is stored as {paper, ours, tolerance, status, note}.
``status`` is ``reproduced`` when |ours - paper| <= tolerance, ``deviates``
otherwise (the note says why), or ``not run`` when this profile did not
compute it. The book renders its paper-vs-ours tables from these records.
"""
from __future__ import annotations

import json
import math
import platform
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional

from .project import check_profile, project_root, results_dir

STATUSES = ("reproduced", "deviates", "not run")


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


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             cwd=project_root(), timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError, FileNotFoundError):
        return "unknown"


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for pkg in ("psnn", "torch", "torchvision", "numpy", "scipy", "matplotlib"):
        try:
            found[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return found


class Record:
    """Collects a notebook's numbers and writes ``results/<notebook>.json``."""

    def __init__(self, notebook: str, profile: str, parameters: dict[str, Any], seed: int) -> None:
        self.notebook = notebook
        self.profile = check_profile(profile)
        self.parameters = parameters
        self.seed = seed
        self.items: list[Comparison] = []
        self.extra: dict[str, Any] = {}
        self._start = time.perf_counter()

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

    def get(self, name: str) -> Comparison:
        for item in self.items:
            if item.name == name:
                return item
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "notebook": self.notebook, "profile": self.profile, "parameters": self.parameters,
            "seed": self.seed, "git_commit": _git_commit(), "versions": _versions(),
            "wall_time_s": round(time.perf_counter() - self._start, 2),
            "summary": {s: sum(i.status == s for i in self.items) for s in STATUSES},
            "results": [asdict(i) for i in self.items], "extra": self.extra,
        }

    def save(self) -> Path:
        folder = results_dir(self.profile)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.notebook}.json"
        path.write_text(json.dumps(self.to_dict(), indent=1, default=float) + "\n")
        return path

    def table(self, prefix: str = "") -> "Markdown":
        """The paper-vs-ours table (items whose name starts with ``prefix``)."""
        return comparison_table([i for i in self.items if i.name.startswith(prefix)])


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"
    return "" if v is None else str(v)


def comparison_table(items: list[Comparison]) -> "Markdown":
    from IPython.display import Markdown

    rows = ["| quantity | paper | ours | tolerance | status | note |", "|---|---|---|---|---|---|"]
    for i in items:
        rows.append(f"| {i.name} | {_fmt(i.paper)} | {_fmt(i.ours)} | {_fmt(i.tolerance)} | "
                    f"**{i.status}** | {i.note} |")
    return Markdown("\n".join(rows))


def load_record(notebook: str, profile: str = "default") -> dict[str, Any]:
    """Read a notebook's recorded JSON."""
    path = results_dir(profile) / f"{notebook}.json"
    return json.loads(path.read_text())
