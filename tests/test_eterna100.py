"""experiments/eterna100.py on a few small puzzles: the table, the results file, resuming, designer settings."""
import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest
import RNA

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("eterna100_bench", ROOT / "experiments" / "eterna100.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # the worker pool pickles run_task by module name
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def test_benchmark_table_resume_and_settings(bench, shared_data, tmp_path, capsys):
    data = shared_data / "eterna100" / "eterna100_vienna2.txt"
    puzzles = {p["puzzle"]: p["structure"] for p in bench.load_puzzles(data)}
    assert len(puzzles) == 100
    args = ["--data", str(data), "--puzzles", "1,8,23", "--budget", "5", "--workers", "2", "--out", str(tmp_path)]
    assert bench.main(args) == 0
    first = rows(tmp_path)
    assert sorted((r["method"], r["puzzle"]) for r in first) == sorted(
        (m, p) for m in ("designer", "rnainverse") for p in (1, 8, 23))
    for r in first:  # small puzzles: both methods solve them, and the designs really fold
        assert r["solved"] and RNA.fold(r["sequence"])[0] == puzzles[r["puzzle"]] and r["seconds"] <= 5
    table = (tmp_path / "summary.md").read_text()
    assert re.search(r"\| designer \| 3 \| 3 \| .* \|", table) and "| 8 |" in table
    assert (tmp_path / "results.csv").exists()

    capsys.readouterr()
    assert bench.main(args) == 0  # resumes: nothing left to run
    assert "0 to run, 6 already" in capsys.readouterr().err and len(rows(tmp_path)) == 6

    assert bench.main(args + ["trajectories=1"]) == 0  # other designer settings: the designer reruns
    assert "3 to run, 3 already" in capsys.readouterr().err
    new = rows(tmp_path)[6:]
    assert {(r["method"], json.dumps(r["settings"])) for r in new} == {("designer", '{"trajectories": 1}')}
    assert "designer trajectories=1" in (tmp_path / "summary.md").read_text()

    with pytest.raises(SystemExit):
        bench.main(args + ["trajectory=1"])
    assert "unknown setting 'trajectory' (valid keys: wrong_position_share" in capsys.readouterr().err


def test_heldout_natural_targets(shared_data, tmp_path):
    spec = importlib.util.spec_from_file_location("design_heldout", ROOT / "experiments" / "design_heldout.py")
    heldout = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(heldout)
    targets = heldout.natural_targets(shared_data / "rgb", 6, 3, seed=0)
    assert targets == heldout.natural_targets(shared_data / "rgb", 6, 3, seed=0)  # fixed by data and seed
    assert len(targets) == 9 and len({s for _, s in targets}) == 9
    assert [len(s) < 150 for _, s in targets] == [True] * 6 + [False] * 3
    assert all(40 <= len(s) <= 400 and not set(s) - set("().") for _, s in targets)
    assert all(re.fullmatch(r"(archive2|bprna):\d+", name) for name, _ in targets)
    out = tmp_path / "heldout"
    assert heldout.main(["--short", "2", "--long", "0", "--budget", "2", "--workers", "1", "--out", str(out),
                         "--data", str(shared_data / "rgb")]) == 0
    results = rows(out)
    assert [r["method"] for r in results] == ["designer", "designer"]
    for r in results:
        target = (out / "targets.tsv").read_text().splitlines()[r["puzzle"]].split("\t")[2]
        assert r["solved"] == (RNA.fold(r["sequence"])[0] == target)
    assert (out / "summary.md").read_text().startswith("Natural held-out targets, 2 puzzles")
