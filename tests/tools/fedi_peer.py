"""A small fediverse server for the end-to-end tests, signing and verifying with
independent libraries: `httpsig` (draft-cavage HTTP signatures) and
`http-message-signatures` (RFC 9421).

It serves actors at /users/<name> (keys made on first use), records what arrives at
their inboxes and at the shared /inbox (verifying each signature against the sender's
published key), and takes instructions from the test on /control/...:

  POST /control/send     sign and send an activity (options below); answers the status
  POST /control/respond  how inboxes answer from now on: status, delay_ms, retry_after;
                         with "queue": a list of such answers used first, one a POST
  POST /control/hold     {"hold": true}: inbox POSTs wait (a hanging server) until
                         {"hold": false}
  POST /control/actor    set an actor's alsoKnownAs / movedTo
  POST /control/require-signed-fetch  refuse unsigned GETs of actors (secure mode)
  GET  /received         everything delivered so far, in order

Run: python fedi_peer.py   (prints {"base": "http://127.0.0.1:PORT"} on its first line)
Binds 127.0.0.1 only.
"""

import base64
import datetime
import email.utils
import hashlib
import json
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import httpsig
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from http_message_signatures import HTTPMessageSigner, algorithms
from http_message_signatures.resolvers import HTTPSignatureKeyResolver

LOCK = threading.Lock()
KEYS = {}  # name -> (private pem, public pem)
ACTOR_EXTRA = {}  # name -> dict merged into the actor document
RECEIVED = []
RESPOND = {"status": 202, "delay_ms": 0, "retry_after": None}
QUEUE = []  # answers to use before RESPOND, one an inbox POST
RELEASED = threading.Event()  # cleared while inboxes hang
RELEASED.set()
SETTINGS = {"require_signed_fetch": False}
SIGNED_FETCHES = []


def keys_for(name):
    with LOCK:
        if name not in KEYS:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            private = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode()
            public = key.public_key().public_bytes(
                serialization.Encoding.PEM,
                serialization.PublicFormat.SubjectPublicKeyInfo,
            ).decode()
            KEYS[name] = (private, public)
        return KEYS[name]


def http_date(offset=0):
    return email.utils.formatdate(time.time() + offset, usegmt=True)


def fetch_json(url):
    request = urllib.request.Request(url, headers={"Accept": "application/activity+json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def public_key_for(key_id):
    """The PEM of the key a signature names, fetched from its actor (unsigned)."""
    document = fetch_json(key_id.split("#")[0])
    key = document.get("publicKey") or {}
    if isinstance(key, list):
        key = next((k for k in key if k.get("id") == key_id), key[0] if key else {})
    return key.get("publicKeyPem")


def verify_cavage(method, path, headers, body):
    """Checks a draft-cavage signature and the body digest; returns (ok, detail)."""
    signature = headers.get("signature")
    if not signature:
        return False, "unsigned"
    params = httpsig.utils.parse_signature_header(signature)
    signed = params.get("headers", "date").split()
    if method == "POST":
        if "digest" not in signed:
            return False, "digest not signed"
        expected = "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()
        if headers.get("digest") != expected:
            return False, "digest mismatch"
    try:
        pem = public_key_for(params["keyid"])
    except Exception as e:  # noqa: BLE001 - any failure to get the key is a refusal
        return False, f"cannot fetch key: {e}"
    if params.get("algorithm", "").lower() == "hs2019":
        # httpsig predates hs2019; with an RSA key it is rsa-sha256, as Mastodon reads it.
        headers = dict(headers)
        headers["signature"] = signature.replace('algorithm="hs2019"', 'algorithm="rsa-sha256"')
    verifier = httpsig.HeaderVerifier(
        headers=headers,
        secret=pem,
        required_headers=signed,
        method=method,
        path=path,
        sign_header="signature",
    )
    try:
        ok = verifier.verify()
    except Exception as e:  # noqa: BLE001
        return False, f"verification error: {e}"
    return ok, params.get("keyid", "")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def base(self):
        return f"http://{self.headers.get('Host')}"

    def reply(self, status, body=b"", content_type="application/json", extra=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def lower_headers(self):
        return {k.lower(): v for k, v in self.headers.items()}

    def do_GET(self):
        path = urlsplit(self.path).path
        if path == "/received":
            with LOCK:
                return self.reply(200, list(RECEIVED))
        if path == "/signed-fetches":
            with LOCK:
                return self.reply(200, list(SIGNED_FETCHES))
        if path == "/.well-known/webfinger":
            resource = parse_qs(urlsplit(self.path).query).get("resource", [""])[0]
            user, _, host = resource.removeprefix("acct:").partition("@")
            if not user or host != self.headers.get("Host"):
                return self.reply(404, {"error": "no such account"})
            actor = f"{self.base()}/users/{user}"
            return self.reply(200, {
                "subject": f"acct:{user}@{host}",
                "links": [{"rel": "self", "type": "application/activity+json", "href": actor}],
            }, "application/jrd+json")
        if path.startswith("/users/") and path.count("/") == 2:
            name = path.split("/")[2]
            if SETTINGS["require_signed_fetch"]:
                ok, detail = verify_cavage("GET", self.path, self.lower_headers(), b"")
                if not ok:
                    return self.reply(401, {"error": detail})
                with LOCK:
                    SIGNED_FETCHES.append(detail)
            _, public = keys_for(name)
            actor = f"{self.base()}/users/{name}"
            document = {
                "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
                "id": actor,
                "type": "Person",
                "preferredUsername": name,
                "name": name.capitalize(),
                "inbox": f"{actor}/inbox",
                "outbox": f"{actor}/outbox",
                "endpoints": {"sharedInbox": f"{self.base()}/inbox"},
                "url": f"{self.base()}/@{name}",
                "publicKey": {"id": f"{actor}#main-key", "owner": actor, "publicKeyPem": public},
            }
            with LOCK:
                document.update(ACTOR_EXTRA.get(name, {}))
            return self.reply(200, document, "application/activity+json")
        return self.reply(404, {"error": "not found"})

    def do_POST(self):
        path = urlsplit(self.path).path
        body = self.read_body()
        if path == "/control/send":
            return self.reply(200, send(json.loads(body)))
        if path == "/control/respond":
            change = json.loads(body)
            with LOCK:
                QUEUE[:] = change.pop("queue", [])
                RESPOND.update(change)
            return self.reply(200, RESPOND)
        if path == "/control/hold":
            if json.loads(body).get("hold"):
                RELEASED.clear()
            else:
                RELEASED.set()
            return self.reply(200, {})
        if path == "/control/actor":
            change = json.loads(body)
            with LOCK:
                ACTOR_EXTRA.setdefault(change.pop("name"), {}).update(change)
            return self.reply(200, {})
        if path == "/control/require-signed-fetch":
            SETTINGS["require_signed_fetch"] = True
            return self.reply(200, {})
        if path == "/inbox" or (path.startswith("/users/") and path.endswith("/inbox")):
            arrived_at = time.time()
            ok, detail = verify_cavage("POST", self.path, self.lower_headers(), body)
            try:
                activity = json.loads(body)
            except ValueError:
                activity = None
            with LOCK:
                respond = dict(RESPOND)
                if ok and QUEUE:
                    respond.update(QUEUE.pop(0))
            RELEASED.wait()
            if respond["delay_ms"]:
                time.sleep(respond["delay_ms"] / 1000)
            status = respond["status"] if ok else 401
            with LOCK:
                RECEIVED.append({
                    "path": path,
                    "verified": ok,
                    "detail": detail,
                    "status": status,
                    "activity": activity,
                    "arrived_at": arrived_at,
                    "received_at": time.time(),
                })
            # 0 is a value like any other (it asks for no wait at all).
            retry_after = respond.get("retry_after")
            extra = {"Retry-After": str(retry_after)} if retry_after is not None else None
            return self.reply(status, {} if ok else {"error": detail}, extra=extra)
        return self.reply(404, {"error": "not found"})


class KeyResolver(HTTPSignatureKeyResolver):
    def __init__(self, name):
        self.name = name

    def resolve_private_key(self, key_id):
        private, _ = keys_for(self.name)
        return serialization.load_pem_private_key(private.encode(), password=None)

    def resolve_public_key(self, key_id):
        raise NotImplementedError


def send(options):
    """Signs and sends one activity as an actor of ours.

    options: actor (name), url (inbox), activity (object), base (our base URL),
    scheme: cavage | rfc9421 | none; algorithm: rsa-sha256 | hs2019 (cavage);
    headers: the signed header list (cavage); tamper: body | digest;
    date_offset: seconds added to Date / created; extra_headers: sent and, for cavage,
    signable.
    """
    name = options["actor"]
    actor = f"{options['base']}/users/{name}"
    key_id = f"{actor}#main-key"
    body = json.dumps(options["activity"]).encode()
    url = options["url"]
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    offset = options.get("date_offset", 0)
    headers = {
        "Host": parts.netloc,
        "Date": http_date(offset),
        "Content-Type": "application/activity+json",
    }
    headers.update(options.get("extra_headers", {}))
    scheme = options.get("scheme", "cavage")
    if scheme == "cavage":
        headers["Digest"] = "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()
        signed = options.get("headers", ["(request-target)", "host", "date", "digest"])
        private, _ = keys_for(name)
        signer = httpsig.HeaderSigner(key_id, private, algorithm="rsa-sha256", headers=signed, sign_header="signature")
        headers = dict(signer.sign(headers, method="POST", path=path))
        if options.get("algorithm") == "hs2019":
            # hs2019 with an RSA key is the same PKCS#1 v1.5 SHA-256 signature.
            headers["signature"] = headers["signature"].replace('algorithm="rsa-sha256"', 'algorithm="hs2019"')
    elif scheme == "rfc9421":
        request = requests.Request("POST", url, headers=headers, data=body).prepare()
        signer = HTTPMessageSigner(signature_algorithm=algorithms.RSA_V1_5_SHA256, key_resolver=KeyResolver(name))
        created = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=offset)
        signer.sign(
            request,
            key_id=key_id,
            label="sig1",
            created=created,
            covered_component_ids=("@method", "@target-uri", "content-digest"),
            body=body,
        )
        headers = dict(request.headers)
    if options.get("tamper") == "body":
        body = body.replace(b"}", b', "tampered": true}', 1)
    if options.get("tamper") == "digest":
        bad = "SHA-256=" + base64.b64encode(hashlib.sha256(b"something else").digest()).decode()
        for key in list(headers):
            if key.lower() == "digest":
                headers[key] = bad
    headers.pop("Host", None)
    headers.pop("host", None)
    try:
        response = requests.post(url, data=body, headers=headers, timeout=30)
        return {"status": response.status_code, "body": response.text[:2000]}
    except requests.RequestException as e:
        return {"status": 0, "body": str(e)}


class Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        # A sender killed mid-request (the restart test) is expected, not an error.
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


def main():
    server = Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    # Ids use the name "localhost": the federation library refuses hosts that are bare IP
    # addresses (it wants a domain), and localhost is loopback all the same.
    print(json.dumps({"base": f"http://localhost:{server.server_address[1]}"}), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
