"""One chat message sent to Open WebUI the way its browser front end sends it (0.11.4: src/routes/+layout.svelte
opens the socket, src/lib/components/chat/Chat.svelte submitPrompt → sendMessage → sendMessageSocket posts it through
src/lib/apis/openai/index.ts generateOpenAIChatCompletion), for a new chat: the backend creates and stores the chat
(main.py chat_completion, `parent_id: null` and no chat_id) and streams the answer to the user's socket room.

Run with the Python of Open WebUI's own venv (it has python-socketio's client and aiohttp), not the tests' venv:
    python openwebui_browser.py BASE_URL TOKEN MODEL MESSAGE
Prints one JSON object: the POST's status and answer, the socket events of this chat, the socket id used.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
import uuid

import aiohttp
import socketio

WAIT = 120.0  # seconds for the answer to come back over the socket


async def main(base: str, token: str, model_id: str, text: str) -> dict:
    events: list[dict] = []
    finished = asyncio.Event()
    client = socketio.AsyncClient(reconnection=False)

    @client.on("events")
    async def on_event(payload: dict) -> None:
        events.append(payload)
        data = payload.get("data") or {}
        if data.get("type") == "chat:completion" and (data.get("data") or {}).get("done"):
            finished.set()

    # +layout.svelte setupSocket: path /ws/socket.io, the token as auth, websocket transport (enable_websocket),
    # then 'user-join' with the token once connected.
    await client.connect(base, socketio_path="/ws/socket.io", transports=["websocket"], auth={"token": token})
    await client.emit("user-join", {"auth": {"token": token}})
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    async with aiohttp.ClientSession(trust_env=False) as http:
        async with http.get(f"{base}/api/v1/auths/", headers=headers) as answer:
            user = await answer.json()  # the session user ($user)
        async with http.get(f"{base}/api/models", headers=headers) as answer:
            models = (await answer.json())["data"]  # $models
        model_item = next(model for model in models if model["id"] == model_id)
        user_id, response_id = str(uuid.uuid4()), str(uuid.uuid4())
        user_message = {  # submitPrompt's userMessage, with sendMessage's childrenIds and models added
            "id": user_id,
            "parentId": None,
            "childrenIds": [response_id],
            "role": "user",
            "content": text,
            "timestamp": int(time.time()),
            "models": [model_id],
        }
        body = {  # sendMessageSocket, a new chat (no chat id yet), one model, no files, tools or system prompt
            "stream": True,
            "model": model_id,
            "params": {},
            "tool_servers": [],
            "features": {"voice": False, "image_generation": False, "code_interpreter": False, "web_search": False},
            "variables": {  # getPromptVariables (utils/index.ts), the date and time ones left out
                "{{USER_NAME}}": user["name"],
                "{{USER_EMAIL}}": user["email"],
                "{{USER_LOCATION}}": "Unknown",
                "{{USER_LANGUAGE}}": "en-US",
            },
            "chat_variables": {},
            "model_item": model_item,
            "session_id": client.get_sid(),
            "id": response_id,
            "message_ids": [{"model_id": model_id, "message_id": response_id, "modelIdx": 0}],
            "parent_id": None,
            "user_message": user_message,
            "background_tasks": {"title_generation": True, "tags_generation": True, "follow_up_generation": True},
        }
        async with http.post(f"{base}/api/chat/completions", headers=headers, json=body) as answer:
            status, reply = answer.status, await answer.json()
    if status == 200:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(finished.wait(), WAIT)
    await client.disconnect()
    return {
        "status": status,
        "answer": reply,
        "sid": body["session_id"],
        "user_message_id": user_id,
        "response_id": response_id,
        "finished": finished.is_set(),
        "events": events,
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(*sys.argv[1:5]))))
