"""Tests of occface_jax/data/scans.py (MICC Florence, NoW) on tiny fixtures in the published layouts."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import trimesh

from occface_jax.data.errors import DatasetLayoutError, RecordError
from occface_jax.data.scans import MiccFlorence, NoWDataset, load_scan, read_picked_points


def write_scan(path, seed):
    path.parent.mkdir(parents=True, exist_ok=True)
    mesh = trimesh.creation.icosphere(subdivisions=1, radius=80.0 + seed)
    mesh.export(path)
    return mesh


def write_micc(root):
    for s in (1, 2):
        subject = root / f"subject_{s:02d}"
        write_scan(subject / "Model" / "frontal1" / "obj" / f"1109201504{s}.obj", s)
        video_dir = subject / "Video" / "Indoor-Cooperative"
        video_dir.mkdir(parents=True)
        writer = cv2.VideoWriter(
            str(video_dir / "video.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 24)
        )
        for k in range(6):
            writer.write(np.full((24, 32, 3), 20 + 30 * k, np.uint8))
        writer.release()
    # subject 2 also has extracted frames for the outdoor video
    frames = root / "subject_02" / "Video" / "PTZ-Outdoor" / "frames"
    frames.mkdir(parents=True)
    for k in range(2):
        cv2.imwrite(str(frames / f"frame{k:04d}.png"), np.full((24, 32, 3), 200, np.uint8))


def test_micc_frames_from_videos_and_folders(tmp_path):
    write_micc(tmp_path)
    ds = MiccFlorence(tmp_path, frame_step=2)
    settings = [(f.subject, f.setting) for f in ds.frames]
    assert settings.count(("subject_01", "Indoor-Cooperative")) == 3  # frames 0, 2, 4 of 6
    assert settings.count(("subject_02", "PTZ-Outdoor")) == 2
    rec = ds[2]
    assert rec["frame"] == 4 and rec["image"].shape == (24, 32, 3)
    assert (
        abs(rec["image"].mean() - (20 + 30 * 4) / 255) < 0.03
    )  # frame 4's grey level (MJPG lossy)
    vertices, faces = load_scan(rec["scan_path"])
    ref = trimesh.creation.icosphere(subdivisions=1, radius=81.0)
    assert vertices.shape == ref.vertices.shape and faces.shape == ref.faces.shape
    np.testing.assert_allclose(np.linalg.norm(vertices, axis=1), 81.0, rtol=1e-5)
    with pytest.raises(DatasetLayoutError, match="subject_"):
        MiccFlorence(tmp_path / "subject_01")


PP = """<!DOCTYPE PickedPoints>
<PickedPoints>
 <DocumentData>
  <DataFileName name="scan.obj"/>
 </DocumentData>
{points}
</PickedPoints>
"""


def write_now(root):
    subject, challenge, image = "FaMoS_180424_03335_TA", "multiview_neutral", "IMG_0101.jpg"
    line = f"{subject}/{challenge}/{image}"
    (root / "imagepathsvalidation.txt").write_text(line + "\nFaMoS_missing/selfie/IMG_1.jpg\n")
    pics = root / "final_release_version" / "iphone_pictures" / subject / challenge
    pics.mkdir(parents=True)
    cv2.imwrite(str(pics / image), np.full((40, 30, 3), 128, np.uint8))
    boxes = root / "final_release_version" / "detected_face" / subject / challenge
    boxes.mkdir(parents=True)
    np.save(boxes / "IMG_0101.npy", {"left": 3.0, "top": 4.0, "right": 27.0, "bottom": 36.0})
    write_scan(root / "scans" / subject / "natural_head_rotation.000001.obj", 0)
    lmk = np.arange(21, dtype=float).reshape(7, 3) * 1.5
    pts = "\n".join(
        f' <point x="{x}" y="{y}" z="{z}" active="1" name="{i}"/>'
        for i, (x, y, z) in enumerate(lmk)
    )
    (root / "scans_lmks_onlypp" / subject).mkdir(parents=True)
    (
        root / "scans_lmks_onlypp" / subject / "natural_head_rotation.000001_picked_points.pp"
    ).write_text(PP.format(points=pts))
    return lmk


def test_now_records_and_missing_subjects(tmp_path):
    lmk = write_now(tmp_path)
    ds = NoWDataset(tmp_path, "val", image_size=(20, 15))
    assert len(ds) == 2
    rec = ds[0]
    assert rec["subject"] == "FaMoS_180424_03335_TA" and rec["challenge"] == "multiview_neutral"
    assert rec["image"].shape == (20, 15, 3)
    np.testing.assert_allclose(rec["box"], [1.5, 2.0, 13.5, 18.0])  # halved with the image
    np.testing.assert_allclose(rec["scan_landmarks"], lmk)
    np.testing.assert_allclose(
        read_picked_points(
            tmp_path
            / "scans_lmks_onlypp"
            / rec["subject"]
            / "natural_head_rotation.000001_picked_points.pp"
        ),
        lmk,
    )
    with pytest.raises(RecordError):
        ds[1]
    with pytest.raises(DatasetLayoutError, match="imagepathstest"):
        NoWDataset(tmp_path, "test")
