import json
import re
from pathlib import Path

import pytest

from psnn_lib.cli import main


def test_fit_prints_k_s_b_and_error(tmp_path, capsys):
    out_file = tmp_path / "gelu.pt"
    assert main(["fit", "gelu", "--interval", "-10", "10", "--dy", "0.01", "--cache-dir", str(tmp_path),
                 "--out", str(out_file), "--n-check", "20000"]) == 0
    text = capsys.readouterr().out
    assert "K = 11" in text and "s = -7" in text and "b = -0.16997" in text
    err, bound = map(float, re.search(r"in \[l, r\]: ([0-9.e-]+) \(a-priori bound ([0-9.e-]+) if f is "
                                      r"1.13-Lipschitz", text).groups())
    assert 0 < err <= bound and bound == pytest.approx(2 ** -7 + 1.13 * 1e-3 / 2, rel=1e-9)
    assert out_file.exists()


def test_fit_reports_bad_input(capsys, tmp_path):
    assert main(["fit", "gelux", "--cache-dir", str(tmp_path)]) == 2
    assert "unknown activation 'gelux'" in capsys.readouterr().err
    assert main(["fit", "gelu", "--interval", "3", "1", "--cache-dir", str(tmp_path)]) == 2
    assert "empty interval" in capsys.readouterr().err
    assert main(["fit", "gelu", "--n-check", "0", "--cache-dir", str(tmp_path)]) == 2
    assert "--n-check must be >= 1" in capsys.readouterr().err


def test_fit_says_when_the_error_exceeds_dy(tmp_path, capsys):
    assert main(["fit", "sigmoid", "--interval", "-4", "4", "--dy", "0.001", "--cache-dir", str(tmp_path),
                 "--n-check", "20000"]) == 0
    assert "the error exceeds dy: between grid points" in capsys.readouterr().out


@pytest.mark.parametrize("bad", ["0", "-2", "two"])
def test_book_refuses_a_jobs_count_that_is_not_a_positive_whole_number(bad, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["book", "--jobs", bad])
    assert stop.value.code == 2 and "a whole number >= 1" in capsys.readouterr().err


def test_book_passes_its_folders_as_absolute_paths(tmp_path, monkeypatch):
    """The kernels run in notebooks/: a relative --results-dir or --out-dir is taken from where
    psnn runs, not from there."""
    import psnn_lib.book.runner as runner

    seen = {}

    def fake_run(root, profile, **kwargs):
        seen.update(kwargs)
        return []

    monkeypatch.setattr(runner, "run_notebooks", fake_run)
    monkeypatch.setenv("PSNN_ROOT", str(Path(__file__).resolve().parents[1]))
    monkeypatch.chdir(tmp_path)
    assert main(["book", "--profile", "smoke", "--results-dir", "rel", "--out-dir", "nb"]) == 0
    assert seen["results_dir"] == tmp_path / "rel" and seen["out_dir"] == tmp_path / "nb"


def test_book_takes_python_literals_only(capsys):
    """`--set allow_cpu=false` is not the string 'false' (a true value): it is refused."""
    for bad in ("allow_cpu=false", "n_test=1O", "=1", "overrides"):
        with pytest.raises(SystemExit):
            main(["book", "--set", bad])
        assert "--set" in capsys.readouterr().err


def test_stale_names_each_stale_record_and_fails(tmp_path, monkeypatch, capsys):
    from psnn_lib.book.provenance import file_digest

    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "nb.md").write_text("v1\n")
    (tmp_path / "results").mkdir()
    record = {"notebook": "nb", "paper": 1, "target": "Fig. 2", "results": [],
              "summary": {"reproduced": 0, "deviates": 0, "not run": 0},
              "sources": {"notebook": {"nb.md": file_digest(tmp_path / "notebooks" / "nb.md")}, "modules": {}}}
    (tmp_path / "results" / "nb.json").write_text(json.dumps(record))
    monkeypatch.setenv("PSNN_ROOT", str(tmp_path))
    monkeypatch.delenv("PSNN_RESULTS_DIR", raising=False)
    assert main(["stale"]) == 0 and "0 stale record(s) in results" in capsys.readouterr().out
    (tmp_path / "notebooks" / "nb.md").write_text("v2\n")
    assert main(["stale"]) == 1
    out, err = capsys.readouterr()
    assert out == "nb: notebooks/nb.md changed\n" and "1 stale record(s)" in err
    assert main(["stale", "--profile", "smoke"]) == 2 and "no folder" in capsys.readouterr().err
    (tmp_path / "results" / "smoke").mkdir()
    assert main(["stale", "--profile", "smoke"]) == 2 and "no records in" in capsys.readouterr().err
    (tmp_path / "results" / "smoke" / "bad.json").write_text("[1]")
    assert main(["stale", "--profile", "smoke"]) == 2 and "bad.json names no notebook" in capsys.readouterr().err
    (tmp_path / "results" / "smoke" / "bad.json").write_text('{"notebook": "nb", "paper": "1", "target": "x"}')
    assert main(["stale", "--profile", "smoke"]) == 2 and "bad.json is not a record" in capsys.readouterr().err
    (tmp_path / "results" / "smoke" / "bad.json").write_text("{")
    assert main(["stale", "--profile", "smoke"]) == 2 and "bad.json is not a readable record" in capsys.readouterr().err
    monkeypatch.setenv("PSNN_ROOT", "")
    monkeypatch.chdir("/")
    assert main(["stale"]) == 2 and "no _toc.yml above" in capsys.readouterr().err
    assert main(["readme"]) == 2 and "no _toc.yml above" in capsys.readouterr().err


def test_site_takes_a_github_repository_as_owner_slash_name(capsys):
    for bad in ("https://github.com/o/n", "../x", "o/..", "o/n.git", "-/-"):
        with pytest.raises(SystemExit):
            main(["site", f"--repository={bad}"])
        assert "OWNER/NAME of a GitHub repository" in capsys.readouterr().err
