"""What a conversion did: per site and in total, as a pandas DataFrame."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

COLUMNS = ["site", "activation", "l", "r", "K", "neurons", "clipped_fraction", "nan_inputs"]


@dataclass
class ConversionReport:
    """What the converter did, per site, and what it left alone."""

    method: str
    spikes: str
    traced: bool
    calibration_samples: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    unconverted: list[str] = field(default_factory=list)
    kept_analog: list[str] = field(default_factory=list)

    def table(self) -> pd.DataFrame:
        """One row per converted site: activation, interval [l, r], K, neurons per
        sample, the fraction of calibration inputs outside [l, r] and the NaN
        calibration inputs it ignored."""
        return pd.DataFrame(self.rows, columns=COLUMNS + ["source"])[COLUMNS].set_index("site")
