"""What a conversion did: per site and in total, as a pandas DataFrame."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

COLUMNS = ["site", "activation", "l", "r", "K", "neurons", "clipped_fraction", "nonfinite_inputs"]


@dataclass
class ConversionReport:
    """What the converter did, per site, and what it left alone.

    ``unconverted``: activations left analog (only with ``strict=False``);
    ``kept_analog``: the non-linearities that stay analog by design, as the
    probe saw them on the first calibration batch (softmax, normalisations,
    attention, products of two signals such as gates); ``notes``: what the
    converter decided that a user should know (no site at all, intervals set
    by outliers, what was not probed).
    """

    method: str
    spikes: str
    traced: bool
    calibration_samples: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    unconverted: list[str] = field(default_factory=list)
    kept_analog: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def table(self) -> pd.DataFrame:
        """One row per converted site: activation, interval [l, r], K, neurons per
        sample, the fraction of calibration inputs outside [l, r], the NaN or
        infinite calibration inputs it ignored, then the method's own columns
        (e.g. ``table_bytes``, the memory of its neuron tables, and PS's grid ``step``)."""
        extra = [k for row in self.rows for k in row if k not in COLUMNS and k != "source"]
        columns = COLUMNS + list(dict.fromkeys(extra))
        return pd.DataFrame(self.rows, columns=columns).set_index("site")
