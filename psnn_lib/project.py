"""Where the project lives on disk, and the profiles every notebook knows."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

PROFILES = ("smoke", "default", "paper")


def project_root(start: Path | None = None) -> Path:
    """The folder holding ``_toc.yml``: ``$PSNN_ROOT`` or the first parent of cwd."""
    if "PSNN_ROOT" in os.environ:
        return Path(os.environ["PSNN_ROOT"])
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "_toc.yml").exists():
            return folder
    raise FileNotFoundError(f"no _toc.yml above {here}: run inside the psnn checkout or set PSNN_ROOT")


def results_dir(profile: str) -> Path:
    """``$PSNN_RESULTS_DIR``, else ``results/`` (default) or ``results/<profile>/``."""
    check_profile(profile)
    if "PSNN_RESULTS_DIR" in os.environ:
        return Path(os.environ["PSNN_RESULTS_DIR"])
    base = project_root() / "results"
    return base if profile == "default" else base / profile


def check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    return profile


def profile_settings(profile: str, table: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The settings of ``profile`` from a notebook's per-profile table."""
    check_profile(profile)
    if profile not in table:
        raise ValueError(f"this notebook defines no {profile!r} profile (it has {', '.join(table)})")
    return dict(table[profile])
