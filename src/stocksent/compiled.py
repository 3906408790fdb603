"""The optional compiled core, `stocksent._native` (C++): whether this install has it and what it runs on.

The package works without it. Every caller asks `native()` and takes the reference path (text.py's
regular expressions, the vocabulary's dict, the torch engines) when it answers None: when the
extension was not built (no C++ compiler when the package was installed), cannot be loaded, or is
switched off with the environment variable STOCKSENT_NATIVE=0. `status()` says which and why;
`stocksent bench` and the service's /v1/model report it.

>>> status()["core"]   # doctest: +SKIP
'native'
"""

from __future__ import annotations

import importlib
import logging
import os
from types import ModuleType

log = logging.getLogger(__name__)

SWITCH = "STOCKSENT_NATIVE"  # "0": use the reference path even where the extension is installed
_UNSET = object()
_module: ModuleType | None | object = _UNSET
_reason = ""


def native() -> ModuleType | None:
    """The extension module, or None (see `status()["reason"]`); imported once per process."""
    global _module, _reason
    if _module is _UNSET:
        if os.environ.get(SWITCH, "1").strip() == "0":
            _module, _reason = None, f"switched off ({SWITCH}=0)"
        else:
            try:  # by name: the package's __init__ is no part of it
                _module = importlib.import_module("stocksent._native")
            except ImportError as err:  # the reason without paths: /v1/model shows it
                _module, _reason = None, "not built for this install" if err.name else "cannot be loaded here"
                log.debug("compiled core unavailable: %s", err)
    return _module  # type: ignore[return-value]


def status() -> dict:
    """{"core": "native" | "reference", "reason": why the reference, "cpu": what the CPU runs}.

    >>> status()   # doctest: +SKIP
    {'core': 'native', 'reason': '', 'cpu': {'avx2_fma': True, 'avx512': True, 'avx512_bf16': True, 'amx_bf16': True}}
    """
    module = native()
    if module is None:
        return {"core": "reference", "reason": _reason, "cpu": {}}
    return {"core": "native", "reason": "", "cpu": module.cpu_features()}


def reset() -> None:
    """Forget the cached answer (tests switch STOCKSENT_NATIVE on and off)."""
    global _module, _reason
    _module, _reason = _UNSET, ""
