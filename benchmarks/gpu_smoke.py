"""The paper profile of every notebook on one CUDA GPU, on stand-ins, in minutes.

The same run as ``tests/test_paper_standins.py`` (stand-in CIFAR, ImageNet folder, torchvision
weights, sentences and tiny Hugging Face models; one epoch, tiny recipes, by the notebooks' own
parameters), on a machine with a GPU: the notebooks pick it (``run_device``), so every training,
conversion, calibration and evaluation of the paper profile runs on CUDA. It checks that each
notebook runs and records its claims there, and that each record names the GPU; it prints the
seconds per notebook and writes them, with the GPU's name, to ``$OUT/gpu_smoke.json`` (or
``--out``). Nothing here is a result of the papers: random data and weights.

    python benchmarks/gpu_smoke.py [--out DIR] [--only NOTEBOOK ...]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import paper_standins  # noqa: E402 (the stand-ins live with the tests)
from psnn_lib.book.runner import NotebookFailed, run_notebooks  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ROOT / "_build" / "gpu-smoke")))
    parser.add_argument("--only", action="append", metavar="NOTEBOOK")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("gpu_smoke: no CUDA GPU visible to PyTorch; this script checks the paper profile on one", file=sys.stderr)
        return 2
    gpu = torch.cuda.get_device_name(0)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        os.environ.update(paper_standins.environment(tmp))
        parameters = paper_standins.parameters(tmp)
        if args.only:
            unknown = set(args.only) - set(parameters)
            if unknown:
                print(f"gpu_smoke: no notebook named {', '.join(sorted(unknown))}", file=sys.stderr)
                return 2
            parameters = {name: parameters[name] for name in args.only}
        start = time.perf_counter()
        try:
            outcomes = run_notebooks(ROOT, "paper", only=args.only, out_dir=args.out / "executed",
                                     results_dir=args.out / "records", force=True, jobs=1,
                                     notebook_parameters=parameters, stream=True)
        except NotebookFailed as exc:
            print(f"gpu_smoke: FAILED on {gpu}:\n{exc}", file=sys.stderr)
            return 1
    seconds = {o.name: o.seconds for o in outcomes}
    problems = []
    for o in outcomes:
        record = json.loads((args.out / "records" / f"{o.name}.json").read_text())
        if not record["results"]:
            problems.append(f"{o.name}: no claim recorded")
        if record["versions"].get("gpu") != gpu:
            problems.append(f"{o.name}: the record does not name the GPU")
    summary = {"gpu": gpu, "torch": torch.__version__, "seconds": seconds,
               "total seconds": round(time.perf_counter() - start, 1), "problems": problems}
    (args.out / "gpu_smoke.json").write_text(json.dumps(summary, indent=1))
    for name, s in seconds.items():
        print(f"{name:32s} {s:7.1f} s")
    print(f"{len(outcomes)} notebooks at the paper profile on {gpu}: {summary['total seconds']:.0f} s; "
          + ("; ".join(problems) if problems else "every record holds its claims"))
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
