"""The paper scale shrunk by parameters: its recipes, its own folder, its claims not run, and
the paper's whole code path (``networks.ensure``) on a CPU in seconds."""
import re
import shlex
import time

import pytest

from psnn_lib import paths
from psnn_lib.book.records import Record
from psnn_lib.models.checkpoints import manifest_entries
from psnn_lib.paper2 import networks, studies

ALL = {"epochs": 2, "penalty_epochs": 3, "clip_epochs": 4, "train_images": 500, "images": 600}


def _read_keys(name: str) -> set[str]:
    """The overrides a network's recipe reads, written out by its name (not by its stage)."""
    if name.endswith("_ann"):
        return {"epochs", "train_images"}
    if name == "net4_strelu":  # its epochs: net4_ann's chosen training (settings_from)
        return {"train_images"}
    if name.endswith("_thresholds"):
        return {"penalty_epochs", "clip_epochs", "train_images"}
    if name.endswith("_symmetric"):
        return {"clip_epochs", "train_images"}
    assert re.search(r"_calibrated_|_proposed_t|_twostage_t", name), name
    return {"epochs", "images"}


def test_a_shrunk_recipe_is_the_papers_with_the_overrides_of_its_stage():
    shrunk = networks.paper_scale(ALL)
    for name in networks.RECIPES:
        paper, ours = networks.recipe(name, "paper"), networks.recipe(name, shrunk)
        expected = {k: ALL[k] for k in _read_keys(name)}
        assert ours == {**paper, **expected}, name
    one = networks.paper_scale({"epochs": 1})
    assert networks.recipe("vgg16_ann", "paper")["epochs"] == 200 and networks.recipe("vgg16_ann", one)["epochs"] == 1
    assert networks.recipe("net4_calibrated_cosine", "paper")["epochs"] == 25
    assert networks.recipe("net4_calibrated_cosine", one)["epochs"] == 1
    assert networks.recipe("vgg16_twostage_t4", one)["epochs"] == 1  # per layer
    assert networks.recipe("vgg16_ann", one)["dataset"] == "cifar10"  # still the paper's pipeline
    assert networks.recipe("net4_ann", "committed") == networks.recipe("net4_ann")  # the committed ones unchanged


def test_no_overrides_is_the_paper_scale_and_the_same_overrides_the_same_name():
    assert networks.paper_scale(None) == networks.paper_scale({}) == "paper"
    a = networks.paper_scale({"epochs": 1, "train_images": 256})
    assert re.fullmatch(r"paper-[0-9a-f]{12}", a)
    assert networks.paper_scale({"train_images": 256, "epochs": 1}) == a
    assert networks.paper_scale({"epochs": 2, "train_images": 256}) != a
    assert networks.paper_scale({"epochs": 1}) != a
    assert networks.scale_overrides(a) == {"epochs": 1, "train_images": 256}
    assert networks.scale_overrides("paper") == networks.scale_overrides("committed") == {}


@pytest.mark.parametrize("overrides, match", [
    ({"epoch": 1}, "unknown recipe override 'epoch'; allowed: epochs, penalty_epochs, clip_epochs, train_images, "
                   "images, eval_images, width"),
    ({"lr": 0.1}, "allowed: epochs"),
    ({"epochs": 0}, "'epochs' must be a whole number >= 1, got 0"),
    ({"images": -5}, "whole number >= 1"),
    ({"epochs": 1.5}, "whole number >= 1, got 1.5"),
    ({"epochs": 1.0}, "whole number >= 1, got 1.0"),
    ({"epochs": "3"}, "whole number >= 1, got '3'"),
    ({"epochs": True}, "whole number >= 1, got True"),
    ([("epochs", 1)], "a mapping of epochs"),
    ({"width": 0}, "'width' must be a number in (0, 1], got 0"),
    ({"width": 1.5}, "'width' must be a number in (0, 1], got 1.5"),
    ({"width": True}, "in (0, 1], got True"),
])
def test_an_override_that_is_not_a_whole_number_of_an_allowed_key_is_an_error(overrides, match):
    with pytest.raises(ValueError, match=re.escape(match)):
        networks.paper_scale(overrides)


def test_a_scale_is_the_paper_pipeline_or_an_error():
    shrunk = networks.paper_scale({"images": 64})
    assert networks.is_paper("paper") and networks.is_paper(shrunk) and not networks.is_paper("committed")
    for unknown in ("full", "paper-000000000000"):  # the latter: a name no paper_scale call gave
        for call in (lambda: networks.is_paper(unknown), lambda: networks.recipe("net4_ann", unknown),
                     lambda: networks.manifest_path(unknown), lambda: studies.device_for(unknown)):
            with pytest.raises(ValueError, match=f"unknown scale '{unknown}'.*paper_scale"):
                call()


def test_a_shrunk_scale_has_a_folder_of_its_own(tmp_path, monkeypatch):
    monkeypatch.setenv("PSNN_CACHE_DIR", str(tmp_path))
    a, b = networks.paper_scale({"epochs": 1}), networks.paper_scale({"epochs": 2})
    assert networks.networks_dir("paper") == paths.paper_networks_dir() == tmp_path / "paper2-networks"
    assert networks.networks_dir(a) == tmp_path / "paper2-networks" / a
    assert len({networks.manifest_path(s) for s in ("committed", "paper", a, b)}) == 4
    assert networks.manifest_path("committed") == paths.data_dir() / networks.MANIFEST
    r = networks.recipe("net4_ann", a)
    assert networks._resumable("net4_ann", "candidate0", r, a)["checkpoint"] == \
        tmp_path / "paper2-networks" / a / "training" / "net4_ann.candidate0.pt"


def test_the_command_of_a_shrunk_network_remakes_it_at_that_scale(monkeypatch):
    shrunk = networks.paper_scale({"train_images": 256, "epochs": 1})
    cmd = networks.command("net4_ann", shrunk)
    assert cmd == "python -m psnn_lib.paper2.networks net4_ann --recipe '{\"epochs\": 1, \"train_images\": 256}'"
    assert networks.command("net4_ann", "paper").endswith("net4_ann --scale paper")
    assert networks.command("net4_ann") == "python -m psnn_lib.paper2.networks net4_ann"
    made = []
    monkeypatch.setattr(networks, "make", lambda name, device, scale: made.append((name, device, scale)) or
                        {"test_accuracy": 0.0, "bytes": 0})
    assert networks.main(shlex.split(cmd)[3:]) == 0
    assert networks.main(shlex.split(cmd)[3:] + ["--scale", "paper"]) == 0
    assert networks.main(["net4_ann", "--recipe", "{}"]) == 0  # no overrides: the paper scale
    assert made == [("net4_ann", "cpu", shrunk)] * 2 + [("net4_ann", "cpu", "paper")]
    for bad in (["--recipe", '{"epochs": 1}', "--scale", "committed"], ["--recipe", "epochs=1"],
                ["--recipe", '{"epochs": 0}']):
        with pytest.raises(SystemExit):
            networks.main(["net4_ann", *bad])
    assert len(made) == 3


def test_scale_of_shrinks_only_the_paper_profile():
    assert studies.scale_of("smoke") == studies.scale_of("default", {}) == "committed"
    assert studies.scale_of("paper") == studies.scale_of("paper", {}) == "paper"
    assert studies.scale_of("paper", {"epochs": 1}) == networks.paper_scale({"epochs": 1})
    with pytest.raises(ValueError, match="shrinks the paper profile's networks; the default profile"):
        studies.scale_of("default", {"epochs": 1})
    with pytest.raises(ValueError, match="unknown profile"):
        studies.scale_of("full")
    with pytest.raises(ValueError, match="unknown recipe override"):
        studies.scale_of("paper", {"lr": 1})


def _table4_rows() -> list[dict]:
    return [{"threshold optimisation": t, "layer": layer, "firing rate": rate}
            for t, rate in (("without", 0.1), ("with", 0.2)) for layer in (1, 2, 3)]


def _deep_rows() -> list[dict]:
    return [{"network": arch, "method": method, "T": T, "ANN acc": 90.0, "SNN acc": 89.0,
             "delta acc": 1.0 if method == "proposed" else 2.0}
            for arch in ("vgg16", "resnet18") for method in ("proposed", "two-stage") for T in (4, 8)]


def test_at_a_shrunk_scale_every_claim_is_not_run_saying_by_what():
    shrunk = networks.paper_scale({"epochs": 1, "train_images": 256})
    why = 'the paper scale shrunk by {"epochs": 1, "train_images": 256}: not the paper\'s networks'
    for scale, claims, rows in [(shrunk, studies.table4_claims, _table4_rows()),
                                (shrunk, studies.deep_claims, _deep_rows())]:
        record = Record("p2_x", "paper", {}, seed=0, paper=2, target="x")
        claims(record, rows, scale)
        assert record.items and {(i.status, i.ours, i.note) for i in record.items} == {("not run", None, why)}
    at_paper = Record("p2_x", "paper", {}, seed=0, paper=2, target="x")
    studies.deep_claims(at_paper, _deep_rows(), "paper")  # the paper's scale: compared
    assert "not run" not in {i.status for i in at_paper.items}
    committed = Record("p2_x", "default", {}, seed=0, paper=2, target="x")
    studies.table4_claims(committed, _table4_rows(), "committed")
    assert "not run" not in {i.status for i in committed.items}


def test_the_papers_pipeline_at_a_shrunk_scale_on_a_cpu(tmp_path, monkeypatch):
    """net4_ann made by ``ensure`` at the paper scale shrunk to 1 epoch on 256 images (real
    Fashion-MNIST; the validation split and the test set stay whole): in its own folder, once."""
    monkeypatch.setenv("PSNN_CACHE_DIR", str(tmp_path))
    shrunk = networks.paper_scale({"epochs": 1, "train_images": 256})
    assert studies.device_for(shrunk) == "cpu"  # no GPU here
    start = time.perf_counter()
    networks.ensure(["net4_ann"], shrunk, "cpu")
    # 9-22 s on 2 shared cores (most of it: scoring 2 x 5,000 validation and 10,000 test images,
    # and reading Fashion-MNIST 4 times); the paper's own sizes would take hours
    assert time.perf_counter() - start < 120
    entries = manifest_entries(tmp_path / "paper2-networks" / shrunk / networks.MANIFEST)
    assert set(entries) == {"net4_ann"}
    entry = entries["net4_ann"]
    assert entry["recipe"]["epochs"] == 1 and entry["recipe"]["train_images"] == 256
    assert entry["command"] == networks.command("net4_ann", shrunk)
    assert (tmp_path / "paper2-networks" / shrunk / entry["file"]).exists()
    assert not networks.manifest_path("paper").exists()  # nothing mixed with the paper's networks
    assert not (tmp_path / "paper2-networks" / shrunk / "training").exists() or \
        not any((tmp_path / "paper2-networks" / shrunk / "training").iterdir())  # completed: no resume files
    monkeypatch.setattr(networks, "make", lambda *a: pytest.fail("net4_ann was made again"))
    networks.ensure(["net4_ann"], shrunk, "cpu")
    model, loaded = networks.load_ann("net4_ann", shrunk)
    assert loaded["sha256"] == entry["sha256"]


def test_width_shrinks_the_deep_nets_only_and_eval_images_caps_what_is_scored():
    shrunk = networks.paper_scale({"width": 0.125, "eval_images": 50})
    assert networks.recipe("vgg16_ann", "paper")["kwargs"]["width"] == 1.0
    assert networks.recipe("vgg16_ann", shrunk)["kwargs"]["width"] == 0.125
    assert networks.recipe("resnet18_thresholds", shrunk)["kwargs"]["width"] == 0.125
    assert "width" not in networks.recipe("net4_ann", shrunk)["kwargs"]
    assert "width" not in networks.recipe("net4_ann", shrunk) and "eval_images" not in networks.recipe("net4_ann", shrunk)
    x, y = networks.data("net4_ann", "test", shrunk)
    assert len(x) == len(y) == 50
    assert len(networks.data("net4_ann", "validation", shrunk)[0]) == 50
    assert len(networks.data("net4_ann", "train", shrunk)[0]) == 55_000  # training images: train_images
    assert len(networks.calibration_images("net4_ann", shrunk)) == 50
