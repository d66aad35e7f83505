"""Mutation score of the core modules (``make mutation``; slow, not part of CI).

mutmut (configured in pyproject.toml's ``[tool.mutmut]``) copies ``app/`` and ``gan/`` into
``mutants/``, mutates the functions listed in :data:`SCOPES` and runs, for each mutant, the unit
tests that execute the mutated function. This script runs it and prints, per module, how many
mutants the tests killed, with the score killed / (total - skipped - no tests) (a timeout counts
as killed: the tests noticed); JSON in ``benchmarks/results/mutation.json``.

    python -m benchmarks.mutation_score                      # every module, then the report
    python -m benchmarks.mutation_score -m document -m labels  # some modules only
    python -m benchmarks.mutation_score --report-only --survivors  # read the last run's results

``mutmut show NAME`` prints a survivor's diff; ``mutmut browse`` browses them all.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results" / "mutation.json"

#: module -> (source file, mutant-name patterns): the functions under test. A class method's mutants
#: are named ``module.xǁClassǁmethod__mutmut_N``, a function's ``module.x_function__mutmut_N``.
SCOPES: dict[str, tuple[str, list[str]]] = {
    "document": ("app/document.py", ["app.document.*"]),
    "labels": ("gan/labels.py", ["gan.labels.*"]),
    # the compose path: feather weights, the caching Compositor, the plain composite, and the
    # inpaint paste (the generator's masked input and the paste of its output)
    "compose": (
        "gan/compose.py, gan/synthesizer.py, gan/inpaint.py",
        [
            "gan.compose.xǁCompositorǁ*",
            "gan.compose.x_feather_weights__mutmut_*",
            "gan.compose.x_composite_into_nonlung__mutmut_*",
            "gan.synthesizer.xǁSynthesizerǁinpaint__mutmut_*",
            "gan.inpaint.x_paste__mutmut_*",
            "gan.inpaint.x_inpaint_condition__mutmut_*",
        ],
    ),
    "export": ("gan/export.py", ["gan.export.*"]),
    # the loader: everything but the two writers (save_checkpoint, export_generator)
    "checkpoint": (
        "gan/checkpoint.py",
        [
            f"gan.checkpoint.x_{name}__mutmut_*"
            for name in (
                "load_checkpoint",
                "migrate",
                "_parse_config",
                "load_state_strict",
                "expand_input_channels",
                "sha256_file",
                "load_exported_generator",
                "resolve_weights",
                "_cached_sha256",
                "trained_stages",
                "stage_in_progress",
                "inference_stage",
                "load_generator",
            )
        ],
    ),
    # the forward passes: every class's forward (and forward_features, _forward) and the label
    # downsampling (the constructors' layer lists are checked by test_models' shape and
    # parameter-count tests, not here)
    "generator": (
        "gan/models/generator.py",
        [
            "gan.models.generator.xǁ*ǁforward*",
            "gan.models.generator.xǁ*ǁ_forward*",
            "gan.models.generator.x_downsample_labels__mutmut_*",
        ],
    ),
}

# mutmut's exit codes (mutmut.stats.status_by_exit_code), folded into what the score needs
KILLED = {1, 3}
TIMEOUT = {24, -24, 36, 152, 255}
SURVIVED = {0}
NO_TESTS = {5, 33}
SKIPPED = {34, 37}


def status(code: int | None) -> str:
    if code is None:
        return "not checked"
    for name, codes in (
        ("killed", KILLED),
        ("timeout", TIMEOUT),
        ("survived", SURVIVED),
        ("no tests", NO_TESTS),
        ("skipped", SKIPPED),
    ):
        if code in codes:
            return name
    return "suspicious"


def load_results(mutants: Path) -> dict[str, int | None]:
    """Every mutant's exit code from mutmut's ``mutants/**/*.py.meta`` files."""
    codes: dict[str, int | None] = {}
    for meta in mutants.rglob("*.py.meta"):
        codes.update(json.loads(meta.read_text())["exit_code_by_key"])
    return codes


def in_scope(name: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def summarise(codes: dict[str, int | None], modules: list[str]) -> dict:
    report = {}
    for module in modules:
        source, patterns = SCOPES[module]
        counts: dict[str, int] = {}
        survivors = []
        for name, code in sorted(codes.items()):
            if not in_scope(name, patterns):
                continue
            st = status(code)
            counts[st] = counts.get(st, 0) + 1
            if st in ("survived", "suspicious", "no tests", "not checked"):
                survivors.append(f"{name} ({st})")
        total = sum(counts.values())
        tested = total - counts.get("skipped", 0) - counts.get("no tests", 0)
        detected = counts.get("killed", 0) + counts.get("timeout", 0)
        report[module] = {
            "source": source,
            "total": total,
            "killed": counts.get("killed", 0),
            "timeout": counts.get("timeout", 0),
            "survived": counts.get("survived", 0),
            "no_tests": counts.get("no tests", 0),
            "other": total - detected - counts.get("survived", 0) - counts.get("no tests", 0),
            "score_percent": round(100 * detected / tested, 1) if tested else None,
            "not_killed": survivors,
        }
    return report


def print_table(report: dict, survivors: bool) -> None:
    print(
        f"{'module':<11} {'source':<34} {'mutants':>7} {'killed':>6} {'survived':>8} "
        f"{'no tests':>8} {'score':>6}"
    )
    for module, r in report.items():
        score = "-" if r["score_percent"] is None else f"{r['score_percent']:.1f}%"
        print(
            f"{module:<11} {r['source']:<34} {r['total']:>7} {r['killed'] + r['timeout']:>6} "
            f"{r['survived']:>8} {r['no_tests']:>8} {score:>6}"
        )
    if survivors:
        for module, r in report.items():
            if r["not_killed"]:
                print(f"\n{module}: not killed")
                for name in r["not_killed"]:
                    print(f"  {name}")


def run_mutmut(modules: list[str], max_children: int | None) -> float:
    """``mutmut run`` on the modules' mutants from a fresh ``mutants/``; returns seconds taken."""
    mutmut = Path(sys.executable).with_name("mutmut")
    if not mutmut.exists():
        sys.exit("mutmut is not installed: pip install -e '.[mutation]'")
    shutil.rmtree(REPO / "mutants", ignore_errors=True)  # stale copies of unmutated files
    patterns = [p for m in modules for p in SCOPES[m][1]]
    command = [str(mutmut), "run", *patterns]
    if max_children:
        command[2:2] = ["--max-children", str(max_children)]
    env = dict(os.environ)
    # tests find ../shared/data beside the repository; mutants/ is one level deeper
    env.setdefault("CTLS_SHARED_DATA", str(REPO.parent / "shared" / "data"))
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    # one thread per test process: mutmut runs several side by side
    env.setdefault("OMP_NUM_THREADS", "1")
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL)
    if done.returncode not in (0, None):
        sys.exit(f"mutmut run failed (exit {done.returncode}); rerun it by hand to see why")
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-m", "--module", action="append", choices=list(SCOPES))
    parser.add_argument("--max-children", type=int, default=None, help="mutmut's worker count")
    parser.add_argument("--report-only", action="store_true", help="read the last run's results")
    parser.add_argument("--survivors", action="store_true", help="list mutants not killed")
    parser.add_argument("--min-score", type=float, default=None, help="exit 1 below this score")
    args = parser.parse_args(argv)
    modules = args.module or list(SCOPES)

    seconds = None
    if not args.report_only:
        seconds = run_mutmut(modules, args.max_children)
    report = summarise(load_results(REPO / "mutants"), modules)
    print_table(report, args.survivors)
    if seconds is not None:
        print(f"\nmutmut run took {seconds / 60:.1f} min")
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        previous.update(report)  # a partial run keeps the other modules' last results
        previous["_last_run"] = {
            "modules": modules,
            "minutes": round(seconds / 60, 1),
            "max_children": args.max_children or os.cpu_count(),
            "cpus": os.cpu_count(),
        }
        RESULTS.write_text(json.dumps(previous, indent=2, ensure_ascii=False) + "\n")
        print(f"wrote {RESULTS.relative_to(REPO)}")
    if args.min_score is not None:
        low = [m for m, r in report.items() if (r["score_percent"] or 0) < args.min_score]
        if low:
            print(f"below {args.min_score}%: {', '.join(low)}")
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
