import json

import pytest
import torch

from psnn_lib.book.profiles import profile_settings
from psnn_lib.book.records import Record, judge


def test_judge():
    assert judge(1.0, 1.04, 0.05) == "reproduced"
    assert judge(1.0, 1.06, 0.05) == "deviates"
    assert judge([1, 2], [1, 2], None) == "reproduced"
    assert judge(True, False, None) == "deviates"
    assert judge(1.0, None, 0.1) == "not run"


def test_record_writes_the_json_the_book_reads(tmp_path, monkeypatch):
    monkeypatch.setenv("PSNN_RESULTS_DIR", str(tmp_path))
    rec = Record("nb", "smoke", {"a": 1}, seed=3, paper=1, target="Table 9")
    rec.compare("x", 2.0, 2.01, 0.1)
    rec.compare("y", 2.0, 3.0, 0.1)
    rec.compare("z", 2.0, 3.0, 0.1, why="because")
    assert rec.save() is None  # nothing to show in a notebook
    data = json.loads(rec.path.read_text())
    for field in ("profile", "parameters", "seed", "versions", "results"):
        assert field in data
    assert (data["paper"], data["target"]) == (1, "Table 9")
    assert data["summary"] == {"reproduced": 1, "deviates": 2, "not run": 0}
    assert [r["note"] for r in data["results"]] == ["", "unexplained", "because"]
    table = rec.table()
    assert list(table.columns) == ["paper", "ours", "tolerance", "status", "note"]
    assert table.loc["y"].tolist() == [2.0, 3.0, 0.1, "deviates", "unexplained"]
    assert "<table" in table.to_html()


def test_profiles_are_checked():
    with pytest.raises(ValueError, match="unknown profile 'fast'"):
        Record("nb", "fast", {}, 0, paper=1, target="Fig. 2")
    with pytest.raises(ValueError, match="paper must be one of"):
        Record("nb", "smoke", {}, 0, paper=3, target="Fig. 2")
    with pytest.raises(ValueError, match="defines no 'paper' profile"):
        profile_settings("paper", {"smoke": {}, "default": {}})


def test_at_risk_counts_images_the_logit_error_could_flip():
    from psnn_lib.paper1.conversion import outcome

    ann = torch.tensor([[3.0, 1.0, 0.0], [2.0, 1.9, 0.0], [0.0, 5.0, 4.0]])  # top-1 margins 2, 0.1, 1
    snn = ann + torch.tensor([[0.0, 0.4, 0.0], [0.0, 0.0, 0.2], [0.0, -0.6, 0.0]])
    o = outcome("ps", 8, ann, snn, torch.tensor([0, 1, 1]))
    # image 1: 2 * 0.4 < 2, safe; images 2 and 3: 2 * 0.2 >= 0.1 and 2 * 0.6 >= 1, at risk,
    # though neither top-1 changes (1.9 < 2, 4 < 4.4)
    assert o.at_risk == pytest.approx(200 / 3) and o.agreement == 100.0
    flipped = outcome("ps", 8, ann, ann + torch.tensor([[0.0, 0.0, 0.0], [-0.2, 0.0, 0.0], [0.0, -1.2, 0.0]]),
                      torch.tensor([0, 1, 1]))
    # images 2 and 3 flip, one to the right label and one away from it: no net loss
    assert flipped.agreement == pytest.approx(100 / 3) and flipped.loss == 0.0
    assert flipped.at_risk == pytest.approx(200 / 3)  # both changed predictions were at risk


def _steps_rows(method, results):
    return [{"method": method, "K or T": k, "agreement": a, "loss": l} for k, (a, l) in results.items()]


def test_steps_to_match_and_the_latency_ratio():
    from psnn_lib.paper1.conversion import latency, steps_to_match

    rows = (_steps_rows("ps", {4: (60.0, -30.0), 8: (99.0, -0.5), 16: (100.0, 0.0)})
            + _steps_rows("rate", {16: (99.5, 0.0), 32: (98.0, -1.0), 64: (99.5, 0.0)})
            + _steps_rows("late", {16: (50.0, -40.0), 128: (97.5, 0.0)}))
    assert steps_to_match(rows, "ps") == 8  # the boundary values still match
    assert steps_to_match(rows, "rate") == 64  # matching at 16 but not at 32 does not count
    assert steps_to_match(rows, "late") is None
    table = {r["method"]: r for r in latency(rows)}
    assert table["rate"]["N = steps / PS's"] == 8.0 and table["rate"]["N is"] == "exact"
    assert table["late"]["N = steps / PS's"] == 16.0 and table["late"]["N is"].startswith("a lower bound")


def test_table2_criteria_flag_one_changed_image_in_twenty():
    from psnn_lib.paper1.conversion import table2_verdicts

    assert table2_verdicts({"agreement": 100.0, "at risk": 0.0}, -0.4) == {"changed": True, "at risk": True}
    assert table2_verdicts({"agreement": 100.0, "at risk": 5.0}, -0.4) == {"changed": True, "at risk": False}
    assert table2_verdicts({"agreement": 95.0, "at risk": 5.0}, -0.4) == {"changed": False, "at risk": False}


def test_the_paper2_chapter_quotes_the_networks_as_committed():
    """The chapter's figures for the Net4 networks, as its build expands them, are the manifest's
    (rounded as printed)."""
    from pathlib import Path

    from psnn_lib.book.prose import Prose, expand
    root = Path(__file__).resolve().parents[1]
    text = expand((root / "book" / "negative_spikes.md").read_text(), Prose(root / "results"))
    nets = json.loads((root / "data" / "paper2_networks.json").read_text())
    quoted = [nets[n]["test_accuracy"] for n in ("net4_ann", "net4_thresholds", "net4_strelu")]
    quoted += list(nets["net4_ann"]["selection"]["validation"].values())
    for value in quoted:
        assert f"{value:.2f} %" in text, value
    assert f"chosen by the validation rule is {nets['net4_thresholds']['selection']['chosen']:g}" in text


def test_overrides_replace_the_settings_they_name_and_nothing_else():
    table = {"smoke": {"n": 1}, "default": {"n": 2, "epochs": 3}, "paper": {"n": 10000, "epochs": 200}}
    assert profile_settings("paper", table, {"epochs": 1}) == {"n": 10000, "epochs": 1}
    assert profile_settings("paper", table) == profile_settings("paper", table, {}) == table["paper"]
    with pytest.raises(ValueError, match="overrides names epoch, which the paper profile does not set"):
        profile_settings("paper", table, {"epoch": 1})
    with pytest.raises(ValueError, match="overrides names epochs, which the smoke profile does not set"):
        profile_settings("smoke", table, {"epochs": 1})
    with pytest.raises(ValueError, match="overrides is a mapping of setting names to values"):
        profile_settings("paper", table, '{"epochs": 1')  # a malformed value given as text


def test_table2_goes_in_batches_sized_to_the_images(monkeypatch):
    """EfficientNet-B7's 600 px images: one batch of 500 would need about 100 GB of activations;
    each batch holds about as many pixels as 250 images at 224 px, in calibration and prediction."""
    from psnn_lib.paper1 import conversion

    assert conversion.image_batch(torch.zeros(1, 3, 600, 600)) == 34
    assert conversion.image_batch(torch.zeros(1, 3, 224, 224)) == conversion.BATCH_AT_224
    assert conversion.image_batch(torch.zeros(1, 3, 32, 32)) == conversion.BATCH_AT_224
    assert conversion.image_batch(torch.zeros(1, 3, 8000, 8000)) == 1
    calls = []
    monkeypatch.setattr(conversion, "convert_and_evaluate", lambda model, method, calibration, x, y, batch_size,
                        **options: calls.append(([len(b) for b in calibration], len(x), batch_size)))
    conversion.cross_calibrated(None, "ps", torch.zeros(100, 1, 600, 600), torch.zeros(100), dy=0.01)
    assert calls == [([34, 16], 50, 34), ([34, 16], 50, 34)]
