"""Execute the book's notebooks: MyST markdown -> .ipynb -> papermill.

``run_notebooks`` turns each ``notebooks/*.md`` (the only notebook source)
into a notebook, injects the profile (and any ``parameters`` the caller sets,
each of which must be a name of the notebook's ``parameters`` cell) with
papermill, and writes the executed copy to ``_build/executed/<profile>/``. A
notebook whose source, profile, parameters and library code are unchanged
since its last successful run is skipped (a content-hash cache). A failing
notebook, or a cell running longer than ``cell_timeout`` seconds
(``CELL_TIMEOUT``: per profile, none at ``paper``, whose trainings run for
hours), stops the run with its name and the failing cell (the notebooks
already running finish first, and every failure is named; those that
succeeded are cached). A failed notebook leaves its execution log beside its
output: ``<name>.log`` (the failing cell's code and traceback, as plain text) and
the partly executed ``<name>.ipynb`` (papermill's), which CI uploads.

Progress: a bar here counts the notebooks. At ``smoke`` and ``default`` the
kernels run with ``TQDM_DISABLE=1``, so that no bar ends up in the published
notebooks; with ``stream`` (the default at ``paper``) they keep their bars and
everything a kernel writes to stdout and stderr is streamed to this process's
stderr as it comes, each line headed by the notebook's name.

``jobs`` notebooks run at a time (default: two where the machine has at
least two cores), each kernel with an equal share of the cores as its
threads (``OMP_NUM_THREADS``; a caller's own setting is kept). On two cores that
is two one-thread kernels: a notebook's small per-step operations use one
core well and two poorly, so two at a time finish the book sooner than one
at a time with two threads. The records' claims do not depend on the
thread count; their last digits may.
"""
from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional, Sequence, TextIO

from ..progress import progress_bar
from .profiles import check_profile


class NotebookFailed(RuntimeError):
    """A notebook raised; the message names it and its failing cell."""


# seconds one cell may run, per profile (None: no limit; the paper profile trains for hours)
CELL_TIMEOUT: dict[str, Optional[int]] = {"smoke": 600, "default": 1800, "paper": None}


@dataclass
class RunOutcome:
    name: str
    status: str  # "executed" or "cached"
    output: Path
    seconds: float = 0.0


def executed_dir(root: Path, profile: str) -> Path:
    """Where ``psnn book`` writes the executed notebooks of a profile."""
    return Path(root) / "_build" / "executed" / profile


def notebook_sources(root: Path) -> list[Path]:
    return sorted((root / "notebooks").glob("*.md"))


def _parameters_cells(nb) -> list:
    return [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]


def parameter_names(source: str) -> set[str]:
    """The names a ``parameters`` cell assigns at its top level."""
    names = set()
    for node in ast.parse(source).body:
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, (ast.AnnAssign, ast.AugAssign)) else []
        names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


class _Headed:
    """A text stream that heads every line written to ``out`` with ``name`` (kernels that run
    at the same time stream into one terminal)."""

    _lock = threading.Lock()
    _last: Optional["_Headed"] = None  # who wrote last to the terminal, and whether its line is open
    _open = False

    def __init__(self, name: str, out: TextIO):
        self.head, self.out, self.at_line_start = f"[{name}] ", out, True

    def write(self, text: str) -> int:
        with self._lock:
            pieces = []
            if _Headed._open and _Headed._last is not self:  # another notebook's bar: leave its line
                pieces.append("\n")
                self.at_line_start = True
            for piece in re.split(r"(\r\n|\r|\n)", text):  # a progress bar redraws its line after a \r
                if not piece:
                    continue
                if self.at_line_start and piece not in ("\r\n", "\r", "\n"):
                    pieces.append(self.head)
                pieces.append(piece)
                self.at_line_start = piece in ("\r\n", "\r", "\n")
            if pieces:
                self.out.write("".join(pieces))
                _Headed._last, _Headed._open = self, not pieces[-1].endswith("\n")
        return len(text)

    def flush(self) -> None:
        self.out.flush()


# what the runner's cache digests besides each notebook's source, as globs relative to the checkout
# (the book workflow keys the runner's cache between CI runs by the same globs)
LIBRARY_GLOBS = ("psnn_lib/**/*.py", "psnn_lib/**/*.json", "psnn_lib/**/*.c",
                 "data/checkpoints.json", "data/paper2_networks.json")


def library_files(root: Path) -> list[Path]:
    """Every library file (code, C kernels and data) and the checkpoint manifests (paper 1's and
    paper 2's): :data:`LIBRARY_GLOBS`."""
    return sorted({p for pattern in LIBRARY_GLOBS for p in Path(root).glob(pattern) if p.is_file()})


def library_digest(root: Path) -> str:
    """A digest of :func:`library_files`: the runner's cache reruns every notebook when any of
    them changes (the records track per notebook what it ran, see :mod:`.provenance`)."""
    h = hashlib.sha256()
    for path in library_files(root):
        h.update(path.relative_to(root).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def _set_env(values: dict[str, Optional[str]]) -> None:
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def available_cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def default_jobs() -> int:
    """Notebooks at a time when the caller does not say: two where there are two cores or more."""
    return min(2, available_cores())


@contextmanager
def _kernel_env(root: Path, results_dir: Optional[Path], jobs: int, stream: bool) -> Iterator[None]:
    """Set the variables the kernels read (they inherit this process's
    environment: a caller's own ``PSNN_RESULTS_DIR`` and ``OMP_NUM_THREADS`` are kept unless
    ``results_dir`` is given) and restore the caller's environment afterwards."""
    wanted = {"PSNN_ROOT": str(root),
              "TQDM_DISABLE": os.environ.get("TQDM_DISABLE") if stream else "1",
              "PSNN_RESULTS_DIR": str(results_dir) if results_dir else os.environ.get("PSNN_RESULTS_DIR"),
              "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(max(1, available_cores() // jobs)))}
    saved = {key: os.environ.get(key) for key in wanted}
    _set_env(wanted)
    try:
        yield
    finally:
        _set_env(saved)


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def failure_log(output: Path) -> Path:
    """Where a failed notebook's execution log goes: beside its executed copy."""
    return output.with_suffix(".log")


def _write_failure_log(output: Path, message: str, details: str) -> str:
    """Write the execution log of a failed notebook (``message``, then ``details`` without terminal
    colours); returns ``message`` naming the log and the partly executed notebook."""
    log = failure_log(output)
    log.write_text(f"{message}\n\n{_ANSI.sub('', details)}\n")
    return f"{message}\n  execution log: {log}\n  partly executed notebook: {output}"


def _failing_cell(output: Path, exec_count: Optional[int]) -> str:
    """The source of the cell that ran as ``exec_count`` in the partly executed notebook."""
    import nbformat

    try:
        cells = nbformat.read(output, as_version=4).cells
    except (OSError, ValueError):
        return "(the executed notebook could not be read)"
    return next((c.source for c in cells if c.get("execution_count") == exec_count), "(not found)")


def _execute(src: Path, text: str, output: Path, profile: str, parameters: Mapping[str, Any],
             cell_timeout: Optional[int], stream: bool) -> float:
    """Execute one notebook source into ``output``; its seconds, or NotebookFailed."""
    import jupytext
    import papermill
    from nbclient.exceptions import CellTimeoutError

    nb = jupytext.reads(text, fmt="md:myst")
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    staged = output.with_name(f"{src.stem}.source.ipynb")
    jupytext.write(nb, staged)
    failure_log(output).unlink(missing_ok=True)
    start = time.perf_counter()
    try:
        out = _Headed(src.stem, sys.stderr) if stream else None
        # the kernel starts in notebooks/ (nbclient's resources), not by papermill's chdir of this
        # process, which two notebooks at once could undo for each other
        papermill.execute_notebook(str(staged), str(output), parameters={**parameters, "profile": profile},
                                   kernel_name="python3", resources={"metadata": {"path": str(src.parent)}},
                                   progress_bar=False,
                                   stdout_file=out, stderr_file=out, execution_timeout=cell_timeout,
                                   coalesce_streams=True)  # a bar's redraws stored as its last state
    except CellTimeoutError as exc:
        message = f"notebook {src.name}: a cell ran longer than {cell_timeout} s"
        raise NotebookFailed(_write_failure_log(output, f"{message} ({exc})", str(exc))) from None
    except papermill.PapermillExecutionError as exc:
        message = f"notebook {src.name} failed in cell {exc.exec_count} (index {exc.cell_index}): {exc.ename}: {exc.evalue}"
        details = f"The cell:\n{_failing_cell(output, exc.exec_count)}\n\n" + "\n".join(exc.traceback)
        raise NotebookFailed(_write_failure_log(output, message, details)) from None
    finally:
        staged.unlink(missing_ok=True)
    return round(time.perf_counter() - start, 1)


def _notebook_values(sources: Sequence[Path], parameters: Mapping[str, Any],
                     notebook_parameters: Mapping[str, Mapping[str, Any]]) -> tuple[dict[str, dict], list[str]]:
    """Each notebook's injected values, checked before any kernel starts: a notebook needs one
    ``parameters`` cell; a value of ``notebook_parameters`` must name a parameter of its notebook;
    one of ``parameters`` goes to the notebooks that have that parameter, and at least one must
    (a line for each that some of them lack). Returns (values by notebook, those lines)."""
    import jupytext

    names = {}
    for src in sources:
        cells = _parameters_cells(jupytext.reads(src.read_text(), fmt="md:myst"))
        if len(cells) != 1:
            raise NotebookFailed(f"{src.name}: needs exactly one cell tagged 'parameters'")
        names[src.stem] = parameter_names(cells[0].source)
    notes = []
    for name in parameters:
        having = [stem for stem in names if name in names[stem]]
        if not having:
            raise ValueError(f"no notebook of this run has a parameter {name!r}")
        if len(having) < len(names):
            notes.append(f"{name} = {parameters[name]!r}: given to {', '.join(having)} (the others have no such "
                         "parameter)")
    for stem, values in notebook_parameters.items():
        unknown = set(values) - names[stem]
        if unknown:
            raise ValueError(f"{stem} has no parameter {', '.join(sorted(unknown))} "
                             f"(its parameters: {', '.join(sorted(names[stem]))})")
    return {stem: {**{k: v for k, v in parameters.items() if k in names[stem]}, **notebook_parameters.get(stem, {})}
            for stem in names}, notes


def run_notebooks(root: Path, profile: str, only: Optional[Sequence[str]] = None,
                  out_dir: Optional[Path] = None, force: bool = False,
                  results_dir: Optional[Path] = None, cell_timeout: Optional[int] = None,
                  jobs: Optional[int] = None, parameters: Optional[Mapping[str, Any]] = None,
                  stream: Optional[bool] = None,
                  notebook_parameters: Optional[Mapping[str, Mapping[str, Any]]] = None) -> list[RunOutcome]:
    """Execute the notebooks at ``profile``, ``jobs`` at a time; returns what ran and what was
    cached, in source order. ``parameters``: values for names of the notebooks' ``parameters``
    cells (besides ``profile``), each given to the notebooks that have it; ``notebook_parameters``:
    more of them per notebook (by name, over ``parameters``); both checked before any kernel
    starts (:func:`_notebook_values`). ``cell_timeout``: seconds (default ``CELL_TIMEOUT[profile]``);
    ``stream``: the kernels' output and progress bars to stderr (default: at ``paper``)."""
    check_profile(profile)
    parameters = dict(parameters or {})
    notebook_parameters = dict(notebook_parameters or {})
    if "profile" in parameters or any("profile" in values for values in notebook_parameters.values()):
        raise ValueError("the profile is set by the profile argument, not by parameters")
    cell_timeout = CELL_TIMEOUT[profile] if cell_timeout is None else cell_timeout
    stream = profile == "paper" if stream is None else stream
    results_dir = results_dir or (Path(os.environ["PSNN_RESULTS_DIR"]) if os.environ.get("PSNN_RESULTS_DIR")
                                  else None)
    jobs = default_jobs() if jobs is None else jobs
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a whole number >= 1, got {jobs!r}")
    root = Path(root).resolve()
    sources = notebook_sources(root)
    if only:
        wanted = {Path(o).stem for o in only}
        unknown = wanted - {s.stem for s in sources}
        if unknown:
            raise ValueError(f"no notebook named {', '.join(sorted(unknown))}; "
                             f"have {', '.join(s.stem for s in sources)}")
        sources = [s for s in sources if s.stem in wanted]
    unknown = set(notebook_parameters) - {s.stem for s in sources}
    if unknown:
        raise ValueError(f"parameters for {', '.join(sorted(unknown))}, which this run does not execute")
    values, notes = _notebook_values(sources, parameters, notebook_parameters)
    for note in notes:
        print(f"psnn book: {note}", file=sys.stderr)
    out_dir = Path(out_dir) if out_dir else executed_dir(root, profile)
    out_dir.mkdir(parents=True, exist_ok=True)
    cache_file = out_dir / ".psnn-cache.json"
    cache = json.loads(cache_file.read_text()) if cache_file.exists() else {}
    lib = library_digest(root)
    outcomes: dict[str, RunOutcome] = {}
    to_run = []
    for src in sources:
        text = src.read_text()
        settings = json.dumps(values[src.stem], sort_keys=True, default=repr)
        key = hashlib.sha256(f"{text}\0{profile}\0{settings}\0{lib}\0{results_dir}".encode()).hexdigest()
        output = out_dir / f"{src.stem}.ipynb"
        if not force and cache.get(src.stem) == key and output.exists():
            outcomes[src.stem] = RunOutcome(src.stem, "cached", output)
        else:
            to_run.append((src, text, key, output, values[src.stem]))
    bar = progress_bar(total=len(to_run), desc=f"notebooks ({profile}, {jobs} at a time)",
                       unit="nb")  # before the kernels' TQDM_DISABLE
    failures: list[str] = []
    at_once = min(jobs, max(1, len(to_run)))  # the cores are shared by the kernels that run
    with _kernel_env(root, results_dir, at_once, stream), ThreadPoolExecutor(max_workers=at_once) as pool:
        waiting, running = list(reversed(to_run)), {}
        while waiting or running:
            while waiting and len(running) < at_once and not failures:  # none starts after a failure
                src, text, key, output, values = waiting.pop()
                cache.pop(src.stem, None)  # until it has run again
                cache_file.write_text(json.dumps(cache, indent=1))
                running[pool.submit(_execute, src, text, output, profile, values, cell_timeout,
                                    stream)] = (src, key, output)
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                src, key, output = running.pop(future)
                try:
                    seconds = future.result()
                except NotebookFailed as exc:
                    failures.append(str(exc))
                    continue
                except Exception as exc:  # noqa: BLE001 (a dead kernel, a missing kernel spec: named, never lost)
                    failures.append(f"notebook {src.name} did not run: {type(exc).__name__}: {exc}")
                    continue
                cache[src.stem] = key
                cache_file.write_text(json.dumps(cache, indent=1))
                outcomes[src.stem] = RunOutcome(src.stem, "executed", output, seconds)
                bar.update()
    bar.close()
    if failures:
        raise NotebookFailed("\n".join(failures))
    return [outcomes[s.stem] for s in sources]
