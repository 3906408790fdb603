"""Attributes of a package loaded on first use (PEP 562), so importing the package stays light.

`import stocksent` must not load torch, pandas or pyarrow (`stocksent --help` answers at once, a
notebook's `import` costs nothing); the public names are looked up only when first touched.

>>> __getattr__, __dir__ = lazy_attributes(__name__, {"BatchScorer": "stocksent.batch.scorer"})  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_attributes(package: str, public: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A module `__getattr__` and `__dir__` for `package`: `public` maps each name to its module."""

    def __getattr__(name: str) -> Any:
        module = public.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)  # later lookups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted({*public, *vars(sys.modules[package])})

    return __getattr__, __dir__
