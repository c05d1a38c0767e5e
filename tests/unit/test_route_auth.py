"""Every route through Caddy asks for a login (issue 15): each routed service declares `auth: app` (its own sign-in)
or `auth: caddy` (Caddy's basic auth with the platform's admin), a folder without it is refused, and render puts
Caddy's basic_auth, with the admin password's bcrypt hash read from credentials.env, in front of the `caddy` ones.
The real Caddy answering 401 is tests/validate/test_route_auth.py."""

from __future__ import annotations

import shutil
from pathlib import Path

import bcrypt
import yaml

from aiplatform.envfile import parse_env
from aiplatform.generated.build import render_platform
from aiplatform.inputs.catalog import load_catalog
from aiplatform.inputs.context import Context
from aiplatform.manage.importer import auth_note
from aiplatform.paths import SERVICES_DIR

from .conftest import fake_nvml

# Who asks for a login on each built-in route. A new route is a decision to write down here, not a default.
DECLARED = {
    "dify": "app",  # its console's sign-in; its API wants an app's key
    "flowise": "app",  # its own accounts (Flowise 3.x)
    "jupyterhub": "app",  # shared-password authenticator
    "litellm": "app",  # every API call needs a key
    "mlflow": "app",  # its basic-auth app (--app-name basic-auth)
    "monitoring": "app",  # Grafana's sign-in (anonymous access off); Prometheus has no route
    "n8n": "app",  # the owner account
    "open-webui": "app",  # WEBUI_AUTH
}
OWNER_SERVICE = """\
name: notes
description: An owner's service without a login of its own.
tier: apps
containers:
  notes:
    image: example/notes:1.0.0
    port: 8000
auth: caddy
route:
  subdomain: notes
  ip_port: 9443
  upstream: notes:8000
"""


def owner_catalog(tmp_path: Path) -> Path:
    """An owner's catalog with one service behind Caddy's basic auth (`auth: caddy`)."""
    folder = tmp_path / "services" / "notes"
    folder.mkdir(parents=True)
    (folder / "service.yaml").write_text(OWNER_SERVICE)
    (folder / "compose.yml.j2").write_text("services:\n  notes: {}\n")
    return folder.parent


def whole_catalog(tmp_path: Path, environ: dict[str, str] | None = None, **flags: object):
    """The whole catalog rendered (every optional service on) with the owner's `notes`, reached by IP, no TLS."""
    user_dir = tmp_path / "services" if (tmp_path / "services").is_dir() else owner_catalog(tmp_path)
    catalog = load_catalog(SERVICES_DIR, user_dir)
    ctx = Context(
        answers=None,
        flags={
            "root": str(tmp_path / "root"),
            "domain": "127.0.0.1",
            "ssl_mode": "none",
            "services": list(catalog.optional),
            "privileged_services": ["jupyterhub"],
            **flags,
        },
        environ=environ or {},
        user_services_dir=user_dir,
        nvml=fake_nvml([]),
    )
    return render_platform(ctx, tmp_path / "generated", host_ip="127.0.0.1")


def test_every_routed_service_declares_who_asks_for_a_login():
    catalog = load_catalog(SERVICES_DIR)
    assert catalog.broken == {}
    routed = {name: spec.auth for name, spec in catalog.services.items() if spec.route}
    assert routed == DECLARED


def test_a_route_without_auth_is_refused_naming_the_file_and_key(tmp_path):
    shutil.copytree(SERVICES_DIR / "mlflow", tmp_path / "mlflow")
    path = tmp_path / "mlflow" / "service.yaml"
    path.write_text(path.read_text().replace("\nauth: app\n", "\n"))
    message, fix = load_catalog(tmp_path).broken["mlflow"]
    assert message.startswith(f"{path}: key 'auth':") and "`auth: app`" in message and "`auth: caddy`" in message
    assert fix.startswith(f"Add `auth: app` or `auth: caddy` beside `route:` in {path}")


def test_auth_without_a_route_is_refused(tmp_path):
    folder = owner_catalog(tmp_path) / "notes"
    text = (folder / "service.yaml").read_text()
    (folder / "service.yaml").write_text(text.split("route:")[0])
    message, _ = load_catalog(folder.parent).broken["notes"]
    assert "key 'auth'" in message and "only a service with a `route:`" in message


def _site(caddyfile: str, service: str) -> str:
    return caddyfile.split(f"\n# {service}\n", 1)[1].split("\n}\n", 1)[0]


def test_caddy_asks_for_the_admin_in_front_of_auth_caddy_routes_only(tmp_path):
    rendered = whole_catalog(tmp_path)
    tree = rendered.tree
    caddyfile = tree["config/caddy/Caddyfile"].data.decode()
    sites = {name for name, spec in rendered.platform.catalog.services.items() if spec.route}
    assert sites == {*DECLARED, "notes"}
    assert "basic_auth {\n\t\tadmin {$CADDY_ADMIN_HASH}\n\t}" in _site(caddyfile, "notes")
    for name in DECLARED:  # their own sign-in: Caddy asking too would take the Authorization header they read
        assert "basic_auth" not in _site(caddyfile, name), name
    credentials = parse_env(tree["config/credentials.env"].data.decode())
    admin = credentials["ADMIN_PASSWORD"]
    assert bcrypt.checkpw(admin.encode(), credentials["CADDY_ADMIN_HASH"].encode())
    caddy = yaml.safe_load(tree["docker/docker-compose.caddy.yml"].data)["services"]["caddy"]
    assert caddy["environment"]["CADDY_ADMIN_HASH"] == "${CADDY_ADMIN_HASH}"
    for path, file in tree.items():  # neither the hash nor the password outside credentials.env
        if path != "config/credentials.env":
            assert b"$2b$" not in file.data and admin.encode() not in file.data, path


def test_the_hash_is_kept_while_the_admin_password_stays_and_made_again_when_it_changes(tmp_path):
    from aiplatform.generated.write import write_tree

    first = whole_catalog(tmp_path)
    write_tree(tmp_path / "generated", first.tree)
    again = whole_catalog(tmp_path)
    hashes = [parse_env(r.tree["config/credentials.env"].data.decode())["CADDY_ADMIN_HASH"] for r in (first, again)]
    assert hashes[0] == hashes[1] and again.secret_changes.added == again.secret_changes.changed == []
    changed = whole_catalog(tmp_path, environ={"AI_PLATFORM_ADMIN_PASSWORD": "Another-Admin-Pass-7"})
    new_hash = parse_env(changed.tree["config/credentials.env"].data.decode())["CADDY_ADMIN_HASH"]
    assert bcrypt.checkpw(b"Another-Admin-Pass-7", new_hash.encode())
    assert "CADDY_ADMIN_HASH" in changed.secret_changes.changed


def test_no_caddy_route_no_hash(tmp_path):
    optional = [name for name in load_catalog(SERVICES_DIR).optional if name in DECLARED and name != "jupyterhub"]
    ctx = Context(answers=None, flags={"root": str(tmp_path / "root"), "services": optional},
                  environ={}, nvml=fake_nvml([]), user_services_dir=tmp_path / "none")  # fmt: skip
    tree = render_platform(ctx, tmp_path / "generated", host_ip="127.0.0.1").tree
    assert "CADDY_ADMIN_HASH" not in tree["config/credentials.env"].data.decode()
    assert "CADDY_ADMIN_HASH" not in tree["docker/docker-compose.caddy.yml"].data.decode()


def test_mlflow_runs_its_basic_auth_app_with_users_in_postgres_and_no_secret_in_its_files(tmp_path):
    tree = whole_catalog(tmp_path).tree
    mlflow = yaml.safe_load(tree["docker/docker-compose.mlflow.yml"].data)["services"]["mlflow"]
    assert mlflow["command"][-2:] == ["--app-name", "basic-auth"]
    env = mlflow["environment"]
    assert env["MLFLOW_AUTH_CONFIG_PATH"] == "/etc/mlflow/basic_auth.ini"
    # without it MLflow refuses to start the auth app (found running the real server)
    assert env["MLFLOW_FLASK_SERVER_SECRET_KEY"] == "${MLFLOW_FLASK_SERVER_SECRET_KEY}"
    assert (
        env["MLFLOW_AUTH_ADMIN_PASSWORD"] == "${ADMIN_PASSWORD}" and env["PGPASSWORD"] == "${MLFLOW_AUTH_DB_PASSWORD}"
    )
    ini = tree["config/mlflow/basic_auth.ini"].data.decode()
    assert "database_uri = postgresql+psycopg2://mlflow_auth@postgres:5432/mlflow_auth\n" in ini
    assert "admin_username = admin\n" in ini and "admin_password" not in ini.split("[mlflow]")[1]
    assert "config/postgres/init/mlflow_auth.sh" in tree
    assert "Flask-WTF==" in tree["docker/build/mlflow/Dockerfile"].data.decode()


def test_an_imported_service_is_behind_caddy_and_the_output_says_so(tmp_path):
    folder = owner_catalog(tmp_path) / "notes"
    note = auth_note(folder)
    assert note is not None and "auth: caddy" in note and "auth: app" in note and str(folder) in note
    (folder / "service.yaml").write_text(OWNER_SERVICE.replace("auth: caddy", "auth: app"))
    assert auth_note(folder) is None


def test_inv_info_shows_caddys_sign_in_for_an_auth_caddy_service(tmp_path):
    from aiplatform.configure.info import platform_info
    from aiplatform.generated.write import write_tree

    rendered = whole_catalog(tmp_path)
    write_tree(tmp_path / "generated", rendered.tree)
    catalog = rendered.platform.catalog
    info = platform_info(tmp_path / "generated", tmp_path / "root", catalog, show_secrets=False, tailnet="")
    notes = next(item for item in info.services if item.service == "notes")
    assert notes.user == "admin" and notes.password.startswith("ADMIN_PASSWORD in ")
    assert "Caddy" in notes.note and notes.urls["public"] == "http://127.0.0.1:9443"
    shown = platform_info(tmp_path / "generated", tmp_path / "root", catalog, show_secrets=True, tailnet="")
    admin = parse_env(rendered.tree["config/credentials.env"].data.decode())["ADMIN_PASSWORD"]
    assert next(item for item in shown.services if item.service == "notes").password == admin
