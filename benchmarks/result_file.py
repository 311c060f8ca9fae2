"""Write a benchmark's JSON result: atomically (a temporary file, then a rename), so that an interrupted
run leaves the previous result in place rather than half a file."""
from __future__ import annotations

import json
from pathlib import Path


def write_result(path: Path, result: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(result, indent=2, default=str) + "\n")
    tmp.replace(path)
    return path
