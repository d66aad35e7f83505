"""From stroke release to composite on screen, in ms: each step of the app's path, for the `lite`
and `paper` presets, the fast preview (G1 alone at 256^2) and the full model, fp32 and CPU bf16.

    python -m benchmarks.latency [--repeats 5] [--out benchmarks/results]

Steps: synthesize (label map -> image, including resampling), composite (feathered paste into the
real non-lung area; ``composite_cached_ms`` when the lung region is unchanged, as while painting
lesions, and the app's Compositor reuses its feather weights), display (window -> 8-bit -> QImage -> QPixmap, offscreen Qt). With ``--onnx``
(needs the optional packages onnx and onnxruntime) the generator's forward pass is also exported to
ONNX and timed in ONNX Runtime against eager PyTorch, with the largest output difference. Untrained weights
time the same as trained ones. Targets (issue 6): under 30 ms end to end on a GPU; on a 2-core CPU
the preview under 100 ms and the full `lite` result under 250 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from gan.checkpoint import export_generator
from gan.compose import Compositor, compose
from gan.config import get_preset
from gan.ctio import read_label_image, read_slice
from gan.export import display_uint8
from gan.lung import labels_for_slice
from gan.models import GlobalLocalGenerator
from gan.paths import sample_lesions_path, sample_slice_path
from gan.synthesizer import Synthesizer, cpu_has_native_bf16


def median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def onnx_rows(presets, labels, repeats: int) -> list[dict]:
    """Generator forward only: ONNX Runtime (CPU, fp32) vs eager fp32, same one-hot input."""
    import warnings

    import onnxruntime as ort

    from gan.labels import one_hot_torch

    x = one_hot_torch(torch.from_numpy(labels.astype(np.int64))[None])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for preset in presets:
            torch.manual_seed(0)
            generator = GlobalLocalGenerator(get_preset(preset).generator).eval()
            for stage in ("global", "joint"):

                class Forward(torch.nn.Module):
                    def __init__(self, g, s):
                        super().__init__()
                        self.g, self.s = g, s

                    def forward(self, inp):
                        return self.g(inp, self.s)

                model = Forward(generator, stage)
                path = Path(tmp) / f"{preset}_{stage}.onnx"
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    torch.onnx.export(
                        model,
                        (x,),
                        str(path),
                        dynamo=False,
                        opset_version=17,
                        input_names=["labels"],
                        output_names=["image"],
                    )
                options = ort.SessionOptions()
                options.intra_op_num_threads = torch.get_num_threads()
                session = ort.InferenceSession(
                    str(path), options, providers=["CPUExecutionProvider"]
                )
                feed = {"labels": x.numpy()}
                with torch.inference_mode():
                    reference = model(x).numpy()
                    eager_ms = median_ms(lambda m=model: m(x), repeats)
                ort_ms = median_ms(lambda s=session, f=feed: s.run(None, f), repeats)
                diff = float(np.abs(session.run(None, feed)[0] - reference).max())
                label = "preview (G1 256^2)" if stage == "global" else "full"
                for runtime, ms in (("eager", eager_ms), ("onnxruntime", ort_ms)):
                    rows.append(
                        {
                            "preset": preset,
                            "device": "cpu",
                            "dtype": "fp32",
                            "path": label + " (forward)",
                            "runtime": runtime,
                            "synthesize_ms": ms,
                            "composite_ms": 0.0,
                            "display_ms": 0.0,
                            "total_ms": ms,
                            "max_abs_diff_vs_eager": diff if runtime != "eager" else 0.0,
                        }
                    )
                    print(rows[-1], flush=True)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=["lite", "paper"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument(
        "--onnx", action="store_true", help="also time ONNX Runtime (CPU) against eager"
    )
    args = parser.parse_args(argv)

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault(
        "QT_DRIVER", "PyQt6"
    )  # qimage2ndarray's binding, whatever the import order
    import qimage2ndarray
    from PyQt6.QtGui import (
        QGuiApplication,
        QPixmap,
    )  # before qimage2ndarray, which picks the imported Qt

    app = QGuiApplication.instance() or QGuiApplication([])  # noqa: F841 - QPixmap needs it
    ct = read_slice(sample_slice_path())
    lesions = read_label_image(sample_lesions_path())
    labels = labels_for_slice(ct, lesions).label_map

    def display(values):
        return QPixmap.fromImage(qimage2ndarray.gray2qimage(display_uint8(values, ct)))

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for preset in args.presets:
            cfg = get_preset(preset)
            weights = Path(tmp) / f"{preset}.safetensors"
            export_generator(GlobalLocalGenerator(cfg.generator), cfg, weights, half=True)
            # CPU bf16 only where the CPU has it natively: emulated, it is ~300x slower than fp32
            native = args.device == "cpu" and cpu_has_native_bf16()
            variants = [("fp32", False)] + ([("bf16", True)] if native else [])
            for dtype, cpu_bf16 in variants:
                synthesizer = Synthesizer(weights, device=args.device, cpu_bf16=cpu_bf16)
                for path, stage, size in (
                    ("preview (G1 128^2)", "global", 256),
                    ("preview (G1 256^2)", "global", None),
                    ("full", None, None),
                ):
                    out = synthesizer.synthesize(labels, stage=stage, size=size)
                    synth_ms = median_ms(
                        lambda s=stage, z=size, syn=synthesizer: syn.synthesize(labels, s, z),
                        args.repeats,
                    )

                    def composite(out=out):
                        # the app's path, a fresh Compositor: the feather weights worked out anew
                        return compose(ct, out, labels, feather_px=4.0).composite

                    comp_ms = median_ms(composite, args.repeats)
                    compositor = Compositor()  # the app's: weights kept while the lung is unchanged
                    cached_ms = median_ms(
                        lambda c=compositor, o=out: c.compose(ct, o, labels, feather_px=4.0),
                        args.repeats,
                    )
                    display_ms = median_ms(lambda: display(composite()), args.repeats) - comp_ms
                    rows.append(
                        {
                            "preset": preset,
                            "device": args.device,
                            "dtype": dtype,
                            "path": path,
                            "runtime": "eager",
                            "synthesize_ms": synth_ms,
                            "composite_ms": comp_ms,
                            "composite_cached_ms": cached_ms,
                            "display_ms": max(display_ms, 0.0),
                            "total_ms": synth_ms + comp_ms + max(display_ms, 0.0),
                        }
                    )
                    print(rows[-1], flush=True)
    if args.onnx:
        rows += onnx_rows(args.presets, labels, args.repeats)
    hardware = (
        torch.cuda.get_device_name(0)
        if args.device == "cuda"
        else f"CPU ({platform.machine()}, {torch.get_num_threads()} threads)"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latency.json").write_text(
        json.dumps({"hardware": hardware, "torch": torch.__version__, "rows": rows}, indent=2)
        + "\n"
    )
    print(f"\n{hardware}; 512x512 sample slice; median of {args.repeats}")
    header = f"{'preset':<7}{'dtype':<6}{'runtime':<12}{'path':<30}{'synth':>8}{'composite':>10}{'display':>9}"
    print(header + f"{'total ms':>10}")
    for r in rows:
        print(
            f"{r['preset']:<7}{r['dtype']:<6}{r['runtime']:<12}{r['path']:<30}{r['synthesize_ms']:>8.0f}"
            f"{r['composite_ms']:>10.1f}{r['display_ms']:>9.1f}{r['total_ms']:>10.0f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
