import os
import stat

import pytest

from gan.fsutil import atomic_path, atomic_write_text


def test_atomic_writes_get_the_mode_of_a_plain_open(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    target = tmp_path / "atomic.txt"
    atomic_write_text(target, "y")
    # not mkstemp's owner-only 0600: an export is as readable as any other file the user writes
    assert stat.S_IMODE(target.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)
    assert (
        target.read_text() == "y" and [p.name for p in tmp_path.iterdir()].count("atomic.txt") == 1
    )


def test_atomic_replace_keeps_the_replaced_files_mode(tmp_path):
    target = tmp_path / "kept.txt"
    target.write_text("old")
    os.chmod(target, 0o640)
    atomic_write_text(target, "new")
    assert stat.S_IMODE(target.stat().st_mode) == 0o640 and target.read_text() == "new"


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "safe.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == [
        "safe.txt"
    ]
