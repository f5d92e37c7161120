"""``occface fetch-model``: download ICT-FaceKit's model files and convert them to the default model.

Files come from the public repository at a pinned commit. Checksums: the repository's tree at that
commit (GitHub's git-trees API) lists each file's git blob SHA-1, ``sha1(b"blob <size>\\0" + data)``;
every downloaded file is checked against it, so the pinned commit id anchors all the content.
Downloads resume file by file (a verified file is not fetched again); the result is written to
``<cache>/models/ict_face_default.npz``. Tests point ``base_url``/``tree_url`` at a local server.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from occface_jax.errors import DownloadError, ModelFileError
from occface_jax.morphable import ict
from occface_jax.morphable.io import model_from_fields, save_model
from occface_jax.paths import cache_dir

ICT_REPO = "ICT-VGL/ICT-FaceKit"
ICT_COMMIT = "da5f95a607f5e6b37755b38d3385d7f2853732e5"
ICT_FOLDER = "FaceXModel"
RAW_URL = f"https://raw.githubusercontent.com/{ICT_REPO}/{ICT_COMMIT}"
LFS_URL = f"https://media.githubusercontent.com/media/{ICT_REPO}/{ICT_COMMIT}"
TREE_URL = f"https://api.github.com/repos/{ICT_REPO}/git/trees/{ICT_COMMIT}?recursive=1"
_IDENTITY = re.compile(r"identity\d{3}\.obj$")
_CHUNK = 1 << 16


def git_blob_sha1(data: bytes) -> str:
    """Git's object id of a file's content."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _open(url: str, timeout: float):
    request = urllib.request.Request(url, headers={"User-Agent": "occface_jax"})
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        raise DownloadError(f"download of {url} failed: HTTP {err.code} {err.reason}") from err
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise DownloadError(
            f"cannot download {url} ({reason}); this machine may be offline: get the "
            f"'{ICT_FOLDER}' folder of https://github.com/{ICT_REPO} by hand and run "
            "`occface fetch-model --from-dir PATH`, or pass --model PATH"
        ) from err


def list_model_files(tree_url: str = TREE_URL, timeout: float = 30.0) -> dict[str, tuple[str, int]]:
    """{file name: (git blob sha1, size)} of the model files in the pinned repository tree."""
    with _open(tree_url, timeout) as response:
        try:
            tree = json.loads(response.read().decode())
        except ValueError as err:
            raise DownloadError(f"{tree_url} did not return a git tree ({err})") from err
    files = {}
    for entry in tree.get("tree", []):
        path = entry.get("path", "")
        if entry.get("type") == "blob" and path.startswith(ICT_FOLDER + "/"):
            files[path[len(ICT_FOLDER) + 1 :]] = (entry["sha"], int(entry.get("size", 0)))
    if ict.ICT_NEUTRAL not in files or ict.ICT_INDICES not in files:
        raise DownloadError(f"{tree_url} lists no {ICT_FOLDER}/{ict.ICT_NEUTRAL}")
    return files


def _fetch_bytes(url: str, bar: tqdm, timeout: float) -> bytes:
    chunks = []
    with _open(url, timeout) as response:
        while chunk := response.read(_CHUNK):
            chunks.append(chunk)
            bar.update(len(chunk))
    return b"".join(chunks)


def parse_lfs_pointer(data: bytes) -> tuple[str, int] | None:
    """(sha256, size) of a Git LFS pointer file, or None when ``data`` is not one."""
    if not data.startswith(b"version https://git-lfs") or len(data) > 1024:
        return None
    fields = dict(line.split(" ", 1) for line in data.decode().splitlines() if " " in line)
    oid = fields.get("oid", "")
    if not oid.startswith("sha256:") or "size" not in fields:
        return None
    return oid[len("sha256:") :], int(fields["size"])


def _download(
    url: str, dest: Path, sha1: str, bar: tqdm, timeout: float, lfs_url: str | None = None
) -> None:
    """Fetch ``url`` to ``dest`` (via a .part file) and check its git blob SHA-1. When the
    repository stores the file in Git LFS, ``url`` yields a pointer (which is what the blob hash
    covers): the content then comes from ``lfs_url`` and is checked against the pointer's SHA-256."""
    marker = dest.with_name(dest.name + ".lfs")
    if dest.is_file() and (
        git_blob_sha1(dest.read_bytes()) == sha1
        or (marker.is_file() and marker.read_text() == sha1)
    ):
        bar.update(dest.stat().st_size)
        return
    data = _fetch_bytes(url, bar, timeout)
    if git_blob_sha1(data) != sha1:
        raise DownloadError(f"checksum mismatch for {url} (git blob sha1 expected {sha1})")
    pointer = parse_lfs_pointer(data)
    if pointer is not None:
        if lfs_url is None:
            raise DownloadError(f"{url} is a Git LFS pointer and no LFS address is known")
        data = _fetch_bytes(lfs_url, bar, timeout)
        sha256, size = pointer
        if len(data) != size or hashlib.sha256(data).hexdigest() != sha256:
            raise DownloadError(f"checksum mismatch for {lfs_url} (LFS sha256 expected {sha256})")
        dest.with_name(dest.name + ".lfs").write_text(sha1)
    tmp = dest.with_name(dest.name + ".part")
    tmp.write_bytes(data)
    tmp.replace(dest)


def fetch_ict_sources(
    dest: Path,
    base_url: str = RAW_URL,
    tree_url: str = TREE_URL,
    timeout: float = 30.0,
    progress: bool = True,
    lfs_url: str = LFS_URL,
) -> Path:
    """Download the neutral mesh, vertex_indices.json, identity*.obj and the expression OBJs."""
    files = list_model_files(tree_url, timeout)
    dest.mkdir(parents=True, exist_ok=True)

    def download_all(names: list[str], desc: str) -> None:
        total = sum(files[n][1] for n in names)
        with tqdm(total=total, unit="B", unit_scale=True, desc=desc, disable=not progress) as bar:
            for name in names:
                url = f"{base_url}/{ICT_FOLDER}/{name}"
                lfs = f"{lfs_url}/{ICT_FOLDER}/{name}"
                _download(url, dest / name, files[name][0], bar, timeout, lfs)

    download_all([ict.ICT_INDICES, ict.ICT_NEUTRAL], "ICT-FaceKit index")
    expressions = json.loads((dest / ict.ICT_INDICES).read_text())["expressions"]
    wanted = sorted(n for n in files if _IDENTITY.match(n))
    wanted += [f"{e}.obj" for e in expressions if f"{e}.obj" in files]
    download_all(wanted, "ICT-FaceKit model")
    return dest


def convert_to_default(source_dir: Path, out_path: Path, progress: bool = True) -> Path:
    """Convert an ICT-FaceKit folder and save it in the project's format at ``out_path``."""
    if not (source_dir / ict.ICT_NEUTRAL).is_file():
        raise ModelFileError(
            f"{source_dir} is not an ICT-FaceKit FaceXModel folder (no {ict.ICT_NEUTRAL})"
        )
    names = sorted(p.stem for p in source_dir.glob("identity*.obj"))
    bar = tqdm(desc="converting", unit="file", disable=not progress)
    fields = ict.convert_ict(source_dir, identities=names, progress=lambda _: bar.update())
    bar.close()
    model = model_from_fields(fields, source=str(source_dir)).replace(name="ict_face_default")
    extra = {
        k: fields[k]
        for k in (
            "part_id",
            "part_names",
            "exp_names",
            "source_vertex_index",
            "centre_offset_mm",
            "source",
        )
    }
    extra["source_commit"] = np.array(ICT_COMMIT)
    return save_model(out_path, model, **extra)


def fetch_default_model(
    base_url: str = RAW_URL,
    tree_url: str = TREE_URL,
    out_path: Path | None = None,
    keep_sources: bool = False,
    progress: bool = True,
    timeout: float = 30.0,
    lfs_url: str = LFS_URL,
) -> Path:
    """Download and convert the default model into the user cache; returns the npz path."""
    out_path = out_path or cache_dir() / "models" / "ict_face_default.npz"
    src = out_path.parent / "ict_sources"
    fetch_ict_sources(src, base_url, tree_url, timeout, progress, lfs_url)
    convert_to_default(src, out_path, progress)
    if not keep_sources:
        shutil.rmtree(src, ignore_errors=True)
    return out_path
