"""Every notebook at the smoke profile, through the book's own runner,
with assertions on the numbers it recorded.

The executions and records go where ``psnn book --profile smoke`` puts them
(``_build/executed/smoke``, ``results/smoke``), so that CI builds the smoke
book from these very executions (``psnn site --profile smoke``)."""
import json
import math
from pathlib import Path

import pytest

from psnn_lib.book.records import PAPERS
from psnn_lib.book.runner import notebook_sources, run_notebooks
from psnn_lib.paper1.numbers import TABLE5

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def results():
    outcomes = run_notebooks(ROOT, "smoke", cell_timeout=600)
    assert {o.name for o in outcomes} == {p.stem for p in notebook_sources(ROOT)}
    return {p.stem: json.loads((ROOT / "results" / "smoke" / f"{p.stem}.json").read_text())
            for p in notebook_sources(ROOT)}


def _item(record, name):
    return next(r for r in record["results"] if r["name"] == name)


def test_every_notebook_recorded_its_profile(results):
    assert set(results) == {p.stem for p in notebook_sources(ROOT)}
    for rec in results.values():
        assert rec["profile"] == "smoke" and rec["results"]
        assert rec["paper"] in PAPERS and rec["target"]
        assert all(r["status"] in ("reproduced", "deviates", "not run") for r in rec["results"])
        assert all(r["note"] != "unexplained" for r in rec["results"])


def test_fig2_spike_times(results):
    rec = results["fig2_sigmoid_trace"]
    assert _item(rec, "spike times, Algorithm 1, dy = 0.03125")["ours"] == [1, 2, 3, 5]
    assert _item(rec, "spike times, Algorithm 1, dy = 0.03125")["status"] == "reproduced"
    assert _item(rec, "spike times, authors' code, dy = 0.03125")["ours"] == [2, 3, 4]
    assert _item(rec, "spike times, Algorithm 1, dy = 0.01")["ours"] == [1, 2, 3, 5, 6]
    assert _item(rec, "spike times, Algorithm 1, dy = 0.01")["status"] == "deviates"
    trace = rec["extra"]["trace"]
    K = len(trace["t"])
    assert len(trace["reset"]) == K and trace["reset"][-1] is None  # no reset after the last step
    for t in range(K - 1):  # after a spike the membrane takes the reset h(t+1) of Eq. 2
        if trace["spikes"][t]:
            assert trace["membrane"][t + 1] == trace["reset"][t]


def test_fig4_mse_falls(results):
    rec = results["fig4_fit_iterations"]
    assert rec["summary"] == {"reproduced": 4, "deviates": 0, "not run": 0}
    mse = rec["extra"]["gelu MSE by iteration"]
    assert mse[0] == pytest.approx(17.5, rel=0.01) and mse[8] < 0.01


def test_table5_first_column_reproduced(results):
    rec = results["fig5_table5_mse"]
    mse = rec["extra"]["mse"]
    code = mse["code, first weight code, full grid, float64, one fit"]  # iteration 1 is b alone
    for act, paper in TABLE5.items():
        assert code[act][0] == pytest.approx(paper[0], rel=0.01), act
    assert len(rec["results"]) == 63
    counts = rec["extra"]["cells reproduced per reading"]
    assert len(counts) == 44 and counts[rec["extra"]["best reading"]] == max(counts.values())
    assert counts[rec["extra"]["best reading"]] == rec["summary"]["reproduced"]
    # every output lies on its reading's lattice: the bound is below every MSE
    bound = rec["extra"]["lattice bound"]
    assert all(b <= m * (1 + 1e-9) or math.isnan(m) and math.isnan(b)  # NaN: no fit has K = t
               for r in mse for a in mse[r] for m, b in zip(mse[r][a], bound[r][a]))
    literal = mse["Algorithm 1, T after the subtraction (line 25), M before the shift (line 8)"]["GELU"]
    assert all(b > a for a, b in zip(literal, literal[1:]))  # line 25 taken literally: the error grows


def test_error_bound_held(results):
    rec = results["fit_error_vs_dy"]
    assert rec["summary"]["reproduced"] == 2
    assert all(row["max_error"] <= row["bound"] for row in rec["extra"]["rows"])
    # a priori: d(K) + L delta / 2 on the smoke grid (delta = 0.01), L of the table at most SELU's 1.7582
    assert all(0 < row["bound"] - row["quantum"] <= 0.5 * 1e-2 * 1.7582 * (1 + 1e-9) for row in rec["extra"]["rows"])


def test_table1_ps_keeps_predictions_and_baselines_ran(results):
    rec = results["table1_cifar"]
    item = _item(rec, "ResNet20 MNIST (paper: ResNet20 CIFAR-10): loss at K = 16")
    assert item["status"] == "reproduced" and abs(item["ours"]) <= 0.1
    rows = rec["extra"]["rows"]
    assert {r["method"] for r in rows} == {"ps", "fs", "rate"}
    ps = next(r for r in rows if r["method"] == "ps")
    assert ps["agreement"] >= 98 and ps["neurons"] == 188416 and ps["K or T"] == 16
    rate = next(r for r in rows if r["method"] == "rate")
    assert rate["K or T"] == 4 and rate["loss"] < ps["loss"]


def test_table2_mobilenet_k_and_agreement(results):
    rec = results["table2_imagenet"]
    row, control = rec["extra"]["rows"][:2]
    assert row["network"] == "MobileNetV2" and row["layers"] == 35 and not row["control"]
    assert max(row["K per layer"]) == 13  # ReLU6 range 6 at dy = 0.001: 3 + 10 steps
    assert row["agreement"] == 100.0 and row["max |logit error|"] < 1.0
    changed = "MobileNetV2 (paper: EfficientNet-B7): top-1 predictions the SNN changes (% of images; paper: |loss|)"
    assert _item(rec, changed)["status"] == "reproduced"
    # the control, MobileNetV2 at K = 8, is coarse enough for the criteria to flag it
    assert control["control"] and max(control["K per layer"]) == 8
    assert control["mean |logit error|"] > 5 * row["mean |logit error|"]
    assert rec["extra"]["control"]["flagged"]
    assert _item(rec, "VGG16: top-1 predictions the SNN changes (% of images; paper: |loss|)")["status"] == "not run"


def test_table4_neuron_count_and_fire_rates(results):
    rec = results["table4_spikes"]
    item = _item(rec, "CIFAR-10 ResNet20: neurons (M)")
    assert item["status"] == "reproduced" and item["ours"] == pytest.approx(0.188, abs=1e-3)
    for row in rec["extra"]["spike rows"]:
        assert 1 / 16 < row["FireRate"] < 17 / 16 and row["SOPs (M)"] > 0
        # PS replaces MACs by accumulates: fewer joules in operations than the ANN; 16 steps of weight
        # reads and membranes make it dearer once memory counts (the cost chapter)
        assert 0 < row["PS energy, ops (µJ)"] < row["ANN energy, ops (µJ)"] < row["ANN energy (µJ)"]
        assert row["PS energy (µJ)"] > row["ANN energy (µJ)"]


def test_fig6_snn_follows_ann(results):
    rec = results["fig6_activations"]
    assert set(rec["extra"]["curves"]) == {"gelu", "hardswish"}
    for act, rows in rec["extra"]["curves"].items():
        assert [r["epoch"] for r in rows] == [1, 2]  # a conversion after every epoch
        # (smoke training is too short to learn: only the ANN-SNN agreement is meaningful)
        assert all(abs(r["ann"] - r["snn"]) <= 100 / 64 for r in rows)
        # an accuracy gap is at most the share of changed predictions
        assert all(abs(r["ann"] - r["snn"]) <= 100 * r["changed"] / r["images"] + 1e-9 for r in rows)
    for row in rec["extra"]["resolution"]:
        low, high = map(float, row["its 95 % interval (points)"].split(" to "))
        changed, images = map(int, row["most changed at one epoch"].split(" (")[0].split(" of "))
        worst = max(p["changed"] for p in rec["extra"]["curves"][row["activation"]])
        assert images == 64 and changed == worst and low <= 100 * changed / images <= high and high > 0
    assert rec["summary"]["reproduced"] == 2


def test_loss_vs_k_orders_methods(results):
    rec = results["conversion_loss_vs_k"]
    rows = rec["extra"]["rows"]
    ps = {r["K or T"]: r for r in rows if r["method"] == "ps"}
    rate = {r["K or T"]: r for r in rows if r["method"] == "rate"}
    assert ps[16]["mean |logit error|"] < ps[4]["mean |logit error|"]
    assert rate[16]["mean |logit error|"] < rate[4]["mean |logit error|"]
    for method in ("rate", "spikingjelly rate"):  # both rate baselines, at the same T
        baseline = {r["K or T"]: r for r in rows if r["method"] == method}
        assert ps[16]["mean |logit error|"] < baseline[16]["mean |logit error|"]
        assert baseline[16]["agreement"] < ps[16]["agreement"] == 100.0
    assert [r["name"].split(" needs")[0] for r in rec["results"]] == ["rate-coded IF (ours)", "SpikingJelly rate"]
    for r in rows:  # each agreement beside its 95 % interval, on the sampled images
        low, high = map(float, r["agreement 95 % interval"].split(" to "))
        assert low <= r["agreement"] <= high and (high - low > 1 if r["agreement"] < 100 else high == 100)
    latency = {r["method"]: r for r in rec["extra"]["latency"]}
    assert latency["ps"]["steps to match the ANN"] == 16
    assert latency["spikingjelly rate"]["steps to match the ANN"] is None
    # energy grows with the steps of each method; the ANN's is one number for every run
    for method in ("ps", "rate"):
        runs = sorted((r for r in rows if r["method"] == method), key=lambda r: r["K or T"])
        assert runs[0]["energy (µJ)"] < runs[-1]["energy (µJ)"]
    assert len({r["ANN energy (µJ)"] for r in rows if r["method"] != "spikingjelly rate"}) == 1
    assert all(r["energy (µJ)"] is None for r in rows if r["method"] == "spikingjelly rate")  # not ours to cost
    best = rec["extra"]["cheapest"]
    matching = [r for r in rows if r["energy (µJ)"] is not None
                and r["K or T"] == latency[r["method"]]["steps to match the ANN"]]
    assert best in matching and best["energy (µJ)"] == min(r["energy (µJ)"] for r in matching)
    # SpikingJelly's counter and ours agree exactly where they count the same thing, and not elsewhere
    peer = rec["extra"]["peer costs"]
    assert [r["SpikingJelly"] == r["ours"] for r in peer] == [r["definition"] == "the same" for r in peer]
    assert sum(r["definition"] == "the same" for r in peer) == 2
    theirs = rec["extra"]["peer energy"]  # its counter: dense MACs at every step, so energy grows with T
    assert [p["K or T"] for p in theirs] == [4, 16] and theirs[0]["energy (µJ)"] < theirs[1]["energy (µJ)"]


def test_p2_thresholds_raise_rates_and_sit_inside_the_range(results):
    rec = results["p2_fig1_table4_thresholds"]
    rows = rec["extra"]["table4"]
    assert [(r["threshold optimisation"], r["layer"]) for r in rows] == \
        [("without", 1), ("without", 2), ("without", 3), ("with", 1), ("with", 2), ("with", 3)]
    by = {(r["threshold optimisation"], r["layer"]): r for r in rows}
    for layer in (1, 2, 3):
        assert 0 < by[("without", layer)]["firing rate"] < 1 and 0 < by[("with", layer)]["negative share"] < 1
        # the learned positive threshold is below the largest activation that min-max uses
        assert by[("with", layer)]["P_th"] < by[("without", layer)]["P_th"]
    assert len(rec["results"]) == 8 and all(r["status"] != "not run" for r in rec["results"])
    sweep = rec["extra"]["clip sweep"]
    weights = [p["clip weight"] for p in sweep["sweep"]]
    assert weights == [0.005, 0.01, 0.02, 0.05] and all(len(p["firing rates"]) == 3 for p in sweep["sweep"])
    # the rule, from the recorded validation accuracies: the largest weight within 0.3 points of net4_ann's
    manifest = json.loads((ROOT / "data" / "paper2_networks.json").read_text())
    floor = manifest["net4_ann"]["validation_accuracy"] - 0.3
    kept = [p["clip weight"] for p in sweep["sweep"] if p["validation accuracy"] >= floor]
    assert sweep["chosen"] == (max(kept) if kept else min(weights))


def test_p2_table1_curves_and_rule(results):
    rec = results["p2_table1_fashion_mnist"]
    rows = {r["method"]: r for r in rec["extra"]["rows"]}
    assert set(rows) == {"AugMapping", "stReLU", "proposed"}
    for r in rows.values():
        _check_rule(r)
    assert rows["proposed"]["curve"][9] > 80  # the calibrated SNN at its T = 10
    assert (rows["AugMapping"]["allowance"], rows["stReLU"]["allowance"], rows["proposed"]["allowance"]) == \
        (0.0, 0.0, 0.1)  # the paper's printed gaps
    assert rows["proposed"]["images"] == 32 and rows["AugMapping"]["images"] == 32
    assert (rows["AugMapping"]["neuron"], rows["stReLU"]["neuron"]) == ("augmented", "symmetric")


def _check_rule(r: dict) -> None:
    """The time-step rule, from a row's recorded curve and paired SEs: within the allowance at
    every step from its T to T_max, and outside it the step before."""
    assert len(r["curve"]) == len(r["curve SE"]) == r["T run"]
    inside = [a >= r["ANN acc"] - r["allowance"] - se - 1e-9 for a, se in zip(r["curve"], r["curve SE"])]
    steps = r["time steps"]
    if steps is None:
        assert not inside[-1]
    else:
        assert all(inside[steps - 1:]) and (steps == 1 or not inside[steps - 2])
        assert r["SNN acc"] == r["curve"][steps - 1]
    assert all(se >= 0 for se in r["curve SE"])


def test_p2_tiny_calibration_and_table5(results):
    rec = results["p2_table5_fig3_calibration"]
    tiny = rec["extra"]["tiny calibration"]
    assert tiny["layers"] == ["act1", "act2", "act3", "output"] and len(tiny["history"]) == 1
    assert all(math.isfinite(v) for v in tiny["before"] + tiny["after"]) and tiny["after"] != tiny["before"]
    rows = rec["extra"]["rows"]
    assert [r["weighting"] for r in rows] == ["none (no calibration)", "average", "cosine", "sigmoid"]
    assert all(len(r["curve"]) == 12 for r in rows)
    for r in rows:
        _check_rule(r)
    assert [r["allowance"] for r in rows] == [0.1, 0.11, 0.1, 0.12]
    diffs = rec["extra"]["differences"]
    assert {d["pair"] for d in diffs} == {"cosine - average", "cosine - sigmoid", "sigmoid - average"}
    assert all(d["paired SE"] >= 0 and d["T"] in (10, 12) for d in diffs)


def test_p2_deep_rows(results):
    rec = results["p2_tables2_3_deep"]
    rows = rec["extra"]["rows"]
    assert [(r["network"], r["method"], r["T"]) for r in rows] == [
        (arch, method, T) for arch in ("vgg16", "resnet18") for method in ("two-stage", "proposed") for T in (4, 8)]
    assert all(r["delta acc"] == pytest.approx(r["ANN acc"] - r["SNN acc"]) for r in rows)
    assert all(r["calibration wall s"] > 0 for r in rows)
    # the CIFAR-10 numbers (ANN, SNN, delta at T = 4 and 8 for both methods) of VGG-16 and ResNet-18
    assert sum(r["status"] == "not run" for r in rec["results"]) == 12 + 12


def test_p2_methods_side_by_side(results):
    rec = results["p2_beyond_methods"]
    rows = {r["method"]: r for r in rec["extra"]["rows"]}
    assert {"ps (paper 1)", "signed", "symmetric", "ibt", "ibt, channel-wise (Spiking-YOLO)",
            "augmented (AugMapping)", "unsigned", "snntorch-ternary TernaryLeaky (IBT wiring, peer)"} <= set(rows)
    assert rows["unsigned"]["spikes"] == "binary" and rows["signed"]["spikes"] == "signed"
    assert rows["augmented (AugMapping)"]["spikes"] == "signed, of integer magnitude"
    assert all(r["spikes per image"] > 0 for r in rows.values())
    peer = rows["snntorch-ternary TernaryLeaky (IBT wiring, peer)"]
    assert peer["energy (µJ)"] is None and all(r["energy (µJ)"] > 0 for r in rows.values() if r is not peer)
    # the same ANN beside every costed row; signed spikes read a second copy of the weights at each step
    assert len({r["ANN energy (µJ)"] for r in rows.values() if r is not peer}) == 1
    best = rec["extra"]["cheapest"]
    assert best is None or best["within the allowance"]
    assert rec["extra"]["sinabs from_model on Net4"] == {
        "spiking": [], "analog": ["act1 (LeakyReLU)", "act2 (LeakyReLU)", "act3 (LeakyReLU)"]}


def test_table3_transformers_ps_beside_fs_and_spikingjelly(results):
    rec = results["table3_transformers"]
    ps, fs, sj = rec["extra"]["rows"]
    assert (ps["method"], fs["method"], sj["method"]) == ("PS", "FS (K = 16)", "SpikingJelly TD-equivalent (T = 8)")
    assert ps["sentences"] == fs["sentences"] == 32 and sj["sentences"] == 8
    # PS at dy = 0.001 keeps every prediction and the sentence embedding; K follows the ranges (13-15)
    assert ps["agreement"] == 100.0 and ps["cosine (min)"] > 0.9999 and ps["K or T"] == [13, 15]
    assert ps["max |logit error|"] < fs["max |logit error|"] / 10 and fs["cosine (mean)"] < 0.99
    label = "sst2 (MiniLM-L6 on Rotten Tomatoes for RoBERTa-base on SST-2)"
    assert _item(rec, f"{label}, PS: loss (points)")["status"] == "reproduced"
    assert _item(rec, f"{label}: PS loses less than FS")["status"] == "reproduced"
    assert not [r for r in rec["results"] if "ANN accuracy" in r["name"]]  # a substitute's accuracy is no claim
    for name in ("cola, PS: loss (points)", "sst5, FS (K = 16): loss (points)", "sst5: PS loses less than FS"):
        assert _item(rec, name)["status"] == "not run"
    # padding excluded: per real token, 6 GELU layers of 1536 neurons
    assert ps["neurons"] == pytest.approx(6 * 1536 * ps["tokens per sentence"])
    # SpikingJelly's TD-equivalent rewrite gives the ANN's outputs exactly (floating-point differences)
    assert sj["max |logit error|"] < 1e-5 and sj["spikes"] is None
    sites = rec["extra"]["sites"]
    assert len(sites) == 6 and all(s["test inputs outside"] < 0.01 for s in sites)
    assert sum(s["neurons per sentence"] for s in sites) == pytest.approx(ps["neurons"])
    sweep = rec["extra"]["dy sweep"]
    assert [s["dy"] for s in sweep] == sorted((s["dy"] for s in sweep), reverse=True)
    assert sweep[0]["cosine (mean)"] < sweep[-1]["cosine (mean)"]  # finer dy (larger K): closer embeddings
    assert sweep[0]["spikes per token"] < sweep[-1]["spikes per token"]
    assert len(rec["extra"]["site errors"]) == 6
