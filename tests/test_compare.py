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


def test_an_empty_rerun_is_a_difference(tmp_path):
    (tmp_path / "b").mkdir()
    assert claim_differences(tmp_path, tmp_path / "b") == [f"no records in {tmp_path / 'b'}"]
