"""First-run steps a service declares in its service.yaml (`setup:`) when they are a few HTTP calls: which call, the
body from settings and secrets, and which answers mean done, already done or fine. Flows with sessions and several
dependent calls (Dify, n8n's API key) are Python modules instead.

    setup:
      - step: admin account
        request: POST /api/v1/account/register
        json: {user: {email: "{admin_email}", credential: "{secret:ADMIN_PASSWORD}"}}
        done: [201]
        already: {status: [400], contains: only have one organization}
        already_if: {request: POST /api/v1/auth/resolve, field: redirectUrl, equals: /signin}

`already_if` is a read-only call asked first: when its answer says the work is done, the change is not sent.
Placeholders in strings: {admin_email}, {admin_name}, {secret:NAME} (from credentials.env), {litellm_key} (the
service's own LiteLLM key). A step with `done` statuses changes something: a dry run does not send it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from aiplatform.configure.facts import Facts
from aiplatform.configure.http import Api, excerpt
from aiplatform.configure.model import Outcome, StepFailed, already, done, ok
from aiplatform.configure.steps import Step, StepContext
from aiplatform.inputs.catalog import AlreadyIf, ServiceSpec, SetupCall
from aiplatform.inputs.secrets import litellm_key_name

_PLACEHOLDER = re.compile(r"\{(admin_email|admin_name|litellm_key|secret:[A-Z][A-Z0-9_]*)\}")


def fill(value: Any, facts: Facts, service: str) -> Any:
    """`value` with every placeholder in its strings replaced (dicts and lists walked)."""
    if isinstance(value, dict):
        return {key: fill(item, facts, service) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [fill(item, facts, service) for item in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "admin_email":
            return facts.admin_email
        if name == "admin_name":
            return facts.admin_name
        if name == "litellm_key":
            return facts.secret(litellm_key_name(service))
        return facts.secret(name.removeprefix("secret:"))

    return _PLACEHOLDER.sub(one, value)


def steps(spec: ServiceSpec, facts: Facts) -> list[Step]:
    return [(call.step, _runner(spec, call)) for call in spec.setup]


def _runner(spec: ServiceSpec, call: SetupCall) -> Callable[[StepContext], Outcome]:
    def run(ctx: StepContext) -> Outcome:
        return run_call(ctx, spec, call)

    return run


def _answers(api: Api, asked: AlreadyIf) -> bool:
    """Whether the read-only call's answer holds `equals` at `field`; any other answer is not a "yes"."""
    method, _, path = asked.request.partition(" ")
    response = api.request(method, path)
    if not response.is_success:
        return False
    try:
        value: Any = response.json()
    except ValueError:
        return False
    for key in asked.field.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return type(value) is type(asked.equals) and value == asked.equals  # 0 is not false


def run_call(ctx: StepContext, spec: ServiceSpec, call: SetupCall) -> Outcome:
    container = call.container or next((c for c in spec.containers if ctx.facts.local_url(c)), spec.name)
    api = Api(spec.name, container, ctx.facts.local_url(container))
    method, _, path = call.request.partition(" ")
    if call.already_if and _answers(api, call.already_if):
        return already(f"{call.already_if.request}: {call.already_if.field} is {call.already_if.equals!r}")
    if call.done:
        ctx.act(call.step)
    kwargs: dict[str, Any] = {}
    if call.json_body is not None:
        kwargs["json"] = fill(call.json_body, ctx.facts, spec.name)
    if call.headers:
        kwargs["headers"] = fill(call.headers, ctx.facts, spec.name)
    if call.basic_auth:
        user, password = fill(call.basic_auth, ctx.facts, spec.name)
        kwargs["auth"] = (user, password)
    response = api.request(method, path, **kwargs)
    said = excerpt(response.text, 160)
    if response.status_code in call.done:
        return done(f"{method} {path}: HTTP {response.status_code}")
    already_said = call.already and call.already.contains.lower() in response.text.lower()  # anywhere in the answer
    if call.already and response.status_code in call.already.status and already_said:
        return already(f"{method} {path}: HTTP {response.status_code}")
    if response.status_code in call.ok:
        return ok(f"{method} {path}: HTTP {response.status_code}" + (f": {said}" if call.show_answer else ""))
    raise StepFailed(
        f"{spec.name}: {method} {path} answered HTTP {response.status_code}: {said}",
        call.fix or f"`docker logs ai-platform-{container}` may say more.",
    )
