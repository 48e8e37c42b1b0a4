"""Wall time of the policy check (`python -m policycheck`) on a stack, median of repeated runs.

    python -m bench.policy_check_time [--stack dev] [--repeat 5]

Each run is a fresh `python -m policycheck` process, both modes (first
preview and update), as CI runs it: interpreter start, the program under
mocks twice, the policy pack's start and every Analyze call.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    times = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "policycheck", "--stack", args.stack],
                       check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    print(f"policy check, stack {args.stack}, both modes: median {statistics.median(times):.2f} s "
          f"over {args.repeat} runs (min {min(times):.2f} s, max {max(times):.2f} s)")


if __name__ == "__main__":
    main()
