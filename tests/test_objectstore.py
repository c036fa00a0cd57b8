"""The local-folder object store: keys map to files inside the bucket folder, atomically."""

from __future__ import annotations

from pathlib import Path

from destinations.objectstore import LocalObjectStore, open_object_store


async def test_objects_land_under_root_bucket_key(tmp_path: Path) -> None:
    store = open_object_store(f"file://{tmp_path}", region="us-east-1")
    assert isinstance(store, LocalObjectStore)
    await store.put("bucket", "a/b/c.gz", b"data")
    assert (tmp_path / "bucket" / "a" / "b" / "c.gz").read_bytes() == b"data"
    await store.put("bucket", "a/b/c.gz", b"again")  # a retry overwrites
    assert (tmp_path / "bucket" / "a" / "b" / "c.gz").read_bytes() == b"again"
    assert [p.name for p in (tmp_path / "bucket" / "a" / "b").iterdir()] == ["c.gz"]


async def test_dot_segments_stay_inside_the_bucket(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "root")
    await store.put("bucket", "../../escape/./x", b"data")
    assert (tmp_path / "root" / "bucket" / "%2E%2E" / "%2E%2E" / "escape" / "%2E" / "x").is_file()
    assert not (tmp_path / "escape").exists()
