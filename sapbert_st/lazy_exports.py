"""Package attributes imported on first use (PEP 562), so ``import sapbert_st`` stays light.

``sapbert_st`` and ``sapbert_st.data`` re-export names whose modules pull in torch,
sentence-transformers or datasets; building the CLI's parser must not pay for that.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str], namespace: dict[str, Any]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: ``exports`` maps a public name to the
    module that defines it; a name is imported when first read, then cached in
    ``namespace`` (the package's ``globals()``) so later look-ups skip ``__getattr__``."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
