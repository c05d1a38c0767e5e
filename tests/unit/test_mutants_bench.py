"""What the mutation benchmark (benchmarks/mutants.py) mutates and what it leaves alone: a mutant of a docstring, an
annotation, a Literal type alias, an f-string or a printing-only call is not a bug of the code, and counting it as a
survivor would lower the score for nothing."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]


def _benchmark():
    spec = importlib.util.spec_from_file_location("mutants_bench", PROJECT / "benchmarks/mutants.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


SOURCE = '''\
"""A module."""
from typing import Literal

Result = Literal["done", "would do"]


def check(value: "Literal['a']", ready: bool) -> str:
    """Says so."""
    print(f"checking {value}")
    if ready == True:
        return "ready"
    return f"wait for {value}"
'''


def test_the_benchmark_mutates_the_code_and_leaves_docs_annotations_and_printing_alone(tmp_path):
    bench = _benchmark()
    (tmp_path / "aiplatform").mkdir()
    (tmp_path / "aiplatform/sample.py").write_text(textwrap.dedent(SOURCE))
    mutants = bench.candidates(tmp_path, "sample.py")
    lines = {m.line for m in mutants}
    assert lines == {10, 11, 12}, sorted((m.line, m.what, m.new) for m in mutants)  # the if and the two returns
    assert {m.new for m in mutants if m.line == 12} == {"return None"}  # the f-string's text is left as it is
    changed = {m.new for m in mutants}
    assert {'""', "return None", "(ready != True)"} <= changed  # a string emptied, None returned, == flipped


def test_a_module_level_mutant_runs_the_tests_of_the_modules_that_read_it(tmp_path):
    """A model's field is read by the code that imports the model (no line of the model's file runs then): the tests
    of the module that imports it count for a module-level mutant, after the tests of the model's own importers."""
    bench = _benchmark()
    (tmp_path / "aiplatform").mkdir()
    (tmp_path / "tests").mkdir()
    (tmp_path / "aiplatform/model.py").write_text("LIMIT = 3\n")
    (tmp_path / "aiplatform/reference.py").write_text("from aiplatform import model\n")
    (tmp_path / "aiplatform/other.py").write_text("X = 1\n")
    (tmp_path / "tests/test_model.py").write_text("from aiplatform.model import LIMIT\n")
    (tmp_path / "tests/test_docs.py").write_text("from aiplatform import reference\n")
    (tmp_path / "tests/test_other.py").write_text("import aiplatform.other\n")
    suite = bench.Suite("unit", "tests", [])
    assert bench.importers(tmp_path, suite, "aiplatform/model.py") == ({"tests/test_model.py"}, {"tests/test_docs.py"})
