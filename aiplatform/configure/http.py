"""Talking to one service's HTTP API from the host (httpx): every failure names the service, the call and the fix.

Session cookies are read from the answer and sent back by hand: the apps mark them Secure (they are served over
HTTPS through Caddy), and configure talks to their plain-HTTP ports on 127.0.0.1, where a cookie jar would drop them.
"""

from __future__ import annotations

from typing import Any

import httpx

from aiplatform.commands import INV
from aiplatform.configure.model import StepFailed


def excerpt(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit] + "…"


def _call(response: httpx.Response) -> str:
    """The request an answer is to, as its method and path (the query left out: it may hold a key)."""
    return f"{response.request.method} {response.request.url.path}"


class Api:
    """One service's API at `base` (None: the container publishes no port on this host)."""

    def __init__(self, service: str, container: str, base: str | None, timeout: float = 30.0) -> None:
        self.service, self.container, self.base = service, container, base
        self.headers: dict[str, str] = {}
        self.cookies: dict[str, str] = {}
        self.client = httpx.Client(base_url=base or "http://invalid", timeout=timeout, trust_env=False)

    def close(self) -> None:
        self.client.close()

    def _down_fix(self) -> str:
        return (
            f"`{INV} status` shows whether ai-platform-{self.container} is up and healthy; "
            f"`docker logs ai-platform-{self.container}` says why not."
        )

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if self.base is None:
            raise StepFailed(f"{self.service}: {self.container} publishes no port on 127.0.0.1 to reach it by.")
        headers = {**self.headers, **kwargs.pop("headers", {})}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        try:
            response = self.client.request(method, path, headers=headers, **kwargs)
        except httpx.TimeoutException:
            waited = self.client.timeout.read or 0
            raise StepFailed(
                f"{self.service} did not answer {method} {path} within {waited:g} s.", self._down_fix()
            ) from None
        except httpx.HTTPError as exc:
            raise StepFailed(
                f"{self.service} does not answer at {self.base} ({type(exc).__name__}: {excerpt(str(exc), 120)}).",
                self._down_fix(),
            ) from None
        for name, value in response.cookies.items():  # Secure ones too: see the module docstring
            self.cookies[name] = value
        return response

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def json(self, response: httpx.Response) -> Any:
        """The JSON body of a 2xx answer; anything else is a StepFailed naming the request and quoting the answer."""
        if not response.is_success:
            raise self.unexpected(response)
        try:
            return response.json()
        except ValueError:
            raise StepFailed(
                f"{self.service}: {_call(response)} answered HTTP {response.status_code} but not JSON: "
                f"{excerpt(response.text)}"
            ) from None

    def password_refused(self, response: httpx.Response, email: str, where: str = "") -> StepFailed:
        """The admin's sign-in refused: the account's password is no longer ADMIN_PASSWORD (changed by hand)."""
        return StepFailed(
            f"{self.service} refuses {email} with the ADMIN_PASSWORD of credentials.env (HTTP {response.status_code}: "
            f"{excerpt(response.text, 120)}).",
            f"Set this account's password to ADMIN_PASSWORD in {self.service}{where} (`{INV} info --show-secrets` "
            "shows it), then run configure again.",
        )

    def unexpected(self, response: httpx.Response, fix: str = "", about: str = "") -> StepFailed:
        """An answer the step cannot use, named by its request (what to look for in the app's log)."""
        return StepFailed(
            f"{self.service}: {_call(response)}{about} answered HTTP {response.status_code}: {excerpt(response.text)}",
            fix or f"`docker logs ai-platform-{self.container}` may say more.",
        )
