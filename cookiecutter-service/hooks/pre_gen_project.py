"""Refuse answers the catalog would refuse, before any file is made, with the rule each one breaks.

The answers are read as data: cookiecutter pastes them here as one JSON document inside a raw string (Jinja's
`tojson` escapes every quote that could end it), never as Python source. The rules are
aiplatform/inputs/new_service.py, the same ones `inv add --new` checks as each answer is given.
"""

import json
import os
import sys
from pathlib import Path

answers = json.loads(r"""{{ cookiecutter | tojson }}""")
template = Path(answers.get("_repo_dir") or ".").resolve()
sys.path.insert(0, str(template.parent))  # the project's aiplatform/, whichever Python runs cookiecutter


def _fail(message: str) -> None:
    sys.stderr.write(f"cookiecutter-service: {message}\n")
    sys.exit(1)


try:
    from aiplatform.inputs.new_service import answer_problems
except ImportError as exc:
    _fail(
        f"cannot read the answers' rules ({exc}). Run it with the project's virtualenv: "
        f"`.venv/bin/cookiecutter cookiecutter-service`, or `inv add --new NAME`. Nothing was made."
    )

problems = answer_problems(answers, template)
if problems:
    try:
        from cookiecutter.config import get_user_config

        replay_dir = Path(get_user_config()["replay_dir"])
    except Exception:  # an unreadable ~/.cookiecutterrc: its default place
        replay_dir = Path("~/.cookiecutter_replay").expanduser()
    replay = replay_dir / f"{os.path.basename(str(template))}.json"
    _fail(
        "; ".join(problems)
        + ". Nothing was made.\n"
        + f"Your answers are kept in {replay}: correct the value there, then run "
        + f"`cookiecutter --replay {answers.get('_template') or template}` to make the service with them. "
        + "`inv add --new NAME` asks the same questions and checks each answer as you give it."
    )
