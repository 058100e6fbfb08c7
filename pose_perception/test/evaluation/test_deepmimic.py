"""The one DeepMimic clip reader: every shipped clip fits the layout; a malformed file is refused by name."""

import json

import pytest

pybullet_data = pytest.importorskip("pybullet_data")

from pose_perception.evaluation.deepmimic import FRAME_LENGTH, MocapClipError, read_clip  # noqa: E402


def test_shipped_clips_have_the_layout():
    from pathlib import Path

    motions = Path(pybullet_data.getDataPath()) / "data" / "motions"
    frames, wraps = read_clip(motions / "humanoid3d_walk.txt")
    assert frames.shape[1] == FRAME_LENGTH == 44 and len(frames) > 10
    assert isinstance(wraps, bool)


@pytest.mark.parametrize(
    "text", ["not json", json.dumps({"Frames": [[0.0] * 43, [0.0] * 43]}), json.dumps({"Frames": [[0.0] * 44]}), "{}"]
)
def test_malformed_clip_is_refused_with_its_path(tmp_path, text):
    path = tmp_path / "bad_clip.txt"
    path.write_text(text)
    with pytest.raises(MocapClipError, match="bad_clip.txt"):
        read_clip(path)
