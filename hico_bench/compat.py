"""Make ``pytorchvideo.transforms`` import with the pinned torchvision.

pytorchvideo 0.1.5 imports ``torchvision.transforms.functional_tensor``, which torchvision renamed to
``torchvision.transforms._functional_tensor`` (same functions, same ``affine`` signature). :func:`install` adds an
import hook that answers the old name with the new module, so every pytorchvideo transform imports again. The hook is
lazy: nothing is imported until somebody asks for the old name, so ``import hico_bench`` stays cheap. It relies on a
private torchvision module, which is why pyproject.toml pins torchvision exactly (and a test covers it).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

OLD_NAME = "torchvision.transforms.functional_tensor"
NEW_NAME = "torchvision.transforms._functional_tensor"


class _AliasLoader(importlib.abc.Loader):
    def create_module(self, spec):
        return importlib.import_module(NEW_NAME)

    def exec_module(self, module):
        pass  # already executed under its new name


class _AliasFinder(importlib.abc.MetaPathFinder):
    """Answers the old module name with the renamed module; other names go to the normal finders."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != OLD_NAME:
            return None
        return importlib.util.spec_from_loader(fullname, _AliasLoader())


def install() -> None:
    """Register the alias hook once (a no-op when already installed)."""
    if not any(isinstance(f, _AliasFinder) for f in sys.meta_path):
        sys.meta_path.append(_AliasFinder())
