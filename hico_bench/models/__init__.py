"""Backbones (``backbones.py``), heads (``heads.py``) and loading weights from checkpoint files (``pretrained.py``).

``hico_bench.models.load_pretrained`` and ``hico_bench.models.CONVERTERS`` are those of
:mod:`hico_bench.models.pretrained`, imported on first use, so that importing a submodule (say ``backbones``, which a
converter's module may need) never imports the loader first.
"""

from __future__ import annotations

__all__ = ["CONVERTERS", "load_pretrained"]


def __getattr__(name: str):
    if name in __all__:
        from hico_bench.models import pretrained

        return getattr(pretrained, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
