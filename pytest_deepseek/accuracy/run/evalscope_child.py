"""Child-process entry: `python -m pytest_deepseek.accuracy.run.evalscope_child task.json` runs one evalscope task.

The API key comes in the environment (`KEY_VARIABLE`), never in task.json, which stays in the results.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

KEY_VARIABLE = "EVALSCOPE_API_KEY"


def main(argv: list[str]) -> int:
    """Build `TaskConfig(**task.json)`, with the key from the environment, and run it."""
    from evalscope import TaskConfig, run_task

    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    key = os.environ.get(KEY_VARIABLE)
    if key:
        spec["api_key"] = key
    run_task(task_cfg=TaskConfig(**spec))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
