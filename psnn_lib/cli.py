"""The ``psnn`` command: ``psnn book`` runs the notebooks, ``psnn site`` builds the
HTML book from them, ``psnn publish`` packs it as one archive that reads offline, ``psnn compare``
compares two runs' claims, ``psnn stale`` names the records whose sources changed, ``psnn readme``
writes the README's claims line, ``psnn fit`` fits a PS neuron, ``psnn fetch`` lists and downloads
what the paper profile reads."""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Optional, Sequence

import torch


def _positive_int(text: str) -> int:
    """An argparse type: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"a whole number >= 1, got {text!r}")
    return value


def _relative_tolerance(text: str) -> float:
    """An argparse type: a relative tolerance, 0 <= rel < 1 (0: equal values only)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"a number with 0 <= rel < 1, got {text!r}")
    return value


def _parameter(text: str) -> tuple[str, object]:
    """An argparse type: NAME=VALUE, VALUE a Python literal (1, 0.5, [1, 2], True, {"epochs": 1},
    a string in quotes); anything else is refused, never taken as a string (``false`` would be a
    true value)."""
    import ast

    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"NAME=VALUE with NAME a parameter of the notebook, got {text!r}")
    try:
        return name, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        raise argparse.ArgumentTypeError(f"{value!r} is not a Python literal (True, 1, [4, 8], {{\"epochs\": 1}}; "
                                         f"a string in quotes: {name}='text')") from None


def _github_repository(text: str) -> str:
    """An argparse type: OWNER/NAME of a GitHub repository."""
    from .book.build_info import is_github_repository

    if not is_github_repository(text):
        raise argparse.ArgumentTypeError(f"OWNER/NAME of a GitHub repository, e.g. octo/psnn, got {text!r}")
    return text


def _book(args: argparse.Namespace) -> int:
    from .paths import project_root
    from .book.runner import NotebookFailed, run_notebooks

    try:
        root = project_root()
        outcomes = run_notebooks(root, args.profile, only=args.only, force=args.force,  # the kernels run in notebooks/
                                 out_dir=args.out_dir and args.out_dir.resolve(),
                                 results_dir=args.results_dir and args.results_dir.resolve(),
                                 cell_timeout=args.cell_timeout, jobs=args.jobs,
                                 parameters=dict(args.set or []), stream=args.stream)
    except (NotebookFailed, FileNotFoundError, ValueError) as exc:
        print(f"psnn book: {exc}", file=sys.stderr)
        return 1
    for o in outcomes:
        where = o.output.relative_to(root) if o.output.is_relative_to(root) else o.output
        print(f"{o.status:9s} {o.name} -> {where}" + (f" ({o.seconds:.0f} s)" if o.status == "executed" else ""))
    return 0


def _site(args: argparse.Namespace) -> int:
    from .paths import project_root
    from .book.site import SiteFailed, build_site

    try:
        root = project_root()
        out = build_site(root, args.profile, args.repository)
    except (SiteFailed, FileNotFoundError) as exc:
        print(f"psnn site: {exc}", file=sys.stderr)
        return 1
    print(f"built the {args.profile} book: {out.relative_to(root) / 'index.html'}")
    return 0


def _publish(args: argparse.Namespace) -> int:
    from . import paths
    from .book.publish import PublishFailed, make_archive, open_offline
    from .book.site import html_dir

    try:
        root = paths.project_root()
        archive = make_archive(root, html_dir(root, args.profile), paths.results_dir(args.profile),
                               (args.out_dir or root / "_build").resolve())
        print(f"psnn publish: {archive}")
        if args.check:
            problems = open_offline(archive)
            for line in problems:
                print(f"psnn publish: {line}", file=sys.stderr)
            if problems:
                return 1
            print("psnn publish: the pages open offline in headless Chromium and show what they are built from")
    except (PublishFailed, FileNotFoundError, ValueError) as exc:
        print(f"psnn publish: {exc}", file=sys.stderr)
        return 1
    return 0


def _stale(args: argparse.Namespace) -> int:
    from . import paths
    from .book.claims import load_records, stale_by_notebook

    try:
        root = paths.project_root()
        folder = paths.results_dir(args.profile)
        records = load_records(folder)
    except (FileNotFoundError, ValueError) as exc:  # no checkout, no folder, a file that is not a record
        print(f"psnn stale: {exc}", file=sys.stderr)
        return 2
    if not records:
        print(f"psnn stale: no records in {folder}", file=sys.stderr)
        return 2
    stale = {name: why for name, why in stale_by_notebook(records, root).items() if why}
    for name, why in stale.items():
        print(f"{name}: {'; '.join(why)}")
    print(f"psnn stale: {len(stale)} stale record(s) in {folder.relative_to(root) if folder.is_relative_to(root) else folder}"
          + (" (rerun their notebooks: psnn book --only NAME)" if stale else ""),
          file=sys.stderr if stale else sys.stdout)
    return 1 if stale else 0


def _readme(args: argparse.Namespace) -> int:
    from . import paths
    from .book.readme import ReadmeError, write_claims_line

    try:
        changed = write_claims_line(paths.project_root(), check=args.check)
    except (ReadmeError, FileNotFoundError, ValueError) as exc:
        print(f"psnn readme: {exc}", file=sys.stderr)
        return 2
    if changed and args.check:
        print("psnn readme: the README's claims line differs from the records: run `psnn readme`", file=sys.stderr)
        return 1
    print("psnn readme: " + ("the claims line is rewritten from the records" if changed else
                             "the claims line agrees with the records"))
    return 0


def _compare(args: argparse.Namespace) -> int:
    from .book.compare import FIELDS, RecordError, claim_differences

    try:
        fields = ("status", "paper") if args.statuses else FIELDS
        lines = claim_differences(args.reference, args.rerun, args.rel, fields)
        moved = [line for line in claim_differences(args.reference, args.rerun, args.rel) if line not in lines] \
            if args.statuses else []
        report = lines + [f"note, a value moved: {line}" for line in moved]
        total = f"psnn compare: {len(lines)} difference(s) between {args.reference} and {args.rerun}"
        code = 1 if lines else 0
    except RecordError as exc:
        report, total, code = [], f"psnn compare: {exc}", 2
    for line in report:
        print(line)
    print(total, file=sys.stderr if code else sys.stdout)
    if args.summary is not None:  # a Markdown section, e.g. of a GitHub job's summary
        try:
            with open(args.summary, "a") as out:
                out.write(f"### Claims: {args.rerun} against {args.reference}\n\n```\n"
                          + "".join(f"{line}\n" for line in report + [total]) + "```\n\n")
        except OSError as exc:
            print(f"psnn compare: cannot append to the summary {str(args.summary)!r}: {exc}", file=sys.stderr)
            return 2
    return code


def _fit(args: argparse.Namespace) -> int:
    from . import paths
    from .activations import resolve_activation
    from .neurons.ps import PSNeuron
    from .ps.cache import fit_ps_cached, save_params
    from .ps.grid import site_step

    l, r = args.interval
    if args.n_check < 1:
        print(f"psnn fit: --n-check must be >= 1, got {args.n_check}", file=sys.stderr)
        return 2
    try:
        params = fit_ps_cached(args.activation, l, r, args.dy, args.step or site_step(l, r),
                               cache_dir=args.cache_dir, first_weight=args.first_weight,
                               strict=not args.non_strict)
    except ValueError as exc:
        print(f"psnn fit: {exc}", file=sys.stderr)
        return 2
    f = resolve_activation(args.activation)[1]
    x = torch.rand(args.n_check, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x = x * (r - l) + l
    err = (PSNeuron(params)(x) - f(x)).abs()
    print(f"activation {params.activation} on [{l:g}, {r:g}], dy = {args.dy:g}, "
          f"grid {params.grid.numel()} points (step {params.delta:.3g})")
    print(f"K = {params.K}   s = {params.s}   b = {params.b:.6g}   d = 2^{params.s + params.K - 1 + (params.first_weight == 'code')} .. 2^{params.s + (params.first_weight == 'code')}")
    print(f"max |PS(x) - f(x)| on {args.n_check} random x in [l, r]: {float(err.max()):.6g} "
          f"(a-priori bound {params.error_bound:.6g} if {params.bound_condition}); "
          f"MSE {float((err ** 2).mean()):.3g}")
    if float(err.max()) > args.dy:
        quantum = float(params.d[-1])
        print(f"the error exceeds dy: between grid points f changes by up to {params.error_bound - quantum:.3g} "
              f"(snapping to the grid), besides the smallest spike weight {quantum:.3g}; a smaller --step "
              "reduces the first")
    if args.out:
        print(f"saved {save_params(params, args.out)}")
    else:
        print(f"cached in {Path(args.cache_dir) if args.cache_dir else paths.cache_dir()}")
    return 0


def _fetch(args: argparse.Namespace) -> int:
    from .models import fetch

    if args.profile != "paper":
        print(fetch.nothing_to_fetch(args.profile))
        return 0
    return fetch.run(download=not args.list)


def main(argv: Optional[Sequence[str]] = None) -> int:
    from .activations import known_activations
    from .book.compare import REL
    from .book.profiles import PROFILES
    from .book.runner import CELL_TIMEOUT

    parser = argparse.ArgumentParser(prog="psnn", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    book = sub.add_parser("book", help="execute the notebooks at a profile")
    book.add_argument("--profile", default="default", choices=PROFILES)
    book.add_argument("--only", action="append", metavar="NOTEBOOK",
                      help="run only this notebook (name without .md); repeatable")
    book.add_argument("--force", action="store_true", help="ignore the execution cache")
    book.add_argument("--out-dir", type=Path, default=None, help="where executed notebooks go")
    book.add_argument("--results-dir", type=Path, default=None, help="where results JSON goes")
    book.add_argument("--cell-timeout", type=_positive_int, default=None,
                      help="seconds one cell may run (default: " + ", ".join(
                          f"{p} {'none' if t is None else t}" for p, t in CELL_TIMEOUT.items()) + ")")
    book.add_argument("--set", action="append", type=_parameter, metavar="NAME=VALUE",
                      help="a value (a Python literal) for a name in the notebooks' parameters cell, e.g. "
                           "allow_cpu=True or 'overrides={\"epochs\": 1}'; repeatable; given to the notebooks that "
                           "have the name (a line says which), an error when none has it")
    book.add_argument("--stream", action=argparse.BooleanOptionalAction, default=None,
                      help="stream the kernels' output and progress bars to the terminal (default: at the paper "
                           "profile only; the executed notebooks then hold the bars too, so the published "
                           "default book is built without)")
    book.add_argument("--jobs", type=_positive_int, default=None,
                      help="notebooks at a time, each kernel with an equal share of the cores as its threads "
                           "(default: 2 where there are at least two cores)")
    book.set_defaults(func=_book)
    site = sub.add_parser("site", help="build the HTML book from the notebooks executed at a profile")
    site.add_argument("--profile", default="default", choices=PROFILES)
    site.add_argument("--repository", type=_github_repository, default=None, metavar="OWNER/NAME",
                      help="the book's GitHub repository, for its link and launch buttons (default: the GitHub "
                           "`origin` remote; with none the book has neither)")
    site.set_defaults(func=_site)
    publish = sub.add_parser("publish", help="pack the built HTML book of a profile as one zip archive that reads "
                             "offline, named after its commit")
    publish.add_argument("--profile", default="default", choices=PROFILES)
    publish.add_argument("--out-dir", type=Path, default=None, help="where the archive goes (default: _build)")
    publish.add_argument("--check", action="store_true", help="then open its pages offline in headless Chromium "
                         "(exit 1 unless each shows what it is built from and typesets its equations)")
    publish.set_defaults(func=_publish)
    stale = sub.add_parser("stale", help="name every record whose notebook or library sources changed since it was "
                           "written (exit 1 when one did)")
    stale.add_argument("--profile", default="default", choices=PROFILES)
    stale.set_defaults(func=_stale)
    readme = sub.add_parser("readme", help="write the README's claims line from the default records")
    readme.add_argument("--check", action="store_true", help="only compare (exit 1 when the line differs)")
    readme.set_defaults(func=_readme)
    compare = sub.add_parser("compare", help="compare the claims of two folders of records (exit 1 on a "
                             "difference, 2 on a folder or file that is not records)")
    compare.add_argument("reference", type=Path, help="folder of records to compare with (e.g. results)")
    compare.add_argument("rerun", type=Path, help="folder of the rerun's records")
    compare.add_argument("--rel", type=_relative_tolerance, default=REL,
                         help=f"relative tolerance of a numeric value (default {REL:g})")
    compare.add_argument("--statuses", action="store_true",
                         help="compare each claim's status and paper value only; a value that moved is a note")
    compare.add_argument("--summary", default=None, metavar="FILE",
                         help="also append the report to FILE as Markdown (e.g. $GITHUB_STEP_SUMMARY)")
    compare.set_defaults(func=_compare)
    fit = sub.add_parser("fit", help="fit a PS neuron and report its error",
                         epilog="activations: " + ", ".join(known_activations()))
    fit.add_argument("activation")
    fit.add_argument("--interval", nargs=2, type=float, metavar=("L", "R"), default=(-10.0, 10.0))
    fit.add_argument("--dy", type=float, default=0.01)
    fit.add_argument("--step", type=float, default=None,
                     help="grid step (default: 1e-3, or 1/1000 of an interval narrower than 1)")
    fit.add_argument("--first-weight", choices=("paper", "code"), default="paper")
    fit.add_argument("--non-strict", action="store_true", help="spike when y >= d(t)")
    fit.add_argument("--n-check", type=int, default=100_000)
    fit.add_argument("--cache-dir", type=Path, default=None)
    fit.add_argument("--out", type=Path, default=None, help="also save the parameters here")
    fit.set_defaults(func=_fit)
    fetch = sub.add_parser("fetch", help="list what a profile downloads, with sizes and places; fetch and verify "
                           "it (exit 1 while something is missing)")
    fetch.add_argument("--profile", default="paper", choices=PROFILES,
                       help="the profile whose data and weights to fetch (default: paper, the only one that "
                            "downloads anything)")
    fetch.add_argument("--list", action="store_true", help="only list and check, download nothing")
    fetch.set_defaults(func=_fetch)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
