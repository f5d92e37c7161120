"""Converting the original ICT-FaceKit files must reproduce the shipped default model."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from occface_jax.errors import ModelFileError
from occface_jax.morphable import ict
from occface_jax.morphable.ict import convert_ict, fan_triangulate


def test_fan_triangulation_keeps_order_and_winding():
    polys = [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9, 10, 11]]
    expected = [[0, 1, 2], [0, 2, 3], [4, 5, 6], [7, 8, 9], [7, 9, 10], [7, 10, 11]]
    assert fan_triangulate(polys).tolist() == expected


def test_sample_conversion_agrees_with_shipped_npz(shared_dir):
    sample = shared_dir / "models" / "ict_sample"
    converted = convert_ict(sample)
    with np.load(shared_dir / "models" / "ict_face_default.npz", allow_pickle=False) as shipped:
        for key in (
            "triangles",
            "landmarks68",
            "face_region",
            "face_region_triangles",
            "part_id",
            "source_vertex_index",
        ):
            np.testing.assert_array_equal(converted[key], shipped[key], err_msg=key)
        np.testing.assert_allclose(converted["mean_shape"], shipped["mean_shape"], atol=1e-4)
        np.testing.assert_allclose(
            converted["centre_offset_mm"], shipped["centre_offset_mm"], atol=1e-4
        )
        # The sample holds identity000/001 (the first two identity columns) and two expressions.
        np.testing.assert_allclose(converted["id_basis"], shipped["id_basis"][:, :2], atol=1e-4)
        names = list(shipped["exp_names"])
        cols = [names.index(str(e)) for e in converted["exp_names"]]
        assert sorted(str(e) for e in converted["exp_names"]) == ["jawOpen", "mouthSmile_L"]
        np.testing.assert_allclose(converted["exp_basis"], shipped["exp_basis"][:, cols], atol=1e-4)


def test_missing_and_mismatched_files(tmp_path, shared_dir):
    sample = shared_dir / "models" / "ict_sample"
    with pytest.raises(ModelFileError, match="lacks generic_neutral_mesh.obj"):
        convert_ict(tmp_path)
    for name in ("generic_neutral_mesh.obj", "vertex_indices.json"):
        shutil.copy(sample / name, tmp_path / name)
    lines = (sample / "identity000.obj").read_text().splitlines()
    first_v = next(i for i, line in enumerate(lines) if line.startswith("v "))
    del lines[first_v]  # one vertex short
    (tmp_path / "identity000.obj").write_text("\n".join(lines))
    with pytest.raises(ModelFileError, match="identity000.obj: 26718 vertices"):
        convert_ict(tmp_path, expressions=[])


def _naive_obj(path):
    """Independent line-by-line reading: vt (T, 2) and fan-split (v, vt) triangles."""
    vt, tris = [], []
    for line in path.read_text().splitlines():
        if line.startswith("vt "):
            vt.append([float(x) for x in line.split()[1:3]])
        elif line.startswith("f "):
            corners = [tuple(int(x) - 1 for x in tok.split("/")[:2]) for tok in line.split()[1:]]
            tris += [(corners[0], corners[i], corners[i + 1]) for i in range(1, len(corners) - 1)]
    return np.array(vt), np.array(tris)  # (F, 3, 2): corner, (v, vt)


def test_converter_uvs_follow_the_obj_corner_by_corner(shared_dir):
    sample = shared_dir / "models" / "ict_sample"
    converted = convert_ict(sample, identities=[], expressions=[])
    coords, uv_tris = converted["uv_coords"], converted["uv_triangles"]
    assert coords.min() >= 0 and coords.max() <= 1
    assert uv_tris.shape == converted["triangles"].shape
    assert tuple(converted["texture_size"]) == ict.ICT_TEXTURE_SIZE
    vt, tris = _naive_obj(sample / ict.ICT_NEUTRAL)
    svi = converted["source_vertex_index"]
    kept = np.isin(tris[:, :, 0], svi).all(axis=1)
    tris = tris[kept]
    np.testing.assert_array_equal(svi[converted["triangles"]], tris[:, :, 0])
    expected = vt[tris[:, :, 1]].copy()  # (F, 3, 2)
    for name, (u0, v0, side) in ict.ICT_EYEBALL_BOXES.items():
        a, b = next((a, b) for n, a, b in ict.ICT_PARTS if n == name)
        eye = (tris[:, 0, 0] >= a) & (tris[:, 0, 0] < b)
        assert eye.sum() == 3132
        expected[eye] = np.array([u0, v0]) + expected[eye] * side
    expected[..., 0] /= ict.ICT_UV_TILES
    np.testing.assert_allclose(coords[uv_tris], expected, atol=1e-6)


def test_shared_npz_gets_the_converters_uvs_at_load(shared_dir, default_model):
    converted = convert_ict(shared_dir / "models" / "ict_sample", identities=[], expressions=[])
    uv = default_model.uv
    assert uv is not None and uv.texture_size == ict.ICT_TEXTURE_SIZE
    np.testing.assert_array_equal(uv.coords, converted["uv_coords"])
    np.testing.assert_array_equal(uv.triangles, converted["uv_triangles"])


def test_eyeball_boxes_lie_in_free_atlas_space(shared_dir, default_model):
    from occface_jax.texture.atlas import uv_raster

    with np.load(shared_dir / "models" / "ict_face_default.npz") as data:
        part_id, names = data["part_id"], [str(n) for n in data["part_names"]]
    tri_part = part_id[default_model.triangles[:, 0]]
    height, width = ict.ICT_TEXTURE_SIZE
    ids = np.asarray(uv_raster(default_model.uv).triangle_id)
    part = np.where(ids >= 0, tri_part[np.maximum(ids, 0)], -1)
    margin = 8  # texels
    for name, (u0, v0, side) in ict.ICT_EYEBALL_BOXES.items():
        cols = slice(int(u0 / 2 * width) - margin, int((u0 + side) / 2 * width) + margin)
        rows = slice(int((1 - v0 - side) * height) - margin, int((1 - v0) * height) + margin)
        window = part[rows, cols]
        assert set(np.unique(window).tolist()) == {-1, names.index(name)}, name
        assert (window == names.index(name)).mean() > 0.3


def _with_obj(tmp_path, shared_dir, edit):
    """A link to the shared npz with an edited copy of ICT's neutral OBJ beside it."""
    link = tmp_path / "ict_face_default.npz"
    link.symlink_to(shared_dir / "models" / "ict_face_default.npz")
    (tmp_path / "ict_sample").mkdir()
    lines = (shared_dir / "models" / "ict_sample" / ict.ICT_NEUTRAL).read_text().splitlines()
    (tmp_path / "ict_sample" / ict.ICT_NEUTRAL).write_text("\n".join(edit(lines)) + "\n")
    return link


def _swap_first_faces(lines):
    i = next(k for k, line in enumerate(lines) if line.startswith("f "))
    lines[i], lines[i + 1] = lines[i + 1], lines[i]
    return lines


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_swap_first_faces, r"triangles differ from the model's; first, triangle 0"),
        (lambda lines: [x for x in lines if not x.startswith("f ")][:-1], "fan-split into 0"),
        (lambda lines: [x.split("/")[0] if x.startswith("f ") else x for x in lines], "no texture"),
    ],
)
def test_mismatched_obj_warns_and_keeps_vertex_colours(tmp_path, shared_dir, edit, message):
    from occface_jax.morphable.io import load_npz_model

    link = _with_obj(tmp_path, shared_dir, edit)
    plain = load_npz_model(link)
    with pytest.warns(UserWarning, match=message):
        model = ict.attach_uvs(plain, link)
    assert model.uv is None


def test_obj_parser_reads_every_face_form(tmp_path):
    head = "v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 1 1\nvt 0 1\nvn 0 0 1\n"
    forms = {
        "v_vt": "f 1/1 2/2 3/3 4/4\nf 1/4 3/2 4/1\n",
        "v_vt_vn": "f 1/1/1 2/2/1 3/3/1 4/4/1\nf 1/4/1 3/2/1 4/1/1\n",
        "mixed": "f 1/1 2/2 3/3 4/4\nf 1/4/1 3/2/1 4/1/1\n",
    }
    for name, faces in forms.items():
        (tmp_path / f"{name}.obj").write_text(head + faces)
        parsed = ict.read_obj_faces(tmp_path / f"{name}.obj")
        assert parsed.sizes.tolist() == [4, 3] and parsed.n_vertices == 4, name
        assert parsed.vertex.tolist() == [0, 1, 2, 3, 0, 2, 3], name
        assert parsed.texcoord.tolist() == [0, 1, 2, 3, 3, 1, 0], name
        np.testing.assert_array_equal(parsed.texcoords, [[0, 0], [1, 0], [1, 1], [0, 1]])
    (tmp_path / "plain.obj").write_text(head + "f 1 2 3\nf 1//1 3//1 4//1\n")
    assert ict.read_obj_faces(tmp_path / "plain.obj").texcoord is None
    (tmp_path / "bad.obj").write_text(head + "f 1/1 2/2 9/3\n")
    with pytest.raises(ModelFileError, match="face v indices span 1..9 but the file has 4"):
        ict.read_obj_faces(tmp_path / "bad.obj")
