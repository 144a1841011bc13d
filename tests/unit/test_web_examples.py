"""Example scenarios offered by the page: found, ordered, described, and never fatal."""

from pathlib import Path

import pytest

from asyncflow_backend.schemas import parse_scenario_text
from asyncflow_backend.web.examples import (
    BUILT_IN,
    MAX_EXAMPLE_BYTES,
    example_dirs,
    load_examples,
)

REPO_EXAMPLES = Path(__file__).resolve().parents[2] / "example"


def test_the_repository_examples_are_offered_quickstart_first() -> None:
    examples = load_examples([REPO_EXAMPLES])
    names = [e.name for e in examples]
    assert names[0] == "quickstart.yml"
    assert set(names) == {
        p.name for p in REPO_EXAMPLES.iterdir() if p.suffix in {".yml", ".yaml", ".json"}
    }
    assert names[1:] == sorted(names[1:])
    quickstart = examples[0]
    assert quickstart.text == (REPO_EXAMPLES / "quickstart.yml").read_text(encoding="utf-8")
    assert quickstart.description.startswith("Quickstart:")


def test_every_offered_example_is_a_valid_scenario() -> None:
    for example in load_examples([REPO_EXAMPLES]):
        fmt = "json" if example.name.endswith(".json") else None
        parse_scenario_text(example.text, fmt=fmt)


def test_description_is_the_first_comment_line(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text("#\n#   Two servers, one balancer.  \n# more\nseed: 1\n")
    (tmp_path / "b.yaml").write_text("seed: 1  # not a description\n")
    (tmp_path / "c.json").write_text('{"seed": 1}')
    described = {e.name: e.description for e in load_examples([tmp_path])}
    assert described == {"a.yml": "Two servers, one balancer.", "b.yaml": "", "c.json": ""}


def test_unusable_files_are_left_out(tmp_path: Path) -> None:
    (tmp_path / "good.yml").write_text("seed: 1\n")
    (tmp_path / "notes.md").write_text("# not a scenario\n")
    (tmp_path / "latin1.yml").write_bytes("# caf\xe9\n".encode("latin-1"))
    (tmp_path / "huge.yml").write_text("#" * (MAX_EXAMPLE_BYTES + 1))
    (tmp_path / "folder.yml").mkdir()
    assert [e.name for e in load_examples([tmp_path])] == ["good.yml"]


def test_the_first_directory_with_examples_wins(tmp_path: Path) -> None:
    empty, first, second = tmp_path / "empty", tmp_path / "first", tmp_path / "second"
    for directory in (empty, first, second):
        directory.mkdir()
    (first / "one.yml").write_text("seed: 1\n")
    (second / "two.yml").write_text("seed: 2\n")
    assert [e.name for e in load_examples([tmp_path / "missing", empty, first, second])] == [
        "one.yml"
    ]


def test_without_example_files_the_built_in_scenario_is_offered(tmp_path: Path) -> None:
    assert load_examples([tmp_path / "missing", tmp_path]) == [BUILT_IN]
    parse_scenario_text(BUILT_IN.text)


def test_the_working_directory_is_searched_before_the_source_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert example_dirs()[0] == tmp_path / "example"
    assert example_dirs()[1] == REPO_EXAMPLES
    (tmp_path / "example").mkdir()
    (tmp_path / "example" / "local.yml").write_text("seed: 3\n")
    assert [e.name for e in load_examples()] == ["local.yml"]
