"""The chapters' numbers about our results, read from the records at build time.

A chapter (``book/*.md``) never types a number it measured: it writes
``{{ name }}`` and :func:`expand` replaces it, when ``psnn site`` stages the
book, by the text that the value called ``name`` computes from the records of
the profile being built (``results/`` or ``results/<profile>/``). A name that
is not defined, a record that is missing, or a key or claim a record lacks
stops the build with a :class:`ProseError` that names it: the book never
renders a blank or a stale number. Values are computed only for the names a
chapter uses, so a profile whose records lack a key fails only where a chapter
asks for it.

This module is the mechanism only: it imports no study. The values are
defined by the papers' prose modules (:data:`PROVIDERS`), each a module with a
``VALUES`` mapping from names to functions of the :class:`Records`; they are
imported when a chapter first asks for a value. A value that needs a study
rebuilt from its record (paper 1's Table 5, say) builds it once per
:class:`Records` through :meth:`Records.derived`. Any failure of a value (a
corrupt record, a value that cannot be computed) is a :class:`ProseError` that
names the chapter and the placeholder.
"""
from __future__ import annotations

import importlib
import json
import math
import re
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence, TypeVar

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_.]+)\s*\}\}")
# the modules whose ``VALUES`` the chapters may name
PROVIDERS = ("psnn_lib.paper1.prose", "psnn_lib.paper2.prose")
T = TypeVar("T")


class ProseError(RuntimeError):
    """A chapter asks for a value the records cannot give; the message names it."""


class Records:
    """The records of one folder, read on demand; every miss is a :class:`ProseError`."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self._cache: dict[str, dict[str, Any]] = {}
        self._derived: dict[Callable[["Records"], Any], Any] = {}

    def record(self, notebook: str) -> dict[str, Any]:
        if notebook not in self._cache:
            path = self.folder / f"{notebook}.json"
            if not path.exists():
                raise ProseError(f"the record {path} is missing: run `psnn book --only {notebook}`")
            try:
                record = json.loads(path.read_text())
            except (OSError, UnicodeDecodeError, ValueError) as e:
                raise ProseError(f"the record {path} cannot be read ({e}): rerun `psnn book --only {notebook}`") from None
            if not isinstance(record, dict):
                raise ProseError(f"the record {path} is not a JSON object: rerun `psnn book --only {notebook}`")
            self._cache[notebook] = record
        return self._cache[notebook]

    def extra(self, notebook: str, key: str) -> Any:
        extra = self.record(notebook).get("extra", {})
        if key not in extra:
            raise ProseError(f"the record {self.folder / notebook}.json has no extra[{key!r}]: "
                             f"rerun its notebook (`psnn book --only {notebook}`)")
        return extra[key]

    def claim(self, notebook: str, name: str) -> dict[str, Any]:
        """The claim called ``name``; a name ending in ``*`` matches the one claim it begins."""
        items = self.record(notebook).get("results", [])
        hits = [i for i in items if i["name"] == name or (name.endswith("*") and i["name"].startswith(name[:-1]))]
        if len(hits) > 1:
            raise ProseError(f"the record {self.folder / notebook}.json has {len(hits)} claims {name!r}")
        for item in hits:
            return item
        raise ProseError(f"the record {self.folder / notebook}.json has no claim {name!r}: rerun its notebook")

    def ours(self, notebook: str, name: str) -> Any:
        value = self.claim(notebook, name)["ours"]
        if value is None:
            raise ProseError(f"the claim {name!r} of {notebook} was not run at this profile")
        return value

    def derived(self, build: Callable[["Records"], T]) -> T:
        """``build(self)``, computed once for these records: a study rebuilt from its record."""
        if build not in self._derived:
            self._derived[build] = build(self)
        return self._derived[build]


# -- formatting ---------------------------------------------------------------------------------

def _empty(x: Any) -> None:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        raise ProseError("a value the chapter quotes is empty (NaN or None) in its record")
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise ProseError(f"a value the chapter quotes is {x!r}, not a number, in its record")


def _unsigned_zero(text: str) -> str:
    """``text`` without the sign of a negative zero (``-0.00`` -> ``0.00``)."""
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def fixed(x: float, decimals: int) -> str:
    """``x`` to ``decimals`` decimals, never a negative zero."""
    _empty(x)
    return _unsigned_zero(f"{x:.{decimals}f}")


def num(x: float, digits: int = 2) -> str:
    """``x`` to ``digits`` decimals from 1 up; below 1 to ``digits`` significant digits (at
    least one, so a nonzero value never prints as 0). Never a negative zero."""
    _empty(x)
    if x != 0 and abs(x) < 1:
        sig = max(digits, 1)
        decimals = max(sig - 1 - math.floor(math.log10(abs(x))), 0)
        text = f"{x:.{decimals}f}"
        if decimals > 0 and abs(float(text)) >= 10 ** (math.floor(math.log10(abs(x))) + 1):
            text = f"{x:.{decimals - 1}f}"  # 0.0996 rounds to 0.10, not 0.100
        return _unsigned_zero(text)
    return _unsigned_zero(f"{x:.{digits}f}")


def short(x: float) -> str:
    """Two decimals from 1 up, three significant digits below."""
    _empty(x)
    return num(x, 2) if abs(x) >= 1 else num(x, 3)


def dec4(x: float) -> str:
    """Four decimals, as Table 5 prints."""
    return fixed(x, 4)


def microjoules(x: float) -> str:
    """An energy in µJ to three significant digits (whole µJ from 100 up, with thousands separated)."""
    _empty(x)
    return f"{x:,.0f} µJ" if abs(x) >= 100 else f"{float(f'{x:.3g}'):g} µJ"


def energy_pair(row: dict[str, Any], per: str) -> str:
    """A costed row's energy per ``per`` with memory and in operations, beside its ANN's."""
    return (f"{microjoules(row['energy (µJ)'])} per {per} ({microjoules(row['energy, ops (µJ)'])} in operations), "
            f"against the ANN's {microjoules(row['ANN energy (µJ)'])} ({microjoules(row['ANN energy, ops (µJ)'])})")


def listing(items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    if not items:
        return "none"
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def span(values: Iterable[int]) -> str:
    """``13 each`` or ``12 to 14``."""
    values = sorted(values)
    if not values:
        raise ProseError("no readings of that kind in the record")
    return f"{values[0]} each" if values[0] == values[-1] else f"{values[0]} to {values[-1]}"


def runs(numbers: list[int]) -> str:
    """Iterations as runs: ``2–6``, ``2, 3 and 5``, ``2–4, 6 and 7``."""
    parts, start = [], None
    for i, n in enumerate(numbers):
        if start is None:
            start = n
        if i + 1 == len(numbers) or numbers[i + 1] != n + 1:
            parts += [f"{start}–{n}"] if n > start + 1 else list(map(str, range(start, n + 1)))
            start = None
    return listing(parts)


# -- the values the papers define ------------------------------------------------------------------

Value = Callable[[Records], str]


def registered(providers: Sequence[str] = PROVIDERS) -> dict[str, Value]:
    """The values the ``providers`` define (each module's ``VALUES``), by name; a name two
    modules define is an error."""
    out: dict[str, Value] = {}
    where: dict[str, str] = {}
    for module in providers:
        for name, value in importlib.import_module(module).VALUES.items():
            if name in out:
                raise ProseError(f"the value {name!r} is defined by both {where[name]} and {module}")
            out[name], where[name] = value, module
    return out


class Prose:
    """The values of one profile's records, computed once each, on demand."""

    def __init__(self, folder: Path, providers: Sequence[str] = PROVIDERS):
        self.records = Records(folder)
        self.providers = tuple(providers)
        self._defined: Optional[dict[str, Value]] = None
        self._values: dict[str, str] = {}

    @property
    def defined(self) -> dict[str, Value]:
        """The values the providers define (imported on first use)."""
        if self._defined is None:
            self._defined = registered(self.providers)
        return self._defined

    def __getitem__(self, name: str) -> str:
        if name not in self._values:
            if name not in self.defined:
                raise ProseError(f"no value is named {name!r} ({listing(list(self.providers))} define "
                                 f"{', '.join(sorted(self.defined))})")
            try:
                self._values[name] = self.defined[name](self.records)
                if re.search(r"\b(nan|None|inf)\b", self._values[name]):
                    raise ProseError(f"the value renders as {self._values[name]!r}: a number in its record is empty")
            except ProseError as e:
                raise ProseError(f"{{{{ {name} }}}}: {e}") from None
            except (KeyError, IndexError) as e:
                raise ProseError(f"{{{{ {name} }}}}: the record lacks {e!r}: rerun its notebook") from None
            except Exception as e:  # a value that cannot be computed from what the record holds
                raise ProseError(f"{{{{ {name} }}}}: cannot be computed from its record "
                                 f"({type(e).__name__}: {e}): rerun its notebook") from None
        return self._values[name]


def expand(text: str, values: Mapping[str, str], where: str = "the chapter") -> str:
    """``text`` with every ``{{ name }}`` replaced by ``values[name]``; a failure names ``where``."""
    def sub(m: re.Match) -> str:
        try:
            return values[m[1]]
        except ProseError as e:
            raise ProseError(f"{where}: {e}") from None
        except KeyError:
            raise ProseError(f"{where}: no value is named {m[1]!r}") from None
    out = PLACEHOLDER.sub(sub, text)
    if "{{" in out:
        line = out[:out.index("{{")].count("\n") + 1
        raise ProseError(f"{where}, line {line}: a '{{{{' that is not a placeholder {{{{ name }}}}")
    return out


def expand_chapters(folder: Path, values: Mapping[str, str]) -> None:
    """Expand every chapter ``folder/*.md`` in place (the staged copy)."""
    for path in sorted(Path(folder).glob("*.md")):
        text = path.read_text()
        if "{{" in text:
            path.write_text(expand(text, values, where=f"book/{path.name}"))
