"""Resume after a crash that cut ``metrics.jsonl`` short mid-line: the run continues, and the log
holds each step once, with neither the cut line nor lines logged past the checkpoint."""

from tests.training_cli.conftest import TINY, cli, metrics


def test_resume_survives_a_half_written_metrics_line(phantom_npz, tmp_path):
    run = tmp_path / "run"
    args = [*TINY, "--data", phantom_npz, "--epochs", "1"]
    stopped = cli("train", *args, "--out", run, "--max-steps", "5")
    assert stopped.returncode == 0, stopped.stderr
    log = run / "metrics.jsonl"
    steps_before = [r["global_step"] for r in metrics(run)]
    assert steps_before == [1, 2, 3, 4, 5]
    # a crash after the checkpoint: one whole line past it, then one cut mid-write
    with open(log, "a") as fh:
        fh.write('{"global_step": 6, "stage": "global", "g_total": 1e9}\n')
        fh.write('{"global_step": 7, "stage": "glo')
    resumed = cli("train", "--resume", run, "--workers", "0", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert "Traceback" not in resumed.stderr and "incomplete line" in resumed.stderr
    steps = [r["global_step"] for r in metrics(run)]  # every line parses
    assert steps == list(range(1, len(steps) + 1)) and len(steps) == 12  # 3 stages x 4 steps
    assert metrics(run)[5]["g_total"] != 1e9  # step 6 is the resumed run's, not the crash's
