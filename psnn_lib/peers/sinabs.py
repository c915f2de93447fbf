"""sinabs' ``from_model`` on a network, as a user would call it: what it turns into spikes.

sinabs 3.1.3 (SynSense) converts a PyTorch model by replacing every
``nn.ReLU`` with an integrate-and-fire layer (``IAFSqueeze``; multi-spike,
membrane floored at ``min_v_mem``). It has no option for negative spikes
and leaves every other activation (a Leaky ReLU included) as it was, analog,
without a warning. :func:`spiking_layers` runs ``from_model`` and lists
what it converted and the activation modules it left (every module the
library's converter would convert or refuse: functional calls such as
``F.relu`` are not modules and are not listed), so the book can say,
measured, where sinabs applies.

Install: ``pip install --no-deps sinabs==3.1.3 pbr==7.1.3 nir==1.0.8 nirtorch==2.6``
(pinned in ``requirements-data.txt``).
"""
from __future__ import annotations

import copy

from torch import nn

from .activations import is_activation

INSTALL = "pip install --no-deps sinabs==3.1.3 pbr==7.1.3 nir==1.0.8 nirtorch==2.6"


def spiking_layers(model: nn.Module, batch_size: int = 1) -> dict[str, list[str]]:
    """``from_model(model)``: the modules it made spiking and the activations it left analog."""
    try:
        import sinabs
        from sinabs.from_torch import from_model
    except ImportError as err:
        raise ImportError(f"the sinabs peer needs sinabs 3.1.3: {INSTALL} "
                          "(requirements-data.txt pins it; 'make' installs it)") from err
    net = from_model(copy.deepcopy(model).eval(), batch_size=batch_size)
    spiking = [n for n, m in net.spiking_model.named_modules() if isinstance(m, sinabs.layers.StatefulLayer)]
    analog = [f"{n} ({type(m).__name__})" for n, m in net.spiking_model.named_modules()
              if not isinstance(m, sinabs.layers.StatefulLayer) and is_activation(m)]
    return {"spiking": spiking, "analog": analog}
