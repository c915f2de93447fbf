"""Training helpers: seeded and deterministic on the CPU, whatever ran before."""
import torch

from psnn_lib.paper1 import conversion as study
from psnn_lib.activations import activation_module
from psnn_lib.models.cifar import ResNet20, VGG16
from psnn_lib.models.training import accuracy, predict


def test_fig6_run_is_deterministic_whatever_ran_before():
    torch.manual_seed(0)
    x, y = torch.rand(64, 1, 32, 32), torch.randint(0, 10, (64,))
    runs = []
    for junk in (1, 1000):
        torch.rand(junk)  # move the global RNG: the run must not depend on it
        runs.append(study.fig6_run("silu", x, y, x[:16], y[:16], epochs=1, K=8, n_calibration=16, classes=10))
    assert runs[0] == runs[1] and [r["epoch"] for r in runs[0]] == [1]


def test_models_take_any_activation_and_input_size():
    for act in ("gelu", "hardswish", "elu"):
        model = ResNet20(10, in_channels=1, activation=act).eval()
        assert sum(isinstance(m, type(activation_module(act))) for m in model.modules()) == 19
        assert predict(model, torch.rand(3, 1, 32, 32)).shape == (3, 10)
    vgg = VGG16(100, width=0.25).eval()
    assert predict(vgg, torch.rand(2, 3, 32, 32)).shape == (2, 100)
    assert accuracy(torch.tensor([[0.0, 1.0], [1.0, 0.0]]), torch.tensor([1, 1])) == 50.0
