"""Command line: ``python -m sparling <command>``.

- ``reproduce [--preset P]``: run every notebook in notebooks/ with papermill.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sparling.presets import PRESETS, check_preset

REPO_ROOT = Path(__file__).resolve().parent.parent
KERNEL_NAME = "sparling"


def notebooks(folder: Path) -> list[Path]:
    """The notebooks to execute, in name order (papermill outputs are not inputs)."""
    return sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith("_") and ".executed" not in p.name)


def reproduce(preset: str, folder: Path, output_folder: Path) -> int:
    check_preset(preset)
    found = notebooks(folder)
    if not found:
        print(f"No notebooks in {folder}: nothing to reproduce.")
        return 0
    import papermill

    output_folder.mkdir(parents=True, exist_ok=True)
    for notebook in found:
        out = output_folder / notebook.name
        print(f"Running {notebook} at preset {preset!r} → {out}", flush=True)
        papermill.execute_notebook(
            str(notebook), str(out), parameters={"preset": preset}, kernel_name=KERNEL_NAME, cwd=str(folder)
        )
    print(f"Executed {len(found)} notebook(s); outputs in {output_folder}, figures in {REPO_ROOT / 'figures'}.")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sparling", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    rep = commands.add_parser("reproduce", help="execute every notebook with papermill")
    rep.add_argument("--preset", default="cpu", help=f"one of {', '.join(PRESETS)} (default cpu)")
    rep.add_argument("--notebooks", type=Path, default=REPO_ROOT / "notebooks")
    rep.add_argument("--output", type=Path, default=REPO_ROOT / "notebooks" / "executed")
    args = parser.parse_args(argv)
    try:
        if args.command == "reproduce":
            return reproduce(args.preset, args.notebooks, args.output)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 1
