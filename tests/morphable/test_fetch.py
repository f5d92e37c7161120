"""``fetch-model`` against a local HTTP server on 127.0.0.1 that serves the ICT sample files."""

from __future__ import annotations

import functools
import http.server
import json
import threading

import numpy as np
import pytest

from occface_jax.errors import DownloadError
from occface_jax.morphable import fetch
from occface_jax.morphable.io import load_npz_model


class _Handler(http.server.SimpleHTTPRequestHandler):
    requests: list[str] = []

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):  # noqa: N802
        type(self).requests.append(self.path)
        super().do_GET()


@pytest.fixture
def ict_server(tmp_path, shared_dir):
    """Serve ``FaceXModel/<sample files>`` and a git tree listing them with their blob hashes."""
    root = tmp_path / "www"
    (root / "FaceXModel").mkdir(parents=True)
    sample = shared_dir / "models" / "ict_sample"
    entries = []
    for path in sorted(sample.iterdir()):
        if path.name == "LICENSE":
            continue
        data = path.read_bytes()
        (root / "FaceXModel" / path.name).write_bytes(data)
        entries.append(
            {
                "path": f"FaceXModel/{path.name}",
                "type": "blob",
                "sha": fetch.git_blob_sha1(data),
                "size": len(data),
            }
        )
    (root / "tree.json").write_text(json.dumps({"tree": entries, "truncated": False}))
    _Handler.requests = []
    handler = functools.partial(_Handler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    yield base, root
    server.shutdown()
    server.server_close()


def test_git_blob_sha1_matches_git():
    # `printf 'hello\n' | git hash-object --stdin`
    assert fetch.git_blob_sha1(b"hello\n") == "ce013625030ba8dba906f756967f9e9ca394464a"


def test_fetch_converts_and_agrees_with_shipped(ict_server, tmp_path, shared_dir):
    base, _ = ict_server
    out = tmp_path / "cache" / "ict_face_default.npz"
    path = fetch.fetch_default_model(
        base_url=base, tree_url=f"{base}/tree.json", out_path=out, keep_sources=True, progress=False
    )
    model = load_npz_model(path)
    shipped = load_npz_model(shared_dir / "models" / "ict_face_default.npz")
    np.testing.assert_allclose(model.mean_shape, shipped.mean_shape, atol=1e-4)
    np.testing.assert_array_equal(model.triangles, shipped.triangles)
    np.testing.assert_allclose(model.id_basis, shipped.id_basis[:, :2], atol=1e-4)
    assert model.n_exp == 2 and model.name == "ict_face_default"
    # The fetched file carries ICT's UVs itself (the shared one gets them at load time).
    assert model.uv is not None and model.uv.triangles.shape == model.triangles.shape
    # A second fetch finds every source file verified on disk and downloads only the tree.
    first_count = len(_Handler.requests)
    fetch.fetch_default_model(
        base_url=base, tree_url=f"{base}/tree.json", out_path=out, progress=False
    )
    assert _Handler.requests[first_count:] == ["/tree.json"]


def test_checksum_mismatch_is_refused(ict_server, tmp_path):
    base, root = ict_server
    target = root / "FaceXModel" / "identity001.obj"
    target.write_bytes(target.read_bytes().replace(b"v ", b"v  ", 1))
    with pytest.raises(DownloadError, match="checksum mismatch for .*identity001.obj"):
        fetch.fetch_default_model(
            base_url=base, tree_url=f"{base}/tree.json", out_path=tmp_path / "m.npz", progress=False
        )
    assert not (tmp_path / "m.npz").exists()


def test_offline_gives_one_clear_line(tmp_path):
    # Port 9 on loopback: nothing listens, the connection is refused at once.
    with pytest.raises(DownloadError) as info:
        fetch.fetch_default_model(
            base_url="http://127.0.0.1:9",
            tree_url="http://127.0.0.1:9/t",
            out_path=tmp_path / "m.npz",
            progress=False,
            timeout=5,
        )
    message = str(info.value)
    assert "\n" not in message
    assert "occface fetch-model --from-dir" in message and "--model" in message


def test_git_lfs_pointers_are_followed_and_checked(ict_server, tmp_path, shared_dir):
    """When the repository keeps a file in Git LFS, the raw address serves a pointer (whose blob
    hash the tree lists); the content comes from the LFS address and must match its SHA-256."""
    import hashlib

    base, root = ict_server
    name = "identity000.obj"
    content = (root / "FaceXModel" / name).read_bytes()
    (root / "lfs" / "FaceXModel").mkdir(parents=True)
    (root / "lfs" / "FaceXModel" / name).write_bytes(content)
    pointer = (
        "version https://git-lfs.github.com/spec/v1\n"
        f"oid sha256:{hashlib.sha256(content).hexdigest()}\nsize {len(content)}\n"
    ).encode()
    (root / "FaceXModel" / name).write_bytes(pointer)
    tree = json.loads((root / "tree.json").read_text())
    for entry in tree["tree"]:
        if entry["path"] == f"FaceXModel/{name}":
            entry.update(sha=fetch.git_blob_sha1(pointer), size=len(pointer))
    (root / "tree.json").write_text(json.dumps(tree))
    out = tmp_path / "m.npz"
    kwargs = dict(
        base_url=base,
        tree_url=f"{base}/tree.json",
        out_path=out,
        progress=False,
        lfs_url=f"{base}/lfs",
    )
    model = load_npz_model(fetch.fetch_default_model(**kwargs))
    shipped = load_npz_model(shared_dir / "models" / "ict_face_default.npz")
    np.testing.assert_allclose(model.id_basis[:, 0], shipped.id_basis[:, 0], atol=1e-4)
    # A corrupted LFS object is refused.
    (root / "lfs" / "FaceXModel" / name).write_bytes(content[:-10] + b"0000000000")
    with pytest.raises(DownloadError, match="LFS sha256 expected"):
        fetch.fetch_default_model(**dict(kwargs, out_path=tmp_path / "again" / "m.npz"))
