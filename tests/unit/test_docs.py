"""The README and docs/ against the tool: every task of the invoke collection has its section in docs/tasks.md,
whose flag table names every flag the task has, and no table or usage line names a flag it lacks; every setting
is in docs/settings.md, whose settings tables are the model's own (default, range, meaning), and so are the
service.yaml tables of docs/catalog.md; every line fits 120 columns; every relative link leads to a file (and to a
heading of it, when it names one)."""

from __future__ import annotations

import difflib
import re
from dataclasses import replace
from pathlib import Path

import pytest
from invoke import Collection

import tasks
from aiplatform.inputs import reference
from aiplatform.inputs.catalog import ServiceSpec
from aiplatform.inputs.settings import Settings

from .conftest import PROJECT

DOCS = PROJECT / "docs"
TASKS_DOC = DOCS / "tasks.md"
WIDTH = 120
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _pages() -> list[Path]:
    return [PROJECT / "README.md", *sorted(DOCS.glob("*.md"))]


def _collection() -> Collection:
    return Collection.from_module(tasks)


def _sections(text: str) -> dict[str, str]:
    """Each `## inv NAME` heading of docs/tasks.md -> its text up to the next `## ` heading."""
    found = {}
    for part in re.split(r"^## ", text, flags=re.M)[1:]:
        heading, _, body = part.partition("\n")
        if match := re.fullmatch(r"inv (\S+)", heading.strip()):
            found[match.group(1)] = body
    return found


def _table_flags(section: str) -> set[str]:
    """The flags a section's flag table names in its first column (`-y`, `--yes`; `SERVICE` (or `--service`))."""
    cells = [line.split("|")[1] for line in section.splitlines() if line.startswith("|") and line.count("|") > 2]
    return {name for cell in cells for name in re.findall(r"--([a-z][\w-]*)", cell)}


def _usage_flags(section: str) -> set[str]:
    """The flags a section's usage block (its fenced code) names."""
    blocks = re.findall(r"^```.*?^```", section, flags=re.M | re.S)
    return {name for block in blocks for name in re.findall(r"--([a-z][\w-]*)", block)}


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def _anchors(text: str) -> set[str]:
    seen: dict[str, int] = {}
    anchors = set()
    for heading in re.findall(r"^#{1,6} (.+)$", _without_code(text), flags=re.M):
        slug = _slug(heading)
        anchors.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
        seen[slug] = seen.get(slug, 0) + 1
    return anchors


def _without_code(text: str) -> str:
    """The text without its fenced code blocks (a `#` comment there is no heading, a `[x](y)` no link)."""
    return re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)


def test_every_task_and_flag_is_in_docs_tasks():
    sections = _sections(TASKS_DOC.read_text())
    missing = []
    for name in sorted(_collection().task_names):
        task = _collection()[name]
        if name not in sections:
            missing.append(f"task {name}: no `## inv {name}` section")
            continue
        for argument in task.get_arguments():
            if argument.names[0] not in _table_flags(sections[name]):
                missing.append(f"inv {name} --{argument.names[0]}: not in its flag table ({argument.help})")
    assert not missing, "docs/tasks.md does not document:\n  " + "\n  ".join(missing)


def test_docs_tasks_names_no_task_or_flag_the_tool_lacks():
    collection = _collection()
    extra = []
    for name, section in _sections(TASKS_DOC.read_text()).items():
        if name not in collection.task_names:
            extra.append(f"`## inv {name}`: there is no such task")
            continue
        flags = {argument.names[0] for argument in collection[name].get_arguments()}
        named = _table_flags(section) | _usage_flags(section)
        extra += [f"inv {name} --{flag}: no such flag" for flag in sorted(named - flags)]
    assert not extra, "docs/tasks.md documents what the tool does not have:\n  " + "\n  ".join(extra)


def test_every_setting_is_in_docs_settings():
    text = (DOCS / "settings.md").read_text()
    missing = [name for name in Settings.model_fields if f"`{name}`" not in text]
    assert not missing, f"docs/settings.md does not describe these settings: {', '.join(missing)}"


@pytest.mark.parametrize("page", reference.PAGES, ids=lambda page: page.path.name)
def test_reference_tables_are_the_models(page):
    """Each key's default, range and meaning in a reference page (docs/settings.md: the settings; docs/catalog.md:
    service.yaml) is what its model says: a default, a bound, a pattern or a description changed in the model and
    not on the page (or the other way round) is named."""
    text = page.path.read_text()
    diff = difflib.unified_diff(text.splitlines(), reference.page(text, page).splitlines(), lineterm="", n=0)
    stale = [line for line in diff if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    fix = "run `python -m aiplatform.inputs.reference`"
    assert not stale, f"docs/{page.path.name} differs from its models ({fix}):\n" + "\n".join(stale)


@pytest.mark.parametrize("page", reference.PAGES, ids=lambda page: page.path.name)
def test_every_key_of_a_reference_table_has_a_meaning(page):
    """A field added to a model without a description would show an empty (or `None`) meaning on the page."""
    bare = [
        f"{model.__name__}.{name}"
        for model in page.tables.values()
        for name, info in model.model_fields.items()
        if not (info.description or "").strip()
    ]
    assert not bare, f"give these fields a `description=` (docs/{page.path.name} shows it): {', '.join(bare)}"


def test_the_reference_needs_its_markers(tmp_path):
    """A page without its tables' markers is refused, naming the marker, and no page is written, not even one that
    has its own."""
    pages = tuple(replace(page, path=tmp_path / page.path.name) for page in reference.PAGES)
    stale = re.sub(r"^\| `root` .*\n", "", (DOCS / "settings.md").read_text(), flags=re.M)  # a row short
    pages[0].path.write_text(stale)
    pages[1].path.write_text("# The service catalog\n")
    with pytest.raises(SystemExit, match=r"no `<!-- service\.yaml table"):
        reference.main(pages)
    assert pages[0].path.read_text() == stale
    assert pages[1].path.read_text() == "# The service catalog\n"
    pages[0].path.write_text("# Settings\n")
    with pytest.raises(SystemExit, match="no `<!-- settings table"):
        reference.main(pages[:1])
    assert pages[0].path.read_text() == "# Settings\n"


def test_a_nested_model_without_its_table_is_named():
    """A key whose values are a model the page has no table for is refused, naming the model."""
    lacking = replace(reference.PAGES[1], tables={"service.yaml": ServiceSpec})
    with pytest.raises(SystemExit, match="ContainerSpec has no table"):
        reference.page(reference.PAGES[1].path.read_text(), lacking)


@pytest.mark.parametrize("page", _pages(), ids=lambda page: str(page.relative_to(PROJECT)))
def test_lines_fit_120_columns(page):
    long = [
        f"{page.name}:{number}: {len(line)} characters"
        for number, line in enumerate(page.read_text().splitlines(), 1)
        if len(line) > WIDTH
    ]
    assert not long, "\n".join(long)


@pytest.mark.parametrize("page", _pages(), ids=lambda page: str(page.relative_to(PROJECT)))
def test_relative_links_lead_somewhere(page):
    broken = []
    for target in LINK.findall(re.sub(r"`[^`\n]*`", "", _without_code(page.read_text()))):  # nor in `code`
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: {file} does not exist")
        elif anchor and file.suffix == ".md" and anchor not in _anchors(file.read_text()):
            broken.append(f"{target}: no heading of {file.name} has the anchor #{anchor}")
    assert not broken, f"{page.name}:\n  " + "\n  ".join(broken)


def test_readme_points_at_every_docs_page():
    readme = (PROJECT / "README.md").read_text()
    missing = [page.name for page in DOCS.glob("*.md") if f"](docs/{page.name})" not in readme]
    assert not missing, f"README.md's contents do not list {', '.join(missing)}"
