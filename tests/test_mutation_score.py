"""benchmarks/mutation_score.py reads mutmut's results right: which mutants belong to a module,
what counts as killed, and the score killed / (total - no tests)."""

import json

from benchmarks.mutation_score import SCOPES, load_results, summarise


def test_scores_count_timeouts_as_killed_and_leave_out_mutants_no_test_reaches(tmp_path):
    meta = tmp_path / "gan" / "labels.py.meta"
    meta.parent.mkdir()
    codes = {
        "gan.labels.x_one_hot__mutmut_1": 1,  # killed
        "gan.labels.x_one_hot__mutmut_2": 3,  # pytest internal error: killed
        "gan.labels.x_one_hot__mutmut_3": -24,  # timeout (SIGXCPU): the tests noticed
        "gan.labels.x_one_hot__mutmut_4": 0,  # survived
        "gan.labels.x_colorize__mutmut_1": 33,  # no tests
    }
    meta.write_text(json.dumps({"exit_code_by_key": codes}))
    report = summarise(load_results(tmp_path), ["labels"])["labels"]
    assert (report["total"], report["killed"], report["timeout"]) == (5, 2, 1)
    assert (report["survived"], report["no_tests"]) == (1, 1)
    assert report["score_percent"] == 75.0
    assert report["not_killed"] == [
        "gan.labels.x_colorize__mutmut_1 (no tests)",
        "gan.labels.x_one_hot__mutmut_4 (survived)",
    ]


def test_the_compose_scope_takes_the_compositor_and_paste_but_not_the_rest_of_their_files():
    report = summarise(
        {
            "gan.compose.xǁCompositorǁweights__mutmut_1": 1,
            "gan.compose.x_feather_weights__mutmut_2": 1,
            "gan.inpaint.x_paste__mutmut_3": 0,
            "gan.synthesizer.x_resolve_device__mutmut_1": 0,
            "gan.inpaint.x_dilate__mutmut_1": 0,
        },
        ["compose"],
    )["compose"]
    assert report["total"] == 3 and report["score_percent"] == 66.7
    assert set(SCOPES) == {"document", "labels", "compose", "export", "checkpoint", "generator"}
