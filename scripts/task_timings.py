"""Per-task wall times of an `airflow dags test` run, read from its console log.

Usage: python scripts/task_timings.py .local/demo-run.log
"""

import re
import sys
from datetime import datetime

SKIPPED = re.compile(r"tasks_skipped=(\d+)")


def main(path: str) -> None:
    started, ended, order, skipped = {}, {}, [], 0
    for line in open(path, errors="replace"):  # noqa: SIM115 - read once, closed at exit
        if match := re.search(r"^(\S+Z) .*\[DAG TEST\] starting task_id=(\S+)", line):
            started[match[2]] = datetime.fromisoformat(match[1].replace("Z", "+00:00"))
            order.append(match[2])
        elif match := re.search(r"^(\S+Z) .*\[DAG TEST\] end task task_id=(\S+)", line):
            ended[match[2]] = datetime.fromisoformat(match[1].replace("Z", "+00:00"))
        elif match := SKIPPED.search(line):
            skipped += int(match[1])
    print(f"{'task':<44}{'seconds':>8}")
    for task_id in order:
        seconds = (ended[task_id] - started[task_id]).total_seconds() if task_id in ended else float("nan")
        print(f"{task_id:<44}{seconds:>8.1f}")
    if order:
        total = (max(ended.values()) - min(started.values())).total_seconds()
        print(f"{'(whole run)':<44}{total:>8.1f}" + (f"   {skipped} downstream tasks skipped" if skipped else ""))


if __name__ == "__main__":
    main(sys.argv[1])
