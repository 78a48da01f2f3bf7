"""Make ``pytorchvideo.transforms`` import with the pinned torchvision.

pytorchvideo 0.1.5 imports ``torchvision.transforms.functional_tensor``, which torchvision renamed to
``torchvision.transforms._functional_tensor`` (same functions, same ``affine`` signature). Registering the old name in
``sys.modules`` before pytorchvideo is imported makes every pytorchvideo transform importable again. It relies on a
private torchvision module, which is why pyproject.toml pins torchvision exactly. ``hico_bench/__init__.py`` calls
:func:`install` so that importing the package is enough.
"""

from __future__ import annotations

import importlib
import sys

OLD_NAME = "torchvision.transforms.functional_tensor"
NEW_NAME = "torchvision.transforms._functional_tensor"


def install() -> None:
    """Register the old module name as an alias of the new one (idempotent; a no-op if the old name exists)."""
    if OLD_NAME in sys.modules:
        return
    try:
        importlib.import_module(OLD_NAME)
        return
    except ImportError:
        pass
    sys.modules[OLD_NAME] = importlib.import_module(NEW_NAME)
