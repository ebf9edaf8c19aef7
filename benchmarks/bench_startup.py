"""How long the command takes to start: `wnvdiag --version`, `--help`, `rules --help`, against the floor of
a Python process that imports typer (the CLI framework) and nothing else, both run here, best of N.

    python benchmarks/bench_startup.py [--repeats 7]

Not part of the test suite (tests/test_cli_startup.py checks what is imported, not the time).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

RUN = "import sys; sys.argv = ['wnvdiag', *sys.argv[1:]]; from diag.cli import main; main()"


def best(argv: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    floor = best([sys.executable, "-c", "import typer"], args.repeats)
    print(f"python + import typer: {floor * 1000:.0f} ms")
    for command in (["--version"], ["--help"], ["rules", "--help"], ["check", "--help"]):
        seconds = best([sys.executable, "-c", RUN, *command], args.repeats)
        print(f"wnvdiag {' '.join(command):<14} {seconds * 1000:5.0f} ms  {seconds / floor:4.1f}x the floor")


if __name__ == "__main__":
    main()
