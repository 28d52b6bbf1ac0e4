"""Scale test of ``load_umls_pairs`` on a synthetic, full-size UMLS release.

Writes a synthetic ``MRCONSO.RRF`` (real 18-field layout; long-tailed names per CUI;
about 70% English rows with FRE/SPA/GER/DUT/POR/JPN mixed in; MSH, SNOMEDCT_US, NCI, MDR,
RXNORM, ... sources; ~10% of rows with a SUPPRESS flag other than N; case/word-order
variants that collapse after lowercasing) and an ``MRREL.RRF`` with filler relations and
``has_tradename`` / ``tradename_of`` rows in both directions, then runs ``load_umls_pairs``
in a child process and reports wall time, peak RSS of the child, rows/s and pairs.
Results go to ``benchmarks/results/umls_scale.json`` and a markdown table is printed.

Targets: < 8 GB peak RSS and < 30 min on 2 cores for 14.7M MRCONSO rows.

Usage:
    python benchmarks/umls_scale.py                      # 14.7M rows (full scale)
    python benchmarks/umls_scale.py --rows 1000000 --out /tmp/umls_synth
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LANGUAGES = [("ENG", 0.70), ("FRE", 0.05), ("SPA", 0.08), ("GER", 0.04), ("DUT", 0.04), ("POR", 0.04), ("JPN", 0.05)]
SOURCES = ["MSH", "SNOMEDCT_US", "NCI", "MDR", "RXNORM", "LNC", "MTH", "ICD10CM", "MEDCIN", "CHV", "OMIM", "HPO"]
TTYS = ["PT", "SY", "MH", "ET", "PN", "LLT", "FN", "AB", "ACR"]
SUPPRESS = [("N", 0.90), ("O", 0.04), ("E", 0.02), ("Y", 0.04)]
SYLLABLES = ["ab", "ac", "al", "an", "ar", "ba", "car", "cy", "de", "di", "do", "en", "ep", "ery", "gas", "hem",
             "hep", "hy", "in", "ka", "lin", "lym", "ma", "mel", "my", "neu", "no", "o", "path", "per", "pho",
             "pul", "ren", "ro", "sar", "ser", "ta", "ter", "thro", "tin", "tox", "u", "va", "xi", "zo"]
SUFFIXES = ["itis", "osis", "oma", "emia", "pathy", "algia", "ine", "ase", "ol", "ide", "ate", "um"]


def _weighted(pairs, rng, n):
    values, weights = zip(*pairs)
    return rng.choices(values, weights=weights, k=n)


def _word(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 3))) + rng.choice(SUFFIXES)


def _names_per_cui(rng: random.Random) -> int:
    # long tail: most CUIs have 1-4 rows, a few hundreds (real MRCONSO: mean ~4.3 rows/CUI)
    return max(1, min(600, int(rng.lognormvariate(0.95, 0.95))))


def generate(out: Path, rows: int, seed: int = 0, mrrel_filler: int | None = None) -> dict:
    """Write MRCONSO.RRF / MRREL.RRF with ``rows`` MRCONSO rows under ``out``."""
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    vocab = [_word(rng) for _ in range(50_000)]
    written = 0
    cui_n = 0
    aui = 0
    drug_cuis: list[int] = []
    with open(out / "MRCONSO.RRF", "w", encoding="utf-8", newline="\n", buffering=1 << 22) as f:
        while written < rows:
            cui_n += 1
            cui = f"C{cui_n:07d}"
            k = min(_names_per_cui(rng), rows - written)
            base = " ".join(rng.choices(vocab, k=rng.randint(1, 4)))
            langs = _weighted(LANGUAGES, rng, k)
            flags = _weighted(SUPPRESS, rng, k)
            if rng.random() < 0.04:
                drug_cuis.append(cui_n)
            lines = []
            for i in range(k):
                lat = langs[i]
                r = rng.random()
                if i == 0 or r < 0.25:
                    name = base.capitalize() if r < 0.12 else base.upper() if r < 0.18 else base
                elif r < 0.55:
                    name = base + ", " + rng.choice(vocab)
                elif r < 0.7:
                    words = base.split()
                    rng.shuffle(words)
                    name = " ".join(words) + (" NOS" if rng.random() < 0.3 else "")
                else:
                    name = " ".join(rng.choices(vocab, k=rng.randint(1, 5)))
                if lat == "JPN":
                    name = "".join(chr(0x30A0 + (ord(c) % 90)) for c in name[:12])
                elif lat != "ENG":
                    name = name + " " + rng.choice(["é", "ñ", "ö", "ã", "ij"]) + rng.choice(vocab)
                aui += 1
                sab = rng.choice(SOURCES)
                lines.append(
                    f"{cui}|{lat}|{'P' if i == 0 else 'S'}|L{aui:07d}|PF|S{aui:07d}|{'Y' if i == 0 else 'N'}|"
                    f"A{aui:08d}||M{cui_n:07d}|D{cui_n:06d}|{sab}|{rng.choice(TTYS)}|{cui_n}|{name}|0|"
                    f"{flags[i]}|256|\n"
                )
            f.writelines(lines)
            written += k
    # MRREL: filler relations plus drug <-> tradename rows in both directions
    filler = mrrel_filler if mrrel_filler is not None else rows // 4
    tradename_rows = 0
    rel_n = 0
    with open(out / "MRREL.RRF", "w", encoding="utf-8", newline="\n", buffering=1 << 22) as f:
        lines = []
        for _ in range(filler):
            a, b = rng.randint(1, cui_n), rng.randint(1, cui_n)
            rel_n += 1
            rel, rela = rng.choice([("RB", ""), ("RN", ""), ("RO", "associated_with"), ("PAR", "isa"), ("CHD", "inverse_isa")])
            lines.append(f"C{a:07d}|A{a:08d}|AUI|{rel}|C{b:07d}|A{b:08d}|AUI|{rela}|R{rel_n:08d}||MSH|MSH|||N||\n")
            if len(lines) >= 100_000:
                f.writelines(lines)
                lines = []
        for drug in drug_cuis:
            brand = rng.randint(1, cui_n)
            for head, tail, rela in ((drug, brand, "has_tradename"), (brand, drug, "tradename_of")):
                rel_n += 1
                lines.append(f"C{head:07d}|A{head:08d}|SCUI|RN|C{tail:07d}|A{tail:08d}|SCUI|{rela}|R{rel_n:08d}||RXNORM|RXNORM|||N||\n")
                tradename_rows += 1
        f.writelines(lines)
    return {"mrconso_rows": written, "cuis": cui_n, "mrrel_rows": filler + tradename_rows,
            "tradename_rows": tradename_rows}


CHILD = r"""
import json, sys, time, resource
t0 = time.perf_counter()
from sapbert_st.data.umls import load_umls_pairs
t_import = time.perf_counter() - t0
t0 = time.perf_counter()
r0 = resource.getrusage(resource.RUSAGE_SELF)
pairs = load_umls_pairs(sys.argv[1], sys.argv[2], cache_dir=sys.argv[3], show_progress_bar=False)
wall = time.perf_counter() - t0
r1 = resource.getrusage(resource.RUSAGE_SELF)
cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
labels = pairs.unique("label")
print(json.dumps({"wall_s": wall, "cpu_s": cpu, "import_s": t_import, "pairs": len(pairs), "concepts_with_pairs": len(labels),
                  "child_maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def machine_info() -> dict:
    info = {"cpu_count": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    try:
        with open("/proc/meminfo") as f:
            info["ram_gb"] = round(int(f.readline().split()[1]) / 1024**2, 1)
    except OSError:
        pass
    for module in ("torch", "datasets", "pyarrow"):
        try:
            info[module] = __import__(module).__version__
        except ImportError:
            info[module] = None
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=14_700_000, help="MRCONSO rows (default 14.7M, a full release)")
    parser.add_argument("--out", type=Path, default=None, help="folder for the synthetic files (default: a temp dir)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument("--results", type=Path, default=Path(__file__).parent / "results" / "umls_scale.json")
    args = parser.parse_args()

    tmp = None
    if args.out is None:
        tmp = tempfile.TemporaryDirectory(prefix="umls_scale_")
        out = Path(tmp.name)
    else:
        out = args.out
    t0 = time.perf_counter()
    if (out / "MRCONSO.RRF").exists() and (out / "meta.json").exists() and \
            json.loads((out / "meta.json").read_text())["requested_rows"] == args.rows:
        data = json.loads((out / "meta.json").read_text())
    else:
        data = generate(out, args.rows, args.seed)
        data["requested_rows"] = args.rows
        (out / "meta.json").write_text(json.dumps(data))
    gen_s = time.perf_counter() - t0
    data["mrconso_bytes"] = (out / "MRCONSO.RRF").stat().st_size

    load_before = os.getloadavg()
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cache = out / "cache"
    proc = subprocess.run([sys.executable, "-c", CHILD, str(out / "MRCONSO.RRF"), str(out / "MRREL.RRF"), str(cache)],
                          capture_output=True, text=True, env=env, check=False)
    if proc.returncode:
        sys.exit(f"loader failed:\n{proc.stderr}")
    child = json.loads(proc.stdout.strip().splitlines()[-1])
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result = {
        "benchmark": "umls_scale",
        "command": "python " + " ".join(sys.argv),
        "data": data,
        "generate_s": round(gen_s, 1),
        "load_umls_pairs_wall_s": round(child["wall_s"], 1),
        "load_umls_pairs_cpu_s": round(child["cpu_s"], 1),
        "import_s": round(child["import_s"], 1),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "peak_rss_gb": round(peak_kb / 1024**2, 2),
        "mrconso_rows_per_s": round(data["mrconso_rows"] / child["wall_s"]),
        "pairs": child["pairs"],
        "concepts_with_pairs": child["concepts_with_pairs"],
        "targets": {"peak_rss_gb": 8, "wall_s_at_14.7M_rows": 1800},
        "machine": machine_info(),
    }
    if data["mrconso_rows"] != 14_700_000:
        scale = 14_700_000 / data["mrconso_rows"]
        result["extrapolated_wall_s_at_14.7M_rows_linear"] = round(child["wall_s"] * scale, 1)
        result["extrapolated_cpu_s_at_14.7M_rows_linear"] = round(child["cpu_s"] * scale, 1)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(result, indent=2) + "\n")
    print("| MRCONSO rows | MRREL rows | CUIs | pairs | wall (s) | CPU (s) | rows/s (wall) | peak RSS (GB) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| {data['mrconso_rows']:,} | {data['mrrel_rows']:,} | {data['cuis']:,} | {child['pairs']:,} | "
          f"{result['load_umls_pairs_wall_s']} | {result['load_umls_pairs_cpu_s']} | "
          f"{result['mrconso_rows_per_s']:,} | {result['peak_rss_gb']} |")
    if tmp is not None and not args.keep:
        tmp.cleanup()


if __name__ == "__main__":
    main()
