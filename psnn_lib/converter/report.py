"""What a conversion did: typed records per site and per analog operation, and the report
that holds them (a pandas DataFrame on request)."""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Optional

import pandas as pd


@dataclass(frozen=True)
class SiteRow:
    """One converted site: its name and where it is in the model (``source``), the activation,
    the interval [l, r], its ``time_steps`` (a PS site's K, Eq. 17 or 19, or the method's T),
    neurons per sample, the share of calibration inputs its neurons do not represent
    (``clipped_fraction``), the NaN or infinite calibration inputs it ignored, whether its input
    is per token (only with a token mask; else None) and the method's own columns (``details``:
    e.g. ``table_bytes``, PS's grid ``step`` and ``error_bound``, paper 2's ``P_th``, ``N_th``)."""

    site: str
    source: str
    activation: str
    l: float
    r: float
    time_steps: int
    neurons: int
    clipped_fraction: float
    nonfinite_inputs: int
    per_token: Optional[bool] = None
    details: dict[str, Any] = field(default_factory=dict)

    def flat(self) -> dict[str, Any]:
        """The row as one flat dict (the method's columns after the common ones)."""
        common = {k: v for k, v in vars(self).items() if k not in ("source", "details")}
        if self.per_token is None:
            del common["per_token"]
        return {**common, **self.details}


@dataclass(frozen=True)
class AnalogOp:
    """A non-linearity that stays analog by design, as the probe saw it on the first calibration
    batch: ``where`` (a module path, or the model's top level), the function ``op``, its ``kind``
    (softmax, normalisation, analog function, product or quotient of two signals, ...) and how
    many times one forward pass called it there."""

    where: str
    op: str
    kind: str
    calls: int

    def __str__(self) -> str:
        return f"{self.where}: {self.op} ({self.kind}) (x{self.calls})"


@dataclass
class ConversionReport:
    """What the converter did, per site, and what it left alone.

    ``rows``: one :class:`SiteRow` per converted site; ``unconverted``: activations
    left analog (only with ``strict=False``), each naming its module or call and why;
    ``kept_analog``: the non-linearities that stay analog by design (:class:`AnalogOp`:
    softmax, normalisations, attention, products of two signals such as gates);
    ``notes``: what the converter decided that a user should know (no site at all,
    intervals set by outliers, what was not probed).
    """

    method: str
    spikes: str
    traced: bool
    calibration_samples: int
    rows: list[SiteRow] = field(default_factory=list)
    unconverted: list[str] = field(default_factory=list)
    kept_analog: list[AnalogOp] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def table(self) -> pd.DataFrame:
        """One row per converted site (:meth:`SiteRow.flat`), indexed by site."""
        rows = [row.flat() for row in self.rows]
        return (pd.DataFrame(rows) if rows else pd.DataFrame(columns=_COMMON)).set_index("site")


_COMMON = [f.name for f in fields(SiteRow) if f.name not in ("source", "per_token", "details")]
