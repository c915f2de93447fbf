"""Paper 2's values for the chapters: what the negative-spikes chapter says about the
``p2_*`` records and the networks' manifest (``data/paper2_networks.json``), computed at
build time (the mechanism: :mod:`psnn_lib.book.prose`).
"""
from __future__ import annotations

from typing import Any

from ..book.prose import ProseError, Records, Value, energy_pair, fixed, listing
from .numbers import TABLE1

PAPER_ANN = TABLE1["proposed"][0]  # the paper's Net4 ANN on Fashion-MNIST (Table 1), percent


def _read_manifest(records: Records) -> dict[str, Any]:
    """The committed networks' manifest (``data/paper2_networks.json``, :mod:`.networks`)."""
    from .networks import manifest_entries, manifest_path  # imports torch: only when a chapter asks for a network
    path = manifest_path("committed")
    if not path.exists():
        raise ProseError(f"the networks' manifest {path} is missing")
    return manifest_entries(path)


def _manifest(records: Records) -> dict[str, Any]:
    """The manifest, read once per build."""
    return records.derived(_read_manifest)


def _net(records: Records, name: str, key: str) -> Any:
    entry = _manifest(records).get(name, {})
    if entry.get(key) is None:
        raise ProseError(f"the networks' manifest has no {key!r} for {name!r}")
    return entry[key]


def _p2_row(records: Records, notebook: str, field: str, value: str) -> dict[str, Any]:
    for row in records.extra(notebook, "rows"):
        if row.get(field) == value:
            return row
    raise ProseError(f"the record {notebook} has no row with {field} = {value!r}")


def _p2_validation(records: Records) -> str:
    sel = _net(records, "net4_ann", "selection")
    chosen = sel["validation"][sel["chosen"]]
    others = [v for k, v in sel["validation"].items() if k != sel["chosen"]]
    return (f"{sel['chosen']} on the validation split ({fixed(chosen, 2)} % against "
            f"{listing([f'{fixed(v, 2)} %' for v in others])})")


def _signed_points(x: float) -> str:
    if fixed(x, 2) == "0.00":
        return "level with"
    return f"{fixed(abs(x), 2)} points {'below' if x < 0 else 'above'}"


def _settles(row: dict[str, Any]) -> str:
    """From which step on a run stays within its allowance, or that it never does, of the steps run."""
    t, run = row["time steps"], row["T run"]
    if t is None:
        return f"at no step of the {run} steps run"
    return f"from $T = {t}$ on (of the {run} steps run)"


def _p2_augmapping(records: Records) -> str:
    row = _p2_row(records, "p2_table1_fashion_mnist", "method", "AugMapping")
    at = records.claim("p2_table1_fashion_mnist", "AugMapping: SNN - ANN at the paper's T = 220*")["ours"]
    return (f"it stays within one paired SE of its ANN {_settles(row)}; "
            + (f"at the paper's 220 steps it is {_signed_points(at)} it" if at is not None
               else "the paper's 220 steps were not run at this profile"))


def _p2_strelu(records: Records) -> str:
    row = _p2_row(records, "p2_table1_fashion_mnist", "method", "stReLU")
    if row["time steps"] is None:
        return f"the symmetric neuron does not settle within the {row['T run']} steps run (the paper's needs 79)"
    return f"the symmetric neuron needs {row['time steps']} (the paper's 79)"


def _p2_proposed(records: Records) -> str:
    at = records.claim("p2_table1_fashion_mnist", "proposed: SNN - ANN at the paper's T = 10*")["ours"]
    row = _p2_row(records, "p2_table1_fashion_mnist", "method", "proposed")
    head = (f"is {_signed_points(at)} its ANN at the paper's $T = 10$" if at is not None
            else "was not run at the paper's $T = 10$ at this profile")
    return f"the calibrated proposed network {head} and stays within the allowance {_settles(row)}"


def _p2_clip(records: Records) -> str:
    sweep = records.extra("p2_fig1_table4_thresholds", "clip sweep")
    weights = [f"{row['clip weight']:g}" for row in sweep["sweep"]]
    return f"{sweep['chosen']:g} (of {listing(weights)})"


def _p2_rate_ratio(records: Records) -> str:
    ratios = [c["ours"] / c["paper"] for c in records.record("p2_fig1_table4_thresholds")["results"]
              if c["name"].startswith("layer ") and "firing rate" in c["name"] and c["ours"] is not None
              and c["paper"]]  # a paper's rate of 0 (or none) gives no ratio
    if not ratios:
        raise ProseError("the record p2_fig1_table4_thresholds has no firing rate with a nonzero paper's rate")
    return f"{fixed(min(ratios), 1)} to {fixed(max(ratios), 1)} times the paper's"


def _p2_uncalibrated(records: Records) -> str:
    row = _p2_row(records, "p2_table5_fig3_calibration", "weighting", "none (no calibration)")
    return _settles(row)


def _p2_calibrated_gap(records: Records) -> str:
    rows = records.extra("p2_table5_fig3_calibration", "rows")
    base = next((r["curve"] for r in rows if r["weighting"].startswith("none")), None)
    if base is None:
        raise ProseError("the record p2_table5_fig3_calibration has no uncalibrated row")
    gap = max(abs(a - b) for r in rows if not r["weighting"].startswith("none")
              for a, b in list(zip(r["curve"], base))[1:])
    return f"within {fixed(gap, 2)} points"


def _p2_differences(records: Records) -> str:
    diffs = records.extra("p2_table5_fig3_calibration", "differences")
    worst = max(abs(d["difference"]) for d in diffs)
    decided = sum(d["decided (|difference| > 2 SE)"] for d in diffs)
    tail = "all inside two standard errors" if not decided else f"{decided} of {len(diffs)} beyond two standard errors"
    return f"at most {fixed(worst, 2)} points, {tail}"


def _p2_fig3(records: Records) -> str:
    steps = records.ours("p2_table5_fig3_calibration", "without calibration: steps from ANN - 0.72 to ANN - 0.12 points")
    return f"{steps} steps"


def _p2_wall(records: Records) -> str:
    walls = [v["wall_s"] for k, v in _manifest(records).items() if k.startswith("net4_calibrated_") and v.get("wall_s")]
    if not walls:
        raise ProseError("the networks' manifest has no wall_s for net4_calibrated_*")
    return (f"{fixed(min(walls) / 60, 1)} to {fixed(max(walls) / 60, 1)} minutes" if len(walls) > 1
            else f"{fixed(walls[0] / 60, 1)} minutes")


def _cost_p2(records: Records) -> str:
    best = records.extra("p2_beyond_methods", "cheapest")
    if best is None:
        return "no costed method is within the allowance"
    letter = "K" if best["method"].startswith("ps") else "T"
    return f"{best['method']} at ${letter} = {best['K or T']}$: {energy_pair(best, 'image')}"


VALUES: dict[str, Value] = {
    "cost.p2": _cost_p2,
    "p2.validation": _p2_validation,
    "p2.net4_test": lambda r: f"{fixed(_net(r, 'net4_ann', 'test_accuracy'), 2)} %",
    "p2.net4_gap": lambda r: fixed(PAPER_ANN - _net(r, 'net4_ann', 'test_accuracy'), 1),
    "p2.thresholds": lambda r: f"{fixed(r.ours('p2_table1_fashion_mnist', 'proposed: ANN acc (*'), 2)} %",
    "p2.strelu_ann": lambda r: f"{fixed(_net(r, 'net4_strelu', 'test_accuracy'), 2)} %",
    "p2.augmapping": _p2_augmapping,
    "p2.strelu": _p2_strelu,
    "p2.proposed": _p2_proposed,
    "p2.clip": _p2_clip,
    "p2.rate_ratio": _p2_rate_ratio,
    "p2.uncalibrated": _p2_uncalibrated,
    "p2.calibrated_gap": _p2_calibrated_gap,
    "p2.differences": _p2_differences,
    "p2.fig3": _p2_fig3,
    "p2.wall": _p2_wall,
}
