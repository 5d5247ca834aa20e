"""Frame sources on the real sample media, and clear errors for broken input."""

from __future__ import annotations

import shutil

import pytest

from edge.sources import (
    ImageFolderSource,
    SourceError,
    VideoFileSource,
    open_source,
)


def test_video_file_yields_every_frame_in_rgb_with_increasing_time(sample):
    source = VideoFileSource(sample("single_face.mp4"), realtime=False)
    frames = list(source.frames())
    source.close()
    assert len(frames) == 72
    assert frames[0].image.shape == (360, 640, 3)
    times = [f.t_ms for f in frames]
    assert times == sorted(set(times))
    assert times[-1] == pytest.approx(71 * 1000 / 30, abs=1)


def test_looping_video_keeps_stream_time_increasing(sample):
    source = VideoFileSource(sample("single_face.mp4"), loop=True, realtime=False)
    frames = []
    for frame in source.frames():
        frames.append(frame)
        if len(frames) == 150:
            break
    source.close()
    assert [f.index for f in frames] == list(range(150))
    assert all(b.t_ms > a.t_ms for a, b in zip(frames, frames[1:], strict=False))


def test_realtime_pacing_follows_the_file_frame_rate(sample):
    import time

    source = VideoFileSource(sample("single_face.mp4"), realtime=True)
    start = time.monotonic()
    count = sum(1 for _ in zip(range(16), source.frames(), strict=False))
    elapsed = time.monotonic() - start
    source.close()
    assert count == 16
    assert elapsed >= 15 / 30 - 0.02  # 16 frames at 30 fps span 0.5 s of stream time


def test_missing_video_is_a_clear_error(tmp_path):
    with pytest.raises(SourceError, match="does not exist"):
        VideoFileSource(tmp_path / "nope.mp4")


def test_corrupt_video_is_a_clear_error(tmp_path, sample):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(sample("single_face.mp4").read_bytes()[:600] + b"\x00garbage" * 100)
    with pytest.raises(SourceError, match="not a readable video"):
        VideoFileSource(broken)
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video")
    with pytest.raises(SourceError, match="not a readable video"):
        open_source(str(text))


def test_image_folder_yields_readable_images_in_name_order(tmp_path, sample):
    for name in ("single_face.jpg", "multi_face.jpg"):
        shutil.copy(sample(name), tmp_path / name)
    (tmp_path / "zz-broken.jpg").write_bytes(b"not an image")
    source = open_source(str(tmp_path))
    assert isinstance(source, ImageFolderSource) and source.still
    frames = list(ImageFolderSource(tmp_path).frames())
    assert len(frames) == 2  # the unreadable one is skipped with a warning
    assert frames[0].image.shape[2] == 3


def test_empty_folder_is_a_clear_error(tmp_path):
    with pytest.raises(SourceError, match="holds no images"):
        ImageFolderSource(tmp_path)
