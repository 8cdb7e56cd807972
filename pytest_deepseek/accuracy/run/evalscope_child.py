"""Child-process entry: `python -m pytest_deepseek.accuracy.run.evalscope_child task.json` runs one evalscope task."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    """Build `TaskConfig(**task.json)` and run it."""
    from evalscope import TaskConfig, run_task

    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    run_task(task_cfg=TaskConfig(**spec))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
