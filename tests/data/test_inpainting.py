"""Tests of occface_jax/data/inpainting.py: inpainting pairs, real face crops, source mixtures."""

from __future__ import annotations

import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy import ndimage
from skimage import feature

from occface_jax.data.augment import OccludedPhotos
from occface_jax.data.contour import canny_contour
from occface_jax.data.errors import DatasetLayoutError
from occface_jax.data.inpainting import FaceCrops, InpaintingPairs, Mixture
from occface_jax.data.occluders import OCCLUDERS, OcclusionConfig
from occface_jax.data.records import read_image, resize_image, scale_points
from occface_jax.faces.align import align_face
from occface_jax.faces.landmarks_io import read_dlib_xml, write_pts

KEYS = {
    "image",
    "clean",
    "mask",
    "gray",
    "gray_clean",
    "contour",
    "mask_ratio",
    "freeform",
    "index",
}


def write_image(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def luma(image: np.ndarray) -> np.ndarray:
    return 0.299 * image[..., 0] + 0.587 * image[..., 1] + 0.114 * image[..., 2]


class ToySource:
    """Occluded-face records at 48 px: a face ellipse with features over a gradient, a rectangle
    occluder (with a fringe below alpha 0.5) on the face; ``rng_draw`` is the first draw of
    ``default_rng([seed, i])`` (what a source seeded like the pairs would use)."""

    def __init__(self, n: int = 12, size: int = 48, seed: int = 0, empty_region: bool = False):
        self.n, self.size, self.seed, self.empty_region = n, size, seed, empty_region

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.n:
            raise IndexError(index)
        rng = np.random.default_rng([self.seed, index])
        u = rng.random()
        s = self.size
        yy, xx = np.mgrid[:s, :s] + 0.5
        clean = np.stack([xx / s, yy / s, np.full((s, s), 0.3)], -1).astype(np.float32)
        region = ((xx - s / 2) / (0.3 * s)) ** 2 + ((yy - s / 2) / (0.4 * s)) ** 2 <= 1
        clean[region] = rng.uniform(0.5, 0.9, 3)
        for cx in (0.4 * s, 0.6 * s):  # eyes
            clean[np.hypot(xx - cx, yy - 0.42 * s) < 0.05 * s] = 0.1
        x0, y0 = rng.integers(int(0.25 * s), int(0.5 * s), 2)
        occluder = np.zeros((s, s), np.float32)
        occluder[y0 : y0 + s // 4, x0 : x0 + s // 5] = 1.0
        alpha = np.maximum(occluder, 0.3 * ndimage.binary_dilation(occluder > 0))
        occluded = clean * (1 - alpha[..., None]) + alpha[..., None] * np.float32([0.9, 0.1, 0.1])
        face = region & (not self.empty_region)
        return {
            "clean": clean,
            "occluded": occluded.astype(np.float32),
            "mask": ((alpha >= 0.5) & face).astype(np.float32),
            "face_region": face.astype(np.float32),
            "rng_draw": u,
        }


def test_records_have_exactly_the_documented_keys_and_types():
    pairs = InpaintingPairs(ToySource(), seed=1, p_freeform=0.5)
    assert len(pairs) == 12
    for i in range(len(pairs)):
        r = pairs[i]
        assert set(r) == KEYS
        for key in ("image", "clean"):
            assert r[key].shape == (48, 48, 3) and r[key].dtype == np.float32
        for key in ("mask", "gray", "gray_clean", "contour"):
            assert r[key].shape == (48, 48) and r[key].dtype == np.float32
        assert r["mask_ratio"].dtype == np.float32 and r["mask_ratio"].shape == ()
        assert r["freeform"].dtype == np.bool_ and r["index"].dtype == np.int64 and r["index"] == i
        assert set(np.unique(r["mask"])) <= {0.0, 1.0}
    assert {bool(pairs[i]["freeform"]) for i in range(12)} == {False, True}


def test_occluder_samples_keep_the_occluded_photo_and_mask():
    source = ToySource()
    pairs = InpaintingPairs(source, p_freeform=0.0)
    for i in range(4):
        r, s = pairs[i], source[i]
        assert not r["freeform"]
        np.testing.assert_array_equal(r["image"], s["occluded"])
        np.testing.assert_array_equal(r["clean"], s["clean"])
        np.testing.assert_array_equal(r["mask"], s["mask"])


@pytest.mark.parametrize("dilation", [1 / 48, 2 / 48, 0.07])
def test_dilation_grows_the_mask_by_a_disk(dilation):
    source = ToySource()
    pairs = InpaintingPairs(source, p_freeform=0.0, dilation=dilation)
    radius = round(dilation * 48)
    y, x = np.ogrid[-radius : radius + 1, -radius : radius + 1]
    structure = x**2 + y**2 <= radius**2
    for i in range(4):
        expected = ndimage.binary_dilation(source[i]["mask"] > 0, structure=structure)
        np.testing.assert_array_equal(pairs[i]["mask"], expected.astype(np.float32))


def test_dilation_by_two_pixels_counted_by_hand():
    """A lone pixel becomes the 13 lattice points within 2 px; a 10 x 10 square grows 2 px on each
    side with corners rounded: 100 + 4 * 20 + 4 (only (1, 1) fits in each corner) = 184."""

    class Fixed(ToySource):
        def __init__(self, mask):
            super().__init__(n=1)
            self.fixed = mask

        def __getitem__(self, index):
            return {**super().__getitem__(index), "mask": self.fixed}

    dot = np.zeros((48, 48), np.float32)
    dot[20, 30] = 1
    square = np.zeros((48, 48), np.float32)
    square[10:20, 15:25] = 1
    for mask, area in ((dot, 13), (square, 184)):
        hole = InpaintingPairs(Fixed(mask), p_freeform=0.0, dilation=0.015 * 128 / 48)[0]["mask"]
        assert hole.sum() == area
    assert InpaintingPairs(Fixed(dot), p_freeform=0.0, dilation=0.0)[0]["mask"].sum() == 1


def test_gray_contour_and_mask_ratio_against_direct_computations():
    pairs = InpaintingPairs(ToySource(), seed=2, p_freeform=0.5, dilation=0.03)
    source = ToySource()
    for i in range(8):
        r = pairs[i]
        np.testing.assert_allclose(r["gray"], luma(r["image"]), atol=1e-6)
        np.testing.assert_allclose(r["gray_clean"], luma(r["clean"]), atol=1e-6)
        edges = feature.canny(
            luma(source[i]["clean"]).astype(np.float64),
            sigma=1.8,
            low_threshold=0.1,
            high_threshold=0.2,
        )
        np.testing.assert_array_equal(r["contour"], edges.astype(np.float32))
        np.testing.assert_array_equal(r["contour"], canny_contour(r["clean"]))
        assert r["contour"].sum() > 0
        region = source[i]["face_region"] > 0.5
        count = sum(r["mask"][y, x] > 0 for y, x in zip(*np.nonzero(region), strict=True))
        assert r["mask_ratio"] == pytest.approx(count / region.sum(), abs=1e-6)


def test_free_form_samples_are_the_clean_face_with_a_gray_hole_in_its_box():
    source = ToySource(n=30)
    pairs = InpaintingPairs(source, seed=4, p_freeform=1.0)
    ratios = []
    for i in range(len(pairs)):
        r, s = pairs[i], source[i]
        assert r["freeform"]
        hole = r["mask"] > 0
        assert hole.any()
        np.testing.assert_array_equal(r["image"][~hole], s["clean"][~hole])
        np.testing.assert_array_equal(r["image"][hole], 0.5)
        rows, cols = np.nonzero(s["face_region"])
        hole_rows, hole_cols = np.nonzero(hole)
        assert hole_rows.min() >= rows.min() and hole_rows.max() <= rows.max()
        assert hole_cols.min() >= cols.min() and hole_cols.max() <= cols.max()
        ratios.append(float(r["mask_ratio"]))
    assert 0 < min(ratios) and max(ratios) < 0.8
    # a sample without a face region gets its hole anywhere in the image, and a zero ratio
    r = InpaintingPairs(ToySource(empty_region=True), p_freeform=1.0)[0]
    assert r["mask"].sum() > 0 and r["mask_ratio"] == 0


def test_free_form_fraction_and_independence_from_a_source_seeded_alike():
    """Freeform samples occur at rate p (binomial, 4 sigma) and are not picked by the source's own
    first draw (the pairs and the source are both seeded 0)."""
    n, p = 400, 0.25
    source = ToySource(n=n, seed=0)
    pairs = InpaintingPairs(source, seed=0, p_freeform=p)
    flags = np.array([bool(pairs[i]["freeform"]) for i in range(n)])
    draws = np.array([source[i]["rng_draw"] for i in range(n)])
    assert abs(flags.mean() - p) < 4 * np.sqrt(p * (1 - p) / n)
    assert abs(draws[flags].mean() - draws[~flags].mean()) < 0.12  # 0.5 if they shared the stream


def test_pairs_are_deterministic_by_index_and_picklable():
    pairs = InpaintingPairs(ToySource(), seed=3, p_freeform=0.5, dilation=0.03)
    again = pickle.loads(pickle.dumps(pairs))
    other = InpaintingPairs(ToySource(), seed=4, p_freeform=0.5, dilation=0.03)
    for i in (0, 5, 11):
        a, b, c = pairs[i], pairs[i], again[i]
        for key in KEYS:
            np.testing.assert_array_equal(a[key], b[key])
            np.testing.assert_array_equal(a[key], c[key])
    flags = [bool(pairs[i]["freeform"]) for i in range(12)]
    assert flags != [bool(other[i]["freeform"]) for i in range(12)] or any(
        not np.array_equal(pairs[i]["mask"], other[i]["mask"]) for i in range(12) if flags[i]
    )
    assert "InpaintingPairs(" in repr(pairs)
    with pytest.raises(IndexError):
        pairs[12]


def test_dilation_covers_the_fringe_of_opaque_occluders_on_photos(tmp_path, make_face_photo):
    """Real occluders (not the spectacles' clear lenses, not hair) over aligned face crops at 128 px:
    the occluder mask dilated by 0.015 (2 px) covers every changed pixel of the face region (without
    dilation the soft fringe, alpha < 0.5, is left out)."""
    for i in range(2):
        image, landmarks = make_face_photo(160, seed=i)
        write_image(tmp_path / f"f{i}.png", image)
        write_pts(tmp_path / f"f{i}.pts", landmarks)
    kinds = tuple(k for k in OCCLUDERS if k not in ("glasses", "sunglasses", "hair"))
    crops = FaceCrops(tmp_path, 128)
    covered = {0.0: [], 0.015: []}
    for seed in range(6):
        photos = OccludedPhotos(crops, seed=seed, config=OcclusionConfig(kinds=kinds))
        for dilation in covered:
            pairs = InpaintingPairs(photos, seed=seed, p_freeform=0.0, dilation=dilation)
            for i in range(len(pairs)):
                r, face = pairs[i], photos[i]["face_region"] > 0.5
                changed = (np.abs(r["image"] - r["clean"]).max(-1) > 2 / 255) & face
                covered[dilation].append((changed & (r["mask"] > 0)).sum() / changed.sum())
    assert min(covered[0.015]) >= 0.99  # observed: 1.0
    assert min(covered[0.0]) < 0.99


# ---------------------------------------------------------------------------------------------- FaceCrops


def write_dlib_xml(path: Path, photos: dict[str, list[np.ndarray]]) -> None:
    """imglab XML: integer 0-based pixel indices (the project's x - 0.5)."""
    lines = ["<?xml version='1.0' encoding='ISO-8859-1'?>", "<dataset>", "<images>"]
    for name, faces in photos.items():
        lines.append(f"  <image file='{name}'>")
        for lm in faces:
            x0, y0 = np.floor(lm.min(0)).astype(int)
            w, h = np.ceil(lm.max(0) - lm.min(0)).astype(int)
            lines.append(f"    <box top='{y0}' left='{x0}' width='{w}' height='{h}'>")
            for k, (x, y) in enumerate(np.round(lm - 0.5).astype(int)):
                lines.append(f"      <part name='{k:02d}' x='{x}' y='{y}'/>")
            lines.append("    </box>")
        lines.append("  </image>")
    path.write_text("\n".join(lines + ["</images>", "</dataset>"]) + "\n")


@pytest.fixture
def crops_folder(tmp_path: Path, make_face_photo) -> tuple[Path, np.ndarray]:
    """a.png (one face, a.pts), photos/b.png (the same face twice, side by side, in a dlib XML) and an
    unannotated c.png; the drawing's landmarks rounded to what the XML can hold."""
    face, landmarks = make_face_photo(96, seed=0)
    landmarks = np.round(landmarks - 0.5) + 0.5
    write_image(tmp_path / "a.png", face)
    write_pts(tmp_path / "a.pts", landmarks)
    write_image(tmp_path / "photos" / "b.png", np.concatenate([face, face], axis=1))
    shifted = landmarks + [96, 0]
    write_dlib_xml(
        tmp_path / "photos" / "faces_with_face_landmarks.xml",
        {"b.png": [landmarks, shifted], "gone.png": [landmarks]},
    )
    write_image(tmp_path / "c.png", face)
    return tmp_path, landmarks


def test_face_crops_are_the_aligned_crops_of_every_annotated_face(crops_folder):
    root, landmarks = crops_folder
    crops = FaceCrops(root, image_size=112)
    assert len(crops) == 3
    assert [crops[i]["path"] for i in range(3)] == ["a.png#0", "photos/b.png#0", "photos/b.png#1"]
    assert crops.missing == [str(root / "photos" / "gone.png")]
    photos = [(root / "a.png", landmarks), (root / "photos" / "b.png", landmarks)]
    photos.append((root / "photos" / "b.png", landmarks + [96, 0]))
    for i, (photo, lm) in enumerate(photos):
        aligned = align_face(read_image(photo), lm)
        record = crops[i]
        assert set(record) == {"image", "landmarks", "path"}
        assert record["image"].shape == (112, 112, 3) and record["image"].dtype == np.float32
        assert record["landmarks"].shape == (68, 2) and record["landmarks"].dtype == np.float32
        expected = resize_image(np.asarray(aligned.image, np.float32), (112, 112))
        np.testing.assert_allclose(record["image"], expected, atol=1e-6)
        expected_lm = scale_points(aligned.landmarks, (224, 224), (112, 112))
        np.testing.assert_allclose(record["landmarks"], expected_lm, atol=1e-4)
    # the same face anywhere in a photo gives the same crop (the alignment follows the landmarks)
    np.testing.assert_allclose(crops[1]["landmarks"], crops[0]["landmarks"], atol=1e-3)
    np.testing.assert_allclose(crops[2]["landmarks"], crops[0]["landmarks"], atol=1e-3)
    assert np.abs(crops[2]["image"] - crops[1]["image"]).mean() < 1e-3
    # Deng's crop (no rotation) keeps the eyes level, a little above the middle
    left, right = crops[0]["landmarks"][36:42].mean(0), crops[0]["landmarks"][42:48].mean(0)
    assert abs(left[1] - right[1]) < 0.5 and 0.25 * 112 < left[1] < 0.5 * 112
    assert left[0] < 56 < right[0]


def test_face_crops_decode_lazily_and_pickle_without_their_cache(crops_folder):
    root, _ = crops_folder
    crops = FaceCrops(root, image_size=64)
    assert not crops._crops
    first = crops[2]
    assert len(crops._crops) == 2  # both faces of b.png aligned on its one decoding
    crops[2]["image"][:] = 0  # records are copies: the kept crop is untouched
    np.testing.assert_array_equal(crops[2]["image"], first["image"])
    again = pickle.loads(pickle.dumps(crops))
    assert not again._crops
    np.testing.assert_array_equal(again[2]["image"], first["image"])
    assert "FaceCrops(" in repr(crops) and "3 faces" in repr(crops)


def test_face_crops_through_occluders_to_inpainting_pairs(crops_folder):
    root, _ = crops_folder
    pairs = InpaintingPairs(OccludedPhotos(FaceCrops(root, 64), seed=0), seed=0, dilation=0.015)
    for i in range(len(pairs)):
        r = pairs[i]
        assert set(r) == KEYS and r["image"].shape == (64, 64, 3)
        assert r["mask"].sum() > 0 and 0 < r["mask_ratio"] < 1


def test_a_folder_without_annotated_faces_is_a_one_line_error(tmp_path, crops_folder):
    empty = tmp_path / "empty"
    empty.mkdir()
    unannotated = tmp_path / "unannotated"
    write_image(unannotated / "c.png", np.zeros((20, 20, 3), np.uint8))
    (unannotated / "c.pts").write_text("version: 1\nn_points: 2\n{\n1 1\n2 2\n}\n")  # not 68 points
    for folder in (empty, unannotated):
        with pytest.raises(DatasetLayoutError) as err:
            FaceCrops(folder, 64)
        message = str(err.value)
        assert "\n" not in message and str(folder) in message
        assert ".pts" in message and "_with_face_landmarks.xml" in message
    with pytest.raises(DatasetLayoutError, match="no such folder"):
        FaceCrops(tmp_path / "absent", 64)


# ---------------------------------------------------------------------------------------------- Mixture


class Numbers:
    """Records {"value": (name, j)}, ``n`` of them."""

    def __init__(self, name: int, n: int) -> None:
        self.name, self.n = name, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.n:
            raise IndexError(index)
        return {"value": (self.name, int(index))}


def test_mixture_draws_sources_in_their_fractions_and_records_uniformly():
    sizes, fractions, n = (5, 7, 11), (0.2, 0.5, 0.3), 6000
    mixture = Mixture([Numbers(k, m) for k, m in enumerate(sizes)], fractions, size=n, seed=1)
    assert len(mixture) == n
    records = [mixture[i] for i in range(n)]
    chosen = np.array([int(r["source"]) for r in records])
    assert all(r["value"][0] == r["source"] for r in records)
    for k, f in enumerate(fractions):
        assert abs((chosen == k).mean() - f) < 4 * np.sqrt(f * (1 - f) / n)
        counts = np.bincount(
            [r["value"][1] for r in records if r["value"][0] == k], minlength=sizes[k]
        )
        assert len(counts) == sizes[k]
        m, q = (chosen == k).sum(), 1 / sizes[k]
        assert np.all(np.abs(counts - m * q) < 4 * np.sqrt(m * q * (1 - q)))


def test_mixture_is_deterministic_picklable_and_checked():
    sources = [Numbers(0, 4), Numbers(1, 9), Numbers(2, 3)]
    mixture = Mixture(sources, [1, 0, 3], seed=5)  # fractions are normalised
    assert len(mixture) == 16
    again = pickle.loads(pickle.dumps(mixture))
    values = [mixture[i]["value"] for i in range(16)]
    assert values == [again[i]["value"] for i in range(16)]
    assert values == [Mixture(sources, [1, 0, 3], seed=5)[i]["value"] for i in range(16)]
    assert values != [Mixture(sources, [1, 0, 3], seed=6)[i]["value"] for i in range(16)]
    assert all(
        v[0] != 1 for v in [Mixture(sources, [1, 0, 3], size=500)[i]["value"] for i in range(500)]
    )
    assert isinstance(mixture[0]["source"], np.int64)
    assert repr(mixture) == repr(again) and "Mixture(" in repr(mixture)
    with pytest.raises(IndexError):
        mixture[16]
    with pytest.raises(ValueError, match="one fraction per source"):
        Mixture(sources, [1, 2])
    with pytest.raises(ValueError, match="positive sum"):
        Mixture(sources, [0, 0, 0])
    with pytest.raises(ValueError, match="empty"):
        Mixture([Numbers(0, 0), Numbers(1, 2)], [1, 1])


def test_mixture_of_inpainting_pairs_keeps_their_records():
    a = InpaintingPairs(ToySource(n=6, seed=0), seed=0, p_freeform=0.0)
    b = InpaintingPairs(ToySource(n=4, seed=1), seed=0, p_freeform=1.0)
    mixture = Mixture([a, b], [0.5, 0.5], seed=0)
    for i in range(len(mixture)):
        record = mixture[i]
        k, j = mixture.choose(i)
        assert set(record) == KEYS | {"source"} and record["source"] == k
        assert bool(record["freeform"]) == (k == 1)
        np.testing.assert_array_equal(record["mask"], [a, b][k][j]["mask"])


def test_dlib_xml_writer_round_trips_through_the_reader(tmp_path, make_face_photo):
    """The test's own XML writer agrees with ``read_dlib_xml`` (so the FaceCrops tests test FaceCrops)."""
    _, landmarks = make_face_photo(96)
    landmarks = np.round(landmarks - 0.5) + 0.5
    write_dlib_xml(tmp_path / "x_with_face_landmarks.xml", {"p.png": [landmarks]})
    faces = read_dlib_xml(tmp_path / "x_with_face_landmarks.xml")["p.png"]
    np.testing.assert_array_equal(faces[0].landmarks, landmarks)
