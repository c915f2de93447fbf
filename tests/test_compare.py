"""psnn compare: two runs' claims side by side (psnn_lib.book.compare), the check CI runs under
another CPU capability and thread count."""
import json
import math

from psnn_lib.book.compare import claim_differences
from psnn_lib.cli import main


def _write(folder, notebook, claims):
    folder.mkdir(exist_ok=True)
    results = [{"name": n, "paper": p, "ours": o, "tolerance": None, "status": s, "note": ""}
               for n, p, o, s in claims]
    (folder / f"{notebook}.json").write_text(json.dumps({"results": results}))


CLAIMS = [("mse", 1.5, 1.25, "reproduced"), ("order", True, True, "reproduced"),
          ("curve", [1, 2], [1.0, 2.0], "deviates"), ("empty", 3.0, math.nan, "not run")]


def test_equal_runs_have_no_differences(tmp_path, capsys):
    _write(tmp_path / "a", "nb", CLAIMS)
    _write(tmp_path / "b", "nb", [(n, p, o * (1 + 1e-12) if n == "mse" else o, s) for n, p, o, s in CLAIMS])
    assert claim_differences(tmp_path / "a", tmp_path / "b") == []
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 0


def test_every_kind_of_difference_is_named(tmp_path, capsys):
    _write(tmp_path / "a", "nb", CLAIMS)
    _write(tmp_path / "a", "other", CLAIMS)
    changed = [("mse", 1.5, 1.2500001, "reproduced"), ("order", True, False, "deviates"),
               ("curve", [1, 2], [1.0, 2.5], "deviates"), ("new", 1.0, 1.0, "reproduced")]
    _write(tmp_path / "b", "nb", changed)
    _write(tmp_path / "b", "lost", CLAIMS)
    lines = claim_differences(tmp_path / "a", tmp_path / "b")
    assert lines == ["lost: no record in " + str(tmp_path / "a"),
                     f"nb: empty: only in {tmp_path / 'a'}", f"nb: new: only in {tmp_path / 'b'}",
                     "nb: mse: ours 1.25 -> 1.2500001", "nb: order: status 'reproduced' -> 'deviates'",
                     "nb: order: ours True -> False", "nb: curve: ours [1.0, 2.0] -> [1.0, 2.5]"]
    assert claim_differences(tmp_path / "a", tmp_path / "b", rel=1e-3) == [l for l in lines if "mse" not in l]
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 1
    assert "nb: mse" in capsys.readouterr().out
    # --statuses: a status (or a missing claim) is a difference, a value that moved a note
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--statuses"]) == 1
    out = capsys.readouterr().out
    assert "nb: order: status 'reproduced' -> 'deviates'" in out and "note, a value moved: nb: mse: ours" in out
    _write(tmp_path / "c", "nb", [(n, p, o * 1.01 if n == "mse" else o, s) for n, p, o, s in CLAIMS])
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "c"), "--statuses"]) == 0
    assert "note, a value moved: nb: mse: ours 1.25 -> 1.2625" in capsys.readouterr().out
    summary = tmp_path / "summary.md"  # GitHub's job summary: a section of Markdown, appended
    summary.write_text("before\n")
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "c"), "--statuses", "--summary", str(summary)]) == 0
    text = summary.read_text()
    assert text.startswith("before\n### Claims: ") and "```\nnote, a value moved: nb: mse" in text
    assert "0 difference(s)" in text and text.endswith("```\n\n")
    assert main(["compare", str(tmp_path / "missing"), str(tmp_path / "c"), "--summary", str(summary)]) == 2
    assert summary.read_text().endswith(f"psnn compare: no folder {tmp_path / 'missing'}\n```\n\n")
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "c"), "--summary", ""]) == 2  # GitHub's unset
    assert "cannot append to the summary ''" in capsys.readouterr().err


def test_an_empty_rerun_is_a_difference(tmp_path):
    (tmp_path / "b").mkdir()
    assert claim_differences(tmp_path, tmp_path / "b") == [f"no records in {tmp_path / 'b'}"]


def test_infinities_bools_and_dicts_are_compared_for_what_they_are(tmp_path):
    inf = math.inf
    cases = [(inf, inf, True), (1.0, inf, False), (-inf, inf, False), (True, 1, False), (1, 1.0, True),
             ({"x": 1.0}, {"x": 1.0 + 1e-15}, True), ({"x": math.nan}, {"x": math.nan}, True),
             ({"x": 1.0}, {"y": 1.0}, False), (None, None, True), (None, 0.0, False)]
    for a, b, same in cases:
        _write(tmp_path / "a", "nb", [("c", 0.0, a, "reproduced")])
        _write(tmp_path / "b", "nb", [("c", 0.0, b, "reproduced")])
        assert (claim_differences(tmp_path / "a", tmp_path / "b") == []) == same, (a, b)


def test_what_is_not_a_record_is_an_error_that_names_it(tmp_path, capsys):
    import pytest

    from psnn_lib.book.compare import RecordError

    _write(tmp_path / "a", "nb", CLAIMS)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "nb.json").write_text("{not json")
    with pytest.raises(RecordError, match="nb.json is not a readable record"):
        claim_differences(tmp_path / "a", tmp_path / "b")
    _write(tmp_path / "b", "nb", CLAIMS + CLAIMS[:1])
    with pytest.raises(RecordError, match="names a claim twice"):
        claim_differences(tmp_path / "a", tmp_path / "b")
    with pytest.raises(RecordError, match="no folder"):
        claim_differences(tmp_path / "missing", tmp_path / "a")
    assert main(["compare", str(tmp_path / "missing"), str(tmp_path / "a")]) == 2
    assert "no folder" in capsys.readouterr().err
    for rel, ok in (("0", True), ("0.5", True), ("1", False), ("-1", False), ("nan", False), ("x", False)):
        if ok:
            assert main(["compare", str(tmp_path / "a"), str(tmp_path / "a"), "--rel", rel]) == 0
        else:
            with pytest.raises(SystemExit):
                main(["compare", str(tmp_path / "a"), str(tmp_path / "a"), "--rel", rel])
