"""Which modules of a model are activations, for the peers' reports and refusals."""
from __future__ import annotations

from torch import nn

from ..converter.sites import UnsupportedActivation, module_activation


def is_activation(module: nn.Module) -> bool:
    """True for every module the converter would convert or refuse as an activation."""
    try:
        return module_activation(module) is not None
    except UnsupportedActivation:
        return True
