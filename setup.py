"""The published results (docs/results) go into the package as ``cmkd_lab/results/published``: one home in
the repository, reachable from an installed package (:mod:`cmkd_lab.results.shipped`). Everything else is in
pyproject.toml."""
from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["cmkd_lab*"]) + ["cmkd_lab.results.published"],
    package_dir={"cmkd_lab.results.published": "docs/results"},
    package_data={"cmkd_lab.data": ["builtin/*.npz", "builtin/*.json"],
                  "cmkd_lab.results.published": ["*.json", "*.md", "*.csv"]},
)
