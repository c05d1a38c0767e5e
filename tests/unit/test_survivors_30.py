"""Tests for what fresh draws of deliberate one-line bugs (benchmarks/mutants.py, seeds 30 and 31) showed untested."""

from __future__ import annotations

import pytest
import yaml
from pydantic import ValidationError

from aiplatform.inputs.catalog import load_catalog
from aiplatform.paths import SERVICES_DIR


def test_the_catalog_its_services_and_their_setup_calls_cannot_be_changed_once_read():
    """Every command reads the catalog once and caches what it derives from it (the optional services, container ->
    service): a change made after the read would leave those stale, so each model refuses it."""
    catalog = load_catalog(SERVICES_DIR)
    assert catalog.optional  # derived and cached
    spec = next(spec for spec in catalog.services.values() if spec.setup)
    for model, field in ((catalog, "services"), (spec, "description"), (spec.setup[0], "step")):
        with pytest.raises(ValidationError, match="frozen"):
            setattr(model, field, getattr(model, field))


@pytest.mark.parametrize(
    ("names", "shown"), [(["a", "b", "c"], "a, b, c"), (["a", "b", "c", "d"], "a, b, c and 1 more")]
)
def test_a_foreign_out_folder_names_three_of_its_files_and_counts_the_rest(tmp_path, names, shown):
    from aiplatform.errors import UserError
    from aiplatform.generated.write import refuse_foreign

    for name in names:
        (tmp_path / name).write_text("the owner's")
    with pytest.raises(UserError) as refused:
        refuse_foreign(tmp_path)
    assert f"it holds {shown}: render replaces" in refused.value.message


def test_the_render_stamp_read_back_cannot_be_changed():
    """The stamp of the last render is what diff, deploy and status compare with: read once, then only read."""
    from aiplatform.generated.stamp import Stamp

    stamp = Stamp(version="1", profile="cpu", tier="cpu", inputs_hash="0" * 64)
    with pytest.raises(ValidationError, match="frozen"):
        stamp.profile = "gpu"


def test_the_order_the_owner_writes_a_remotes_options_in_changes_nothing_rendered(tmp_path):
    """answers.yaml lists backup_remote_options in any order: render writes the same files, so `inv diff` and deploy
    see no change when only the order did (seed-31 survivor)."""
    from aiplatform.generated.build import render_command

    from .test_render import _ctx

    options = {"provider": "Minio", "endpoint": "https://s3.lan:9000", "region": "eu-west-1"}
    trees = []
    for order in (options, dict(reversed(options.items()))):
        settings = {"backup_remote_type": "s3", "backup_remote_path": "bucket/ai", "backup_remote_options": order}
        (tmp_path / "answers.yaml").write_text(yaml.safe_dump(settings, sort_keys=False))
        out = tmp_path / f"generated-{len(trees)}"
        render_command(_ctx(tmp_path), out, interactive=False)
        trees.append((out / "config/master.env").read_text())
    assert "BACKUP_REMOTE_OPTIONS" in trees[0] and trees[0] == trees[1]
