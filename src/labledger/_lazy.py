"""A package's public names loaded on first use: the ``__getattr__`` of its ``__init__``.

A package whose ``__init__`` must stay cheap (``init()`` imports it) lists its lazily
loaded names in a ``_LAZY`` table (``name -> submodule``), imports them under
``TYPE_CHECKING`` for the type checker, and sets ``__getattr__ = lazy_getattr(__name__,
_LAZY)``. ``tests/test_layers.py`` reads ``_LAZY`` tables as imports of the package.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_getattr"]


def lazy_getattr(package: str, table: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``package.<table[name]>`` and returns its ``name``."""

    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        full = f"{package}.{module}"
        # __import__, not importlib.import_module: init() reaches here, and the importlib
        # package costs a millisecond to load
        __import__(full)
        return getattr(sys.modules[full], name)

    return __getattr__
