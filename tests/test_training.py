"""Training helpers: seeded and deterministic on the CPU, whatever ran before."""
import torch

from psnn_lib.activations import activation_module
from psnn_lib.models.cifar import ResNet20, VGG16
from psnn_lib.models.training import accuracy, predict


def test_models_take_any_activation_and_input_size():
    for act in ("gelu", "hardswish", "elu"):
        model = ResNet20(10, in_channels=1, activation=act).eval()
        assert sum(isinstance(m, type(activation_module(act))) for m in model.modules()) == 19
        assert predict(model, torch.rand(3, 1, 32, 32)).shape == (3, 10)
    vgg = VGG16(100, width=0.25).eval()
    assert predict(vgg, torch.rand(2, 3, 32, 32)).shape == (2, 100)
    assert accuracy(torch.tensor([[0.0, 1.0], [1.0, 0.0]]), torch.tensor([1, 1])) == 50.0


def test_per_image_shifts_move_each_image_on_its_own_and_bad_options_fail():
    from psnn_lib.models.training import _augment, train
    x = torch.zeros(64, 1, 9, 9)
    x[:, :, 4, 4] = 1.0  # one bright pixel in the middle of every image
    out = _augment(x, torch.Generator().manual_seed(0), False, 2, per_image=True)
    where = out.flatten(1).argmax(1)
    assert out.shape == x.shape and torch.equal(out.sum((1, 2, 3)), torch.ones(64))  # shifted, not lost
    assert len(set(where.tolist())) > 10  # many different shifts in one batch
    rows, cols = where // 9, where % 9
    assert rows.min() >= 2 and rows.max() <= 6 and cols.min() >= 2 and cols.max() <= 6  # at most 2 px
    batch = _augment(x, torch.Generator().manual_seed(0), False, 2, per_image=False).flatten(1).argmax(1)
    assert len(set(batch.tolist())) == 1  # paper 1's: one shift for the batch
    net = torch.nn.Linear(81, 2)
    for bad in (dict(optimizer="rmsprop"), dict(shift=-1), dict(shift=True)):
        try:
            train(net, x.flatten(1), torch.zeros(64, dtype=torch.long), epochs=1, progress=False, **bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad} was accepted")


def test_net4_validation_split_is_held_out_of_its_training_set():
    from psnn_lib.paper2 import networks
    xt, _ = networks.data("net4_ann", "train")
    xv, yv = networks.data("net4_ann", "validation")
    assert len(xv) == networks.VALIDATION_IMAGES and len(xt) + len(xv) == 60_000
    seen = {bytes(im.numpy().tobytes()) for im in xt[:: 7]}
    assert not any(bytes(im.numpy().tobytes()) in seen for im in xv[:500])
    assert len(set(yv.tolist())) == 10  # a random sample, every class
    assert torch.equal(networks.data("net4_ann", "validation")[1], yv)  # the same split every time
    import pytest
    with pytest.raises(ValueError, match="no validation split"):
        networks.data("vgg16_ann", "validation")
    with pytest.raises(ValueError, match="unknown split"):
        networks.data("net4_ann", "valid")


def test_the_clip_weight_rule_takes_the_largest_weight_that_keeps_the_ann():
    from psnn_lib.paper2.networks import chosen_clip_weight
    sweep = [{"clip weight": w, "validation accuracy": a} for w, a in [(0.005, 92.1), (0.01, 92.0), (0.02, 91.9),
                                                                        (0.05, 91.0)]]
    assert chosen_clip_weight(sweep, 91.88) == (0.02, True)
    assert chosen_clip_weight(sweep, 92.05) == (0.005, True)
    assert chosen_clip_weight(sweep, 95.0) == (0.005, False)  # none keeps it: the smallest, and said so


def test_a_stage_made_from_another_version_of_its_source_is_refused(tmp_path, monkeypatch):
    import json
    import shutil

    import pytest

    from psnn_lib.paper2 import networks
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(networks.paths.data_dir() / networks.MANIFEST, data / networks.MANIFEST)
    (data / "checkpoints").symlink_to(networks.paths.data_dir() / "checkpoints")
    (tmp_path / "_toc.yml").write_text("root: x\n")
    monkeypatch.setenv("PSNN_ROOT", str(tmp_path))
    assert networks.load_snn("net4_calibrated_cosine")[1]["made from"]  # as committed: current
    manifest = json.loads((data / networks.MANIFEST).read_text())
    manifest["net4_calibrated_cosine"]["made from"] = {"net4_thresholds": "0" * 64}
    (data / networks.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(networks.StaleNetwork, match="python -m psnn_lib.paper2.networks net4_calibrated_cosine"):
        networks.load_snn("net4_calibrated_cosine")


def test_the_training_digest_tells_trainings_apart_but_not_their_initial_values():
    from psnn_lib.models.training import recipe_digest, training_digest
    assert recipe_digest({"w": (0.1,), "a": 1}) == recipe_digest({"a": 1, "w": [0.1]})  # as JSON stores it
    x, y = torch.rand(6, 4), torch.tensor([0, 1, 0, 1, 0, 1])
    settings, ce, linear = {"epochs": 2, "lr": 0.1}, torch.nn.functional.cross_entropy, torch.nn.Linear
    base = training_digest(linear(4, 2), x, y, settings, ce)
    assert training_digest(linear(4, 2), x, y, settings, ce) == base  # other initial weights: the same training
    others = [training_digest(linear(4, 3), x, y, settings, ce),
              training_digest(linear(4, 2), x.double(), y, settings, ce),
              training_digest(linear(4, 2), x, y.flip(0), settings, ce),
              training_digest(linear(4, 2), x, y, {**settings, "lr": 0.2}, ce),
              training_digest(linear(4, 2), x, y, settings, torch.nn.functional.nll_loss),
              training_digest(linear(4, 2), x, y, settings, ce, "weight 2")]
    assert len({base, *others}) == 7


def test_a_checkpoint_whose_write_fails_leaves_the_file_and_manifest_as_they_were(tmp_path, monkeypatch):
    import pytest

    from psnn_lib.models.checkpoints import manifest_entries, save_state, verified_state
    manifest = tmp_path / "m.json"
    save_state("a", {"w": torch.ones(2)}, {"note": 1}, manifest)
    before = {p.name: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}

    def fails(obj, f):
        f.write(b"half")
        raise OSError("killed")

    monkeypatch.setattr(torch, "save", fails)
    with pytest.raises(OSError, match="killed"):
        save_state("a", {"w": torch.zeros(2)}, {"note": 2}, manifest)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before  # no temporary file
    assert manifest_entries(manifest)["a"]["note"] == 1
    assert torch.equal(verified_state("a", "remake", manifest)[0]["w"], torch.ones(2))
