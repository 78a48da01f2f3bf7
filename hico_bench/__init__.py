"""hico-bench: a reproducible benchmark and evaluation harness for HiCo (CVPR 2022).

Importing the package installs the torchvision compatibility alias that pytorchvideo's transforms need, so that
``import hico_bench`` must come before ``import pytorchvideo.transforms``.
"""

from hico_bench import compat as _compat

_compat.install()

__version__ = "0.1.0"
