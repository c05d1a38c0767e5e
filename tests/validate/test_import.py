"""`inv add --from-compose`: an owner's compose file checked by the real `docker compose config` (the session
installs the compose v2 plugin), then imported into the owner's catalog or refused key by key, and rendered like
any catalog service. Without the plugin the import names the missing tool (tests/unit/test_add.py)."""

from __future__ import annotations

import re

import pytest
import yaml

from aiplatform.errors import UserError
from aiplatform.host.runner import Runner
from aiplatform.inputs.catalog import load_catalog
from aiplatform.inputs.settings import Settings
from aiplatform.manage.importer import import_compose
from aiplatform.paths import TEMPLATES_DIR
from aiplatform.render.platform import Platform
from aiplatform.render.tree import render_tree

from ..unit.test_add import _inv_at_terminal, make_owner
from ..unit.test_render import NO_GPU
from .conftest import require


@pytest.fixture(autouse=True)
def _compose():
    """The real plugin, not a skip: the session installs it."""
    require("docker")


@pytest.fixture
def owner(tmp_path, monkeypatch):
    return make_owner(tmp_path, monkeypatch)


# --- compose files ----------------------------------------------------------------------------------------------------

COMPOSE = """\
services:
  notes:
    image: example/notes:2.1.0
    ports: ["127.0.0.1:8123:8080"]
    environment:
      NOTES_TOKEN: ${NOTES_TOKEN}
      GREETING: "{{ not jinja }}"
    volumes: ["./uploads:/srv/uploads", "notes-db:/var/lib/notes"]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://localhost:8080/health"]
volumes:
  notes-db: {}
"""


def _import(tmp_path, text, allow=False, name="notes"):
    source = tmp_path / "compose.yml"
    source.write_text(text)
    catalog = load_catalog(TEMPLATES_DIR / "services")
    return import_compose(source, name, catalog, tmp_path / "services", Runner(), allow)


def test_an_imported_compose_file_renders_with_the_platforms_keys(tmp_path):
    folder = _import(tmp_path, COMPOSE)
    catalog = load_catalog(TEMPLATES_DIR / "services", tmp_path / "services")
    assert "notes" in catalog.optional and catalog.folders["notes"] == folder
    settings = Settings(models=["m"], embedding_model="m", services=["notes"], root=tmp_path / "root")
    secrets = {s.name: f"secret-{s.name}" for spec in catalog.enabled(["notes"]) for s in spec.secrets}
    secrets |= {"ADMIN_PASSWORD": "x", "LITELLM_KEY_OPEN_WEBUI": "x"}
    tree = render_tree(Platform(settings, "minimal", catalog, NO_GPU, "192.0.2.10", secrets))
    compose = yaml.safe_load(tree["docker/docker-compose.notes.yml"].data)
    notes = compose["services"]["notes"]
    assert notes["labels"]["ai-platform.managed"] == "true" and notes["labels"]["ai-platform.service"] == "notes"
    assert notes["networks"] == ["ai-platform"] and notes["restart"] == "unless-stopped"
    assert notes["logging"]["driver"] == "json-file" and "host.docker.internal:host-gateway" in notes["extra_hosts"]
    assert notes["ports"] == ["127.0.0.1:8123:8080"]
    assert notes["environment"]["GREETING"] == "{{ not jinja }}"  # the file's braces are not Jinja's
    assert notes["environment"]["NOTES_TOKEN"] == "${NOTES_TOKEN}"  # from credentials.env, where render puts it
    assert [s.name for s in catalog.services["notes"].secrets] == ["NOTES_TOKEN"]
    assert f"{tmp_path / 'root' / 'data' / 'notes' / 'uploads'}:/srv/uploads" in notes["volumes"]
    assert "notes:8080" in tree["config/caddy/Caddyfile"].data.decode()
    # no login is assumed: Caddy asks for the platform's admin in front of it until the owner says `auth: app`
    assert catalog.services["notes"].auth == "caddy"
    assert "basic_auth {" in tree["config/caddy/Caddyfile"].data.decode().split("\n# notes\n")[1]


REFUSED = {
    "published on every interface": ('ports: ["127.0.0.1:8123:8080"]', 'ports: ["8123:8080"]'),
    "privileged": ("image: example/notes:2.1.0", "image: example/notes:2.1.0\n    privileged: true"),
    "host-network": ("image: example/notes:2.1.0", "image: example/notes:2.1.0\n    network_mode: host"),
    "docker-socket": ("./uploads:/srv/uploads", "/var/run/docker.sock:/var/run/docker.sock"),
    "'example/notes:latest'": ("example/notes:2.1.0", "example/notes:latest"),
    "'example/notes'": ("example/notes:2.1.0", "example/notes"),
    "`build:` is not supported": ("image: example/notes:2.1.0", "image: example/notes:2.1.0\n    build: ."),
}


@pytest.mark.parametrize("message", list(REFUSED))
def test_each_risky_key_of_a_compose_file_is_refused_by_name(tmp_path, message):
    old, new = REFUSED[message]
    assert old in COMPOSE
    with pytest.raises(UserError, match=message) as caught:
        _import(tmp_path, COMPOSE.replace(old, new))
    assert "service notes" in caught.value.message
    assert not (tmp_path / "services" / "notes").exists()


@pytest.mark.parametrize("message", ["privileged", "host-network", "docker-socket"])
def test_allow_privileged_accepts_all_but_public_ports_and_declares_them(tmp_path, message):
    old, new = REFUSED[message]
    folder = _import(tmp_path, COMPOSE.replace(old, new), allow=True)
    spec = yaml.safe_load((folder / "service.yaml").read_text())
    assert spec["containers"]["notes"]["privileges"] == [message]
    with pytest.raises(UserError, match="published on every interface"):
        _import(tmp_path, COMPOSE.replace(*REFUSED["published on every interface"]), allow=True, name="other")
    with pytest.raises(UserError, match="'example/notes:latest'"):  # the catalog would refuse it: no use accepting
        _import(tmp_path, COMPOSE.replace(*REFUSED["'example/notes:latest'"]), allow=True, name="third")


def test_a_file_compose_refuses_is_refused_with_composes_words(tmp_path):
    with pytest.raises(UserError, match="not a compose file `docker compose config` accepts"):
        _import(tmp_path, "services:\n  notes:\n    image: [a, b]\n")
    with pytest.raises(UserError, match="exists already"):
        _import(tmp_path, COMPOSE, name="mlflow")
    with pytest.raises(UserError, match="lower-case letters"):
        _import(tmp_path, COMPOSE, name="Notes")


def test_the_menu_takes_a_compose_file(owner):
    compose = owner / "notes.yml"
    compose.write_text(COMPOSE)
    code, output, unanswered = _inv_at_terminal(
        owner,
        "add",
        "--dry-run",
        replies=[("Add which", "c"), ("Path of your compose file", str(compose)), ("Name of the service", "notes")],
    )
    assert not unanswered and code == 0, output
    assert "notes" in output.split("Containers to create:")[1].splitlines()[0]
    said = " ".join(output.split())  # however the terminal wrapped it
    assert "`auth: caddy` in" in said and "set `auth: app` there instead" in said  # said, with how to change it
    assert not (owner / "services").exists()  # a dry run made it in a scratch copy


def test_an_owners_catalog_renders_whatever_its_folder_is_called(tmp_path):
    """AI_PLATFORM_USER_SERVICES may name any folder: its services' templates are found in it, not in a sibling
    `services/`."""
    source = tmp_path / "compose.yml"
    source.write_text(COMPOSE)
    builtin = TEMPLATES_DIR / "services"
    import_compose(source, "notes", load_catalog(builtin), tmp_path / "my catalog", Runner(echo=lambda _: None))
    catalog = load_catalog(builtin, tmp_path / "my catalog")
    settings = Settings(models=["m"], embedding_model="m", services=["notes"])
    tree = render_tree(Platform(settings, "minimal", catalog, NO_GPU, "192.0.2.10", {}))
    assert "docker/docker-compose.notes.yml" in tree


# --- issue 21, item 6: what reaches past the container, through the real compose -------------------------------------

PAST = {
    "the host's / read-write, which holds": ("./uploads:/srv/uploads", "/:/host"),
    "the host's /etc read-only": ("./uploads:/srv/uploads", "/etc:/e:ro"),
    "containerd.sock": ("./uploads:/srv/uploads", "/run/containerd/containerd.sock:/c.sock"),
    "device /dev/sda:/dev/sda:rwm": (
        "image: example/notes:2.1.0",
        "image: example/notes:2.1.0\n    devices: [/dev/sda]",
    ),
    "uts: host": ("image: example/notes:2.1.0", "image: example/notes:2.1.0\n    uts: host"),
    "cgroup: host": ("image: example/notes:2.1.0", "image: example/notes:2.1.0\n    cgroup: host"),
}


@pytest.mark.parametrize("named", list(PAST))
def test_what_reaches_past_the_container_is_refused_then_declared_with_allow_privileged(tmp_path, named):
    old, new = PAST[named]
    with pytest.raises(UserError, match=named) as caught:
        _import(tmp_path, COMPOSE.replace(old, new))
    assert "--allow-privileged" in str(caught.value) and not (tmp_path / "services").exists()
    folder = _import(tmp_path, COMPOSE.replace(old, new), allow=True)
    spec = load_catalog(TEMPLATES_DIR / "services", tmp_path / "services").services["notes"]
    assert spec.containers["notes"].privileges or spec.containers["notes"].host_paths, folder


def test_a_link_to_the_docker_socket_is_the_socket(tmp_path):
    link = tmp_path.parent / f"{tmp_path.name}-sock"  # outside the file's folder (inside, it becomes data/notes/sock)
    link.unlink(missing_ok=True)
    link.symlink_to("/var/run/docker.sock")
    with pytest.raises(UserError, match="a link to"):
        _import(tmp_path, COMPOSE.replace("./uploads:/srv/uploads", f"{link}:/var/run/docker.sock"))


@pytest.mark.parametrize(("old", "new", "message"), [
    ("image: example/notes:2.1.0", "image: example/notes:2.1.0\n    volumes_from: ['container:ai-platform-postgres']",
     "volumes_from 'container:ai-platform-postgres'"),
    ("image: example/notes:2.1.0", "image: example/notes:2.1.0\n    profiles: [debug]", "profile(s) 'debug'"),
])  # fmt: skip
def test_another_containers_volumes_and_profiles_are_refused_whatever_is_allowed(tmp_path, old, new, message):
    with pytest.raises(UserError, match=re.escape(message)):
        _import(tmp_path, COMPOSE.replace(old, new), allow=True)


def test_a_dry_run_checks_the_file_with_compose_and_writes_nothing(tmp_path):
    """`inv add --from-compose FILE --dry-run`: reading the file through `docker compose config` changes nothing, so a
    dry run runs it too - a bad file is refused as in a real run, a good one is shown and nothing is written."""
    source = tmp_path / "compose.yml"
    catalog = load_catalog(TEMPLATES_DIR / "services")
    dry = Runner(dry_run=True, echo=lambda _: None)
    source.write_text("services:\n  notes:\n    image: [a, b]\n")
    with pytest.raises(UserError, match="not a compose file `docker compose config` accepts"):
        import_compose(source, "notes", catalog, tmp_path / "services", dry)
    source.write_text(COMPOSE)
    folder = import_compose(source, "notes", catalog, tmp_path / "services", dry)
    assert folder == tmp_path / "services/notes" and not folder.exists()
    assert any(entry[:3] == ["write", str(folder / "service.yaml"), "0644"] for entry in dry.history), dry.history
