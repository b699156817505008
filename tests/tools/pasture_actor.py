"""fediverse-pasture's test actor (PyPI `fediverse-pasture`, built on `bovine`) on
loopback, for the end-to-end tests.

The actor at /actor is served by fediverse-pasture's own `BlueprintForActors` with
`requires_signed_post_for_inbox=True`: its inbox fetches the sender's key and checks the
HTTP signature with bovine before it takes anything, so only properly signed deliveries
are recorded. The pasture's own CLI binds 0.0.0.0; this wrapper binds 127.0.0.1 only.

  POST /control/send   {"url": inbox, "activity": {...}}: bovine signs and POSTs it as
                       the actor; answers {"status": N, "body": "..."}
  POST /control/inputs {"url": inbox, "in_reply_to": URL, "to": actor id}: sends every
                       example of `fediverse-pasture-inputs` as a Note in a Create, built
                       the way the pasture's own ActivitySender builds them, made a
                       reply to in_reply_to first (examples may override that); answers
                       [{"input", "n", "status", "object_id", "body"}]
  GET  /received       what the actor's inbox accepted, in order, shaped like
                       fedi_peer.py's records ({"path", "verified", "activity"})

Run: python pasture_actor.py   (prints {"base": ..., "actor_prefix": ...} on its first line)
"""

import asyncio
import json
import socket
import sys

import bovine_offline  # noqa: F401  (first: keeps bovine off the internet)
import aiohttp
from fediverse_pasture.data_provider import bovine_actor_for_actor_data
from fediverse_pasture.data_provider.generate import generate_key_pair
from fediverse_pasture.data_provider.models import ActorData
from fediverse_pasture.runner import ActivitySender
from fediverse_pasture_inputs import available as pasture_inputs
from fediverse_pasture.server import BlueprintForActors
from hypercorn.asyncio import serve
from hypercorn.config import Config
from quart import Quart, request

RECEIVED = []

ACTOR = ActorData(
    actor_name="actor",
    user_part="actor",
    key_pairs=[generate_key_pair("main")],
    requires_signed_post_for_inbox=True,
)


async def on_inbox(data):
    RECEIVED.append({"path": "/actor/inbox", "verified": True, "status": 202, "activity": data})


app = Quart(__name__)
app.register_blueprint(BlueprintForActors(actors=[ACTOR], on_inbox=on_inbox).blueprint)


@app.get("/received")
async def received():
    return json.dumps(RECEIVED), 200, {"content-type": "application/json"}


@app.post("/control/send")
async def send():
    options = await request.get_json()
    actor_id = f"http://{request.host}/actor"
    bovine_actor, _ = bovine_actor_for_actor_data(actor_id, ACTOR)
    async with aiohttp.ClientSession() as session:
        await bovine_actor.init(session=session)
        try:
            response = await bovine_actor.post(options["url"], options["activity"])
            status, body = response.status, await response.text()
        except aiohttp.ClientResponseError as e:
            status, body = e.status, e.message
        except aiohttp.ClientError as e:
            status, body = 0, repr(e)
    return {"status": status, "body": body[:2000]}


@app.post("/control/inputs")
async def inputs():
    options = await request.get_json()
    actor_id = f"http://{request.host}/actor"
    bovine_actor, actor_object = bovine_actor_for_actor_data(actor_id, ACTOR)
    results = []
    async with aiohttp.ClientSession() as session:
        await bovine_actor.init(session=session)
        sender = ActivitySender.for_actor(bovine_actor, actor_object)
        for name, data in sorted(pasture_inputs.items()):
            for n, example in enumerate(data.examples):
                sender.init_create_note(
                    lambda note: {**note, "inReplyTo": options["in_reply_to"], **example}
                )
                note = {**sender.note, "to": [*sender.note["to"], options["to"]]}
                create = sender.activity_factory.create(note, id=sender.make_id(activity=True)).build()
                if "@context" in note:
                    create["@context"] = note["@context"]
                try:
                    response = await bovine_actor.post(options["url"], create)
                    status, body = response.status, await response.text()
                except aiohttp.ClientResponseError as e:
                    status, body = e.status, e.message
                except aiohttp.ClientError as e:
                    status, body = 0, repr(e)
                results.append(
                    {"input": name, "n": n, "status": status, "object_id": note.get("id"), "body": body[:500]}
                )
    return json.dumps(results), 200, {"content-type": "application/json"}


async def main():
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    config = Config()
    config.bind = [f"fd://{listener.fileno()}"]
    config.accesslog = None
    config.errorlog = "-"
    config.loglevel = "WARNING"
    # Ids use the name "localhost": the federation library refuses bare IP addresses.
    base = f"http://localhost:{port}"
    print(json.dumps({"base": base, "actor_prefix": f"{base}/"}), flush=True)
    await serve(app, config)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
