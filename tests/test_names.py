"""The one reading of a comma-separated list of names (the CLI's --pairing, --teacher-control,
--projection, gap's --names and the values of a sweep's --grid)."""
import pytest

from cmkd_lab._names import split_names


@pytest.mark.parametrize("text, want", [
    ("a,b", ["a", "b"]),
    (" a , b ,, c, ", ["a", "b", "c"]),
    ("", []),
    (",,", []),
    ("unpaired", ["unpaired"]),
])
def test_split_names(text, want):
    assert split_names(text) == want


def test_grid_values_use_the_same_reading():
    from cmkd_lab.experiments.sweep import parse_grid
    assert parse_grid(["student_fraction= 0.02, ,1 ,"]) == {"student_fraction": [0.02, 1]}
