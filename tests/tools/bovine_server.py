"""A bovine-herd server (PyPI `bovine-herd`: a whole ActivityPub server on SQLite,
written independently of rounds) on loopback, for the end-to-end tests.

It has one account, `milkdrinker`, whose actor is at /endpoints/milkdrinker. bovine-herd
answers GETs of its actors only when they are signed (it checks the signature against
the requester's published key), so a follow that succeeds proves our fetches are signed.

  POST /control/send   {"activity": {...}}: posts the activity to milkdrinker's outbox
                       the way bovine-herd's outbox endpoint does (bovine gives it and
                       its object new ids, stores them, and delivers them signed to
                       the recipients' inboxes); answers {"status": 201, "body": json of
                       the activity as sent}
  GET  /received       activities bovine-herd's inbox accepted (signature verified), in
                       order, shaped like fedi_peer.py's records
  GET  /stored?id=URL  the object as bovine-herd's store holds it, or 404

Run: python bovine_server.py   (prints {"base": ..., "actor_prefix": ...} on its first line)
Binds 127.0.0.1 only.
"""

import bovine_offline  # noqa: F401  (first: keeps bovine off the internet)

import asyncio
import json
import os
import socket
import sys

from bovine_herd import BovineHerd, build_default_background_task_inbox
from bovine_process import handle_outbox_item, process_outbox_item
from bovine_process.types import ProcessingItem
from bovine_store import BovineAdminStore
from bovine_store.types import EndpointType
from hypercorn.asyncio import serve
from hypercorn.config import Config
from quart import Quart, current_app, request

RECEIVED = []
NAME = "milkdrinker"
STATE = {}


def main():
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    # Ids use the name "localhost": the federation library refuses bare IP addresses.
    base = f"http://localhost:{listener.getsockname()[1]}"

    app = Quart(__name__)
    default_inbox = build_default_background_task_inbox(app)

    async def inbox(item, actor):
        # Only reached once bovine-herd has verified the request's signature.
        RECEIVED.append({"path": "inbox", "verified": True, "status": 202, "activity": item.data})
        await default_inbox(item, actor)

    # bovine_offline moved the working directory to a fresh temporary folder.
    BovineHerd(app, start_background_task_inbox=inbox, db_url=f"sqlite://{os.getcwd()}/bovine.sqlite3")

    @app.before_serving
    async def register():
        store = BovineAdminStore(domain=base)
        STATE["name"] = await store.register(
            NAME, endpoints={EndpointType.ACTOR: f"{base}/endpoints/{NAME}"}
        )

    @app.get("/received")
    async def received():
        return json.dumps(RECEIVED), 200, {"content-type": "application/json"}

    @app.get("/stored")
    async def stored():
        store = current_app.config["bovine_store"]
        actor = await store.actor_for_name(STATE["name"])
        found = await actor.retrieve(request.args["id"])
        if not found:
            return {"error": "not stored"}, 404
        return found

    @app.post("/control/send")
    async def send():
        options = await request.get_json()
        store = current_app.config["bovine_store"]
        actor = await store.actor_for_name(STATE["name"])
        item = ProcessingItem(actor.actor_object.id, options["activity"])
        item = await handle_outbox_item(item, actor)
        # The outbox endpoint runs this in the background; here the test waits for it.
        await process_outbox_item(item, actor)
        return {"status": 201, "body": json.dumps(item.data)}

    config = Config()
    config.bind = [f"fd://{listener.fileno()}"]
    config.accesslog = None
    config.errorlog = "-"
    config.loglevel = "WARNING"
    print(json.dumps({"base": base, "actor_prefix": f"{base}/endpoints/"}), flush=True)
    asyncio.run(serve(app, config))


if __name__ == "__main__":
    sys.exit(main())
