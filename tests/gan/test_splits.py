import json

import pytest

from gan.splits import folder_lesion_areas, stratified_split
from tests.conftest import REPO


def _toy(n=40):
    ids = [f"{i:04d}" for i in range(n)]
    ggo = [(i * 37) % 900 + (0 if i % 10 == 0 else 50) for i in range(n)]
    cons = [0 if i % 3 else (i * 11) % 400 + 1 for i in range(n)]
    return ids, ggo, cons


def test_split_is_disjoint_complete_and_reproducible():
    ids, ggo, cons = _toy()
    a = stratified_split(ids, ggo, cons, n_test=10, seed=3)
    b = stratified_split(ids, ggo, cons, n_test=10, seed=3)
    c = stratified_split(ids, ggo, cons, n_test=10, seed=4)
    assert a == b and a.test != c.test
    assert len(a.test) == 10 and len(a.train) == 30
    assert not set(a.train) & set(a.test) and set(a.train) | set(a.test) == set(ids)
    assert sum(s["test"] for s in a.strata.values()) == 10


def test_every_stratum_gets_its_share():
    ids, ggo, cons = _toy(60)
    split = stratified_split(ids, ggo, cons, n_test=15, seed=0)
    for counts in split.strata.values():
        share = counts["slices"] * 15 / 60
        assert abs(counts["test"] - share) < 1  # largest remainder: off by less than one slice
    with_cons = {i for i, c in zip(ids, cons, strict=True) if c}
    assert 0 < len(with_cons & set(split.test)) < 15  # both classes reach the test set


def test_bad_sizes_are_refused():
    ids, ggo, cons = _toy(5)
    for n in (0, 5):
        with pytest.raises(ValueError, match="test size"):
            stratified_split(ids, ggo, cons, n_test=n)


def test_shipped_split_is_the_one_the_command_writes(medseg_dir, tmp_path):
    """resources/splits/ is exactly what `split --seed 0 --test 16` gives on the shared data."""
    from gan.data import folder_ids, read_split_file

    meta = json.loads((REPO / "resources/splits/split.json").read_text())
    ids = folder_ids(medseg_dir)
    ggo, cons = folder_lesion_areas(medseg_dir, ids)
    split = stratified_split(ids, ggo, cons, n_test=meta["test"], seed=meta["seed"])
    assert read_split_file(REPO / "resources/splits/train.txt") == split.train
    assert read_split_file(REPO / "resources/splits/test.txt") == split.test
    assert (len(split.train), len(split.test)) == (64, 16)


def test_the_ablation_validation_set_is_carved_from_train_only(medseg_dir, tmp_path):
    """resources/splits/ablation/ is what `split --ids train.txt --test 8 --names train,val`
    writes: 56 + 8 slices, all from the training split, none from the test split."""
    import subprocess
    import sys

    from gan.data import read_split_file

    out = tmp_path / "ablation"
    subprocess.run(
        [sys.executable, "-m", "training_cli", "split", "--data", medseg_dir, "--ids",
         REPO / "resources/splits/train.txt", "--test", "8", "--names", "train,val", "--out", out],
        check=True, cwd=REPO, capture_output=True,
    )  # fmt: skip
    shipped = REPO / "resources/splits/ablation"
    for name in ("train", "val"):
        assert read_split_file(out / f"{name}.txt") == read_split_file(shipped / f"{name}.txt")
    train, val = read_split_file(out / "train.txt"), read_split_file(out / "val.txt")
    assert (len(train), len(val)) == (56, 8)
    assert sorted(train + val) == read_split_file(REPO / "resources/splits/train.txt")
    assert not set(val) & set(read_split_file(REPO / "resources/splits/test.txt"))
    assert json.loads((out / "split.json").read_text())["val"] == 8


def test_split_refuses_ids_outside_the_folder_and_bad_names(medseg_dir, tmp_path):
    import subprocess
    import sys

    ids = tmp_path / "ids.txt"
    ids.write_text("0001\n9999\n")
    for extra, says in ((["--ids", ids], "not in"), (["--names", "train"], "--names")):
        result = subprocess.run(
            [sys.executable, "-m", "training_cli", "split", "--data", medseg_dir,
             "--out", tmp_path / "x", *extra],
            cwd=REPO, capture_output=True, text=True,
        )  # fmt: skip
        assert result.returncode != 0 and says in result.stderr
        assert "Traceback" not in result.stderr
