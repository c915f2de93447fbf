import json

import pytest

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
