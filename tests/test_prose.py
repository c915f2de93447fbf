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


def _committed_records(tmp_path: Path) -> Path:
    """A copy of the committed records, the fig5 record with its float32-sampling rows."""
    folder = tmp_path / "results"
    folder.mkdir()
    for path in RESULTS.glob("*.json"):
        shutil.copy(path, folder / path.name)
    fig5 = folder / "fig5_table5_mse.json"
    rec = json.loads(fig5.read_text())
    rec["extra"].setdefault("best reading by float32 sampling", SAMPLING_ROWS)
    fig5.write_text(json.dumps(rec))
    return folder


def test_every_placeholder_of_the_chapters_expands_from_the_committed_records(tmp_path, monkeypatch):
    monkeypatch.setenv("PSNN_ROOT", str(ROOT))  # the networks' manifest data/paper2_networks.json
    values = Prose(_committed_records(tmp_path))
    for chapter in CHAPTERS:
        out = expand(chapter.read_text(), values, where=chapter.name)
        assert "{{" not in out
        assert not re.search(r"\b(nan|None)\b", out), chapter.name


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
