"""The network alone, eager torch against ONNX Runtime, in images/s: which runtime, how many
threads, which batch size.

    python -m bench.bench_network                 # EfficientNet-Lite0, float32, 1 and 2 threads, batch 1/8/32
    python -m bench.bench_network --precisions float32,int8,bfloat16   # also int8 (onnxruntime), bf16 (torch)
    python -m bench.bench_network --tiny          # seconds: the smoke test's size
    python -m bench.bench_network --models efficientnet_lite0,efficientnet_lite2   # the models side by side

Then the models side by side (ONNX Runtime, float32, batch 8, 1 and 2 threads): images/s, CPU
time per image, the network's hours for 500k images on 2 cores, and their quality as the last
`make quality` measured it (bench/results/quality.json).

Both runtimes get the same uint8 centre crops of real photos (scikit-image's samples), the
same verified weights and the same thread count, one after the other in one process; each
cell is the best of a few timed rounds after a warm-up call. Float32 is the default because
that is what a CPU without native bfloat16 computes; the CPU flags are printed so a reader
knows which this was. Prints a markdown table, writes JSON to bench/results/network.json.
"""
from __future__ import annotations

import argparse
import importlib.util
import io
import json
import logging
import os
import time

import numpy as np
from PIL import Image

import config  # noqa: F401  (sets the OpenMP wait policy before torch is imported)
from bench.machine import cpu_flags, cpu_model
from features.decode import decode
from features.errors import WeightsError
from features.framing import frame
from features.network import onnx as onnx_embedder
from features.network.base import SPECS, native_bfloat16, verified_weights
from features.network.loader import embedder_from_network, load_embedder
from fileio import atomic_write

log = logging.getLogger("bench_network")

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "network.json")
FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_bf16")
BFLOAT16_NOTE = " (this CPU has it: torch with precision auto would use bfloat16)"
SKIMAGE_DATA = os.path.join(os.path.dirname(importlib.util.find_spec("skimage").origin), "data")
PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png", "hubble_deep_field.jpg")
# (runtime, precision) pairs measured for each precision asked for
RUNS = {"float32": [("torch", "float32"), ("onnxruntime", "float32")], "int8": [("onnxruntime", "int8")],
        "bfloat16": [("torch", "bfloat16")]}
MODELS = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
QUALITY = os.path.join(os.path.dirname(RESULTS), "quality.json")
COLLECTION = 500_000  # the collection size the hours are given for


def sample_crops(n: int, size: int = 224, framing: str = "centre_crop") -> np.ndarray:
    """n uint8 network inputs of real photos (cycled), decoded as main.py decodes, framed as ``framing``."""
    crops = []
    for name in PHOTOS:
        with Image.open(os.path.join(SKIMAGE_DATA, name)) as image:
            data = io.BytesIO()
            image.convert("RGB").save(data, "JPEG", quality=90)
        crops.append(frame(decode(data.getvalue(), 256), framing, size))
    return np.stack([crops[i % len(crops)] for i in range(n)])


def images_per_second(embedder, crops: np.ndarray, batch: int, seconds: float, rounds: int) -> tuple[float, float]:
    """(images/s, CPU ms per image) of the best of ``rounds`` rounds, each running batches for
    about ``seconds``. CPU time (all threads of this process) is less disturbed than wall time
    by other jobs on a shared machine."""
    embedder.embed_crops(crops[:batch])  # warm-up: kernel selection, memory arenas
    best, cpu_ms = 0.0, 0.0
    for _ in range(rounds):
        done, start, cpu_start = 0, time.perf_counter(), time.process_time()
        while True:
            embedder.embed_crops(crops[:batch])
            done += batch
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                break
        if done / elapsed > best:
            best, cpu_ms = done / elapsed, 1000 * (time.process_time() - cpu_start) / done
    return best, cpu_ms


def network_for(model: str, precision: str, runtime: str, threads: int):
    """The verified model; ResNet18 without its weights file is randomly initialised (same
    layers, same arithmetic, same cost), float32 and bfloat16 only (int8 needs a cached file)."""
    try:
        return load_embedder(model, precision, runtime, threads=threads)
    except WeightsError:
        if model != "resnet18":
            raise
    if precision == "int8":
        log.warning("resnet18 int8 skipped: its weights are absent (random weights are not quantised)")
        return None
    import torch  # heavy: only for the random-weights network

    from features.network.torch import build_network

    torch.manual_seed(0)
    return embedder_from_network(SPECS["resnet18"], build_network("resnet18"), "random-init", precision, runtime,
                                 threads)


def spinning(embedder, model: str):
    """The same ONNX model in a session whose idle threads spin (ONNX Runtime's own default)."""
    path, digest = verified_weights(model)
    data = onnx_embedder.cached_model(embedder.spec, path, digest, embedder.precision)
    return onnx_embedder.OnnxEmbedder(embedder.spec, data, digest, embedder.precision, embedder.threads, spin=True)


def measure(model: str, precisions: list[str], threads: list[int], batches: list[int], seconds: float,
            rounds: int, spin: bool = False) -> list[dict]:
    crops = sample_crops(max(batches))
    rows = []
    for precision in precisions:
        for runtime, computed in RUNS[precision]:
            for thread_count in threads:
                embedder = network_for(model, computed, runtime, thread_count)
                if embedder is None:
                    continue
                variants = [(runtime, embedder)]
                if spin and runtime == "onnxruntime" and embedder.weights_sha256 != "random-init":
                    variants.append(("onnxruntime spinning", spinning(embedder, model)))
                for label, network in variants:
                    for batch in batches:
                        rate, cpu_ms = images_per_second(network, crops, batch, seconds, rounds)
                        rows.append({"model": network.spec.name, "weights": network.weights_sha256[:12],
                                     "runtime": label, "precision": computed,
                                     "threads": thread_count, "batch": batch, "images_per_s": round(rate, 2),
                                     "cpu_ms_per_image": round(cpu_ms, 2)})
                        log.info("%s", rows[-1])
    return rows


def table(rows: list[dict], threads: list[int], batches: list[int], key: str = "images_per_s",
          title: str = "runtime, precision") -> str:
    """One line per (runtime, precision); one column per thread count, cells batch 1 / 8 / 32;
    then ONNX Runtime float32 against torch float32, and int8 against float32 (speed-ups)."""
    head = " / ".join(str(b) for b in batches)
    lines = [f"| {title} | " + " | ".join(f"{t} thread{'s' * (t > 1)}: batch {head}" for t in threads) + " |",
             "| --- |" + " ---: |" * len(threads)]
    cell = {(r["runtime"], r["precision"], r["threads"], r["batch"]): r[key] for r in rows}
    for runtime, precision in dict.fromkeys((r["runtime"], r["precision"]) for r in rows):
        values = [" / ".join(f"{cell[runtime, precision, t, b]:.1f}" for b in batches) for t in threads]
        lines.append(f"| {runtime}, {precision} | " + " | ".join(values) + " |")
    for label, fast, slow in (("onnxruntime / torch, float32", ("onnxruntime", "float32"), ("torch", "float32")),
                              ("onnxruntime int8 / float32", ("onnxruntime", "int8"), ("onnxruntime", "float32"))):
        if all((*fast, t, b) in cell and (*slow, t, b) in cell for t in threads for b in batches):
            speedup = (lambda t, b, fast=fast, slow=slow: cell[(*fast, t, b)] / cell[(*slow, t, b)]) \
                if key == "images_per_s" else \
                (lambda t, b, fast=fast, slow=slow: cell[(*slow, t, b)] / cell[(*fast, t, b)])  # time per image
            ratios = [" / ".join(f"{speedup(t, b):.1f}x" for b in batches) for t in threads]
            lines.append(f"| {label} | " + " | ".join(ratios) + " |")
    return "\n".join(lines)


def compare_models(models: list[str], threads: list[int], batch: int, seconds: float, rounds: int) -> list[dict]:
    """Each model on ONNX Runtime in float32 at ``batch``, on each thread count (inputs at its own size)."""
    rows = []
    for model in models:
        for thread_count in threads:
            try:
                embedder = load_embedder(model, "float32", "onnxruntime", threads=thread_count)
            except WeightsError as exc:
                log.warning("%s not measured: %s", model, exc)
                break
            crops = sample_crops(batch, embedder.spec.input_size, config.EMBED_FRAMING)
            rate, cpu_ms = images_per_second(embedder, crops, batch, seconds, rounds)
            rows.append({"model": model, "input": embedder.spec.input_size, "threads": thread_count, "batch": batch,
                         "images_per_s": round(rate, 2), "cpu_ms_per_image": round(cpu_ms, 2)})
            log.info("%s", rows[-1])
    return rows


def quality_of(model: str) -> str:
    """The model's quality at the defaults as the last make quality wrote it, or how to get it."""
    try:
        with open(QUALITY, encoding="utf-8") as fh:
            options = json.load(fh).get("options", [])
    except (OSError, ValueError):
        options = []
    found = next((o for o in options if o["model"] == model and "the defaults" in o["name"]), None)
    if found is None:
        return "not in bench/results/quality.json (make quality)"
    top = found.get("top_folders") or {}
    return (f"{found['labelled']['P@10']:.3f} / {top.get('P@10', float('nan')):.3f} / "
            f"{found['near_recall@1']:.3f}")


def models_table(rows: list[dict], threads: list[int]) -> str:
    """The models side by side: speed, CPU time, hours for COLLECTION images, quality."""
    most = max(threads)
    lines = ["| model (input) | " + " | ".join(f"img/s, {t} thread{'s' * (t > 1)}" for t in threads)
             + f" | CPU ms/img | network hours for {COLLECTION // 1000}k, {most} thread{'s' * (most > 1)} "
               "| cost vs first | P@10 classes / top folders / near-dup R@1 (make quality) |",
             "| --- |" + " ---: |" * (len(threads) + 3) + " --- |"]
    cell = {(r["model"], r["threads"]): r for r in rows}
    first = None
    for model in dict.fromkeys(r["model"] for r in rows):
        if not all((model, t) in cell for t in threads):
            continue
        fastest = cell[model, most]
        first = first or fastest
        hours = COLLECTION / fastest["images_per_s"] / 3600
        lines.append(f"| {model} ({fastest['input']}) | "
                     + " | ".join(f"{cell[model, t]['images_per_s']:.1f}" for t in threads)
                     + f" | {cell[model, threads[0]]['cpu_ms_per_image']:.1f} | {hours:.2f} | "
                       f"{first['images_per_s'] / fastest['images_per_s']:.2f}x | {quality_of(model)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="efficientnet_lite0", choices=tuple(SPECS),
                        help="the model of the runtime table")
    parser.add_argument("--models", default=",".join(MODELS), help="the models compared side by side (batch 8)")
    parser.add_argument("--precisions", default="float32", help="comma-separated: float32, int8, bfloat16")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--batches", default="1,8,32")
    parser.add_argument("--seconds", type=float, default=2.0, help="per timed round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--spin", action="store_true",
                        help="also ONNX Runtime with spinning idle threads (its default; ours sleep)")
    parser.add_argument("--tiny", action="store_true", help="smoke-test size: 1 thread, batch 1 and 2, one short round")
    parser.add_argument("--out", default=RESULTS)
    args = parser.parse_args(argv)
    precisions = [p for p in args.precisions.split(",") if p]
    unknown = [p for p in precisions if p not in RUNS]
    if unknown:
        parser.error(f"unknown precision {unknown[0]!r}; valid: {', '.join(RUNS)}")
    threads, batches = [int(t) for t in args.threads.split(",")], [int(b) for b in args.batches.split(",")]
    seconds, rounds = args.seconds, args.rounds
    if args.tiny:
        threads, batches, seconds, rounds = [1], [1, 2], 0.05, 1
    flags = cpu_flags(FLAGS)
    machine = {"cores": os.cpu_count(), "cpu": cpu_model(), "cpu_flags": flags, "load_average": os.getloadavg(),
               "native_bfloat16": native_bfloat16()}
    rows = measure(args.model, precisions, threads, batches, seconds, rounds, args.spin)
    models = [args.model] if args.tiny else [m for m in args.models.split(",") if m]
    compared = compare_models(models, threads, 2 if args.tiny else 8, seconds, rounds)
    flag_text = ", ".join(f"{flag} {'yes' if present else 'no'}" for flag, present in flags.items())
    text = (f"Machine: {machine['cores']} cores ({machine['cpu']}); {flag_text}; load average at start "
            f"{', '.join(f'{x:.1f}' for x in machine['load_average'])}.\n"
            f"Network only, {rows[0]['model']} (weights {rows[0]['weights']}), 224x224 uint8 crops of real photos in, "
            f"images/s (best of {rounds} rounds of {seconds:g} s), precision per row. "
            "Float32 is what a CPU without native bfloat16 computes"
            f"{BFLOAT16_NOTE if machine['native_bfloat16'] else ''}"
            f".\n\n"
            + table(rows, threads, batches)
            + "\n\nCPU time per image, ms (all threads of the process; less disturbed by other jobs than the "
              "wall time above):\n\n"
            + table(rows, threads, batches, "cpu_ms_per_image", "runtime, precision (CPU ms per image)")
            + f"\n\nThe models side by side (ONNX Runtime, float32, batch {compared[0]['batch'] if compared else '-'}, "
              f"inputs framed as {config.EMBED_FRAMING} at each model's size; the hours are the network alone):\n\n"
            + models_table(compared, threads))
    print(text)
    report = {"machine": machine, "settings": {"threads": threads, "batches": batches, "seconds": seconds,
                                               "rounds": rounds, "tiny": args.tiny}, "rows": rows, "models": compared,
              "table": text}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with atomic_write(args.out, "w", encoding="utf-8") as fh:
        json.dump(report, fh, indent=1)
    return report


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    main()
