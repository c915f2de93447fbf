import pytest
import torch

@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(autouse=True, scope="session")
def _own_curve_cache(tmp_path_factory):
    """Paper 2's curve cache of this session only (the notebooks' kernels inherit it): every curve a
    test reads was computed by this run, none by an earlier one."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PSNN_CURVE_CACHE", str(tmp_path_factory.mktemp("curve-cache")))
        yield
