"""Stand-ins for what the ``paper`` profile downloads, in the formats its loaders read, so that
every notebook's paper-profile path runs here offline (tests/test_paper_standins.py) and on a
GPU in minutes (benchmarks/gpu_smoke.py). Nothing here is a result: random images, random
labels, random weights.

- CIFAR-10/100 in torchvision's own layout (``cifar-10-batches-py``, ``cifar-100-python``).
  torchvision verifies those folders by the md5 of the real files, which no stand-in can have:
  :func:`kernel_startup` writes an IPython startup file that gives torchvision the stand-ins'
  md5 in the notebooks' kernels (torchvision's check, not the library's code, is what changes).
- An ImageNet validation folder of two classes (the notebook is told their ImageNet indices).
- torchvision's ResNet-34 ImageNet weights file, randomly initialised, where torchvision caches it.
- Sentences and tiny Hugging Face classifiers: :mod:`standins_text`.
"""
from __future__ import annotations

import hashlib
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

import standins_text

CIFAR = {  # folder, train files, test file, meta file and key, label key, classes
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], "test_batch",
                ("batches.meta", "label_names"), "labels", 10),
    "cifar100": ("cifar-100-python", ["train"], "test", ("meta", "fine_label_names"), "fine_labels", 100),
}


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _pickle(path: Path, obj: Any) -> str:
    path.write_bytes(pickle.dumps(obj))
    return _md5(path)


def cifar(root: Path, train: int = 64, test: int = 40, seed: int = 0) -> dict[str, dict[str, str]]:
    """CIFAR-10 and CIFAR-100 stand-ins in torchvision's layout under ``root`` (``train`` images
    spread over the training files, ``test`` test images); the md5 of every file, by file name."""
    gen = np.random.default_rng(seed)
    md5s = {}
    for key, (folder, train_files, test_file, (meta, names), labels, classes) in CIFAR.items():
        where = root / folder
        where.mkdir(parents=True, exist_ok=True)
        sums = {}
        per_file = np.array_split(np.arange(train), len(train_files))
        for name, part in [*zip(train_files, per_file), (test_file, np.arange(test))]:
            sums[name] = _pickle(where / name, {"data": gen.integers(0, 256, (len(part), 3072), dtype=np.uint8),
                                                labels: gen.integers(0, classes, len(part)).tolist()})
        sums[meta] = _pickle(where / meta, {names: [f"class {i}" for i in range(classes)]})
        md5s[key] = sums
    return md5s


STARTUP = '''# written by tests/paper_standins.py: torchvision checks CIFAR by the md5 of the real files
import torchvision.datasets as _d

for _cls, _sums in ((_d.CIFAR10, {cifar10!r}), (_d.CIFAR100, {cifar100!r})):
    _cls.train_list = [[name, _sums[name]] for name, _ in _cls.train_list]
    _cls.test_list = [[name, _sums[name]] for name, _ in _cls.test_list]
    _cls.meta = {{**_cls.meta, "md5": _sums[_cls.meta["filename"]]}}
'''


def kernel_startup(ipython_dir: Path, md5s: dict[str, dict[str, str]]) -> Path:
    """An IPython folder whose startup file gives torchvision the stand-ins' md5 (set
    ``IPYTHONDIR`` to it for the kernels)."""
    startup = ipython_dir / "profile_default" / "startup"
    startup.mkdir(parents=True, exist_ok=True)
    (startup / "00-standin-cifar.py").write_text(STARTUP.format(**md5s))
    return ipython_dir


def imagenet(root: Path, classes: tuple[str, ...] = ("n01440764", "n01443537"), per_class: int = 2,
             size: int = 80, seed: int = 0) -> Path:
    """A validation folder in ImageFolder layout: ``per_class`` random JPEGs per class folder."""
    from PIL import Image

    gen = np.random.default_rng(seed)
    for name in classes:
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = gen.integers(0, 256, (size, size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"ILSVRC2012_val_{name}_{i}.JPEG")
    return root


def torchvision_weights(torch_home: Path, arch: str = "resnet34") -> Path:
    """``arch``'s ImageNet weights file, randomly initialised (seeded), where torchvision looks
    for it (``$TORCH_HOME/hub/checkpoints``): torchvision loads a cached file without a download."""
    import torchvision

    weights = torchvision.models.get_model_weights(arch).DEFAULT
    path = torch_home / "hub" / "checkpoints" / Path(weights.url).name
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    torch.save(torchvision.models.get_model(arch).state_dict(), path)
    return path


def environment(tmp: Path) -> dict[str, str]:
    """The stand-ins made under ``tmp`` and the variables that point the kernels at them (and at
    a cache of their own, offline)."""
    md5s = cifar(tmp / "data")
    torchvision_weights(tmp / "torch")
    return {name: str(value) for name, value in {
        "PSNN_DATA": tmp / "data", "TORCH_HOME": tmp / "torch", "PSNN_CACHE_DIR": tmp / "cache",
        "IPYTHONDIR": kernel_startup(tmp / "ipython", md5s), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}.items()}


TINY_RECIPE = {"epochs": 1, "penalty_epochs": 1, "clip_epochs": 1, "train_images": 256, "images": 32, "eval_images": 256,
               "width": 0.125}


def parameters(tmp: Path) -> dict[str, dict]:
    """Per notebook: the parameters that point it at the stand-ins and cut its work."""
    sentences = standins_text.sentence_sets(tmp / "sentences")
    models = {key: str(standins_text.tiny_classifier(tmp / "hub" / key, kind, labels))
              for key, kind, labels in [("sst2", "roberta", 2), ("sst5", "roberta", 5), ("cola", "bert", 2)]}
    paper2 = {"allow_cpu": True, "paper_recipe": TINY_RECIPE}
    return {
        "fig2_sigmoid_trace": {"overrides": {"step": 1e-2}},
        "fig4_fit_iterations": {"overrides": {"step": 1e-2, "n_eval": 2001}},
        "fig5_table5_mse": {"overrides": {"step": 1e-2}},
        "fit_error_vs_dy": {"overrides": {"dys": [0.1, 0.01], "step": 1e-2, "n_eval": 10_000,
                                          "activations": ["relu", "gelu"]}},
        "table1_cifar": {"allow_cpu": True, "overrides": {"epochs": 1, "rate_steps": [4], "n_calibration": 32}},
        "table2_imagenet": {"allow_cpu": True, "imagenet_dir": str(imagenet(tmp / "imagenet")),
                            "imagenet_classes": [0, 1], "overrides": {"networks": ["ResNet-34"], "images": 4}},
        "table3_transformers": {"allow_cpu": True, "sentences_dir": str(sentences), "sst2_model": models["sst2"],
                                "sst5_model": models["sst5"], "cola_model": models["cola"],
                                "overrides": {"n_calibration": 8, "n_test": 16, "n_peer": 4, "n_sites": 4,
                                              "sweep": [0.25]}},
        "table4_spikes": {"overrides": {"n_images": 8, "architectures": [("cifar10", "ResNet20")],
                                        "checkpoints": ["resnet20_mnist"], "pretrained_networks": False}},
        "fig6_activations": {"allow_cpu": True, "overrides": {"activations": ["gelu"], "epochs": 1,
                                                              "train_samples": 64}},
        "conversion_loss_vs_k": {"overrides": {"n_test": 32, "ps_steps": [8], "fs_steps": [8], "rate_steps": [4],
                                               "peer_steps": [4]}},
        "p2_fig1_table4_thresholds": {**paper2, "overrides": {"n_test": 64}},
        "p2_table1_fashion_mnist": {**paper2, "overrides": {"n_test": 64, "n_baseline": 64,
                                                            "T_max": {"AugMapping": 8, "stReLU": 8, "proposed": 8}}},
        "p2_table5_fig3_calibration": {**paper2, "overrides": {"n_test": 64, "T_max": 8}},
        "p2_beyond_methods": {**paper2, "overrides": {"n_test": 64, "T_max": 8, "ps_steps": [8]}},
        "p2_tables2_3_deep": {**paper2, "overrides": {"n_test": 32}},
    }
