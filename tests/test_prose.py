"""The chapters' numbers about our results come from the records: the mechanism in
psnn_lib.book.prose, the values in the papers' prose modules (psnn_lib.paper1.prose,
psnn_lib.paper2.prose).

Three kinds of tests: the substitution mechanism (a missing record, key or name stops
the build with a message naming it; the book machinery imports no study until a chapter
asks), the values, and a check of the chapters as typed: no bare number in book/*.md
equals a number a record holds as ours, to the digits printed, unless it is also a
paper's number.
"""
from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

from psnn_lib.book import prose
from psnn_lib.book.prose import Prose, ProseError, expand, expand_chapters

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "book").glob("*.md"))
RESULTS = ROOT / "results"

# -- the mechanism ---------------------------------------------------------------------------


def _record(folder: Path, notebook: str, extra: dict, results: list | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{notebook}.json").write_text(json.dumps(
        {"notebook": notebook, "paper": 1, "target": "x", "results": results or [], "extra": extra}))


LATENCY = [{"method": "ps", "largest K or T run": 16, "steps to match the ANN": 10, "N = steps / PS's": 1.0,
            "N is": "exact"},
           {"method": "fs", "largest K or T run": 16, "steps to match the ANN": None, "N = steps / PS's": 1.6,
            "N is": "a lower bound: never matched"}]


def test_a_placeholder_is_replaced_by_the_value_computed_from_the_record(tmp_path):
    _record(tmp_path, "conversion_loss_vs_k", {"latency": LATENCY})
    text = "PS {{ conv.ps_matches }}, FS {{conv.fs_matches}}."
    assert expand(text, Prose(tmp_path)) == "PS matches from $K = 10$, FS does not match by $K = 16$."


def test_a_missing_record_names_the_record_and_the_placeholder(tmp_path):
    with pytest.raises(ProseError, match=r"book/x.md.*conv.ps_matches.*conversion_loss_vs_k.json is missing"):
        expand("PS {{ conv.ps_matches }}", Prose(tmp_path), where="book/x.md")


def test_a_missing_key_names_the_key(tmp_path):
    _record(tmp_path, "conversion_loss_vs_k", {"rows": []})
    with pytest.raises(ProseError, match=r"no extra\['latency'\]"):
        expand("{{ conv.ps_matches }}", Prose(tmp_path))


def test_a_missing_fig5_key_names_it(tmp_path):
    _record(tmp_path, "fig5_table5_mse", {"mse": {}})
    with pytest.raises(ProseError, match=r"fig5.best_count.*no extra\['lattice bound'\]"):
        expand("{{ fig5.best_count }}", Prose(tmp_path))


def test_a_missing_claim_names_it(tmp_path):
    _record(tmp_path, "fig2_sigmoid_trace", {})
    with pytest.raises(ProseError, match=r"no claim \"spike times, authors' code, dy = 0.03125\""):
        expand("{{ fig2.code_5 }}", Prose(tmp_path))


def test_an_unknown_name_and_a_stray_brace_are_errors(tmp_path):
    with pytest.raises(ProseError, match=r"no value is named 'no.such'"):
        expand("{{ no.such }}", Prose(tmp_path))
    with pytest.raises(ProseError, match=r"line 2.*not a placeholder"):
        expand("a\n{{ not a name }}", Prose(tmp_path))


def test_nothing_renders_blank(tmp_path):
    _record(tmp_path, "table3_transformers", {"rows": [{"method": "PS", "cosine (mean)": float("nan")}]})
    with pytest.raises(ProseError, match="NaN|None|empty|nan"):
        expand("{{ t3.cosine }}", Prose(tmp_path))


def test_expand_chapters_rewrites_only_the_staged_copy(tmp_path):
    _record(tmp_path / "results", "conversion_loss_vs_k", {"latency": LATENCY})
    book = tmp_path / "book"
    book.mkdir()
    (book / "a.md").write_text("PS {{ conv.ps_matches }}.\n")
    (book / "b.md").write_text("no placeholder, $\\frac{1}{2}$\n")
    expand_chapters(book, Prose(tmp_path / "results"))
    assert (book / "a.md").read_text() == "PS matches from $K = 10$.\n"
    assert (book / "b.md").read_text() == "no placeholder, $\\frac{1}{2}$\n"


# the rows the fig5 notebook writes since float32 sampling is defined (rounded once from float64);
# used where the committed record predates them
SAMPLING_ROWS = [
    {"float32 sampling": "rounded", "best reading": "code, first weight code, thinned, nearest kept point, "
     "b and M full, float32, one fit per column", "its cells": 17, "readings with as many": 1,
     "cells of the definition's best reading that change": "none"},
    {"float32 sampling": "torch", "best reading": "code, first weight paper, thinned, nearest kept point, "
     "b and M full, float32, one fit per column", "its cells": 18, "readings with as many": 2,
     "cells of the definition's best reading that change": "GELU 3, Sigmoid 2, Sigmoid 3"},
]


def _committed_records(tmp_path: Path, source: Path = RESULTS) -> Path:
    """A copy of the records in ``source``, the fig5 record with its float32-sampling rows."""
    folder = tmp_path / "results"
    folder.mkdir()
    for path in source.glob("*.json"):
        shutil.copy(path, folder / path.name)
    fig5 = folder / "fig5_table5_mse.json"
    rec = json.loads(fig5.read_text())
    rec["extra"].setdefault("best reading by float32 sampling", SAMPLING_ROWS)
    fig5.write_text(json.dumps(rec))
    return folder


@pytest.mark.parametrize("source", [RESULTS, RESULTS / "smoke"], ids=["default", "smoke"])
def test_every_placeholder_of_the_chapters_expands_from_the_committed_records(tmp_path, monkeypatch, source):
    if not (source / "fig5_table5_mse.json").exists():
        pytest.skip(f"no records in {source}")
    monkeypatch.setenv("PSNN_ROOT", str(ROOT))  # the networks' manifest data/paper2_networks.json
    values = Prose(_committed_records(tmp_path, source))
    for chapter in CHAPTERS:
        out = expand(chapter.read_text(), values, where=chapter.name)
        assert "{{" not in out
        assert not re.search(r"\b(nan|None)\b", out), chapter.name
        assert not re.search(r"-0\.?0*\b(?!\.?[1-9])", out.replace("$-", "$")), chapter.name


def _sampling(tmp_path: Path, torch_row: dict) -> str:
    rows = [SAMPLING_ROWS[0], {**SAMPLING_ROWS[0], **torch_row, "float32 sampling": "torch"}]
    _record(tmp_path, "fig5_table5_mse", {"best reading by float32 sampling": rows})
    return Prose(tmp_path)["fig5.torch_sampling"]


def test_the_float32_sampling_clause_follows_the_record(tmp_path):
    assert _sampling(tmp_path, {}) == ("the best reading stays the same, with 17 cells; no cell of the "
                                       "definition's best reading changes")
    assert _sampling(tmp_path / "b", SAMPLING_ROWS[1]) == (
        "another reading is best, with 18 cells (1 other reading reaches as many): the authors' code, with the "
        "printed first weight, the thinned grid, snapped to the nearest kept point, $b$ and $M$ from the full "
        "grid, float32 sampling, one fit per column; 3 cells of the definition's best reading change: "
        "GELU at iteration 3, Sigmoid at iterations 2 and 3")
    assert _sampling(tmp_path / "c", {"cells of the definition's best reading that change": "Swish 4"}).endswith(
        "17 cells; 1 cell of the definition's best reading changes: Swish at iteration 4")


def test_a_missing_float32_sampling_row_names_it(tmp_path):
    _record(tmp_path, "fig5_table5_mse", {"best reading by float32 sampling": SAMPLING_ROWS[:1]})
    with pytest.raises(ProseError, match=r"fig5.torch_sampling.*no 'torch' row"):
        Prose(tmp_path)["fig5.torch_sampling"]
    _record(tmp_path / "b", "fig5_table5_mse", {"mse": {}})
    with pytest.raises(ProseError, match=r"no extra\['best reading by float32 sampling'\]"):
        Prose(tmp_path / "b")["fig5.torch_sampling"]


def test_the_values_come_from_the_providers_and_a_name_is_defined_once(tmp_path, monkeypatch):
    one, two = types.ModuleType("prose_one"), types.ModuleType("prose_two")
    one.VALUES = {"x.a": lambda records: records.extra("x", "a")}
    two.VALUES = {"x.a": lambda records: "again"}
    monkeypatch.setitem(sys.modules, "prose_one", one)
    monkeypatch.setitem(sys.modules, "prose_two", two)
    _record(tmp_path, "x", {"a": "seven"})
    assert expand("{{ x.a }}", Prose(tmp_path, providers=["prose_one"])) == "seven"
    with pytest.raises(ProseError, match=r"no value is named 'conv.ps_matches' \(prose_one define x.a\)"):
        expand("{{ conv.ps_matches }}", Prose(tmp_path, providers=["prose_one"]))
    with pytest.raises(ProseError, match="'x.a' is defined by both prose_one and prose_two"):
        prose.registered(["prose_one", "prose_two"])


def test_the_book_machinery_imports_no_study_until_a_chapter_asks():
    code = ("import sys, psnn_lib.book.prose, psnn_lib.book.site; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch' or m.startswith('psnn_lib.paper')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_the_papers_own_numbers_and_manifest(monkeypatch):
    from psnn_lib.paper2 import prose as p2
    from psnn_lib.paper2.numbers import TABLE1
    monkeypatch.setenv("PSNN_ROOT", str(ROOT))
    assert p2.PAPER_ANN == TABLE1["proposed"][0]
    manifest = json.loads((ROOT / "data" / "paper2_networks.json").read_text())
    gap = f"{p2.PAPER_ANN - manifest['net4_ann']['test_accuracy']:.1f}"
    assert Prose(RESULTS)["p2.net4_gap"] == gap


def test_numbers_never_print_a_negative_zero_nor_round_a_nonzero_value_to_zero():
    assert prose.num(-0.0) == "0.00" and prose.num(-0.001, 0) == "-0.001" and prose.fixed(-0.004, 2) == "0.00"
    assert prose.num(0.5, 0) == "0.5" and prose.num(0.0996) == "0.10" and prose.num(0.0994) == "0.099"
    assert prose.num(0.25) == "0.25" and prose.short(0.0999) == "0.0999" and prose.dec4(-0.00001) == "0.0000"
    for bad in (None, float("nan"), "x"):
        with pytest.raises(ProseError):
            prose.short(bad)


def test_a_corrupt_record_names_the_chapter_the_placeholder_and_the_file(tmp_path):
    (tmp_path / "conversion_loss_vs_k.json").write_text("{not json")
    with pytest.raises(ProseError, match=r"book/x.md.*conv.ps_matches.*conversion_loss_vs_k.json cannot be read"):
        expand("{{ conv.ps_matches }}", Prose(tmp_path), where="book/x.md")


def test_any_failure_of_a_value_is_a_prose_error_naming_the_placeholder(tmp_path, monkeypatch):
    bad = types.ModuleType("prose_bad")
    bad.VALUES = {"x.div": lambda r: str(1 / 0), "x.val": lambda r: str(int("seven")),
                  "x.type": lambda r: prose.short(r.extra("x", "a"))}
    monkeypatch.setitem(sys.modules, "prose_bad", bad)
    _record(tmp_path, "x", {"a": None})
    for name, what in (("x.div", "ZeroDivisionError"), ("x.val", "ValueError"), ("x.type", "empty")):
        with pytest.raises(ProseError, match=rf"book/y.md.*{name}.*{what}"):
            expand("{{ " + name + " }}", Prose(tmp_path, providers=["prose_bad"]), where="book/y.md")
    # a paper's firing rate of 0 gives no ratio rather than a division by zero
    _record(tmp_path / "b", "p2_fig1_table4_thresholds", {}, [
        {"name": "layer 1 firing rate", "ours": 0.2, "paper": 0.0}, {"name": "layer 2 firing rate", "ours": 0.3, "paper": 0.1}])
    assert Prose(tmp_path / "b")["p2.rate_ratio"] == "3.0 to 3.0 times the paper's"


def _p2_records(tmp_path: Path, steps) -> Prose:
    claims = [{"name": "AugMapping: SNN - ANN at the paper's T = 220 (points)", "ours": -0.0},
              {"name": "proposed: SNN - ANN at the paper's T = 10 (points)", "ours": None}]
    _record(tmp_path, "p2_table1_fashion_mnist", {"rows": [
        {"method": m, "time steps": steps, "T run": 300} for m in ("AugMapping", "stReLU", "proposed")]}, claims)
    _record(tmp_path, "p2_table5_fig3_calibration", {"rows": [
        {"weighting": "none (no calibration)", "time steps": steps, "T run": 32}]})
    return Prose(tmp_path)


def test_a_method_that_never_settles_is_a_sentence_not_an_error(tmp_path):
    never = _p2_records(tmp_path, None)
    assert never["p2.augmapping"].startswith("it stays within one paired SE of its ANN at no step of the 300 steps run; "
                                             "at the paper's 220 steps it is level with it")
    assert never["p2.strelu"] == "the symmetric neuron does not settle within the 300 steps run (the paper's needs 79)"
    assert never["p2.proposed"].endswith("stays within the allowance at no step of the 300 steps run")
    assert never["p2.uncalibrated"] == "at no step of the 32 steps run"
    settled = _p2_records(tmp_path / "b", 293)
    assert settled["p2.augmapping"].startswith("it stays within one paired SE of its ANN from $T = 293$ on (of the 300 "
                                               "steps run)")
    assert settled["p2.strelu"] == "the symmetric neuron needs 293 (the paper's 79)"


def test_the_validation_choice_is_plain_words(tmp_path, monkeypatch):
    from psnn_lib.paper2 import prose as p2
    monkeypatch.setattr(p2, "_manifest", lambda records: {"net4_ann": {"selection": {
        "chosen": "no augmentation", "validation": {"no augmentation": 92.18, "shifts": 91.5}}}})
    assert Prose(tmp_path)["p2.validation"] == ("no augmentation on the validation split (92.18 % against 91.50 %)")


T2_ROWS = [{"network": "MobileNetV2", "images": 4, "ANN top-1": 100.0, "SNN top-1": 100.0, "agreement": 100.0,
            "at risk": 25.0, "max |logit error|": 0.31, "K per layer": [10, 13], "control": False},
           {"network": "MobileNetV2", "images": 200, "ANN top-1": 90.0, "SNN top-1": 89.5, "agreement": 99.5,
            "at risk": 60.0, "max |logit error|": 3.2, "K per layer": [8], "control": True}]


def _t2_claims(first: str, second: str) -> list[dict]:
    net = "MobileNetV2 (paper: EfficientNet-B7): "
    return [{"name": net + "top-1 predictions the SNN changes (% of images; paper: |loss|)", "ours": 0.0,
             "status": first},
            {"name": net + "predictions its logit error could change (% of images)", "ours": 25.0, "status": second}]


def test_table2_states_what_its_record_says(tmp_path):
    _record(tmp_path, "table2_imagenet", {"rows": T2_ROWS, "control": {"network": "MobileNetV2", "K": 8}},
            _t2_claims("reproduced", "reproduced"))
    values = Prose(tmp_path)
    assert values["table2.networks"] == ("MobileNetV2 changes 0 of its 4 predictions and its largest logit error "
                                         "(0.31) could change 1: it passes both criteria")
    assert values["table2.control"] == ("$K = 8$, where MobileNetV2 changes 1 of its 200 predictions, loses 0.5 points "
                                        "of top-1 accuracy, and its logit error could change 120")
    assert values["table2.images"] == "4" and values["table2.resolution"].startswith("One image is 25 points of 4")
    _record(tmp_path / "b", "table2_imagenet", {"rows": T2_ROWS}, _t2_claims("reproduced", "deviates"))
    assert Prose(tmp_path / "b")["table2.networks"].endswith("it passes the first criterion and deviates on the second")


def test_table3_counts_and_losses_follow_the_record(tmp_path):
    rows = [{"method": "PS", "agreement": 100.0, "loss": 0.0, "sentences": 32},
            {"method": "FS (K = 16)", "agreement": 96.875, "loss": 3.125, "sentences": 32}]
    _record(tmp_path, "table3_transformers", {"rows": rows})
    values = Prose(tmp_path)
    assert values["t3.sentences"] == "32"
    assert values["t3.ps"] == "changes 0 predictions (agreement 100.00 %, loss 0.00 points)"
    assert values["t3.fs"] == "change 3.1 % of the predictions and gain 3.12 points"


def test_runs_and_spans():
    assert prose.runs([2, 3, 4, 5, 6]) == "2–6"
    assert prose.runs([2, 3, 5]) == "2, 3 and 5"
    assert prose.runs([2, 3, 4, 6, 7]) == "2–4, 6 and 7"
    assert prose.span([13, 13]) == "13 each" and prose.span([14, 12]) == "12 to 14"


# -- no number about our results typed by hand -------------------------------------------------------

NUMBER = re.compile(r"(?<![\w.,-])(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(?![\w.]?\d)")
# a number right after one of these names a part of a paper, a parameter or a setting, not a result
PART = re.compile(r"(?:Eqs?\.|lines?|Sect\.|Tables?|Figs?\.|Algorithm|Theorem)\s*$")
# an integer after one of these is a parameter or an index (K = 16, iteration 2, 2-6, ...)
NAMING = re.compile(r"(?:iterations?|columns?|[KTNt]\s*=|dy\s*=|\\delta\s*=|step|width|seed|layers?|"
                    r"[–-]|and|to|or|,)\s*$")


def _strip(text: str) -> str:
    """The chapter without code, placeholders, citations and roles: what a reader sees as prose."""
    text = re.sub(r"```.*?```", " ", text, flags=re.S)
    text = re.sub(r"`[^`]*`", " ", text)
    text = re.sub(r"\{\{.*?\}\}", " ", text)
    return re.sub(r"\{\w+\}`[^`]*`", " ", text)


def _numbers(values) -> list[float]:
    out = []
    for v in values if isinstance(values, list) else [values]:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v):
            continue
        out.append(v)
    return out


def _printed(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}"


def _record_numbers() -> tuple[dict[str, list[str]], set[tuple[str, int]]]:
    """Per (printed text, decimals): our values by record claim; and the papers' values printed."""
    ours: dict[tuple[str, int], list[str]] = {}
    paper: set[tuple[str, int]] = set()
    for path in sorted(RESULTS.glob("*.json")):
        rec = json.loads(path.read_text())
        for item in rec.get("results", []):
            for d in range(0, 5):
                for p in _numbers(item["paper"]):
                    paper.add((_printed(p, d), d))
                for o in _numbers(item["ours"]):
                    # an integer in the text stands for an integer result only
                    if d == 0 and o != int(o):
                        continue
                    ours.setdefault((_printed(o, d), d), []).append(f"{path.stem}: {item['name']}")
    return ours, paper


def bare_results(text: str, ours, paper) -> list[str]:
    """Numbers in ``text`` that print a record's ``ours`` to their digits and no paper's value."""
    found = []
    prose_text = _strip(text)
    for m in NUMBER.finditer(prose_text):
        whole, frac = m[1].replace(",", ""), m[2] or ""
        token, d = (f"{whole}.{frac}" if frac else whole), len(frac)
        if d == 0 and (len(whole) == 4 and whole[:2] in ("19", "20")):
            continue  # a year
        before = prose_text[max(0, m.start() - 20):m.start()]
        significant = len((whole + frac).lstrip("0"))
        if d == 1 and significant < 3:
            continue  # 1.5, 0.5: too few digits to tell a result from a setting
        if PART.search(before) or (d == 0 and NAMING.search(before)):
            continue  # Eq. 13, Sect. 4.2, line 8; K = 16, iteration 2, 2-6, ...
        key = (token, d)
        if key in ours and key not in paper:
            line = prose_text[:m.start()].count("\n") + 1
            found.append(f"line {line}: {token} (ours in {ours[key][0]})")
    return found


def test_the_rule_finds_a_typed_result_and_spares_the_papers_numbers():
    ours = {("4.17", 2): ["fig5: GELU iteration 2"], ("35", 0): ["p2: stReLU time steps"],
            ("13", 0): ["t2: largest K"]}
    paper = {("4.96", 2), ("13", 0)}
    text = ("The best reading gives GELU 4.17 (paper 4.96); stReLU needs 35 steps; Eq. 35 and line 35, "
            "$K = 35$, iteration 35; the largest $K$ is 13; in 2017; `4.17` in code; {{ fig5.x }}.")
    assert bare_results(text, ours, paper) == ["line 1: 4.17 (ours in fig5: GELU iteration 2)",
                                               "line 1: 35 (ours in p2: stReLU time steps)"]


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.name)
def test_no_chapter_types_a_number_a_record_holds_as_ours(chapter):
    ours, paper = _record_numbers()
    found = bare_results(chapter.read_text(), ours, paper)
    assert not found, (f"{chapter.name} types numbers that a record holds as ours; write a "
                       "{{ name }} of psnn_lib/paper1/prose.py or psnn_lib/paper2/prose.py instead:\n  " + "\n  ".join(found))
