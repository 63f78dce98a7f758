"""The whole-collection duplicate finder at scale, beside a straightforward all-pairs reference.

    python -m bench.bench_duplicates                       # N = 10k, 50k, 100k, 500k (reference to 50k)
    python -m bench.bench_duplicates --sizes 20000 --tiny  # seconds: the smoke test's run

Data: synthetic unit embeddings (512-d by default, float32, memory-mapped from .npy files
the way the search's matrix cache is) and packed 64-bit pHashes, clustered like a photo
collection (clusters of Zipf sizes, bursts of similar shots: near, but farther apart than
the threshold) with planted groups of copies: 2 % of the rows are edited copies of another
row, most within the cosine threshold, a quarter "heavy edits" beyond it that only the pHash
rule joins. Both sides apply the same rule (duplicates.finder: cosine <= threshold, or
pHash <= 8 bits and cosine <= 0.5) and union-find the pairs:

- ours: duplicates.matrix_groups.group_rows (cells of the embeddings + multi-index hashing);
- reference: every pair of rows, by blocked matrix products and blocked XOR-popcounts.

Each side runs in a fresh process (peak RSS is its own). Prints CPU flags, a table, the
recall of the reference's pairs and of the planted pairs, and writes
bench/results/bench_duplicates.json.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

from bench.machine import describe, peak_rss_mb
from duplicates.candidates import Pairs, all_pairs, single_threaded_blas
from duplicates.groups import group_pairs
from duplicates.hashes import hamming
from duplicates.matrix_groups import copy_pairs, split_group
from duplicates.rule import HASH_BITS, HASH_GUARD, Rule
from fileio import atomic_write

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE_DIR = os.path.join(HERE, "cache", "bench_duplicates")  # git-ignored
RESULTS = os.path.join(HERE, "results", "bench_duplicates.json")
SIZES = (10_000, 50_000, 100_000, 500_000)
REFERENCE_MAX = 50_000
CHUNK = 50_000
COPY_SHARE = 0.02
TARGETS = {"seconds_500k": 600, "rss_mb": 2048, "recall": 0.99}
# The synthetic geometry below is built around this cosine threshold (copies within 0.14, shots
# of one burst ~0.18 apart): the finder's default is 0.18 on the stored embeddings of the
# whole-picture framing (duplicates.finder); these synthetic rows keep the scale they were drawn at.
THRESHOLD = 0.15


# --- data ------------------------------------------------------------------------------------

def data_dir(n, dim, seed, cache=CACHE_DIR):
    return os.path.join(cache, f"n{n}-d{dim}-s{seed}")


def build(n, dim=512, seed=0, cache=CACHE_DIR):
    """unit.npy (n, dim) float32, phash.npy (n, 8) uint8, copies.npy (pairs of planted copies); once."""
    folder = data_dir(n, dim, seed, cache)
    if os.path.exists(os.path.join(folder, "complete")):
        return folder
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    clusters = max(50, n // 250)
    weights = 1.0 / np.arange(1, clusters + 1) ** 0.8
    centres = rng.standard_normal((clusters, dim)).astype(np.float32) / np.sqrt(dim)
    bits = rng.random((clusters, 64)) < 0.5
    unit = np.lib.format.open_memmap(os.path.join(folder, "unit.npy"), "w+", np.float32, (n, dim))
    phash = np.lib.format.open_memmap(os.path.join(folder, "phash.npy"), "w+", np.uint8, (n, 8))
    for first in range(0, n, CHUNK):
        count = min(CHUNK, n - first)
        bursts = rng.geometric(1 / 8, size=count // 4 + 8)
        burst_of_row = np.repeat(np.arange(len(bursts)), bursts)[:count]
        cluster = rng.choice(clusters, size=len(bursts), p=weights / weights.sum())[burst_of_row]
        burst = rng.standard_normal((len(bursts), dim), dtype=np.float32) * np.sqrt(0.4 / dim)
        rows = centres[cluster] + burst[burst_of_row] + rng.standard_normal((count, dim), dtype=np.float32) * np.sqrt(
            0.3 / dim)  # shots of one burst ~0.18 apart, of one cluster ~0.4: look-alikes, not copies
        unit[first:first + count] = rows / np.linalg.norm(rows, axis=1, keepdims=True)
        flips = rng.random((count, 64)) < 0.2  # two shots of one subject ~20 bits apart, as real pHashes
        phash[first:first + count] = np.packbits(bits[cluster] ^ flips, axis=1)
    # Planted copies: row c becomes an edited copy of an earlier row s.
    copies = rng.choice(np.arange(n // 2, n), size=int(n * COPY_SHARE), replace=False)
    sources = rng.integers(0, n // 2, size=len(copies))
    heavy = rng.random(len(copies)) < 0.25
    target = np.where(heavy, rng.uniform(0.2, 0.45, len(copies)), rng.uniform(0.0, 0.14, len(copies)))
    for start in range(0, len(copies), CHUNK):
        c, s, t = copies[start:start + CHUNK], sources[start:start + CHUNK], target[start:start + CHUNK]
        base = np.asarray(unit[s])
        noise = rng.standard_normal(base.shape).astype(np.float32)
        noise -= (noise * base).sum(axis=1, keepdims=True) * base  # orthogonal to the source
        noise /= np.linalg.norm(noise, axis=1, keepdims=True)
        angle = np.arccos(1 - t)[:, None]
        unit[c] = (np.cos(angle) * base + np.sin(angle) * noise).astype(np.float32)  # exactly t from its source
        hash_bits = np.unpackbits(np.asarray(phash[s]), axis=1)
        for row, flips in enumerate(rng.integers(0, 7, len(c))):
            hash_bits[row, rng.choice(64, flips, replace=False)] ^= 1
        phash[c] = np.packbits(hash_bits, axis=1)
    np.save(os.path.join(folder, "copies.npy"), np.stack([np.minimum(copies, sources), np.maximum(copies, sources)]))
    unit.flush()
    phash.flush()
    del unit, phash
    with atomic_write(os.path.join(folder, "complete"), "w") as fh:
        fh.write("ok\n")
    return folder


# --- the two sides, each in its own process ------------------------------------------------

def rule():
    return Rule("cosine", THRESHOLD, hash_bits=HASH_BITS)


def reference_pairs(unit, phash, rule):
    """Every pair compared: blocked products of all rows and blocked XOR-popcounts of all hashes."""
    yield from all_pairs(unit, rule.threshold)
    block = 2048
    for i in range(0, len(phash), block):
        left = np.asarray(phash[i:i + block])
        for j in range(i, len(phash), block):
            dist = hamming(left[:, None, :], np.asarray(phash[j:j + block])[None, :, :])
            a, b = np.nonzero(dist <= rule.hash_bits)
            a, b = a + i, b + j
            keep = a < b
            a, b = a[keep], b[keep]
            sims = np.einsum("ij,ij->i", np.asarray(unit[a]), np.asarray(unit[b]))
            close = 1.0 - sims <= HASH_GUARD
            if close.any():
                yield Pairs(a[close], b[close], 1.0 - sims[close])


def run_side(side, folder, keep_pairs):
    """One side on one data set, in this process: seconds, peak RSS, groups (and pairs, saved)."""
    # Plain arrays over the maps, as search.matrix_cache hands them out (np.memmap's indexing is slower).
    unit = np.asarray(np.load(os.path.join(folder, "unit.npy"), mmap_mode="r"))
    phash = np.asarray(np.load(os.path.join(folder, "phash.npy"), mmap_mode="r"))
    n = len(unit)
    start = time.perf_counter()
    blocks = copy_pairs(unit, rule(), phash) if side == "ours" else reference_pairs(unit, phash, rule())
    kept = []

    def tee():
        for block in blocks:
            if keep_pairs:
                kept.append(block.left.astype(np.int64) * n + block.right)
            yield block

    groups = group_pairs(n, tee())
    chained = time.perf_counter() - start
    # The default grouping: connected sets cut into star groups around their keepers (here
    # the first row: synthetic rows have no facts to rank).
    with single_threaded_blas():
        stars = [part for g in groups for part in split_group(g, rule(), unit, phash, "star")]
    seconds = time.perf_counter() - start
    result = {"side": side, "n": n, "seconds": seconds, "chain_seconds": chained, "peak_rss_mb": peak_rss_mb(),
              "groups": len(groups), "star_groups": len(stars), "images_in_groups": int(sum(len(g) for g in groups))}
    if keep_pairs:
        pairs = np.unique(np.concatenate(kept)) if kept else np.zeros(0, dtype=np.int64)
        np.save(os.path.join(folder, f"pairs-{side}.npy"), pairs)
        result["pairs"] = len(pairs)
    return result


def in_subprocess(side, folder, keep_pairs):
    command = [sys.executable, "-m", "bench.bench_duplicates", "--side", side, "--data", folder]
    if keep_pairs:
        command.append("--keep-pairs")
    done = subprocess.run(command, capture_output=True, text=True, check=True,
                          cwd=os.path.dirname(HERE))
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(n, dim, reference_max, seed=0, cache=CACHE_DIR):
    folder = build(n, dim, seed, cache)
    compare = n <= reference_max
    row = {"n": n, "dim": dim, "ours": in_subprocess("ours", folder, keep_pairs=True)}
    ours_pairs = np.load(os.path.join(folder, "pairs-ours.npy"))
    copies = np.load(os.path.join(folder, "copies.npy"))
    planted = copies[0].astype(np.int64) * n + copies[1]
    row["planted_pairs_found"] = float(np.isin(planted, ours_pairs).mean())
    if compare:
        row["reference"] = in_subprocess("reference", folder, keep_pairs=True)
        reference = np.load(os.path.join(folder, "pairs-reference.npy"))
        row["recall_of_reference_pairs"] = float(np.isin(reference, ours_pairs).mean()) if len(reference) else 1.0
        row["extra_pairs"] = int((~np.isin(ours_pairs, reference)).sum())  # must be 0: ours are verified
    return row


def table(rows):
    lines = ["| N | ours: s | ours: chain s | ours: peak RSS MB | reference: s | reference: peak RSS MB | speed-up | "
             "recall of reference pairs | planted copies found | groups (chain / star) |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        ours, ref = r["ours"], r.get("reference")
        cells = [f"{r['n']:,}", f"{ours['seconds']:.1f}", f"{ours['chain_seconds']:.1f}", f"{ours['peak_rss_mb']:.0f}"]
        if ref:
            cells += [f"{ref['seconds']:.1f}", f"{ref['peak_rss_mb']:.0f}", f"{ref['seconds'] / ours['seconds']:.1f}x",
                      f"{r['recall_of_reference_pairs']:.4f}"]
        else:
            cells += ["-", "-", "-", "-"]
        cells += [f"{r['planted_pairs_found']:.4f}", f"{ours['groups']:,} / {ours['star_groups']:,}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--reference-max", type=int, default=REFERENCE_MAX)
    parser.add_argument("--out", default=RESULTS)
    parser.add_argument("--cache", default=CACHE_DIR, help="where the synthetic data sets go")
    parser.add_argument("--tiny", action="store_true", help="a smoke run: 3,000 and 8,000 rows, 64-d")
    parser.add_argument("--side", choices=("ours", "reference"), help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--keep-pairs", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.side:
        print(json.dumps(run_side(args.side, args.data, args.keep_pairs)))
        return
    sizes = (3000, 8000) if args.tiny else tuple(int(s) for s in args.sizes.split(","))
    dim = 64 if args.tiny else args.dim
    machine = describe()
    print(f"Machine: {machine['cores']} cores ({machine['cpu']}), flags: "
          + ", ".join(f"{f} {'yes' if v else 'no'}" for f, v in machine["cpu_flags"].items())
          + f"; float32 matmul {machine['matmul_gflops']:.0f} GFLOP/s; load {machine['load_average']}")
    rows = []
    for n in sizes:
        rows.append(measure(n, dim, args.reference_max, cache=args.cache))
        print(f"N={n:,}: ours {rows[-1]['ours']['seconds']:.1f} s", flush=True)
    text = table(rows)
    print(f"\nDuplicate finder, {dim}-d embeddings + 64-bit pHash, rule: {rule()}\n\n{text}")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with atomic_write(args.out, "w", encoding="utf-8") as fh:
        json.dump({"machine": machine, "dim": dim, "rows": rows, "targets": TARGETS}, fh, indent=1)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
