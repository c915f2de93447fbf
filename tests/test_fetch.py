"""``psnn fetch``: the paper profile's registry, its listing and checks, and downloads that fail
without a traceback (offline: every downloader here is replaced or never reached)."""
import hashlib
import io
import re
import urllib.error
from pathlib import Path

import pytest
import torchvision

from psnn_lib.cli import main
from psnn_lib.models import fetch
from psnn_lib.models.pretrained import PAPER_IMAGENET
from psnn_lib.models.sentences import PAPER_TASKS

ROOT = Path(__file__).resolve().parents[1]
CIFAR10 = next(i for i in fetch.PAPER if isinstance(i, fetch.TorchvisionDataset) and i.key == "cifar10")


@pytest.fixture
def empty_caches(tmp_path, monkeypatch):
    """Every place an item goes, empty, under tmp_path; the hub checks never reach a network."""
    for var, sub in [("PSNN_DATA", "data"), ("TORCH_HOME", "torch"), ("HF_HOME", "hf"),
                     ("PSNN_FASHION_MNIST", "fashion")]:
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("PSNN_IMAGENET", raising=False)
    monkeypatch.delenv("HF_DATASETS_CACHE", raising=False)
    monkeypatch.setattr(fetch, "hub_cache", lambda: tmp_path / "hf" / "hub")
    return tmp_path


def _paper_notebooks() -> set[str]:
    return {p.stem for p in (ROOT / "notebooks").glob("*.md") if re.search(r'"paper"\s*:', p.read_text())}


def test_every_paper_notebook_is_covered_once():
    notebooks = _paper_notebooks()
    assert len(notebooks) >= 10  # the regex finds the profile tables
    covered = fetch.notebooks_covered()
    assert covered | set(fetch.NOTHING_TO_FETCH) == notebooks
    assert not covered & set(fetch.NOTHING_TO_FETCH)


def test_the_registry_matches_the_library_and_the_notebook_parameters():
    assert {i.network for i in fetch.PAPER if isinstance(i, fetch.TorchvisionWeights)} == set(PAPER_IMAGENET)
    assert {i.key for i in fetch.PAPER if isinstance(i, fetch.HubDataset)} == set(PAPER_TASKS)
    assert {i.key for i in fetch.PAPER if isinstance(i, fetch.TorchvisionDataset)} == {"cifar10", "cifar100"}
    params = dict(re.findall(r'^(\w+_model) = "([^"]*)"', (ROOT / "notebooks" / "table3_transformers.md").read_text(),
                             re.M))
    named = {v for v in params.values() if v}
    assert named and named == {i.repo_id for i in fetch.PAPER if isinstance(i, fetch.HubModel)}
    assert all(i.download_bytes > 0 and i.disk_bytes >= i.download_bytes for i in fetch.PAPER)


def test_the_listing_names_every_item_with_size_and_place_and_exits_1(empty_caches, capsys):
    assert main(["fetch", "--profile", "paper", "--list"]) == 1
    out, err = capsys.readouterr()
    for item in fetch.PAPER:
        assert item.title in out
    assert out.count("size: about ") == out.count("goes to: ") == len(fetch.PAPER)
    assert str(empty_caches / "data" / "cifar-10-batches-py") in out
    assert str(empty_caches / "torch" / "hub" / "checkpoints" / "vgg16-397923af.pth") in out
    assert "PSNN_IMAGENET is not set" in out and "hf download textattack/roberta-base-SST-2" in out
    assert "does not load offline" in out  # the datasets checked in a subprocess, offline
    missing = err.splitlines()[0]
    for name in ("CIFAR-10 (missing)", "CIFAR-100", "VGG16 weights", "ImageNet validation",
                 "textattack/bert-base-uncased-CoLA", "glue/sst2", "SetFit/sst5", "Fashion-MNIST"):
        assert name in missing
    assert "downloads about" in err and "Traceback" not in out + err
    for name in fetch.NOTHING_TO_FETCH:
        assert name in out


@pytest.mark.parametrize("profile", ["smoke", "default"])
def test_other_profiles_need_nothing(profile, capsys):
    assert main(["fetch", "--profile", profile]) == 0
    assert f"the {profile} profile downloads nothing" in capsys.readouterr().out


def test_an_unknown_profile_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["fetch", "--profile", "huge"])
    assert stop.value.code == 2 and "invalid choice: 'huge'" in capsys.readouterr().err


def _fake_cifar(root: Path, monkeypatch, matching: bool) -> None:
    """CIFAR-10 in torchvision's layout with made-up bytes; ``matching``: torchvision's md5 lists
    are set to these files' (its check then passes, as it does for the real files)."""
    cls = torchvision.datasets.CIFAR10
    folder = root / cls.base_folder
    folder.mkdir(parents=True, exist_ok=True)
    names = [n for n, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]
    md5 = {}
    for i, name in enumerate(names):
        (folder / name).write_bytes(bytes([i]) * 100)
        md5[name] = hashlib.md5((folder / name).read_bytes()).hexdigest()
    if matching:
        monkeypatch.setattr(cls, "train_list", [[n, md5[n]] for n, _ in cls.train_list])
        monkeypatch.setattr(cls, "test_list", [[n, md5[n]] for n, _ in cls.test_list])
        monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": md5[cls.meta["filename"]]})


def test_cifar_is_present_only_when_torchvision_checks_it(empty_caches, monkeypatch):
    assert CIFAR10.status().state == fetch.MISSING
    _fake_cifar(empty_caches / "data", monkeypatch, matching=False)
    bad = CIFAR10.status()
    assert bad.state == fetch.INVALID and "data_batch_1" in bad.detail and "md5" in bad.detail
    _fake_cifar(empty_caches / "data", monkeypatch, matching=True)
    assert CIFAR10.status().present
    out, err = io.StringIO(), io.StringIO()
    assert fetch.run(download=False, items=[CIFAR10], out=out, err=err) == 0
    assert "present  CIFAR-10" in out.getvalue() and "all 1 items are present" in out.getvalue()


def test_a_fetched_item_is_checked_again(empty_caches, monkeypatch):
    monkeypatch.setattr(fetch, "unreachable", lambda url: None)
    monkeypatch.setattr(fetch, "_download_torchvision_dataset",
                        lambda cls, root: _fake_cifar(root, monkeypatch, matching=True))
    out, err = io.StringIO(), io.StringIO()
    assert fetch.run(download=True, items=[CIFAR10], out=out, err=err) == 0
    assert "fetching CIFAR-10" in out.getvalue() and "present  CIFAR-10" in out.getvalue()


def test_a_download_that_fails_its_check_is_said_to(empty_caches, monkeypatch):
    monkeypatch.setattr(fetch, "unreachable", lambda url: None)
    monkeypatch.setattr(fetch, "_download_torchvision_dataset",
                        lambda cls, root: _fake_cifar(root, monkeypatch, matching=False))
    err = io.StringIO()
    assert fetch.run(download=True, items=[CIFAR10], out=io.StringIO(), err=err) == 1
    assert "CIFAR-10: downloaded, but its check fails: data_batch_1" in err.getvalue()


def _offline_downloads(monkeypatch, calls):
    def failing(kind, exc):
        def download(*args, **kwargs):
            calls.append(kind)
            raise exc
        return download
    monkeypatch.setattr(fetch, "_download_torchvision_dataset",
                        failing("cifar", urllib.error.URLError("[Errno -2] Name or service not known")))
    monkeypatch.setattr(fetch, "_download_file", failing("weights", urllib.error.URLError("timed out")))
    monkeypatch.setattr(fetch, "_download_hub_model", failing("model", OSError("Cannot reach the hub")))
    monkeypatch.setattr(fetch, "_download_hub_dataset", failing("dataset", ConnectionError("Couldn't reach 'glue'")))
    monkeypatch.setattr(fetch, "_offline_load", lambda path, config: {"error": "ConnectionError: offline"})


def test_downloads_failing_offline_give_one_line_each_and_no_traceback(empty_caches, monkeypatch, capsys):
    calls: list[str] = []
    _offline_downloads(monkeypatch, calls)
    monkeypatch.setattr(fetch, "unreachable", lambda url: None)  # as if the servers answered
    assert main(["fetch", "--profile", "paper"]) == 1
    out, err = capsys.readouterr()
    assert sorted(calls) == sorted(["cifar"] * 2 + ["weights"] * 3 + ["model"] * 2 + ["dataset"] * 3)
    failed = [line for line in err.splitlines() if "download failed" in line]
    assert len(failed) == len(calls)
    assert "psnn fetch: CIFAR-10: download failed (URLError: <urlopen error [Errno -2] Name or service not known>)" \
        in err
    assert "psnn fetch: textattack/roberta-base-SST-2: download failed (OSError: Cannot reach the hub); by hand: " \
           "hf download textattack/roberta-base-SST-2" in err
    assert "psnn fetch: glue/cola: download failed (ConnectionError: Couldn't reach 'glue')" in err
    assert "Traceback" not in out + err
    assert "ImageNet validation (missing)" in err  # the user's to supply: named, not downloaded


def test_unreachable_servers_are_named_and_nothing_is_downloaded(empty_caches, monkeypatch, capsys):
    calls: list[str] = []
    _offline_downloads(monkeypatch, calls)
    monkeypatch.setattr(fetch, "unreachable", lambda url: "URLError: [Errno -2] Name or service not known")
    assert main(["fetch", "--profile", "paper"]) == 1
    err = capsys.readouterr().err
    assert calls == []
    assert "psnn fetch: VGG16 weights: not fetched: cannot reach https://download.pytorch.org/" in err
    assert sum("cannot reach" in line for line in err.splitlines()) == 10


def test_unreachable_tells_an_answer_from_a_network_failure(monkeypatch):
    def refuse(request, timeout):
        raise urllib.error.URLError(OSError(111, "Connection refused"))
    monkeypatch.setattr(fetch.urllib.request, "urlopen", refuse)
    assert "Connection refused" in fetch.unreachable("https://example.org/")

    def forbid(request, timeout):
        raise urllib.error.HTTPError(request.full_url, 403, "Forbidden", {}, None)
    monkeypatch.setattr(fetch.urllib.request, "urlopen", forbid)
    assert fetch.unreachable("https://example.org/") is None  # the server answered


def test_torchvision_weights_are_checked_by_the_hash_in_their_name(empty_caches, monkeypatch):
    item = next(i for i in fetch.PAPER if isinstance(i, fetch.TorchvisionWeights))
    assert item.status().state == fetch.MISSING
    path = item._file()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"weights")
    assert item.status().state == fetch.INVALID  # b"weights" does not hash to the real prefix
    monkeypatch.setattr(fetch.TorchvisionWeights, "_hash_prefix",
                        lambda self: hashlib.sha256(b"weights").hexdigest()[:8])
    assert item.status().present


def _hub_snapshot(cache: Path, repo_id: str, files: dict[str, bytes]) -> Path:
    """A model in huggingface_hub's cache layout: blobs named by their hash, a snapshot of links."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    commit = "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "blobs").mkdir()
    for name, data in files.items():
        blob = hashlib.sha256(data).hexdigest() if name.endswith(".bin") else \
            hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()
        (repo / "blobs" / blob).write_bytes(data)
        (snapshot / name).symlink_to(Path("..") / ".." / "blobs" / blob)
    return repo


def test_a_hub_model_is_present_when_its_cached_files_match_their_hashes(empty_caches):
    item = next(i for i in fetch.PAPER if isinstance(i, fetch.HubModel))
    assert item.status().state == fetch.MISSING
    repo = _hub_snapshot(empty_caches / "hf" / "hub", item.repo_id, {"config.json": b"{}", "pytorch_model.bin": b"w"})
    status = item.status()
    assert status.present, status.detail
    blob = next(p for p in (repo / "blobs").iterdir() if len(p.name) == 64)
    blob.write_bytes(b"truncated")
    status = item.status()
    assert status.state == fetch.INVALID and "pytorch_model.bin" in status.detail


def test_a_hub_model_without_weights_is_missing(empty_caches):
    item = next(i for i in fetch.PAPER if isinstance(i, fetch.HubModel))
    _hub_snapshot(empty_caches / "hf" / "hub", item.repo_id, {"config.json": b"{}"})
    status = item.status()
    assert status.state == fetch.MISSING and "lacks weights" in status.detail


def test_the_offline_dataset_check_loads_what_the_cache_holds(empty_caches):
    folder = empty_caches / "local_set"
    folder.mkdir()
    (folder / "train.csv").write_text("text,label\na,0\nb,1\nc,1\n")
    assert fetch._offline_load(str(folder), None) == {"splits": {"train": 3}}
    assert "error" in fetch._offline_load("glue", "sst2")  # offline, nothing cached


def test_imagenet_needs_1000_synset_folders(empty_caches, monkeypatch):
    item = next(i for i in fetch.PAPER if isinstance(i, fetch.ImageNetValidation))
    assert not item.fetchable and item.status().detail == "PSNN_IMAGENET is not set"
    folder = empty_caches / "imagenet"
    monkeypatch.setenv("PSNN_IMAGENET", str(folder))
    assert item.status().state == fetch.MISSING
    folder.mkdir()
    (folder / "ILSVRC2012_val_00000001.JPEG").write_bytes(b"")
    assert "no class folders" in item.status().detail
    for i in range(2):
        (folder / f"n{i:08d}").mkdir()
        (folder / f"n{i:08d}" / "a.JPEG").write_bytes(b"")
    assert "2 class folders, not 1,000" in item.status().detail
    for i in range(2, 1000):
        (folder / f"n{i:08d}").mkdir()
        (folder / f"n{i:08d}" / "a.JPEG").write_bytes(b"")
    assert item.status().present
    (folder / "n00000999" / "a.JPEG").unlink()
    assert "1 class folders are empty" in item.status().detail
    (folder / "n00000999").rename(folder / "cat")
    (folder / "cat" / "a.JPEG").write_bytes(b"")
    assert "not named by synset id" in item.status().detail


def test_disk_by_notebook_sums_the_items_of_each():
    disk = fetch.disk_by_notebook()
    assert set(disk) == fetch.notebooks_covered()
    assert disk["table2_imagenet"] > 6e9  # the validation set alone is 6.7 GB
    assert fetch.size(170_498_071) == "170 MB" and fetch.size(6_744_924_160) == "6.7 GB"
