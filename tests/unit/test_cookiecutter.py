"""A service made with `cookiecutter cookiecutter-service` joins the catalog and renders with no Python change."""

from __future__ import annotations

import shutil

import pytest
import yaml
from cookiecutter.main import cookiecutter

from aiplatform.inputs.catalog import load_catalog
from aiplatform.inputs.settings import Settings
from aiplatform.paths import PROJECT_DIR, TEMPLATES_DIR
from aiplatform.render.platform import Platform
from aiplatform.render.tree import render_tree

from .test_render import NO_GPU


@pytest.mark.parametrize(("tool", "database"), [("curl", "yes"), ("python3", "no")])
def test_cookiecutter_service_renders(tmp_path, tool, database):
    templates = tmp_path / "templates"
    shutil.copytree(TEMPLATES_DIR, templates)
    cookiecutter(
        str(PROJECT_DIR / "cookiecutter-service"),
        no_input=True,
        output_dir=str(templates / "services"),
        extra_context={
            "name": "notes-app",
            "healthcheck_tool": tool,
            "needs_database": database,
            "image": "example/notes:2.1.0",
            "calls_litellm": database,  # both choices of the optional parts, with the two cases
            "admin_login": database,
            "auth": "app" if database == "yes" else "caddy",
        },
    )
    catalog = load_catalog(templates / "services")
    assert "notes-app" in catalog.optional
    settings = Settings(models=["m"], embedding_model="m", services=["notes-app"])
    secrets = {
        name: f"secret-{name}"
        for name in (
            "ADMIN_PASSWORD",
            "NOTES_APP_SECRET_KEY",
            "NOTES_APP_DB_PASSWORD",
            "POSTGRES_PASSWORD",
            "REDIS_PASSWORD",
            "QDRANT_API_KEY",
            "LITELLM_MASTER_KEY",
            "LITELLM_SALT_KEY",
            "LITELLM_DB_PASSWORD",
            "WEBUI_SECRET_KEY",
            "OPENWEBUI_DB_PASSWORD",
        )
    }
    tree = render_tree(Platform(settings, "minimal", catalog, NO_GPU, "192.0.2.10", secrets, templates_dir=templates))
    compose = yaml.safe_load(tree["docker/docker-compose.notes-app.yml"].data)
    container = compose["services"]["notes-app"]
    assert container["image"] == "example/notes:2.1.0"
    assert container["ports"] == ["127.0.0.1:8000:8000"]
    assert container["labels"]["ai-platform.managed"] == "true"
    assert container["healthcheck"]["test"][1] == tool
    assert container["environment"]["PUBLIC_URL"] == "https://192.0.2.10:9443"
    assert compose["volumes"]["notes-app-data"]["labels"]["ai-platform.service"] == "notes-app"
    caddyfile = tree["config/caddy/Caddyfile"].data.decode()
    assert "reverse_proxy notes-app:8000" in caddyfile
    site = caddyfile.split("\n# notes-app\n")[1]
    assert catalog.services["notes-app"].auth == ("app" if database == "yes" else "caddy")
    assert ("basic_auth {" in site) == (database == "no")  # Caddy asks for the admin in front of auth: caddy
    if database == "yes":
        assert "config/postgres/init/notes_app.sh" in tree
        assert "postgres-init" in container["depends_on"]
        assert container["environment"]["OPENAI_API_KEY"] == "${LITELLM_KEY_NOTES_APP}"
        assert catalog.services["notes-app"].litellm_key and catalog.services["notes-app"].login is not None
    else:
        assert "OPENAI_API_KEY" not in container["environment"] and catalog.services["notes-app"].login is None


def test_two_services_cannot_take_the_same_port(tmp_path):
    from aiplatform.errors import UserError

    services = tmp_path / "services"
    shutil.copytree(TEMPLATES_DIR / "services", services)
    for name in ("notes-one", "notes-two"):  # both keep the template's default ports
        cookiecutter(
            str(PROJECT_DIR / "cookiecutter-service"),
            no_input=True,
            output_dir=str(services),
            extra_context={"name": name},
        )
    catalog = load_catalog(services)
    assert "notes-one" in catalog.services and "notes-two" not in catalog.services  # the later one is left out
    assert "already taken by 'notes-one'" in catalog.broken["notes-two"][0]
    with pytest.raises(UserError, match="already taken by 'notes-one'"):
        catalog.require("notes-two")


@pytest.mark.parametrize(
    ("answers", "fragment"),
    [
        ({"subdomain": "my notes"}, "subdomain: one DNS label"),
        ({"name": "Notes App"}, "name: lower-case letters"),
        ({"image": "example/notes:latest"}, "is not pinned"),
        ({"ip_port": "99999"}, "ip_port: a port number"),
    ],
)
def test_cookiecutter_refuses_what_the_catalog_would_refuse_before_making_anything(tmp_path, answers, fragment, capfd):
    from cookiecutter.exceptions import FailedHookException

    with pytest.raises(FailedHookException):
        cookiecutter(
            str(PROJECT_DIR / "cookiecutter-service"),
            no_input=True,
            output_dir=str(tmp_path),
            extra_context={"name": "notes-app", **answers},
        )
    assert fragment in capfd.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_cookiecutter_prompts_explain_themselves():
    import json

    config = json.loads((PROJECT_DIR / "cookiecutter-service" / "cookiecutter.json").read_text())
    questions = [key for key in config if not key.startswith("_")]
    assert sorted(config["__prompts__"]) == sorted(questions)
