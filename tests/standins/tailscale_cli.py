#!/usr/bin/env python3
"""A stand-in for the `tailscale` CLI (Tailscale's packages come only from its own repository, for real hosts): the
few commands configure runs, answering as tailscale does, its state in the JSON file $TAILSCALE_STANDIN_STATE and
every command line appended to $TAILSCALE_STANDIN_STATE.log; {"daemon": "stopped"} in the state is tailscaled not
running (every command fails, `status --json` too: only a logged-out daemon still answers it); {"daemon": "hung"} is a
tailscaled that takes the connection and never answers (every command waits).

    tailscale status --json                     {"BackendState": "NeedsLogin"|"Running", "Self": {"DNSName": ...}}
    tailscale up --auth-key=file:PATH --hostname=NAME   reads the key from PATH (refuses one not starting tskey-)
    tailscale serve status --json               {"TCP": {port: {"HTTPS": true}}, "Web": {"host:port": {...}}}
    tailscale serve --bg --https=PORT TARGET
"""

import json
import os
import sys
import time
from pathlib import Path

TAILNET = "tail1234.ts.net"


def main(argv: list[str]) -> int:
    state_file = Path(os.environ["TAILSCALE_STANDIN_STATE"])
    with open(f"{state_file}.log", "a") as log:
        log.write(json.dumps(argv) + "\n")
    state = json.loads(state_file.read_text()) if state_file.exists() else {"running": False, "serve": {}}
    host = f"{state.get('hostname', 'host')}.{TAILNET}"
    if state.get("daemon") == "hung":
        time.sleep(3600)
    if state.get("daemon") == "stopped":  # every command asks tailscaled first
        print("failed to connect to local tailscaled; it doesn't appear to be running", file=sys.stderr)
        return 1
    if argv[:2] == ["status", "--json"]:
        backend = "Running" if state["running"] else "NeedsLogin"
        print(json.dumps({"BackendState": backend, "Self": {"DNSName": host + "."}}))
        return 0
    if argv[:1] == ["up"]:
        options = dict(arg.split("=", 1) for arg in argv[1:] if "=" in arg)
        key = Path(options["--auth-key"].removeprefix("file:")).read_text().strip()
        if not key.startswith("tskey-"):
            print("backend error: invalid key: API key does not exist", file=sys.stderr)
            return 1
        state.update(running=True, hostname=options.get("--hostname", "host"))
    elif argv[:3] == ["serve", "status", "--json"]:
        web = {f"{host}:{port}": {"Handlers": {"/": {"Proxy": target}}} for port, target in state["serve"].items()}
        print(json.dumps({"TCP": {port: {"HTTPS": True} for port in state["serve"]}, "Web": web}))
        return 0
    elif argv[:2] == ["serve", "--bg"]:
        if not state["running"]:
            print("error: not logged in", file=sys.stderr)
            return 1
        port = argv[2].removeprefix("--https=")
        state["serve"][port] = argv[3]
    else:
        print(f"tailscale stand-in: unknown command {argv}", file=sys.stderr)
        return 2
    state_file.write_text(json.dumps(state))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
