"""Every published result is made by one code version (the re-make of issue 23): the files in docs/results
that still record another version, or none, are listed here by name, so that the list can only shrink —
a re-made file must leave it, and no file made by a third version can enter."""
import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results"

# Made by earlier code and not yet re-made by `bash scripts/make_results.sh PART` (remove a name once its part
# is published again; the test then requires it to record the same version as the others).
NOT_YET_REMADE = {"regime_synthetic_unlabelled"}


def _versions():
    return {p.stem: json.loads(p.read_text(encoding="utf-8")).get("code_version")
            for p in sorted(RESULTS.glob("*.json"))}


def test_published_results_share_one_code_version():
    made = _versions()
    current = {v for name, v in made.items() if name not in NOT_YET_REMADE}
    assert len(current) == 1 and None not in current, {n: v for n, v in made.items() if n not in NOT_YET_REMADE}


def test_the_list_of_results_not_yet_remade_only_shrinks():
    made = _versions()
    assert NOT_YET_REMADE <= set(made), sorted(NOT_YET_REMADE - set(made))  # a name of a file that exists
    (current,) = {v for name, v in made.items() if name not in NOT_YET_REMADE}
    stale_listed_current = sorted(n for n in NOT_YET_REMADE if made[n] == current)
    assert not stale_listed_current, f"re-made with {current}: remove {stale_listed_current} from NOT_YET_REMADE"
