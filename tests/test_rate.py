"""The rate-coded IF neuron's fused step is the plain IF step written out with whole tensors."""
import pytest
import torch

from psnn_lib.neurons.fused import CHUNK
from psnn_lib.neurons.precision import to_output
from psnn_lib.neurons.rate import IFNeuron


def _plain_if(x: torch.Tensor, theta: float, v_init: float, steps: int):
    """Integrate, fire where v >= theta, reset by subtraction: (outputs, spikes, clipped, membrane)."""
    v = torch.full(x.shape, v_init * theta, dtype=torch.float64)
    outs, spikes = [], 0
    for _ in range(steps):
        v += x
        z = (v >= theta).to(torch.float64)
        v -= z * theta
        spikes += int(z.sum())
        outs.append(to_output(z * theta + (v - v), x.dtype))  # NaN where v is not finite
    return outs, spikes, int((v >= theta).sum()), v


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("v_init", [0.5, 0.0])
def test_fused_if_step_is_the_plain_step_bit_for_bit(dtype, v_init):
    """Inputs on and around the threshold (which fires: v >= theta), a threshold not exact in
    binary, NaN and infinities, more elements than one chunk, a transposed input."""
    torch.manual_seed(2)
    theta, steps = 0.3, 9
    special = torch.tensor([theta, theta / 2, -theta, 0.0, -0.0, float("nan"), float("inf"), -float("inf"), 7.0])
    x = torch.cat([torch.randn(2 * CHUNK + 4000) * 0.3, special])
    x = x[: len(x) // 3 * 3].reshape(3, -1).t().to(dtype)
    assert not x.is_contiguous() and x.numel() > 2 * CHUNK
    neuron = IFNeuron(theta, steps, v_init)
    with torch.no_grad():
        outs = [neuron(x) for _ in range(steps)]
    ref, spikes, clipped, v = _plain_if(x, theta, v_init, steps)
    assert torch.equal(neuron.v.isnan(), v.isnan()) and torch.equal(neuron.v.nan_to_num(), v.nan_to_num())
    neuron.reset_state()
    for a, b in zip(outs, ref):
        assert a.dtype == dtype and torch.equal(a.isnan(), b.isnan())
        assert torch.equal(a.nan_to_num(), b.nan_to_num()) and torch.equal(torch.signbit(a), torch.signbit(b))
    assert (neuron.stats.spikes, neuron.stats.clipped, neuron.stats.neurons) == (spikes, clipped, x.numel())
    assert spikes > 0 and clipped > 0


def test_if_counts_read_half_way_and_across_inferences():
    x = torch.rand(500) * 2
    a, b = IFNeuron(0.5, 4), IFNeuron(0.5, 4)
    for _ in range(4):
        a(x)
    halfway = a.stats.spikes  # folded from the counter tensor, which then starts again
    a.reset_state()
    for _ in range(4):
        a(x)
    a.reset_state()
    for _ in range(2):
        for _ in range(4):
            b(x)
        b.reset_state()
    assert 0 < halfway < a.stats.spikes == b.stats.spikes and a.stats.clipped == b.stats.clipped > 0


def test_an_input_of_another_shape_is_refused_before_any_step():
    """Within one inference the input keeps its shape (a (1, 3) input would broadcast onto (2, 3)
    membranes); the refused step changes neither the membrane nor the step count."""
    neuron = IFNeuron(0.5, 4)
    neuron(torch.ones(2, 3))
    v = neuron.v.clone()
    with pytest.raises(ValueError, match="one input shape"):
        neuron(torch.ones(1, 3))
    assert neuron.t == 1 and torch.equal(neuron.v, v)


def test_many_neurons_fold_their_counts_with_one_read(monkeypatch):
    """What a converted model does once per inference: one read of every neuron's device-side
    counts (the same totals as reading each neuron), not one per neuron."""
    from psnn_lib import PSNeuron, fit_ps
    from psnn_lib.neurons.stats import fold_counts

    torch.manual_seed(3)
    x = torch.randn(2000) * 2
    ps = fit_ps("relu", -2, 2, step=1e-2, K=8)

    def run():
        neurons = [IFNeuron(0.5, 4), IFNeuron(0.3, 4), PSNeuron(ps)]
        for n in neurons[:2]:
            for _ in range(4):
                n(x)
            n.reset_state()
        neurons[2]._fast_torch(x)  # the twin: counts on the device
        return neurons

    each = [(n.stats.spikes, n.stats.clipped, n.stats.neurons) for n in run()]
    neurons, reads = run(), []
    tolist = torch.Tensor.tolist
    monkeypatch.setattr(torch.Tensor, "tolist", lambda t: reads.append(1) or tolist(t))
    fold_counts(neurons)
    assert len(reads) == 1
    assert [(n.stats.spikes, n.stats.clipped, n.stats.neurons) for n in neurons] == each and len(reads) == 1
    assert all(s > 0 and c > 0 for s, c, _ in each)
