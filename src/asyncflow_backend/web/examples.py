"""The example scenarios offered by the page's editor.

They are the files of the repository's `example/` directory, looked up in
the working directory first, then beside the source tree (a checkout or an
editable install). An installed wheel ships no example files: the page then
offers the small scenario the API documentation uses.
"""

from dataclasses import dataclass
from pathlib import Path

from asyncflow_backend.api.examples import SMALL_SCENARIO_YAML

EXAMPLE_DIR_NAME = "example"
SCENARIO_SUFFIXES = (".yml", ".yaml", ".json")
MAX_EXAMPLE_BYTES = 256 * 1024
PREFERRED_FIRST = "quickstart.yml"

_SOURCE_ROOT = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class Example:
    """A scenario the editor can load: its file name, what it models and its text."""

    name: str
    description: str
    text: str


BUILT_IN = Example(
    name="small.yml",
    description="About 10 requests/s to one server for 60 simulated seconds.",
    text=SMALL_SCENARIO_YAML,
)


def example_dirs() -> list[Path]:
    """Where example files are looked for, in order; the first that exists is used."""
    return [Path.cwd() / EXAMPLE_DIR_NAME, _SOURCE_ROOT / EXAMPLE_DIR_NAME]


def load_examples(directories: list[Path] | None = None) -> list[Example]:
    """The example scenarios, quickstart first; the built-in one if no directory has any.

    Unreadable, oversized or non-UTF-8 files are left out rather than
    breaking the page.
    """
    for directory in directories if directories is not None else example_dirs():
        found = _read_directory(directory)
        if found:
            return found
    return [BUILT_IN]


def _read_directory(directory: Path) -> list[Example]:
    if not directory.is_dir():
        return []
    examples = []
    for path in sorted(directory.iterdir()):
        if path.suffix not in SCENARIO_SUFFIXES or not path.is_file():
            continue
        try:
            if path.stat().st_size > MAX_EXAMPLE_BYTES:
                continue
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        examples.append(Example(path.name, _description(text), text))
    examples.sort(key=lambda e: e.name != PREFERRED_FIRST)
    return examples


def _description(text: str) -> str:
    """The first comment line of a YAML file (what it models); empty for JSON."""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped.startswith("#"):
            return ""
        comment = stripped.lstrip("#").strip()
        if comment:
            return comment
    return ""
