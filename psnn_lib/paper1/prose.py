"""Paper 1's values for the chapters: what the fitting, conversion and transformers
chapters say about Table 5 (``fig5_table5_mse``), Fig. 2, the conversion loss against
$K$, Tables 1, 2 and 3 and Fig. 6, computed from those records (the mechanism:
:mod:`psnn_lib.book.prose`).

Some values are whole clauses (which cells no reading reaches, how a tie is broken), so
that a sentence cannot contradict the record beside it. Table 5 is rebuilt from its
record once per build, and torch is imported only when a chapter asks for it.
"""
from __future__ import annotations

import json
import math
from typing import Any, Callable

from ..book.prose import (ProseError, Records, Value, dec4, energy_pair, fixed, listing, microjoules, num, runs,
                          short, span)


# -- Table 5 (fig5_table5_mse) ------------------------------------------------------------------

FIG5 = "fig5_table5_mse"
LITERAL_LABEL = "Algorithm 1, T after the subtraction (line 25), M before the shift (line 8)"
PRINTED_LABEL = "Algorithm 1, T by Eq. 20"
CODE_ONE_FIT = "code, first weight code, full grid, float64, one fit"
LABEL_WORDS = {"code": "the authors' code", "Algorithm 1": "Algorithm 1 as printed",
               "first weight code": "with its own first weight", "first weight paper": "with the printed first weight",
               "full grid": "the full grid", "thinned": "the thinned grid",
               "nearest kept point": "snapped to the nearest kept point",
               "next kept point": "snapped to the next kept point",
               "b and M full": "$b$ and $M$ from the full grid", "b and M kept": "$b$ and $M$ from the kept points",
               "float32": "float32 sampling", "float64": "float64 sampling",
               "one fit": "one fit for all columns", "one fit per column": "one fit per column"}


def describe(label: str) -> str:
    """A reading's label in words."""
    return ", ".join(LABEL_WORDS.get(part, part) for part in label.split(", "))


def _table(records: Records):
    """Table 5 as the notebook computed it, rebuilt from the record."""
    from .fitting import Table5  # torch is imported only when a chapter needs Table 5
    mse = records.extra(FIG5, "mse")
    bound = records.extra(FIG5, "lattice bound")
    nan = lambda rows: {a: [math.nan if v is None else v for v in vs] for a, vs in rows.items()}
    return Table5({}, {n: nan(r) for n, r in mse.items()}, {n: nan(r) for n, r in bound.items()})


class Fig5:
    """Everything the fitting chapter says about Table 5."""

    def __init__(self, records: Records):
        from .fitting import cell_tolerance, column1_bound
        from .numbers import TABLE5
        self.paper, self.tolerance = TABLE5, cell_tolerance
        self.table = _table(records)
        self.matches = self.table.matches()
        self.counts = records.extra(FIG5, "cells reproduced per reading")
        self.best = records.extra(FIG5, "best reading")
        if self.best not in self.table.mse:
            raise ProseError(f"the best reading {self.best!r} of {FIG5} has no MSE in the record")
        self.lower = column1_bound(self.table)
        self.column1 = [n for n in self.table.mse if all(c[0] for c in self.matches[n].values())]
        self.activations = self.table.activations

    def mse(self, label: str, activation: str, iteration: int) -> float:
        try:
            return self.table.mse[label][activation][iteration - 1]
        except (KeyError, IndexError):
            raise ProseError(f"the record {FIG5} has no mse[{label!r}][{activation!r}] at iteration "
                             f"{iteration}: rerun its notebook") from None

    def unreached(self) -> list[tuple[str, int]]:
        return [(a, t + 1) for a in self.activations for t in range(9)
                if not any(self.matches[n][a][t] for n in self.matches)]

    def excluded(self) -> list[tuple[str, int]]:
        return [(a, t) for a, t in self.unreached()
                if self.paper[a][t - 1] + self.tolerance(self.paper[a][t - 1]) < self.lower[a][t - 1]]

    def tied(self) -> list[str]:
        return [n for n, c in self.counts.items() if c == self.counts[self.best] and n != self.best]

    def printed_twin(self) -> str:
        return self.best.replace("first weight code", "first weight paper")


def _cells(cells: list[tuple[str, int]]) -> str:
    by: dict[str, list[int]] = {}
    for a, t in cells:
        by.setdefault(a, []).append(t)
    return "; ".join(f"{a} {runs(ts)}" for a, ts in by.items())


def _fig5_values() -> dict[str, Callable[[Fig5], str]]:
    def weight(n: str) -> str:
        return "code" if "first weight code" in n else "paper"

    def tie(f: Fig5) -> str:
        tied = f.tied()
        if not tied:
            return "No other reading reaches as many."
        code = sum(weight(n) == "code" for n in tied)
        words = [f"{k} with {w}" for k, w in ((code, "the code's first weight"),
                                               (len(tied) - code, "the printed one")) if k]
        return (f"{len(tied)} other reading{'s' if len(tied) > 1 else ''} ({listing(words)}) also reach "
                f"{f.counts[f.best]}; the tie goes to the first in the order of the readings, where the code's "
                "first weight comes before the printed one.")

    def column1(f: Fig5) -> str:
        kinds = {weight(n) for n in f.column1}
        which = ("all with the code's first weight, whose first step cannot fire" if kinds == {"code"}
                 else "with either first weight")
        return f"{len(f.column1)} readings reproduce the whole column, {which}"

    def best_column1(f: Fig5) -> str:
        return ("which also reproduces the whole first column" if f.best in f.column1
                else "which does not reproduce the whole first column")

    def whole_rows(f: Fig5) -> str:
        rows = [a for a in f.activations if all(f.matches[f.best][a])]
        if not rows:
            return "The best reading reproduces no whole row"
        return f"The best reading reproduces the whole {listing(rows)} row{'s' if len(rows) > 1 else ''}"

    def column1_kept(f: Fig5) -> str:
        kept = [n for n in f.matches if "b and M kept" in n and n.endswith("one fit per column")]
        if not kept:
            raise ProseError(f"the record {FIG5} has no per-column reading with b and M from the kept points")
        parts = [f"{a} in {sum(f.matches[n][a][0] for n in kept)}" for a in f.activations]
        return f"of these {len(kept)} readings, the first cell stays within the tolerance for {listing(parts)}"

    def empty_hardswish(f: Fig5) -> str:
        empty = [n for n in f.table.mse if math.isnan(f.table.mse[n].get("Hardswish", [0, 0])[1])]
        if not empty:
            return "Every reading fills every cell."
        return (f"In the {len(empty)} readings that leave Hardswish's second cell empty, no $dy$ gives "
                "Hardswish $K = 2$ ($K$ jumps from 1 to 3).")

    def distinct(f: Fig5) -> str:
        keys = {json.dumps({a: [None if math.isnan(v) else v for v in vs] for a, vs in rows.items()},
                           sort_keys=True) for rows in f.table.mse.values()}
        return f"{len(keys)} of the {len(f.table.mse)} sets of numbers differ"

    def one_fit(kind: str) -> Callable[[Fig5], str]:
        return lambda f: span(c for n, c in f.counts.items()
                              if n.startswith("code, first weight " + kind) and n.endswith("one fit"))

    def sigmoid_twin(f: Fig5) -> str:
        twin = f.printed_twin()
        values = [f.mse(twin, "Sigmoid", t) for t in (2, 3, 4)]
        paper = f.paper["Sigmoid"][1:4]
        if all(f"{v:.4f}" == f"{p:.4f}" for v, p in zip(values, paper)):
            how = "is reproduced to all printed decimals"
        elif all(abs(v - p) <= f.tolerance(p) for v, p in zip(values, paper)):
            how = "is reproduced within the tolerance"
        else:
            how = "is not reproduced"
        return f"{how} by the best reading's pipeline with the printed first weight ({listing([num(v, 4) for v in values])})"

    def sigmoid_twin_misses(f: Fig5) -> str:
        twin = f.printed_twin()
        misses = [what for what, hit in (("the first column", twin in f.column1),
                                         ("the Hardsigmoid row", all(f.matches[twin]["Hardsigmoid"])))
                  if not hit]
        both = [n for n in f.matches if all(f.matches[n]["Sigmoid"][1:4]) and all(f.matches[n]["Hardsigmoid"])]
        head = f"it misses {listing(misses)}" if misses else "it also reproduces the first column and the Hardsigmoid row"
        tail = (f"{len(both)} reading{'s' if len(both) != 1 else ''} reproduce{'s' if len(both) == 1 else ''} both "
                "those Sigmoid cells and the whole Hardsigmoid row" if both
                else "no one reading reproduces both those Sigmoid cells and the whole Hardsigmoid row")
        return f"{head}; {tail}"

    def excluded(f: Fig5) -> str:
        cells = f.excluded()
        if not cells:
            return "For none of them does the lattice bound below exclude the readings that reproduce column 1"
        parts = [f"{a} at iteration {t} ({short(f.paper[a][t - 1])} against a bound of {short(f.lower[a][t - 1])})"
                 for a, t in cells]
        return (f"For {len(cells)} of them the paper's value lies below the bound for each of the "
                f"{len(f.column1)} readings that reproduce column 1, so none of them can reach it, whatever "
                f"its spike rule: {listing(parts)}")

    def best_gelu(f: Fig5) -> str:
        out = []
        for t in (2, 3):
            o, p = f.mse(f.best, "GELU", t), f.paper["GELU"][t - 1]
            side = "within the tolerance" if abs(o - p) <= f.tolerance(p) else "below the paper's" if o < p else "above the paper's"
            out.append(f"{num(o)} at iteration {t} ({side})")
        return "GELU " + " and ".join(out)

    return {
        "fig5.best_count": lambda f: str(f.counts[f.best]),
        "fig5.best_reading": lambda f: describe(f.best),
        "fig5.best_column1": best_column1,
        "fig5.tie": tie,
        "fig5.one_fit_code": one_fit("code"),
        "fig5.one_fit_paper": one_fit("paper"),
        "fig5.printed_eq20": lambda f: str(f.counts[PRINTED_LABEL]),
        "fig5.literal": lambda f: str(f.counts[LITERAL_LABEL]),
        "fig5.whole_rows": whole_rows,
        "fig5.hsig_code_2_4": lambda f: listing([dec4(f.mse(CODE_ONE_FIT, "Hardsigmoid", t)) for t in (2, 3, 4)]),
        "fig5.gelu_code_2": lambda f: num(f.mse(CODE_ONE_FIT, "GELU", 2)),
        "fig5.gelu_code_3": lambda f: num(f.mse(CODE_ONE_FIT, "GELU", 3)),
        "fig5.best_gelu": best_gelu,
        "fig5.sigmoid_twin": sigmoid_twin,
        "fig5.unreached_count": lambda f: str(len(f.unreached())),
        "fig5.unreached_cells": lambda f: _cells(f.unreached()),
        "fig5.excluded": excluded,
        "fig5.sigmoid_twin_misses": sigmoid_twin_misses,
        "fig5.not_excluded_count": lambda f: str(len(f.unreached()) - len(f.excluded())),
        "fig5.column1": column1,
        "fig5.column1_kept": column1_kept,
        "fig5.literal_gelu_1": lambda f: num(f.mse(LITERAL_LABEL, "GELU", 1), 1),
        "fig5.literal_gelu_9": lambda f: num(f.mse(LITERAL_LABEL, "GELU", 9), 1),
        "fig5.literal_trend": lambda f: ("grows with the iterations" if f.mse(LITERAL_LABEL, "GELU", 9) > f.mse(LITERAL_LABEL, "GELU", 1)
                                         else "does not grow from iteration 1 to 9"),
        "fig5.distinct": distinct,
        "fig5.empty_hardswish": empty_hardswish,
    }


def _on_fig5(value: Callable[[Fig5], str]) -> Value:
    """A value of :class:`Fig5`, Table 5 rebuilt once per build from the record."""
    return lambda records: value(records.derived(Fig5))


def _fig5_sampling(records: Records) -> str:
    """Table 5 under torch's own float32 kernels on the machine that built the records, against the
    definition of float32 sampling (each sample and value rounded once to float32)."""
    rows = {row["float32 sampling"]: row for row in records.extra(FIG5, "best reading by float32 sampling")}
    for kind in ("rounded", "torch"):
        if kind not in rows:
            raise ProseError(f"the record {FIG5} has no {kind!r} row in extra['best reading by float32 sampling']: "
                             "rerun its notebook")
    ours, theirs = rows["rounded"], rows["torch"]
    others = theirs["readings with as many"] - 1
    tie = (f" ({others} other reading{'s' if others > 1 else ''} reach{'' if others > 1 else 'es'} as many)"
           if others > 0 else "")
    if theirs["best reading"] == ours["best reading"]:
        head = f"the best reading stays the same, with {theirs['its cells']} cells{tie}"
    else:
        head = (f"another reading is best, with {theirs['its cells']} cells{tie}: "
                f"{describe(theirs['best reading'])}")
    moved = theirs["cells of the definition's best reading that change"]
    if moved == "none":
        return head + "; no cell of the definition's best reading changes"
    by: dict[str, list[int]] = {}
    for cell in moved.split(", "):
        activation, _, iteration = cell.rpartition(" ")
        by.setdefault(activation, []).append(int(iteration))
    n = sum(map(len, by.values()))
    where = ", ".join(f"{a} at iteration{'s' if len(ts) > 1 else ''} {runs(sorted(ts))}" for a, ts in by.items())
    return head + f"; {n} cell{'s' if n > 1 else ''} of the definition's best reading change{'' if n > 1 else 's'}: {where}"


# -- conversion_loss_vs_k, table2_imagenet, fig2, table3 ----------------------------------------------

def _latency(records: Records, method: str) -> dict[str, Any]:
    for row in records.extra("conversion_loss_vs_k", "latency"):
        if row["method"] == method:
            return row
    raise ProseError(f"the record conversion_loss_vs_k has no latency row for {method!r}: rerun its notebook")


def _matches_from(method: str, letter: str) -> Callable[[Records], str]:
    def text(records: Records) -> str:
        row = _latency(records, method)
        if row["steps to match the ANN"] is None:
            return f"does not match by ${letter} = {row['largest K or T run']}$"
        return f"matches from ${letter} = {row['steps to match the ANN']}$"
    return text


def _rate_summary(records: Records) -> str:
    rows = records.extra("conversion_loss_vs_k", "rows")
    out = []
    for method, who in (("rate", "our IF neurons, which start at $\\theta / 2$,"), ("spikingjelly rate", "SpikingJelly's")):
        row = _latency(records, method)
        last = max((r for r in rows if r["method"] == method), key=lambda r: r["K or T"])
        state = ("never match" if row["steps to match the ANN"] is None
                 else f"match from $T = {row['steps to match the ANN']}$")
        out.append(f"{who} {state} and reach {fixed(last['agreement'], 1)} % agreement at $T = {last['K or T']}$")
    ratios = {_latency(records, m)["N = steps / PS's"] for m in ("rate", "spikingjelly rate")}
    kinds = {_latency(records, m)["N is"] for m in ("rate", "spikingjelly rate")}
    bound = ", ".join(f"{r:g}" for r in sorted(ratios))
    tail = ("so $N > " + bound + "$ for both: a lower bound, not a measured ratio"
            if all(k.startswith("a lower bound") for k in kinds) else f"so $N$ is {bound} ({', '.join(sorted(kinds))})")
    return "; ".join(out) + "; " + tail


def _table2(records: Records, network: str, control: bool) -> dict[str, Any]:
    for row in records.extra("table2_imagenet", "rows"):
        if row["network"] == network and bool(row.get("control")) == control:
            return row
    raise ProseError(f"the record table2_imagenet has no row for {network} (control={control})")


def _count(percent: float, images: int) -> int:
    return round(percent * images / 100)


def _status(status: str) -> str:
    return {"reproduced": "passes", "deviates": "deviates"}.get(status, status)


def _t2_claim(records: Records, network: str, what: str) -> dict[str, Any]:
    hits = [c for c in records.record("table2_imagenet").get("results", [])
            if c["name"].startswith(network + " ") and what in c["name"]]
    if len(hits) != 1:
        raise ProseError(f"the record table2_imagenet has {len(hits)} claims {network!r} … {what!r}: rerun its notebook")
    return hits[0]


def _table2_networks(records: Records) -> str:
    rows = [r for r in records.extra("table2_imagenet", "rows") if not r.get("control")]
    if not rows:
        raise ProseError("the record table2_imagenet has no rows")
    out = []
    for row in rows:
        n, net = row["images"], row["network"]
        changed, risky = _count(100 - row["agreement"], n), _count(row["at risk"], n)
        first = _status(_t2_claim(records, net, "top-1 predictions the SNN changes")["status"])
        second = _status(_t2_claim(records, net, "predictions its logit error could change")["status"])
        on = lambda word: word if word == "passes" else f"{word} on"
        verdict = (f"it {on(first)} both criteria" if first == second
                   else f"it {on(first)} the first criterion and {on(second)} the second")
        out.append(f"{net} changes {changed} of its {n} predictions and its largest logit error "
                   f"({num(row['max |logit error|'])}) could change {risky}: {verdict}")
    return "; ".join(out)


def _table2_control(records: Records) -> str:
    control = records.extra("table2_imagenet", "control")
    row = _table2(records, control["network"], True)
    n = row["images"]
    loss = row["ANN top-1"] - row["SNN top-1"]
    lost = ("loses no top-1 accuracy" if loss == 0 else
            f"{'loses' if loss > 0 else 'gains'} {num(abs(loss), 1)} points of top-1 accuracy")
    return (f"$K = {row['K per layer'][0]}$, where {row['network']} changes {_count(100 - row['agreement'], n)} of "
            f"its {n} predictions, {lost}, and its logit error could change {_count(row['at risk'], n)}")


def _table2_images(records: Records) -> int:
    return records.extra("table2_imagenet", "rows")[0]["images"]


def _table2_resolution(records: Records) -> str:
    n = _table2_images(records)
    return f"One image is {100 / n:.3g} points of {n}, so they cannot resolve a smaller loss."


# -- table1_cifar and fig6_activations ----------------------------------------------------------------

def _t1_rows(records: Records, method: str) -> list[dict[str, Any]]:
    rows = [r for r in records.extra("table1_cifar", "rows") if r["method"] == method]
    if not rows:
        raise ProseError(f"the record table1_cifar has no {method!r} rows: rerun its notebook")
    return rows


def _t1_changes(records: Records, method: str) -> str:
    rows = _t1_rows(records, method)
    changed = sum(_count(100 - r["agreement"], r["test images"]) for r in rows)
    total = sum(r["test images"] for r in rows)
    worst = max(-r["loss"] for r in rows)
    nets = len(rows)
    lost = "and loses no accuracy" if worst <= 0 else f"and loses at most {num(worst)} points"
    return (f"changes {changed} of {total:,} test predictions over the {nets} network{'s' if nets > 1 else ''} "
            f"run {lost}")


def _t1_claims(records: Records) -> str:
    claims = [c for c in records.record("table1_cifar").get("results", [])
              if "loss at K" in c["name"] and c["ours"] is not None]
    if not claims:
        raise ProseError("the record table1_cifar has no loss claims that were run")
    tolerance = {c["tolerance"] for c in claims}
    by: dict[str, int] = {}
    for c in claims:
        by[c["status"]] = by.get(c["status"], 0) + 1
    tol = f"{listing([f'{t:g}' for t in sorted(tolerance)])} points"
    return (f"of its {len(claims)} loss claim{'s' if len(claims) > 1 else ''} against the paper's, within {tol}, "
            f"the record marks {listing([f'{k} {s}' for s, k in by.items()])}")


def _t1_rate(records: Records) -> str:
    rows = _t1_rows(records, "rate")
    out = []
    for t in sorted({r["K or T"] for r in rows}):
        losses = sorted(-r["loss"] for r in rows if r["K or T"] == t)
        what = (f"{num(losses[0], 1)}" if losses[0] == losses[-1] else f"{num(losses[0], 1)} to {num(losses[-1], 1)}")
        out.append(f"at $T = {t}$ loses {what} points")
    return listing(out)


ACTIVATION_NAMES = {"gelu": "GELU", "silu": "SiLU", "mish": "Mish", "hardswish": "Hardswish", "selu": "SELU",
                    "elu": "ELU", "relu": "ReLU"}


def _fig6_activations(records: Records) -> str:
    curves = records.extra("fig6_activations", "curves")
    return listing([ACTIVATION_NAMES.get(a, a) for a in curves])


def _fig6_gap(records: Records) -> str:
    claims = [c for c in records.record("fig6_activations").get("results", []) if "MAE between" in c["name"]]
    claims = [c for c in claims if c["ours"] is not None]
    if not claims:
        raise ProseError("the record fig6_activations has no MAE claims that were run")
    by: dict[str, int] = {}
    for c in claims:
        by[c["status"]] = by.get(c["status"], 0) + 1
    tol = listing([f"{t:g}" for t in sorted({c["tolerance"] for c in claims})])
    return (f"the mean absolute difference between the SNN's and the ANN's accuracy over the epochs is at most "
            f"{num(max(c['ours'] for c in claims))} points (against a tolerance of {tol} points the record marks "
            f"{listing([f'{k} {s}' for s, k in by.items()])})")


def _fig6_setup(records: Records) -> str:
    p = records.record("fig6_activations")["parameters"]
    return (f"{p['epochs']} short epoch{'s' if p['epochs'] != 1 else ''} and {p['n_test']:,} test images "
            f"(one image is {100 / p['n_test']:.3g} points)")


def _table2_largest_k(records: Records) -> str:
    return str(max(_table2(records, "MobileNetV2", False)["K per layer"]))


def _spikes(label: str) -> Callable[[Records], str]:
    return lambda records: ", ".join(map(str, records.ours("fig2_sigmoid_trace", f"spike times, {label}")))


def _t3(records: Records, method: str, source: str = "rows") -> dict[str, Any]:
    for row in records.extra("table3_transformers", source):
        if row["method"] == method:
            return row
    raise ProseError(f"the record table3_transformers has no {source} row {method!r}")


def _t3_ps(records: Records) -> str:
    row = _t3(records, "PS")
    changed = round((100 - row["agreement"]) * row["sentences"] / 100)
    return (f"changes {changed} prediction{'s' if changed != 1 else ''} (agreement {fixed(row['agreement'], 2)} %, "
            f"loss {fixed(-row['loss'], 2)} points)")


def _t3_k(row: dict[str, Any]) -> str:
    k = row["K or T"]
    return f"{k[0]} to {k[1]}" if isinstance(k, list) and k[0] != k[1] else str(k[0] if isinstance(k, list) else k)


def _t3_sweep(records: Records) -> str:
    rows = records.extra("table3_transformers", "dy sweep")
    row = max(rows, key=lambda r: r["dy"])
    return f"dy = {row['dy']:g}, $K$ {_t3_k(row)}: {fixed(100 - row['agreement'], 0)} % of the predictions change"


def _t3_outside(records: Records) -> str:
    worst = max(s["test inputs outside"] for s in records.extra("table3_transformers", "sites"))
    return f"at most {short(worst * 1e6)} per million per site" if worst else "none"


def _t3_site_error(records: Records) -> str:
    errors = [s["mean |logit error|"] for s in records.extra("table3_transformers", "site errors")]
    return f"about {num(sum(errors) / len(errors), 1)}"


def _t3_fs(records: Records) -> str:
    row = _t3(records, "FS (K = 16)")
    return f"change {fixed(100 - row['agreement'], 1)} % of the predictions and {_lose(-row['loss'])}"


def _lose(loss: float) -> str:
    """``loss`` points (ANN minus SNN) in words: lose, gain or neither."""
    if fixed(loss, 2) == "0.00":
        return "lose nothing"
    return f"{'lose' if loss > 0 else 'gain'} {fixed(abs(loss), 2)} points"


# -- costs (book/costs.md) ------------------------------------------------------------------------

def _cost_loss_vs_k(records: Records) -> str:
    best = records.extra("conversion_loss_vs_k", "cheapest")
    if best is None:
        return "no costed conversion matches the ANN by its criterion"
    letter = "K" if best["method"] in ("ps", "fs") else "T"
    label = {"ps": "PS", "fs": "FS", "rate": "rate-coded IF"}.get(best["method"], best["method"])
    return f"{label} at ${letter} = {best['K or T']}$: {energy_pair(best, 'image')}"


def _cost_peer(records: Records) -> str:
    rows = records.extra("conversion_loss_vs_k", "peer costs")
    same = [r for r in rows if r["definition"] == "the same"]
    if not same:
        raise ProseError("the record conversion_loss_vs_k has no peer cost counted the same way by both")
    worst = max(abs(r["SpikingJelly"] - r["ours"]) / max(abs(r["ours"]), 1e-300) for r in same)
    agree = "agree exactly" if worst == 0 else f"differ by at most {num(100 * worst, 2)} %"
    named = [f"{what} ({where})" for where, what in (r["quantity"].split(": ", 1) for r in same)]
    return f"the two counters {agree} on {listing(named)}"


def _cost_table4(records: Records) -> str:
    rows = records.extra("table4_spikes", "spike rows")
    return listing([f"{r['network']}: {microjoules(r['PS energy (µJ)'])} against {microjoules(r['ANN energy (µJ)'])}"
                    for r in rows])


def _cost_t3(records: Records) -> str:
    return energy_pair(_t3(records, "PS"), "sentence")


VALUES: dict[str, Value] = {
    **{name: _on_fig5(value) for name, value in _fig5_values().items()},
    "cost.loss_vs_k": _cost_loss_vs_k,
    "cost.peer": _cost_peer,
    "cost.table4": _cost_table4,
    "cost.t3": _cost_t3,
    "fig5.torch_sampling": _fig5_sampling,
    "conv.ps_matches": _matches_from("ps", "K"),
    "conv.fs_matches": _matches_from("fs", "K"),
    "conv.rate": _rate_summary,
    "table1.ps": lambda r: _t1_changes(r, "ps"),
    "table1.ps_claims": _t1_claims,
    "table1.fs": lambda r: _t1_changes(r, "fs"),
    "table1.rate": _t1_rate,
    "table2.images": lambda r: str(_table2_images(r)),
    "table2.networks": _table2_networks,
    "table2.control": _table2_control,
    "table2.resolution": _table2_resolution,
    "fig6.activations": _fig6_activations,
    "fig6.gap": _fig6_gap,
    "fig6.setup": _fig6_setup,
    "conv.images": lambda r: f"{r.record('conversion_loss_vs_k')['parameters']['n_test']:,}",
    "table2.largest_k": _table2_largest_k,
    "fig2.code_5": _spikes("authors' code, dy = 0.03125"),
    "fig2.printed_100": _spikes("Algorithm 1, dy = 0.01"),
    "fig2.code_100": _spikes("authors' code, dy = 0.01"),
    "t3.sentences": lambda r: f"{_t3(r, 'PS')['sentences']:,}",
    "t3.site_sentences": lambda r: f"{r.record('table3_transformers')['parameters']['n_sites']:,}",
    "t3.ps": _t3_ps,
    "t3.ps_k": lambda r: _t3_k(_t3(r, "PS")),
    "t3.cosine": lambda r: num(_t3(r, "PS")["cosine (mean)"], 5),
    "t3.fs": _t3_fs,
    "t3.outside": _t3_outside,
    "t3.site_error": _t3_site_error,
    "t3.sweep": _t3_sweep,
}
