"""Backbones (``backbones.py``), heads (``heads.py``) and loading weights from checkpoint files (``pretrained.py``).

``hico_bench.models.load_pretrained`` and ``hico_bench.models.CONVERTERS`` are those of
:mod:`hico_bench.models.pretrained`, imported on first use, so that importing a submodule (say ``backbones``, which a
converter's module may need) never imports the loader first.

:data:`BACKBONE_NAMES` lists every backbone of ``backbones.BACKBONES`` without importing torch, so that checking a
configuration (Snakemake does it whenever it starts) takes milliseconds; a test keeps the two equal.
"""

from __future__ import annotations

__all__ = ["CONVERTERS", "load_pretrained"]

#: The backbones from the ecosystem (pytorchvideo builders and the VideoMAE-style ViTs).
ECOSYSTEM_BACKBONES = ("x3d_s", "x3d_m", "slow_r50", "csn_r101", "r2plus1d_r50", "mvit_b", "vit_s16", "vit_b16")
#: Every backbone name, in the order of ``backbones.BACKBONES``.
BACKBONE_NAMES = ("s3dg", "r3d18", "r2plus1d10", "r2plus1d18", "tiny", *ECOSYSTEM_BACKBONES)


def __getattr__(name: str):
    if name in __all__:
        from hico_bench.models import pretrained

        return getattr(pretrained, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
