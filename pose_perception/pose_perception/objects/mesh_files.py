"""What a mesh file will cost before it is parsed: its size and its face count read from the header (or, for text
formats, counted by a streaming byte scan that builds nothing).

A full parse of a 2,000,000-face mesh takes seconds and hundreds of MB; refusing an oversized file from its header
costs microseconds and no memory. Used by `objects.model` before `trimesh.load`.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Optional

_CHUNK = 8 << 20  # streaming scans read 8 MiB at a time
_MAX_HEADER_BYTES = 1 << 16  # PLY / OFF headers longer than this are not meshes this package reads
_MAX_GLTF_JSON_BYTES = 64 << 20


class MeshFileError(ValueError):
    """A mesh file whose header contradicts itself or its size (truncated, or not the format its name says)."""


def count_faces(path: str | Path) -> Optional[int]:
    """Triangles a parser will build from `path`, read without parsing the geometry; None for a format it cannot
    count. STL (binary: the header count; ASCII: `endfacet` lines), PLY (`element face`), OFF (header line),
    OBJ (`f` lines: a lower bound, polygons become several triangles), glTF / GLB (index or position accessor
    counts, once per node that instances the mesh). Raises MeshFileError for a header that is inconsistent."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".stl":
        return _stl_faces(path)
    if suffix == ".ply":
        return _ply_faces(path)
    if suffix == ".off":
        return _off_faces(path)
    if suffix == ".obj":
        return _count_line_starts(path, (b"f ", b"f\t"))
    if suffix == ".glb":
        return _glb_faces(path)
    if suffix == ".gltf":
        size = path.stat().st_size
        if size > _MAX_GLTF_JSON_BYTES:
            raise MeshFileError(f"glTF JSON of {size} bytes is larger than {_MAX_GLTF_JSON_BYTES}")
        return _gltf_json_faces(_parse_json(path.read_bytes()))
    return None


def _stl_faces(path: Path) -> int:
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(84)
    if len(head) == 84:
        (n,) = struct.unpack("<I", head[80:84])
        if size == 84 + 50 * n:
            return n  # binary STL: the size matches the declared triangle count exactly
    if head.lstrip().startswith(b"solid"):
        return _count_occurrences(path, b"endfacet")
    if len(head) < 84:
        raise MeshFileError(f"STL file of {size} bytes is shorter than a binary STL header (84 bytes)")
    raise MeshFileError(
        f"binary STL header declares {n} triangles ({84 + 50 * n} bytes) but the file has {size} "
        "bytes: truncated or not an STL file"
    )


def _read_header_lines(path: Path, end: bytes) -> list[bytes]:
    with open(path, "rb") as f:
        head = f.read(_MAX_HEADER_BYTES)
    if end is not None:
        stop = head.find(end)
        if stop < 0:
            raise MeshFileError(f"no '{end.decode()}' in the first {_MAX_HEADER_BYTES} bytes")
        head = head[:stop]
    return head.splitlines()


def _ply_faces(path: Path) -> int:
    lines = _read_header_lines(path, b"end_header")
    if not lines or lines[0].strip() != b"ply":
        raise MeshFileError("PLY file does not start with 'ply'")
    for line in lines:
        parts = line.split()
        if len(parts) == 3 and parts[0] == b"element" and parts[1] == b"face":
            try:
                return int(parts[2])
            except ValueError:
                raise MeshFileError(f"PLY face count '{parts[2].decode(errors='replace')}' is not an integer") from None
    return 0  # a PLY without faces: a point cloud, refused by the loader with its own message


def _off_faces(path: Path) -> int:
    lines = [ln.split(b"#")[0].split() for ln in _read_header_lines(path, None)[:64]]
    lines = [ln for ln in lines if ln]
    if not lines or not lines[0][0].endswith(b"OFF"):
        raise MeshFileError("OFF file does not start with 'OFF'")
    counts = lines[0][1:] if len(lines[0]) > 1 else (lines[1] if len(lines) > 1 else [])
    try:
        return int(counts[1])
    except (IndexError, ValueError):
        raise MeshFileError("OFF header has no vertex/face counts") from None


def _count_occurrences(path: Path, token: bytes) -> int:
    """Occurrences of token in the file, streaming (a token split across two chunks is counted once)."""
    count, tail = 0, b""
    with open(path, "rb") as f:
        while True:
            chunk = f.read(_CHUNK)
            if not chunk:
                return count
            data = tail + chunk
            count += data.count(token)
            # Keep the last len-1 bytes: a token crossing the boundary is whole in the next `data`, and one fully
            # inside the kept tail cannot be (it is shorter than the token), so nothing is counted twice.
            tail = data[-(len(token) - 1) :] if len(token) > 1 else b""


def _count_line_starts(path: Path, prefixes: tuple[bytes, ...]) -> int:
    """Lines that start with one of prefixes (each the same length), streaming."""
    count = 0
    with open(path, "rb") as f:
        first = f.read(len(prefixes[0]))
        count += first in prefixes
    for p in prefixes:
        count += _count_occurrences(path, b"\n" + p)
    return count


def _parse_json(raw: bytes) -> dict:
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MeshFileError(f"glTF JSON does not parse: {exc}") from None
    if not isinstance(data, dict):
        raise MeshFileError("glTF JSON is not an object")
    return data


def _glb_faces(path: Path) -> int:
    with open(path, "rb") as f:
        header = f.read(20)
        if len(header) < 20 or header[:4] != b"glTF":
            raise MeshFileError("GLB file does not start with the 'glTF' magic")
        length, chunk_type = struct.unpack("<I4s", header[12:20])
        if chunk_type != b"JSON":
            raise MeshFileError("GLB's first chunk is not JSON")
        if length > min(_MAX_GLTF_JSON_BYTES, os.fstat(f.fileno()).st_size):
            raise MeshFileError(f"GLB JSON chunk of {length} bytes is larger than the file or {_MAX_GLTF_JSON_BYTES}")
        return _gltf_json_faces(_parse_json(f.read(length)))


def _gltf_json_faces(gltf: dict) -> int:
    """Triangles of every mesh instance: sum over nodes naming a mesh (all meshes once when there are no nodes)."""
    try:
        accessors = gltf.get("accessors", [])
        per_mesh = []
        for mesh in gltf.get("meshes", []):
            n = 0
            for prim in mesh.get("primitives", []):
                index = prim["indices"] if "indices" in prim else prim.get("attributes", {}).get("POSITION")
                if index is None:
                    continue
                count = int(accessors[index]["count"])
                mode = prim.get("mode", 4)
                n += count // 3 if mode == 4 else max(count - 2, 0) if mode in (5, 6) else 0
            per_mesh.append(n)
        nodes = [n for n in gltf.get("nodes", []) if "mesh" in n]
        if not nodes:
            return sum(per_mesh)
        return sum(per_mesh[int(n["mesh"])] for n in nodes)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise MeshFileError(
            f"glTF JSON has an inconsistent mesh/accessor table ({type(exc).__name__}: {exc})"
        ) from None
