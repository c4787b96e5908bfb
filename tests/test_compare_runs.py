from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("compare_runs", ROOT / "scripts/compare_runs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(path: Path, rows: list[str], final: dict[str, float] | None = None) -> Path:
    path.mkdir()
    (path / "metrics.csv").write_text("\n".join(["round,true_return,seconds", *rows]) + "\n")
    if final is not None:
        (path / "final.json").write_text(json.dumps(final))
    return path


def test_wall_times_differ_and_the_runs_are_the_same(tmp_path: Path) -> None:
    compare = _script()
    a = _run(tmp_path / "a", ["1,10.5,3.1", "2,11.0,2.9"], {"win_rate": 0.5})
    b = _run(tmp_path / "b", ["1,10.5,9.9", "2,11.0,1.0"], {"win_rate": 0.5})
    assert compare.differences(a, b) == []
    assert compare.main([str(a), str(b)]) == 0


def test_a_changed_figure_a_missing_row_and_final_json_are_reported(tmp_path: Path) -> None:
    compare = _script()
    a = _run(tmp_path / "a", ["1,10.5,3.1", "2,11.0,2.9"], {"win_rate": 0.5})
    b = _run(tmp_path / "b", ["1,10.6,3.1"], {"win_rate": 0.75})
    found = compare.differences(a, b)
    assert found == [
        "rows: 2 vs 1",
        "row 0: {'true_return': ('10.5', '10.6')}",
        "final.json: {'win_rate': (0.5, 0.75)}",
    ]
    assert compare.main([str(a), str(b)]) == 1
