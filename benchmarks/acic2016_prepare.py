"""Write the ten ACIC 2016 instances shipped by ``causallib`` as CSV files with their true effects.

The 2016 Atlantic Causal Inference Conference challenge (Dorie, Hill, Shalit, Scott and Cervone 2019,
Statistical Science 34(1):43-68) simulated treatment and outcomes on real covariates (4,802 infants of the
Infant Health and Development Program's covariate file, 58 covariates, three of them categorical). The
``causallib`` package ships one instance of each of ten of its data-generating processes: ``x.csv`` (the
covariates) and ``zymu_<k>.csv`` (treatment ``z``, noisy potential outcomes ``y0``/``y1``, and their
noise-free means ``mu0``/``mu1``).

Each instance becomes ``OUT/instance_<k>.csv`` (the covariates, ``z`` and the observed ``y``), and
``OUT/references.json`` holds each file's truths from the noise-free potential outcomes, as the competition
scored them: ``ate`` = mean(mu1 - mu0) and ``att`` = mean(mu1 - mu0) over the treated (the challenge's
estimand was the effect on the treated). ``causal run experiment=acic2016`` then sweeps over the ten files
with ``reference_from: references.json``.

Where the files come from, first match wins: ``--source DIR`` (a folder holding x.csv and zymu_*.csv);
the installed ``causallib`` package (``pip install causal-cli[benchmark]``; it is not imported, its data
folder is read); ``--wheel FILE`` (a causallib wheel); else ``pip download --no-deps causallib`` into a
temporary folder (causallib pins pandas<3, so it may not install beside causal-cli's pandas; its data
files need none of its code).

    python benchmarks/acic2016_prepare.py                 # -> acic2016/instance_01.csv ... + references.json
    python benchmarks/acic2016_prepare.py --out data/acic2016 --instances 1 2 3
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

INSTANCES = tuple(range(1, 11))
DATA_IN_PACKAGE = Path("datasets") / "data" / "acic_challenge_2016"
TREATMENT, OUTCOME = "z", "y"


def installed_source() -> Path | None:
    """causallib's ACIC data folder if the package is installed (found without importing it)."""
    spec = importlib.util.find_spec("causallib")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / DATA_IN_PACKAGE
    return folder if (folder / "x.csv").is_file() else None


def wheel_source(wheel: Path, into: Path) -> Path:
    """Extract the ACIC data folder of a causallib wheel into ``into``."""
    prefix = f"causallib/{DATA_IN_PACKAGE.as_posix()}/"
    with zipfile.ZipFile(wheel) as archive:
        names = [n for n in archive.namelist() if n.startswith(prefix) and n.endswith(".csv")]
        if not names:
            raise SystemExit(f"{wheel} holds no {prefix}*.csv")
        for name in names:
            target = into / Path(name).name
            target.write_bytes(archive.read(name))
    return into


def downloaded_source(into: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "causallib", "-d", str(into)],
        check=True,
    )
    wheels = sorted(into.glob("causallib-*.whl"))
    if not wheels:
        raise SystemExit("pip download causallib gave no wheel")
    return wheel_source(wheels[-1], into)


def prepare(source: Path, out: Path, instances=INSTANCES) -> dict[str, dict[str, float]]:
    """Write ``instance_<k>.csv`` for each instance and ``references.json``; return the references."""
    import pandas as pd

    out.mkdir(parents=True, exist_ok=True)
    covariates = pd.read_csv(source / "x.csv")
    references: dict[str, dict[str, float]] = {}
    for k in instances:
        zymu = pd.read_csv(source / f"zymu_{k}.csv")
        if len(zymu) != len(covariates):
            raise SystemExit(f"zymu_{k}.csv has {len(zymu)} rows, x.csv {len(covariates)}")
        z = zymu["z"].astype(int)
        observed = zymu["y1"].where(z == 1, zymu["y0"])
        frame = covariates.assign(**{TREATMENT: z, OUTCOME: observed})
        name = f"instance_{k:02d}.csv"
        frame.to_csv(out / name, index=False)
        effect = zymu["mu1"] - zymu["mu0"]
        references[name] = {
            "ate": float(effect.mean()),
            "att": float(effect[z == 1].mean()),
            "atc": float(effect[z == 0].mean()),
        }
    (out / "references.json").write_text(json.dumps(references, indent=2) + "\n", encoding="utf-8")
    return references


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("acic2016"), help="output folder (acic2016)")
    parser.add_argument("--source", type=Path, help="a folder with x.csv and zymu_<k>.csv")
    parser.add_argument("--wheel", type=Path, help="a causallib wheel to read the data files from")
    parser.add_argument("--instances", type=int, nargs="+", default=list(INSTANCES), choices=INSTANCES)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        if args.source:
            source = args.source
        elif installed_source() is not None:
            source = installed_source()
        elif args.wheel:
            source = wheel_source(args.wheel, Path(tmp))
        else:
            source = downloaded_source(Path(tmp))
        references = prepare(source, args.out, args.instances)
    for name, ref in references.items():
        print(f"{args.out / name}: ATE {ref['ate']:.3f}, ATT {ref['att']:.3f}")
    print(f"{args.out / 'references.json'}: {len(references)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
