"""Write the bundled synthetic sample studies into a folder.

Usage: ``python sample_data/make_samples.py OUTDIR [NAME ...]`` writes ``OUTDIR/<name>/`` for
each sample (default: all of them; see ``sample_data/README.md``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from napari_calcinosis.phantom import SAMPLE_STUDIES, write_sample


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path)
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"samples to write (default: all of {', '.join(SAMPLE_STUDIES)})")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in SAMPLE_STUDIES]
    if unknown:
        parser.error(f"unknown sample {', '.join(unknown)}; choose from "
                     f"{', '.join(SAMPLE_STUDIES)}")
    for name in args.names or list(SAMPLE_STUDIES):
        folder = write_sample(name, args.outdir / name)
        print(f"{name}: {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
