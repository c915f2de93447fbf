import pytest
import torch

from psnn_lib.ps import cache as ps_cache
from psnn_lib.ps.cache import fit_ps_cached, load_params, save_params


def _only_file(folder):
    files = list(folder.glob("*.pt"))
    assert len(files) == 1
    return files[0]


def test_second_call_reads_the_cache(tmp_path, monkeypatch):
    first = fit_ps_cached("gelu", -4, 4, 0.01, 1e-3, cache_dir=tmp_path)
    path = _only_file(tmp_path)
    monkeypatch.setattr(ps_cache, "fit_ps", lambda *a, **k: pytest.fail("refitted"))
    second = fit_ps_cached("gelu", -4, 4, 0.01, 1e-3, cache_dir=tmp_path)
    assert torch.equal(first.h, second.h) and first.K == second.K and first.b == second.b
    assert _only_file(tmp_path) == path


def test_corrupt_file_is_refitted_with_warning(tmp_path):
    fit_ps_cached("silu", -4, 4, 0.01, 1e-3, cache_dir=tmp_path)
    path = _only_file(tmp_path)
    path.write_bytes(b"not a torch file")
    with pytest.warns(UserWarning, match="corrupt; refitting|corrupt .*refitting"):
        p = fit_ps_cached("silu", -4, 4, 0.01, 1e-3, cache_dir=tmp_path)
    assert p.K > 0
    assert load_params(path).K == p.K  # rewritten


def test_stale_file_is_refitted_with_warning(tmp_path):
    p = fit_ps_cached("tanh", -2, 2, 0.01, 1e-3, cache_dir=tmp_path)
    path = _only_file(tmp_path)
    key = ps_cache.cache_key("tanh", -2, 2, 0.01, 1e-3)
    save_params(p, path, {**key, "code": "older code"})
    with pytest.warns(UserWarning, match="stale"):
        fit_ps_cached("tanh", -2, 2, 0.01, 1e-3, cache_dir=tmp_path)


def test_changed_fitting_code_is_never_read(tmp_path, monkeypatch):
    """Another digest of the fitting code (the same package version) is another key: a fit
    made by older code is not reused."""
    fit_ps_cached("gelu", -4, 4, 0.01, 1e-3, cache_dir=tmp_path)
    monkeypatch.setattr(ps_cache, "code_digest", lambda: "changed code")

    class Refitted(Exception):
        pass

    def refit(*args, **kwargs):
        raise Refitted

    monkeypatch.setattr(ps_cache, "fit_ps", refit)
    with pytest.raises(Refitted):
        fit_ps_cached("gelu", -4, 4, 0.01, 1e-3, cache_dir=tmp_path)


def test_key_depends_on_function_values_and_options():
    def f(x):
        return torch.tanh(x)

    k1 = ps_cache.cache_key(f, -1, 1, 0.1, 0.01)

    def f(x):  # same name, other function
        return torch.sigmoid(x)

    assert ps_cache.cache_key(f, -1, 1, 0.1, 0.01) != k1
    assert ps_cache.cache_key("gelu", -1, 1, 0.1, 0.01) != ps_cache.cache_key(
        "gelu", -1, 1, 0.1, 0.01, first_weight="code")
