"""numba's on-disk cache of the query kernels, keyed on both kernel files.

numba stamps a cached function with the content of the file that defines it, not of the files its
callees come from: `_kernels.top_k` compiled with an older `_kernel_steps.py` would be loaded after
an upgrade that changed only that file, and rank with the old steps. These locators give every
function of the two files one stamp made of both files' contents, so a change to either recompiles
both. Imported by both files before they define anything.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

from numba.core.caching import CacheImpl, InTreeCacheLocator, UserWideCacheLocator

_FILES = tuple(Path(__file__).with_name(name) for name in ("_kernels.py", "_kernel_steps.py"))


def _stamp() -> str:
    return _digest(*((p.stat().st_mtime_ns, p.stat().st_size) for p in _FILES))


@functools.lru_cache(maxsize=4)
def _digest(*stats: tuple[int, int]) -> str:
    """Both files' contents hashed once per version of them (numba asks for every function)."""
    digest = hashlib.sha256()
    for path in _FILES:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _ours(py_file: str) -> bool:
    return Path(py_file).resolve() in {p.resolve() for p in _FILES}


class _BothFiles:
    """The stamp of both kernel files, for functions defined in either (other files: not ours)."""

    def get_source_stamp(self) -> Any:
        return _stamp()

    @classmethod
    def from_function(cls, py_func: Any, py_file: str) -> Any:
        return super().from_function(py_func, py_file) if _ours(py_file) else None  # type: ignore[misc]


class _InTree(_BothFiles, InTreeCacheLocator):
    pass


class _UserWide(_BothFiles, UserWideCacheLocator):
    pass


if _InTree not in CacheImpl._locator_classes:
    CacheImpl._locator_classes[:0] = [_InTree, _UserWide]
