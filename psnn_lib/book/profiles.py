"""The three profiles every notebook knows, and a notebook's per-profile settings."""
from __future__ import annotations

from typing import Any, Mapping

PROFILES = ("smoke", "default", "paper")


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
