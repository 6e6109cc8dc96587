"""A STAND-IN for Karabo's SRCNet SKA-MID AA* workflow, for the local backend and tests.

It simulates nothing. It reads the workflow's environment variables and
product flags (``--dirty``, ``--cleaned``, ``--visibility``), applies the same
rules (no product is an error; ``--cleaned`` builds the dirty image too; only
selected products go to ``$OUT_DIR/$RUCIO_NAMESPACE``, the rest to a temporary
directory) and writes products of exactly the estimated minimum sizes:

- ``{FILE_PREFIX}measurements.ms/``: a directory holding ``DATA`` of
  channels x time stamps x 10,296 baselines x 4 polarisations x 8 bytes;
- ``{FILE_PREFIX}dirty.fits`` / ``cleaned.fits``: a FITS header block plus
  npixel^2 x 8 bytes of float64 zeros (one MFS plane, as the workflow's
  ``combine_across_frequencies=True`` images).

Data are written sparse (``truncate``) so large sizes cost no disk in tests.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
from pathlib import Path

BASELINES = 144 * 143 // 2
POLARISATIONS = 4
FITS_BLOCK = 2880


def fits_header(npixel: int) -> bytes:
    cards = [
        "SIMPLE  =                    T",
        "BITPIX  =                  -64",
        "NAXIS   =                    3",
        f"NAXIS1  = {npixel:>20}",
        f"NAXIS2  = {npixel:>20}",
        f"NAXIS3  = {1:>20}",
        "COMMENT Sluice stand-in simulation: zeros, not a sky",
        "END",
    ]
    header = "".join(card.ljust(80) for card in cards).encode("ascii")
    return header.ljust(math.ceil(len(header) / FITS_BLOCK) * FITS_BLOCK, b" ")


def write_image(path: Path, npixel: int) -> None:
    header = fits_header(npixel)
    with path.open("wb") as handle:
        handle.write(header)
        handle.truncate(len(header) + npixel * npixel * 8)


def write_measurement_set(path: Path, channels: int, time_stamps: int) -> None:
    path.mkdir(parents=True, exist_ok=True)
    with (path / "DATA").open("wb") as handle:
        handle.truncate(channels * time_stamps * BASELINES * POLARISATIONS * 8)


def main() -> None:
    parser = argparse.ArgumentParser(description="Stand-in for the Karabo AA* workflow.")
    parser.add_argument("--visibility", action="store_true")
    parser.add_argument("--cleaned", action="store_true")
    parser.add_argument("--dirty", action="store_true")
    args = parser.parse_args()
    if not (args.visibility or args.cleaned or args.dirty):
        raise SystemExit("No data-product to create selected!")
    env = os.environ
    channels = math.floor(
        (float(env["END_FREQ_HZ"]) - float(env["START_FREQ_HZ"])) / float(env["FREQ_INC_HZ"])
    )
    npixel = int(env["IMAGING_NPIXEL"])
    prefix = env.get("FILE_PREFIX", "")
    out_dir = Path(env["OUT_DIR"])
    if not out_dir.is_dir():
        raise SystemExit(f"OUT_DIR={out_dir} (ingestion-dir) doesn't exist!")
    ingest_dir = out_dir / env["RUCIO_NAMESPACE"]
    ingest_dir.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        write_measurement_set(
            (ingest_dir if args.visibility else Path(tmp)) / f"{prefix}measurements.ms",
            channels,
            int(env["NUM_TIME_STAMPS"]),
        )
        if args.dirty or args.cleaned:
            write_image((ingest_dir if args.dirty else Path(tmp)) / f"{prefix}dirty.fits", npixel)
        if args.cleaned:
            write_image(ingest_dir / f"{prefix}cleaned.fits", npixel)
    print(f"stand-in simulation wrote {sorted(p.name for p in ingest_dir.iterdir())}")


if __name__ == "__main__":
    main()
