"""The one atomic writer, on a local folder and on an fsspec file system (fsspec's
in-memory store, a real implementation of its interface)."""
from __future__ import annotations

import fsspec
import pytest

from elasticnet_dist.errors import OutputWriteError
from elasticnet_dist.outputs import write_atomic


@pytest.fixture
def store():
    fs = fsspec.filesystem("memory")
    root = "/outputs-test"
    if fs.exists(root):
        fs.rm(root, recursive=True)
    fs.mkdir(root)
    yield fs, root
    fs.rm(root, recursive=True)


def test_an_object_appears_whole_and_leaves_no_temporary_key(store):
    fs, root = store
    write_atomic("memory://%s/manifest.json" % root, '{"a": 1}')
    write_atomic("memory://%s/manifest.json" % root, lambda f: f.write(b'{"a": 2}'))
    assert fs.cat("%s/manifest.json" % root) == b'{"a": 2}'
    assert [p.rsplit("/", 1)[1] for p in fs.ls(root, detail=False)] == ["manifest.json"]


def test_a_failed_write_keeps_the_old_object_and_names_the_url(store):
    fs, root = store
    url = "memory://%s/manifest.json" % root
    write_atomic(url, "old")

    def broken(f):
        f.write(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OutputWriteError, match="cannot write memory://.*manifest.json"):
        write_atomic(url, broken)
    assert fs.cat("%s/manifest.json" % root) == b"old"
    assert len(fs.ls(root, detail=False)) == 1


def test_a_file_url_is_the_local_path(tmp_path):
    write_atomic("file://%s" % (tmp_path / "m.json"), "local")
    assert (tmp_path / "m.json").read_text() == "local"
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]
