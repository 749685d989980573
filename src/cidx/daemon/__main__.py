"""`python -m cidx.daemon`: the daemon process `cidx start` launches."""

from __future__ import annotations

import argparse
import sys

from cidx.cpucap import DEFAULT_PERCENT
from cidx.daemon._process import DEFAULT_IDLE_RELEASE, run


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m cidx.daemon")
    parser.add_argument("--idle-release", type=float, default=DEFAULT_IDLE_RELEASE)
    parser.add_argument("--cpu-cap", type=float, default=DEFAULT_PERCENT)
    parser.add_argument("--watch", action="append", default=[])
    args = parser.parse_args()
    return run(idle_release=args.idle_release, cpu_cap=args.cpu_cap, watch=args.watch)


if __name__ == "__main__":
    sys.exit(main())
