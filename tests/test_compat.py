import subprocess
import sys


def test_pytorchvideo_transforms_import_after_hico_bench():
    # A fresh interpreter: the shim must work from a clean import state, and importing the package stays lazy.
    code = (
        "import sys, hico_bench\n"
        "assert 'torchvision' not in sys.modules, 'import hico_bench must not import torchvision'\n"
        "import pytorchvideo.transforms as T\n"
        "import torchvision.transforms._functional_tensor as new\n"
        "import torchvision.transforms.functional_tensor as old\n"
        "assert old is new\n"
        "assert callable(T.create_video_transform) and callable(T.RandAugment)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_without_the_shim_pytorchvideo_transforms_fail():
    # Proves the shim is what makes the import work with the pinned torchvision (if this starts passing,
    # torchvision or pytorchvideo changed and the shim may be dropped).
    code = "import pytorchvideo.transforms"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode != 0
    assert "functional_tensor" in result.stderr
