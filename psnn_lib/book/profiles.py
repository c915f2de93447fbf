"""The three profiles every notebook knows, and a notebook's per-profile settings."""
from __future__ import annotations

from typing import Any, Mapping, Optional

PROFILES = ("smoke", "default", "paper")


def check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    return profile


def profile_settings(profile: str, table: Mapping[str, Mapping[str, Any]],
                     overrides: Optional[Mapping[str, Any]] = None) -> dict[str, Any]:
    """The settings of ``profile`` from a notebook's per-profile table, with ``overrides`` (the
    notebook's parameter of that name: e.g. fewer epochs or images to try the paper profile
    first) in place of the values they name; a name the profile does not set is an error."""
    check_profile(profile)
    if profile not in table:
        raise ValueError(f"this notebook defines no {profile!r} profile (it has {', '.join(table)})")
    settings = dict(table[profile])
    if overrides is not None and not isinstance(overrides, Mapping):
        raise ValueError(f"overrides is a mapping of setting names to values, e.g. {{\"n_test\": 100}}, "
                         f"got {overrides!r}")
    unknown = set(overrides or {}) - set(settings)
    if unknown:
        raise ValueError(f"overrides names {', '.join(sorted(unknown))}, which the {profile} profile does not set "
                         f"(it sets {', '.join(settings)})")
    return {**settings, **(overrides or {})}
