"""Deploy's pull before the start: which images (missing, not built), each pull's bar from the engine's real event
stream, a failure named with its image before anything changed, credentials as `docker login` stored them.

REAL_STREAM is what Docker Engine 20.10 (Debian 12's docker.io) sent on POST /images/create while pulling a two-layer
stand-in image (8 MB + 3 MB of random data, FROM scratch) from Debian 12's docker-registry 2.8.2 serving on
loopback: recorded through aiplatform.engine.pull.api_events, unchanged. The error events are the same engine's for
a tag the registry does not have and for a registry that does not answer."""

from __future__ import annotations

import base64
import json
import time

import pytest

from aiplatform.engine import deploy as deploying
from aiplatform.engine import pull as pulling
from aiplatform.engine.pull import images_to_pull, pull_images, registry_auth, registry_of
from aiplatform.errors import UserError

REAL_STREAM = [
    {"status": "Pulling from aiplatform-pulltest", "id": "1.0"},
    {"status": "Pulling fs layer", "progressDetail": {}, "id": "dfddf8ee852e"},
    {"status": "Pulling fs layer", "progressDetail": {}, "id": "bdd430a8fcbe"},
    {
        "status": "Downloading",
        "progressDetail": {"current": 36445, "total": 3001127},
        "progress": "[>                                                  ]  36.45kB/3.001MB",
        "id": "bdd430a8fcbe",
    },
    {"status": "Verifying Checksum", "progressDetail": {}, "id": "bdd430a8fcbe"},
    {"status": "Download complete", "progressDetail": {}, "id": "bdd430a8fcbe"},
    {
        "status": "Downloading",
        "progressDetail": {"current": 98304, "total": 8002636},
        "progress": "[>                                                  ]   98.3kB/8.003MB",
        "id": "dfddf8ee852e",
    },
    {"status": "Verifying Checksum", "progressDetail": {}, "id": "dfddf8ee852e"},
    {"status": "Download complete", "progressDetail": {}, "id": "dfddf8ee852e"},
    {
        "status": "Extracting",
        "progressDetail": {"current": 98304, "total": 8002636},
        "progress": "[>                                                  ]   98.3kB/8.003MB",
        "id": "dfddf8ee852e",
    },
    {
        "status": "Extracting",
        "progressDetail": {"current": 8002636, "total": 8002636},
        "progress": "[==================================================>]  8.003MB/8.003MB",
        "id": "dfddf8ee852e",
    },
    {"status": "Pull complete", "progressDetail": {}, "id": "dfddf8ee852e"},
    {
        "status": "Extracting",
        "progressDetail": {"current": 32768, "total": 3001127},
        "progress": "[>                                                  ]  32.77kB/3.001MB",
        "id": "bdd430a8fcbe",
    },
    {
        "status": "Extracting",
        "progressDetail": {"current": 3001127, "total": 3001127},
        "progress": "[==================================================>]  3.001MB/3.001MB",
        "id": "bdd430a8fcbe",
    },
    {"status": "Pull complete", "progressDetail": {}, "id": "bdd430a8fcbe"},
    {"status": "Digest: sha256:bcc38fdf7ee682982596d5ebd4eeac9a21e8d917b2a5ae631fa9c2b4f64c9798"},
    {"status": "Status: Downloaded newer image for 127.0.0.1:5055/aiplatform-pulltest:1.0"},
]
NOT_FOUND = {"error": "manifest for 127.0.0.1:5055/aiplatform-nosuch:1.0 not found: manifest unknown: manifest unknown"}
REFUSED = {"error": 'Get "http://127.0.0.1:5999/v2/": dial tcp 127.0.0.1:5999: connect: connection refused'}
IMAGE = "127.0.0.1:5055/aiplatform-pulltest:1.0"


class Bars:
    """Records what the bars were told (the terminal's PullBars take the same calls)."""

    def __init__(self):
        self.calls = []

    def start(self, image):
        self.calls.append(("start", image))

    def update(self, image, status, completed, total):
        self.calls.append(("update", image, status, completed, total))

    def done(self, image, ok, message):
        self.calls.append(("done", image, ok, message))


def test_the_bar_follows_the_bytes_of_every_layer():
    bars = Bars()
    assert pull_images([IMAGE], bars, lambda image: REAL_STREAM) == [IMAGE]
    updates = [call for call in bars.calls if call[0] == "update"]
    sizes = [(completed, total) for *_, completed, total in updates]
    assert (36445, None) in sizes  # one layer's size known, the other's not yet: no total to show
    assert (3001127 + 98304, 3001127 + 8002636) in sizes  # one layer done, the other under way: bytes of both
    assert sizes[-1] == (11003763, 11003763)
    completed = [c for c, _ in sizes]
    assert completed == sorted(completed)  # never goes back
    assert bars.calls[-1] == ("done", IMAGE, True, "pulled (11.0 MB)")


@pytest.mark.parametrize(("event", "said"), [(NOT_FOUND, "manifest unknown"), (REFUSED, "connection refused")])
def test_a_failed_pull_names_the_image_and_what_to_do(event, said):
    bars = Bars()
    with pytest.raises(UserError) as raised:
        pull_images([IMAGE, "other:1.0"], bars, lambda image: [REAL_STREAM[0], event])
    message = str(raised.value)
    assert message.startswith(f"Pulling {IMAGE} failed: ") and said in message
    assert "Nothing was started" in message
    assert "registry_mirror" in message and "docker login" in message
    assert bars.calls[-1][:3] == ("done", IMAGE, False)
    assert ("start", "other:1.0") not in bars.calls  # the first failure stops the pulls


def test_only_images_not_on_the_host_and_not_built_are_pulled():
    here = {"postgres:16.4"}
    wanted = {"postgres:16.4": False, "mlflow-local:2.17": True, "qdrant/qdrant:v1.12.1": False, "": False}
    assert images_to_pull(wanted, lambda image: image in here) == ["qdrant/qdrant:v1.12.1"]


def test_credentials_are_the_ones_docker_login_stored(tmp_path):
    assert registry_of("nginx:1.27.3") == "https://index.docker.io/v1/"
    assert registry_of("ghcr.io/open-webui/open-webui:v0.5.4") == "ghcr.io"
    assert registry_of("localhost/x:1") == "localhost" and registry_of("reg:5000/x:1") == "reg:5000"
    config = {"auths": {"ghcr.io": {"auth": base64.b64encode(b"owner:s3cret").decode()}}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    header = registry_auth("ghcr.io/open-webui/open-webui:v0.5.4", tmp_path)
    sent = json.loads(base64.urlsafe_b64decode(header))
    assert sent == {"username": "owner", "password": "s3cret", "serveraddress": "ghcr.io"}
    assert registry_auth("nginx:1.27.3", tmp_path) is None  # anonymous where nothing was stored


def test_deploy_pulls_before_it_changes_anything_and_its_timeout_starts_after(tmp_path, monkeypatch):
    """deploy's own steps stand in (plan, files, compose): the order and the clock are what is tested."""
    from .test_preflight import _render

    home = tmp_path
    (home / "answers.yaml").write_text("domain: ''\nservices: []\n")
    _render(home)
    said: list[str] = []
    plan = deploying.Plan(deploying.TreeDiff(), {"redis": "create", "postgres": "unchanged"})
    monkeypatch.setattr(deploying, "preflight", lambda *a: [])
    monkeypatch.setattr(deploying, "make_plan", lambda *a: plan)
    monkeypatch.setattr(pulling, "present", lambda runner: lambda image: False)

    def slow_events(runner):
        def events(image):
            said.append(f"pull {image}")
            time.sleep(1.5)  # longer than the timeout below
            return REAL_STREAM

        return events

    monkeypatch.setattr(pulling, "events_for", slow_events)

    def apply_files(*a):
        said.append("apply")
        return [], home / "backups" / "x"

    def bring_up(docker, project, containers, watched, timeout, progress, poll=1.0):
        said.append(f"up {containers} timeout={timeout}")
        return deploying.DeployResult(plan=plan)

    monkeypatch.setattr(deploying, "apply_files", apply_files)
    monkeypatch.setattr(deploying, "bring_up", bring_up)
    monkeypatch.setattr(deploying, "load_project", lambda directory: _project_of(home))
    monkeypatch.setattr(deploying.Docker, "remove_containers", lambda self, ids: None)
    monkeypatch.setattr(deploying, "reload", lambda *a: None)
    monkeypatch.setattr(deploying, "masked_failures", lambda result, root: [])
    options = deploying.DeployOptions(out=home / "generated", root=home / "root", yes=True, timeout=1)
    ui = type("UI", (), {"checks": lambda s, f: None, "plan": lambda s, p: None, "progress": lambda s, st: None,
                         "pull_progress": lambda s: _Quiet()})()  # fmt: skip
    result = deploying.deploy(options, deploying.Runner(), None, ui)
    redis = _project_of(home).containers["redis"].image
    assert said == [f"pull {redis}", "apply", "up ['redis'] timeout=1"]
    assert result.pulled == [redis]


class _Quiet(Bars):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


def _project_of(home):
    from aiplatform.engine.project import load_project

    return load_project(home / "generated")
