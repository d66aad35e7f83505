import numpy as np


def test_texture_ratio_reads_smoother_below_one_and_busier_above():
    from benchmarks.inpaint_texture import texture_ratio

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:64, :64]
    real = 0.5 * np.sin(xx / 4) * np.cos(yy / 6)  # some structure
    mask = np.zeros((64, 64), bool)
    mask[16:48, 16:48] = True
    smooth = real.copy()
    smooth[mask] = real[mask].mean()
    busy = real + rng.normal(0, 0.3, real.shape)
    assert texture_ratio(real, real, mask) == 1.0
    assert texture_ratio(smooth, real, mask) < 0.5 < 1.5 < texture_ratio(busy, real, mask)


def test_ssim_split_by_region_and_interior_texture():
    from benchmarks.ssim_texture import regions, split_ssim

    yy, xx = np.mgrid[:96, :96]
    lung = (yy - 48) ** 2 + (xx - 48) ** 2 < 30**2
    real = 0.5 + 0.2 * np.sin(xx / 3) * np.cos(yy / 4) * lung  # textured lung, flat body
    parts = regions(lung, band_px=6)
    assert not (parts["interior"] & parts["edge_inside"]).any()
    assert (parts["interior"] | parts["edge_inside"]).sum() == lung.sum()
    assert not (parts["edge_outside"] & lung).any() and parts["edge_outside"].any()

    same = split_ssim(real, real, parts)
    assert all(same[k] == 1.0 for k in ("ssim", "interior", "edge_inside", "edge_outside"))
    assert same["texture"] == 1.0
    flat = np.where(lung, real[lung].mean(), real)
    shifted = np.where(lung, np.roll(real, 6, axis=1), real)  # as much texture, misplaced
    a, b = split_ssim(flat, real, parts), split_ssim(shifted, real, parts)
    assert a["texture"] < 0.05 and b["texture"] > 0.8
    assert b["interior"] < a["interior"] < 1.0  # misplaced texture scores below none at all


def test_data_benchmarks_fail_in_one_line_and_write_json(tmp_path, capsys):
    import json

    from benchmarks import measure_to_json
    from benchmarks.ssim_texture import main

    assert main(["--data", str(tmp_path / "nowhere"), "--out", str(tmp_path)]) == 1
    assert capsys.readouterr().out.strip() == f"error: no data folder at {tmp_path / 'nowhere'}"
    (tmp_path / "images").mkdir()

    def broken():
        raise ValueError("runs/x.pt is an inpaint-mode generator")

    assert measure_to_json(tmp_path, tmp_path / "out", "r.json", broken) is None
    assert capsys.readouterr().out.strip() == "error: runs/x.pt is an inpaint-mode generator"
    assert measure_to_json(tmp_path, tmp_path / "out", "r.json", lambda: {"a": 1}) == {"a": 1}
    assert json.loads((tmp_path / "out" / "r.json").read_text()) == {"a": 1}


def test_realism_benchmark_writes_a_row_per_method_with_its_controls(tmp_path, capsys):
    """Wiring on tiny phantoms: every method gets a row, the model tasks carry their controls.
    (At 64^2 no 48^2 patch fits inside a phantom lung, so the C2ST reads n/a: the numbers
    themselves are tested in tests/training_cli/test_realism.py.)"""
    import json

    from benchmarks.realism import main
    from tests.conftest import make_tiny_weights, write_phantom_folder

    data = write_phantom_folder(tmp_path / "data", n=4)
    ids = tmp_path / "ids.txt"
    ids.write_text("0000\n0001\n0002\n0003\n")
    label = make_tiny_weights(tmp_path / "label.safetensors")
    inpaint = make_tiny_weights(tmp_path / "inpaint.safetensors", "inpaint")
    args = ["--data", data, "--ids", ids, "--augment", "0", "--out", tmp_path / "out"]
    assert (
        main([*map(str, args), "--checkpoint", str(label), "--inpaint-checkpoint", str(inpaint)])
        == 0
    )
    result = json.loads((tmp_path / "out" / "realism.json").read_text())
    assert result["images"] == 4 and len(result["rows"]) == 4
    with_controls = [name for name, row in result["rows"].items() if "controls" in row]
    assert with_controls == ["label model, whole lung", "inpainting model, in the masks"]
    out = capsys.readouterr().out
    assert "control: real vs real" in out and "OUT OF RANGE" in out  # n/a controls never count


def test_the_ablation_arms_change_one_thing_each_at_equal_budget(tmp_path):
    """Each single-change arm of benchmarks/ablation.py trains the lite network with exactly one
    option different from the `lite` arm (the `ema` arm shares its run), `all` combines them, and
    every arm gets the same samples, batch, seed, schedule and EMA, on the training carve-out only."""
    import argparse
    import dataclasses

    from benchmarks import ablation
    from training_cli.__main__ import build_parser, train_options_from_args

    args = argparse.Namespace(
        samples=40, data=tmp_path, train_ids=ablation.SPLITS / "train.txt", runs=tmp_path
    )

    def options(arm):
        cmd = ablation.train_command(arm, args)
        return train_options_from_args(build_parser().parse_args(cmd[cmd.index("train") :]))

    def differences(a, b):
        skip = {"out"}
        return {
            f.name
            for f in dataclasses.fields(a)
            if f.name not in skip and getattr(a, f.name) != getattr(b, f.name)
        }

    base = options("lite")
    assert (base.stage, base.samples_per_epoch, base.ema) == ("global", 40, 0.999)
    assert str(base.ids).endswith("ablation/train.txt")
    changed = {}
    for arm in ablation.ARMS:
        if arm in ("lite", "all"):
            continue
        diff = differences(options(arm), base)
        if arm in ablation.SAME_RUN:
            assert diff == set() and ablation.run_dir(tmp_path, arm) == tmp_path / "lite"
        else:
            assert len(diff) == 1, (arm, diff)
            changed[arm] = diff
    combined = options("all")
    config = combined.model_config().generator
    assert (config.upsample, config.noise) == ("resize", True)
    assert combined.diffaugment == options("diffaugment").diffaugment
    assert combined.lambda_fm == options("fm2").lambda_fm
    val = set(read_ids(ablation.SPLITS / "val.txt"))
    assert val and not val & set(read_ids(ablation.SPLITS / "train.txt"))


def read_ids(path):
    from gan.data import read_split_file

    return read_split_file(path)
