"""Fig. 6's networks: the committed snapshots of the default recipe, training for any other."""
import json
from pathlib import Path

import pytest
import torch

from psnn_lib.models import checkpoints
from psnn_lib.paper1 import fig6_networks as f6

DATA = Path(__file__).resolve().parents[1] / "data"


def test_every_activation_and_epoch_of_the_recipe_is_committed():
    manifest = json.loads((DATA / "checkpoints.json").read_text())
    for act in f6.ACTIVATIONS:
        for epoch in range(1, f6.RECIPE["epochs"] + 1):
            entry = manifest[f6.name(act, epoch)]
            assert entry["recipe"] == {**f6.RECIPE, "arch": "resnet20", "activation": act, "epoch": epoch}
            assert entry["stored"] == "float16"  # and in SHA256SUMS: tests/test_data.py
    # later epochs of one training run learn: the recorded accuracies climb
    for act in f6.ACTIVATIONS:
        accs = [manifest[f6.name(act, e)]["test_accuracy"] for e in range(1, f6.RECIPE["epochs"] + 1)]
        assert accs == sorted(accs) and accs[-1] > 60, (act, accs)


def test_the_default_recipe_loads_the_committed_float16_snapshots(monkeypatch):
    monkeypatch.setattr(f6, "trained", lambda *a, **k: pytest.fail("trained instead of loading"))
    nets, source = f6.snapshots("hardswish", **f6.RECIPE)
    assert source == f6.COMMITTED and len(nets) == f6.RECIPE["epochs"]
    for net in nets:
        assert not net.training
        for p in net.state_dict().values():
            if p.is_floating_point():  # what was stored is what runs
                assert torch.equal(p, p.half().float())
    # the epochs are different networks
    w = [next(iter(n.parameters())) for n in nets]
    assert not torch.equal(w[0], w[1])


def test_a_stale_snapshot_is_an_error_naming_the_command(tmp_path, monkeypatch):
    manifest = json.loads((DATA / "checkpoints.json").read_text())
    entry = manifest[f6.name("gelu", 1)]
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / entry["file"]).write_bytes((DATA / entry["file"]).read_bytes()[:-1] + b"x")
    (tmp_path / "checkpoints.json").write_text(json.dumps({f6.name("gelu", 1): entry}))
    monkeypatch.setattr(checkpoints.paths, "data_dir", lambda: tmp_path)
    with pytest.raises(checkpoints.ChecksumMismatch, match="python -m psnn_lib.paper1.fig6_networks gelu"):
        f6.snapshots("gelu", **f6.RECIPE)


def test_another_recipe_is_trained_in_the_run():
    nets, source = f6.snapshots("gelu", "fashion_mnist", train_samples=64, epochs=2)
    assert source == f6.TRAINED and len(nets) == 2
    assert not torch.equal(next(nets[0].parameters()), next(nets[1].parameters()))  # copies, not one model


def test_training_is_deterministic_whatever_ran_before():
    torch.manual_seed(0)
    x, y = torch.rand(64, 1, 32, 32), torch.randint(0, 10, (64,))
    runs = []
    for junk in (1, 1000):
        torch.rand(junk)  # move the global RNG: the run must not depend on it
        runs.append(f6.trained("silu", x, y, epochs=1, classes=10)[0].state_dict())
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])


def test_the_command_refuses_an_unknown_activation(capsys):
    with pytest.raises(SystemExit) as exc:
        f6.main(["gelu", "swish"])
    assert exc.value.code == 2 and "unknown activation(s) swish" in capsys.readouterr().err


def test_a_manifest_entry_of_another_recipe_is_refused(tmp_path, monkeypatch):
    """The file matches its checksum, but its entry says it is another network (silu's weights
    under gelu's name, another subset): loading it would convert the wrong network."""
    manifest = json.loads((DATA / "checkpoints.json").read_text())
    (tmp_path / "checkpoints").mkdir()
    for changed in ({"activation": "silu"}, {"train_samples": 999}):
        entry = manifest[f6.name("gelu", 1)]
        entry = {**entry, "recipe": {**entry["recipe"], **changed}}
        (tmp_path / entry["file"]).write_bytes((DATA / entry["file"]).read_bytes())
        (tmp_path / "checkpoints.json").write_text(json.dumps({f6.name("gelu", 1): entry}))
        monkeypatch.setattr(checkpoints.paths, "data_dir", lambda: tmp_path)
        with pytest.raises(ValueError, match="not this recipe's snapshot.*fig6_networks gelu"):
            f6.snapshots("gelu", **f6.RECIPE)
