"""Committed artefacts match their checksums; offline data loads or says how to get it."""
import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch

from psnn_lib.models import checkpoints, datasets, pretrained
from psnn_lib.models.training import accuracy

DATA = Path(__file__).resolve().parents[1] / "data"


def test_sha256sums_match():
    lines = (DATA / "SHA256SUMS").read_text().split("\n")
    entries = [line.split() for line in lines if line.strip()]
    assert len(entries) >= 4
    for digest, name in entries:
        assert hashlib.sha256((DATA / name).read_bytes()).hexdigest() == digest, name
        assert (DATA / name).stat().st_size <= 5_000_000


@pytest.mark.parametrize("manifest", ["checkpoints.json", "paper2_networks.json"])
def test_every_manifest_entry_is_committed_with_its_checksum(manifest):
    """A checkpoint a notebook loads is in SHA256SUMS (which a regeneration from the files on
    disk would not notice losing) with the digest its manifest records."""
    summed = {name: digest for digest, name in (line.split() for line in
                                                (DATA / "SHA256SUMS").read_text().splitlines() if line.strip())}
    for key, entry in json.loads((DATA / manifest).read_text()).items():
        assert summed.get(entry["file"]) == entry["sha256"], f"{manifest}: {key} ({entry['file']})"


def test_checkpoint_loads_and_refuses_a_corrupt_copy(tmp_path, monkeypatch):
    model, entry = checkpoints.load_checkpoint("resnet20_mnist")
    assert entry["test_accuracy"] > 99 and "--device" in entry["command"]
    x, y = datasets.mnist("test")
    with torch.no_grad():
        assert accuracy(model(x[:500]), y[:500]) > 98
    shutil.copytree(DATA, tmp_path / "data")
    (tmp_path / "_toc.yml").write_text("root: x\n")
    with open(tmp_path / "data" / entry["file"], "ab") as f:
        f.write(b"\0")
    monkeypatch.setenv("PSNN_ROOT", str(tmp_path))
    with pytest.raises(checkpoints.ChecksumMismatch, match="python -m psnn_lib.models.checkpoints resnet20_mnist"):
        checkpoints.load_checkpoint("resnet20_mnist")


def test_missing_dataset_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PSNN_FASHION_MNIST", str(tmp_path))
    with pytest.raises(datasets.DatasetMissing, match="apt-get install dataset-fashion-mnist"):
        datasets.fashion_mnist("test")
    with pytest.raises(datasets.DatasetMissing, match="torchvision downloads it"):
        datasets.cifar("cifar10", root=str(tmp_path), download=False)
    monkeypatch.delenv("PSNN_IMAGENET", raising=False)
    with pytest.raises(datasets.DatasetMissing, match="PSNN_IMAGENET"):
        datasets.imagenet_folder(None)


def test_real_offline_data():
    x, y = datasets.fashion_mnist("test")
    assert x.shape == (10000, 1, 32, 32) and 0 <= float(x.min()) and float(x.max()) <= 1
    assert torch.bincount(y).tolist() == [1000] * 10
    x, y = datasets.mnist("train")
    assert x.shape == (60000, 1, 32, 32)
    images, labels = datasets.foolbox_images("cifar10")
    model, preprocess = pretrained.cifar10_cnn()
    with torch.no_grad():
        assert accuracy(model(preprocess(images)), labels) == 100.0  # data.md: 20/20


def test_one_dataset_vocabulary():
    assert set(datasets.DATASETS) == {"mnist", "fashion_mnist", "cifar10", "cifar100", "imagenet"}
    assert datasets.dataset("fashion_mnist").title == "Fashion-MNIST"
    with pytest.raises(ValueError, match="unknown dataset 'fashionMNIST'; known: mnist, fashion_mnist"):
        datasets.load("fashionMNIST", "test")
    with pytest.raises(ValueError, match="ImageNet does not load as tensors"):
        datasets.load("imagenet", "test")
    images, labels = datasets.foolbox_images("fashion_mnist")  # the key, not foolbox's own spelling
    assert len(images) == len(labels) == 20


def test_unknown_split_is_an_error():
    with pytest.raises(ValueError, match="unknown split 'nope'; choose one of train, test"):
        datasets.load("mnist", "nope")


def test_subset_is_a_seeded_sample_or_the_whole_set():
    x, y = torch.arange(100).float()[:, None], torch.arange(100)
    a, b = datasets.subset(x, y, 10), datasets.subset(x, y, 10)
    assert torch.equal(a[0], b[0]) and torch.equal(a[0][:, 0].long(), a[1])  # images keep their labels
    assert a[1].tolist() == sorted(a[1].tolist()) and a[1].tolist() != list(range(10))  # not the first ten
    assert not torch.equal(datasets.subset(x, y, 10, seed=1)[1], a[1])
    assert datasets.subset(x, y, 100)[0] is x and datasets.subset(x, y, 500)[1] is y
    for n, error in [(0, ValueError), (-3, ValueError), (True, TypeError), (2.5, TypeError), (10.0, TypeError)]:
        with pytest.raises(error):
            datasets.subset(x, y, n)
    with pytest.raises(ValueError, match="100 items but 99 labels"):
        datasets.subset(x, y[:99], 10)


def _image_folder(root, classes, flat=False):
    from PIL import Image

    for i, name in enumerate(classes):
        where = root if flat else root / name
        where.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8), (i, 0, 0)).save(where / f"{name}_0.JPEG")
    return root


def test_an_imagenet_folder_must_hold_the_1000_classes_or_say_which(tmp_path):
    """A class subset would be labelled 0..n-1 by ImageFolder: a wrong top-1 without an error."""
    two = _image_folder(tmp_path / "two", ["n01440764", "n01443537"])
    with pytest.raises(ValueError, match="2 class folders, not ImageNet's 1000: its labels would be 0..1"):
        datasets.imagenet_folder(str(two))
    data = datasets.imagenet_folder(str(two), classes=[0, 1])
    assert [data[i][1] for i in range(2)] == [0, 1]
    data = datasets.imagenet_folder(str(two), classes=[7, 391])
    assert [data[i][1] for i in range(2)] == [7, 391]
    for bad, message in [([1], "1 class indices for 2 class folders"), ([3, 3], "distinct"),
                         ([0, 1000], "distinct and in 0..999"), ([1.7, 2.2], "whole numbers"),
                         ([True, False], "whole numbers")]:
        with pytest.raises(ValueError, match=message):
            datasets.imagenet_folder(str(two), classes=bad)
    flat = _image_folder(tmp_path / "flat", ["ILSVRC2012_val_00000001"], flat=True)
    with pytest.raises(datasets.DatasetMissing, match="has no class folders.*one folder per synset"):
        datasets.imagenet_folder(str(flat))
    full = _image_folder(tmp_path / "full", [f"n{i:08d}" for i in range(1000)])
    assert len(datasets.imagenet_folder(str(full)).classes) == 1000
