"""Build a kernel's C source into a shared library at first use, and load it.

A kernel ``<name>.c`` of this package is compiled with the C compiler
(``$CC``, else ``cc``; :mod:`psnn_lib.paths`) into
``<cache>/kernels/<name>-<key>.so``, where the key is a SHA-256 of the source,
the flags, the compiler's version and this CPU's instruction-set flags (the
library is built for the machine it runs on: ``-march=native``). The build
writes a temporary file, flushes it to disk and renames it, under a lock (two
notebooks starting at once build it once), and takes under a second;
:data:`BUILD_SECONDS` holds what this process spent building. Beside the
library a file holds its SHA-256: a library that does not match it (a
truncated or damaged file, which loading could crash on) or that fails to
load is built again.

``-ffp-contract=off`` keeps every product and sum rounded apart (no fused
multiply-add), as the torch twins compute them. ``PSNN_KERNELS=off`` turns
the kernels off (read at a kernel's first use in a process); a missing compiler or a failed build is a warning (once per
kernel), and the caller uses the torch twin, whose results are the same bit
for bit.
"""
from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import subprocess
import time
import warnings
from pathlib import Path
from typing import Optional

from .. import paths
from ..file_lock import exclusive

FLAGS = ("-O3", "-march=native", "-ffp-contract=off", "-fopenmp", "-fPIC", "-shared")
BUILD_SECONDS: dict[str, float] = {}
"""Seconds this process spent building each kernel (absent: loaded as built before)."""


class KernelUnavailable(RuntimeError):
    """The kernel cannot be built here (no compiler, or the build failed)."""


def _cpu_flags() -> str:
    """This CPU's instruction-set flags (``/proc/cpuinfo``), else the machine's name."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.machine()


def _compiler_version(compiler: str) -> str:
    try:
        done = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise KernelUnavailable(f"no C compiler {compiler!r} ({exc}); set CC to one") from None
    if done.returncode:
        raise KernelUnavailable(f"{compiler} --version failed: {done.stderr.strip()[:300]}")
    return done.stdout


def library_path(name: str) -> Path:
    """Where kernel ``name`` is (or would be) built for this source, compiler and CPU."""
    compiler = paths.c_compiler()
    h = hashlib.sha256()
    for part in ((Path(__file__).parent / f"{name}.c").read_bytes(), " ".join(FLAGS).encode(),
                 _compiler_version(compiler).encode(), _cpu_flags().encode()):
        h.update(len(part).to_bytes(8, "little") + part)
    return paths.kernels_dir() / f"{name}-{h.hexdigest()[:16]}.so"


def _build(name: str, target: Path) -> None:
    source = Path(__file__).parent / f"{name}.c"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    start = time.perf_counter()
    try:
        done = subprocess.run([paths.c_compiler(), *FLAGS, str(source), "-o", str(tmp)],
                              capture_output=True, text=True, timeout=600)
        if done.returncode:
            raise KernelUnavailable(f"building {source.name} failed: {done.stderr.strip()[:500]}")
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        _digest_file(target).write_text(_sha256(tmp))
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    BUILD_SECONDS[name] = round(time.perf_counter() - start, 2)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _digest_file(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


def _sound(target: Path) -> bool:
    """The library is there and matches the digest written when it was built."""
    digest = _digest_file(target)
    return target.exists() and digest.exists() and digest.read_text().strip() == _sha256(target)


@functools.lru_cache(maxsize=None)
def load(name: str) -> Optional[ctypes.CDLL]:
    """Kernel ``name`` loaded (built first if needed); None when ``PSNN_KERNELS=off`` or it
    cannot be built here (with a warning that says why)."""
    if paths.kernels_setting() == "off":
        return None
    try:
        target = library_path(name)
        with exclusive(target.with_suffix(".lock")):
            if not _sound(target):
                _build(name, target)
            try:
                return ctypes.CDLL(str(target))
            except OSError:  # a damaged or truncated file: build it again
                target.unlink(missing_ok=True)
                _build(name, target)
                return ctypes.CDLL(str(target))
    except (KernelUnavailable, OSError, subprocess.TimeoutExpired) as exc:
        warnings.warn(f"the compiled kernel {name} is unavailable ({exc}): using its torch twin (the same "
                      "results, slower)", RuntimeWarning, stacklevel=3)
        return None


def bind(name: str, signatures: dict[str, list]) -> Optional[dict[str, ctypes._CFuncPtr]]:
    """Kernel ``name``'s functions by name, their argument types set from ``signatures`` (each
    returns nothing); None when the kernel is not available (:func:`load`) or lacks one of
    them (with a warning)."""
    lib = load(name)
    if lib is None:
        return None
    try:
        functions = {f: getattr(lib, f) for f in signatures}
    except AttributeError as exc:
        warnings.warn(f"the compiled kernel {name} lacks its functions ({exc}): using its torch twin (the same "
                      "results, slower)", RuntimeWarning, stacklevel=3)
        return None
    for f, argtypes in signatures.items():
        functions[f].argtypes, functions[f].restype = argtypes, None
    return functions


def main() -> int:
    """Build every kernel of this package now and say how long it took (``make test`` and
    ``make book`` run it first, so that a cold build's time is in their output)."""
    for name in sorted(p.stem for p in Path(__file__).parent.glob("*.c")):
        if paths.kernels_setting() == "off":
            print(f"kernel {name}: turned off (PSNN_KERNELS=off); its torch twin runs")
        elif load(name) is None:
            print(f"kernel {name}: not available here (see the warning above); its torch twin runs")
        elif name in BUILD_SECONDS:
            print(f"kernel {name}: built in {BUILD_SECONDS[name]:.2f} s")
        else:
            print(f"kernel {name}: built before (cached)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
