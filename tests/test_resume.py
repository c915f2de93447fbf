"""Long runs survive being killed: atomic saves, resumable trainings, caches keyed by their recipe."""
import json
from pathlib import Path

import pytest
import torch
from torch import nn

from psnn_lib import saved_files
from psnn_lib.models import training
from psnn_lib.models.checkpoints import manifest_entries, save_state
from psnn_lib.models.training import StaleTrainingCheckpoint, seed_everything, train
from psnn_lib.paper1 import conversion
from psnn_lib.paper2 import networks
from psnn_lib.saved_files import UnreadableFile, atomic_save, load_saved

SETTINGS = dict(epochs=3, batch_size=16, augment=True, flip=True, per_image=True, shift=2, progress=False)


class Interrupted(Exception):
    pass


def _net() -> nn.Module:
    seed_everything(0)  # a caller builds its model seeded, so that a resumed call starts alike
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.3),
                         nn.Flatten(), nn.Linear(4 * 8 * 8, 3))


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.rand(40, 1, 8, 8, generator=g), torch.randint(0, 3, (40,), generator=g)


def _stop_after(epochs: int):
    def hook(epoch: int, _model: nn.Module) -> None:
        if epoch == epochs:
            raise Interrupted
    return hook


def _interrupted(path: Path, **settings) -> None:
    """A training killed after its first epoch (the checkpoint is written before ``on_epoch``)."""
    with pytest.raises(Interrupted):
        train(_net(), *_data(), **{**SETTINGS, **settings}, checkpoint=path, on_epoch=_stop_after(1))
    assert path.exists()


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_a_resumed_training_ends_with_the_weights_of_an_uninterrupted_one(tmp_path, optimizer):
    straight = train(_net(), *_data(), **SETTINGS, optimizer=optimizer).state_dict()
    path = tmp_path / "run.pt"
    _interrupted(path, optimizer=optimizer)
    torch.rand(7)  # whatever ran in between
    seen = []
    resumed = train(_net(), *_data(), **SETTINGS, optimizer=optimizer, checkpoint=path,
                    on_epoch=lambda e, m: seen.append(e)).state_dict()
    assert seen == [2, 3]  # on_epoch runs for the epochs this call trains
    assert straight.keys() == resumed.keys()
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key  # bit for bit
    assert not path.exists()  # removed once the training completes


def test_the_progress_bar_resumes_at_the_step_it_stopped(tmp_path, monkeypatch):
    path = tmp_path / "run.pt"
    _interrupted(path)
    bars = []
    real = training.progress_bar
    monkeypatch.setattr(training, "progress_bar", lambda **kw: bars.append(kw) or real(**kw))
    train(_net(), *_data(), **SETTINGS, checkpoint=path)
    assert (bars[0]["total"], bars[0]["initial"]) == (3 * 3, 3)  # 40 images: 3 batches of 16 per epoch


@pytest.mark.parametrize("change", [dict(lr=0.05), dict(epochs=4), dict(shift=1), dict(seed=1),
                                    dict(recipe="another weight"), dict(loss_fn=nn.functional.nll_loss)])
def test_a_checkpoint_of_another_training_is_an_error_naming_it(tmp_path, change):
    path = tmp_path / "run.pt"
    _interrupted(path)
    before = path.read_bytes()
    with pytest.raises(StaleTrainingCheckpoint, match=f"{path}.*rm '{path}'"):
        train(_net(), *_data(), **{**SETTINGS, **change}, checkpoint=path)
    assert path.read_bytes() == before  # neither resumed nor overwritten


def test_a_checkpoint_of_other_data_or_another_architecture_is_an_error(tmp_path):
    path = tmp_path / "run.pt"
    _interrupted(path)
    x, y = _data()
    x[0, 0, 0, 0] += 1e-3  # one pixel
    with pytest.raises(StaleTrainingCheckpoint):
        train(_net(), x, y, **SETTINGS, checkpoint=path)
    wider = nn.Sequential(nn.Conv2d(1, 5, 3, padding=1), nn.BatchNorm2d(5), nn.ReLU(), nn.Flatten(),
                          nn.Linear(5 * 8 * 8, 3))
    with pytest.raises(StaleTrainingCheckpoint):
        train(wider, *_data(), **SETTINGS, checkpoint=path)


def test_a_truncated_checkpoint_is_an_error_naming_it_and_how_to_remove_it(tmp_path):
    path = tmp_path / "run.pt"
    _interrupted(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(UnreadableFile, match=f"{path} cannot be read .*truncated or corrupt.*rm '{path}'"):
        train(_net(), *_data(), **SETTINGS, checkpoint=path)


def test_an_atomic_save_that_fails_midway_leaves_the_old_file_and_no_partial_one(tmp_path, monkeypatch):
    path = tmp_path / "cache" / "net.pt"
    atomic_save({"w": torch.ones(3)}, path)
    old = path.read_bytes()

    def half_written(obj, f):
        f.write(b"PK\x03\x04 half a zip archive")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", half_written)
    with pytest.raises(OSError, match="disk full"):
        atomic_save({"w": torch.zeros(3)}, path)
    with pytest.raises(OSError, match="disk full"):
        atomic_save({"w": torch.zeros(3)}, tmp_path / "cache" / "new.pt")
    assert path.read_bytes() == old
    assert sorted(p.name for p in path.parent.iterdir()) == ["net.pt"]  # no temporary file, no new.pt
    monkeypatch.undo()
    assert torch.equal(load_saved(path)["w"], torch.ones(3))


def test_a_missing_file_is_not_called_corrupt(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_saved(tmp_path / "absent.pt")


def test_paper1_cifar_networks_are_cached_under_their_recipe_and_a_corrupt_one_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PSNN_CACHE_DIR", str(tmp_path))
    x, y = torch.rand(8, 3, 32, 32), torch.randint(0, 10, (8,))
    monkeypatch.setattr(conversion.datasets, "load", lambda dataset, split: (x, y))
    calls = []
    monkeypatch.setattr(conversion, "train", lambda model, *a, **kw: calls.append(kw) or model)
    first = conversion.cifar_paper_model("ResNet20", "cifar10", 1, "cpu")
    assert calls[0]["checkpoint"].name.endswith(".training.pt") and calls[0]["flip"] and calls[0]["epochs"] == 1
    [cached] = (tmp_path / "checkpoints").glob("*.pt")
    assert cached.name.startswith("resnet20_cifar10_1ep_")
    again = conversion.cifar_paper_model("ResNet20", "cifar10", 1, "cpu")  # read back, not trained again
    assert len(calls) == 1
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), again.state_dict().values()))
    conversion.cifar_paper_model("ResNet20", "cifar10", 2, "cpu")  # another recipe: another file
    monkeypatch.setattr(conversion, "_CIFAR_TRAINING", {**conversion._CIFAR_TRAINING, "lr": 0.05})
    conversion.cifar_paper_model("ResNet20", "cifar10", 1, "cpu")
    assert len(calls) == 3 and len(list((tmp_path / "checkpoints").glob("*.pt"))) == 3
    cached.write_bytes(cached.read_bytes()[:100])
    monkeypatch.setattr(conversion, "_CIFAR_TRAINING", {**conversion._CIFAR_TRAINING, "lr": 0.1})
    with pytest.raises(UnreadableFile, match=f"rm '{cached}'"):
        conversion.cifar_paper_model("ResNet20", "cifar10", 1, "cpu")
    assert len(calls) == 3  # never silently retrained


def _paper_entry(name: str, **entry) -> None:
    """A fabricated paper-scale manifest entry of ``name`` (a tiny file, its real checksum)."""
    save_state(name, {"w": torch.zeros(1)}, entry, networks.manifest_path("paper"))


def test_a_paper_network_of_another_recipe_is_remade_with_a_printed_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PSNN_CACHE_DIR", str(tmp_path))
    made = []
    monkeypatch.setattr(networks, "make", lambda name, device, scale: made.append((name, scale)))
    current = networks.recipe("vgg16_ann", "paper")
    _paper_entry("vgg16_ann", recipe=current, **{"recipe digest": training.recipe_digest(current)})
    networks.ensure(["vgg16_ann"], "paper", "cpu")
    assert made == []  # its recipe: kept
    _paper_entry("vgg16_ann", recipe={**current, "epochs": 199}, **{"recipe digest": "0" * 64})
    with pytest.raises(networks.ChangedRecipe, match="epochs: made with 199, now 200"):
        networks._verified("vgg16_ann", "paper")
    networks.ensure(["vgg16_ann"], "paper", "cpu")
    assert made == [("vgg16_ann", "paper")]
    assert "remaking vgg16_ann at the paper scale" in capsys.readouterr().out
    _paper_entry("vgg16_ann", recipe={**current, "epochs": 199})  # made before digests: judged by its recipe
    with pytest.raises(networks.ChangedRecipe, match="epochs"):
        networks._verified("vgg16_ann", "paper")


def test_a_committed_network_of_another_recipe_is_an_error_naming_the_command(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    manifest = json.loads((networks.paths.data_dir() / networks.MANIFEST).read_text())
    manifest["net4_ann"]["recipe"]["epochs"] = 14
    (data / networks.MANIFEST).write_text(json.dumps(manifest))
    (data / "checkpoints").symlink_to(networks.paths.data_dir() / "checkpoints")
    (tmp_path / "_toc.yml").write_text("root: x\n")
    monkeypatch.setenv("PSNN_ROOT", str(tmp_path))
    monkeypatch.setattr(networks, "make", lambda *a: pytest.fail("a committed network was remade"))
    with pytest.raises(networks.ChangedRecipe, match="`python -m psnn_lib.paper2.networks net4_ann`"):
        networks.ensure(["net4_ann"], "committed", "cpu")
    with pytest.raises(networks.ChangedRecipe, match="epochs: made with 14, now 15"):
        networks.load_ann("net4_ann")


def test_every_committed_network_still_verifies_against_its_recipe():
    entries = manifest_entries(networks.manifest_path("committed"))
    assert set(entries) >= set(networks.RECIPES)
    for name in networks.RECIPES:
        networks._verified(name, "committed")  # the committed entries record no digest: judged by their recipe


def test_paper_scale_trainings_are_resumable_and_committed_ones_are_not(tmp_path, monkeypatch):
    monkeypatch.setenv("PSNN_CACHE_DIR", str(tmp_path))
    r = networks.recipe("vgg16_ann", "paper")
    args = networks._resumable("vgg16_ann", "candidate0", r, "paper")
    assert args["checkpoint"] == tmp_path / "paper2-networks" / "training" / "vgg16_ann.candidate0.pt"
    assert args["recipe"] != networks._resumable("vgg16_ann", "candidate0", {**r, "lr": 0.2}, "paper")["recipe"]
    assert networks._resumable("vgg16_ann", "candidate0", networks.recipe("vgg16_ann"), "committed") == {}
