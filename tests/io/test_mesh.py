"""Mesh and data export: round trips through trimesh and the files' own formats."""

from __future__ import annotations

import json

import numpy as np
import trimesh

from occface_jax.io import mesh as export


def test_obj_and_ply_round_trip(tmp_path, toy_model):
    verts = np.asarray(toy_model.mean_shape, np.float64)
    tris = np.asarray(toy_model.triangles)
    colors = np.random.default_rng(0).uniform(size=verts.shape)
    obj = trimesh.load(export.write_obj(tmp_path / "m.obj", verts, tris, colors), process=False)
    np.testing.assert_allclose(obj.vertices, verts, atol=1e-4)
    np.testing.assert_array_equal(obj.faces, tris)
    ply = trimesh.load(export.write_ply(tmp_path / "m.ply", verts, tris, colors), process=False)
    np.testing.assert_allclose(ply.vertices, verts, atol=1e-4)
    np.testing.assert_array_equal(ply.faces, tris)
    np.testing.assert_array_equal(ply.visual.vertex_colors[:, :3], np.rint(colors * 255))
    normals = np.tile([0.0, 0.0, 1.0], (len(verts), 1))
    text = export.write_obj(tmp_path / "n.obj", verts, tris, normals=normals).read_text()
    assert text.count("\nvn ") == len(verts)
    a, b, c = tris[0] + 1
    assert f"\nf {a}//{a} {b}//{b} {c}//{c}\n" in text


def test_json_and_coefficients(tmp_path):
    path = export.write_json(
        tmp_path / "a.json", {"pts": np.arange(4).reshape(2, 2), "p": tmp_path}
    )
    assert json.loads(path.read_text())["pts"] == [[0, 1], [2, 3]]
    coeffs = {"id": np.ones(3, np.float32), "angles": np.zeros(3)}
    npz = export.write_coefficients(tmp_path / "c.npz", coeffs, model_name=np.array("m"))
    with np.load(npz, allow_pickle=False) as data:
        np.testing.assert_array_equal(data["id"], coeffs["id"])
        assert str(data["model_name"]) == "m"


def test_textured_obj_round_trip(tmp_path, toy_model):
    from PIL import Image

    from occface_jax.morphable.synthetic import triangle_atlas

    verts = np.asarray(toy_model.mean_shape, np.float64)
    tris = np.asarray(toy_model.triangles)
    uv, uv_tris = triangle_atlas(len(tris))
    tex = np.random.default_rng(0).uniform(size=(32, 48, 3))
    colors = np.random.default_rng(1).uniform(size=verts.shape)
    files = export.write_textured_obj(tmp_path / "mesh.obj", verts, tris, uv, uv_tris, tex, colors)
    assert {k: p.name for k, p in files.items()} == {
        "mesh_obj": "mesh.obj",
        "mesh_mtl": "mesh.mtl",
        "texture": "texture.png",
    }
    assert "map_Kd texture.png" in files["mesh_mtl"].read_text()
    mesh = trimesh.load(files["mesh_obj"], process=False)
    assert isinstance(mesh.visual, trimesh.visual.TextureVisuals)
    # trimesh splits vertices on UV seams; corner by corner, positions and UVs are ours.
    np.testing.assert_allclose(mesh.vertices[mesh.faces], verts[tris], atol=1e-4)
    np.testing.assert_allclose(mesh.visual.uv[mesh.faces], uv[uv_tris], atol=1e-6)
    image = np.asarray(mesh.visual.material.image.convert("RGB"))
    np.testing.assert_array_equal(image, np.asarray(Image.open(files["texture"]).convert("RGB")))
    np.testing.assert_allclose(image / 255.0, tex, atol=0.5 / 255 + 1e-6)
    # Without a texture the OBJ and material are the same and the PNG is left to the caller.
    again = export.write_textured_obj(tmp_path / "b" / "mesh.obj", verts, tris, uv, uv_tris, None, colors)  # fmt: skip
    assert again["texture"] == export.texture_path(again["mesh_obj"])
    assert not again["texture"].exists()
    for kind in ("mesh_obj", "mesh_mtl"):
        assert again[kind].read_text() == files[kind].read_text()


def test_format_rows_writes_what_savetxt_writes():
    import io as _io

    from occface_jax.io.mesh import format_rows

    rng = np.random.default_rng(0)
    floats, ints = rng.normal(size=(50, 3)) * 1e3, rng.integers(0, 10**6, size=(40, 6))
    for fmt, rows in (("v %.5f %.5f %.5f", floats), ("f %d/%d %d/%d %d/%d", ints)):
        reference = _io.StringIO()
        np.savetxt(reference, rows, fmt=fmt)
        assert format_rows(fmt, rows) == reference.getvalue()
    assert format_rows("f %d %d %d", np.zeros((0, 3), int)) == ""
