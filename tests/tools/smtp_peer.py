"""An SMTP server on loopback for the end-to-end tests (aiosmtpd), with a control API.

Prints one JSON line, {"smtp": PORT, "control": PORT}, then serves until killed.

SMTP (127.0.0.1, a free port): stores every accepted message with its envelope. Told
through the control API, it answers a queue of failures (e.g. 421 at RCPT, 451 at the
end of DATA) to the next transactions, refuses chosen addresses with 550 at RCPT, and
can hold its reply to the final "." (the message is stored first, as a real MTA commits
its queue file before replying) to stop senders at a known point.

With --starttls DIR it makes a test CA (DIR/ca.pem) and a certificate for 127.0.0.1,
offers STARTTLS, and requires it and AUTH (user "rounds", password "secret pass");
with --smtps DIR the same, with TLS from the first byte.

Control (HTTP, 127.0.0.1, another free port):
  GET  /stats                counts: total, distinct recipients, duplicates, held, in_data
  GET  /attempts?to=ADDR     how many times a RCPT TO named the address
  GET  /messages?to=ADDR     stored messages (envelope, raw text, parsed MIME)
  POST /control              {"fail": [{"stage": "rcpt"|"data", "code": 451, "text": ".."}],
                              "reject": ["addr", ...], "hold_final": true|false}
"""

import argparse
import asyncio
import collections
import email
import email.policy
import json
import os
import ssl
import stat
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.smtp import SMTP, AuthResult

LOCK = threading.Lock()
STATE = {
    "messages": [],
    "per_rcpt": collections.Counter(),
    "fail": collections.deque(),
    "reject": set(),
    "hold_final": False,
    "held": 0,
    "in_data": 0,
    "rcpt_attempts": collections.Counter(),
}
LOOP = None
RELEASE = None  # asyncio.Event, set while replies to "." flow


def parse(raw: bytes) -> dict:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    parts = []
    for part in message.walk():
        if part.is_multipart():
            continue
        try:
            body = part.get_content()
        except Exception as error:  # noqa: BLE001 - reported to the test
            body = f"<undecodable: {error}>"
        parts.append(
            {
                "content_type": part.get_content_type(),
                "charset": part.get_content_charset(),
                "body": body if isinstance(body, str) else body.decode("latin-1"),
            }
        )
    return {
        "headers": [[k, str(v)] for k, v in message.items()],
        "content_type": message.get_content_type(),
        "parts": parts,
        "defects": [type(d).__name__ for d in message.defects]
        + [type(d).__name__ for p in message.walk() for d in p.defects],
    }


def take_failure(stage):
    with LOCK:
        if STATE["fail"] and STATE["fail"][0]["stage"] == stage:
            failure = STATE["fail"].popleft()
            return f'{failure["code"]} {failure.get("text", "try again later")}'
    return None


class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with LOCK:
            STATE["rcpt_attempts"][address.lower()] += 1
        failure = take_failure("rcpt")
        if failure:
            return failure
        with LOCK:
            if address.lower() in STATE["reject"]:
                return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        failure = take_failure("data")
        if failure:
            return failure
        raw = envelope.original_content or envelope.content
        with LOCK:
            STATE["messages"].append(
                {
                    "mail_from": envelope.mail_from,
                    "rcpt_tos": list(envelope.rcpt_tos),
                    "raw": raw.decode("utf-8", "replace"),
                }
            )
            for rcpt in envelope.rcpt_tos:
                STATE["per_rcpt"][rcpt.lower()] += 1
            holding = STATE["hold_final"]
            if holding:
                STATE["held"] += 1
        if holding:
            try:
                await RELEASE.wait()
            finally:
                with LOCK:
                    STATE["held"] -= 1
        return "250 OK: queued"


class PeerSMTP(SMTP):
    async def smtp_DATA(self, arg):
        with LOCK:
            STATE["in_data"] += 1
        try:
            return await super().smtp_DATA(arg)
        finally:
            with LOCK:
                STATE["in_data"] -= 1


def exit_with_parent():
    """Stops when the test process goes (its end of our stdin, a pipe, closes)."""
    if not stat.S_ISFIFO(os.fstat(0).st_mode):
        return
    for _ in sys.stdin:
        pass
    os._exit(0)


def make_certificates(folder):
    """A CA and a server certificate for 127.0.0.1 signed by it; returns (cert, key)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rounds test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    with open(os.path.join(folder, "ca.pem"), "wb") as f:
        f.write(ca.public_bytes(pem))
    cert_file = os.path.join(folder, "server.pem")
    key_file = os.path.join(folder, "server.key")
    with open(cert_file, "wb") as f:
        f.write(cert.public_bytes(pem))
    with open(key_file, "wb") as f:
        f.write(
            key.private_bytes(
                pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    return cert_file, key_file


def authenticate(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == b"rounds" and auth_data.password == b"secret pass"
    return AuthResult(success=ok)


class Control(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, value):
        body = json.dumps(value).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        query = urllib.parse.parse_qs(url.query)
        if url.path == "/stats":
            with LOCK:
                counts = STATE["per_rcpt"]
                self.reply(
                    {
                        "total": len(STATE["messages"]),
                        "distinct": len(counts),
                        "duplicates": sorted(a for a, n in counts.items() if n > 1),
                        "held": STATE["held"],
                        "in_data": STATE["in_data"],
                    }
                )
        elif url.path == "/attempts":
            to = query.get("to", [""])[0].lower()
            with LOCK:
                self.reply({"attempts": STATE["rcpt_attempts"][to]})
        elif url.path == "/messages":
            to = [t.lower() for t in query.get("to", [])]
            with LOCK:
                chosen = [
                    m
                    for m in STATE["messages"]
                    if not to or any(r.lower() in to for r in m["rcpt_tos"])
                ]
            self.reply([dict(m, parsed=parse(m["raw"].encode("utf-8"))) for m in chosen])
        else:
            self.send_error(404)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        order = json.loads(self.rfile.read(length) or b"{}")
        with LOCK:
            STATE["fail"].extend(order.get("fail", []))
            STATE["reject"].update(a.lower() for a in order.get("reject", []))
            if "hold_final" in order:
                STATE["hold_final"] = bool(order["hold_final"])
                hold = STATE["hold_final"]
                LOOP.call_soon_threadsafe(RELEASE.clear if hold else RELEASE.set)
        self.reply({"ok": True})


async def main(args):
    global LOOP, RELEASE
    LOOP = asyncio.get_running_loop()
    RELEASE = asyncio.Event()
    RELEASE.set()
    options = {}
    server_tls = None
    folder = args.starttls or args.smtps
    if folder:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*make_certificates(folder))
        options = dict(auth_required=True, authenticator=authenticate)
        if args.starttls:
            options.update(tls_context=context, require_starttls=True, auth_require_tls=True)
        else:
            # The whole connection is TLS: aiosmtpd cannot tell, so AUTH must not ask for STARTTLS.
            options.update(auth_require_tls=False)
            server_tls = context
    handler = Handler()
    server = await LOOP.create_server(
        lambda: PeerSMTP(handler, enable_SMTPUTF8=True, **options),
        "127.0.0.1",
        0,
        ssl=server_tls,
    )
    control = ThreadingHTTPServer(("127.0.0.1", 0), Control)
    threading.Thread(target=control.serve_forever, daemon=True).start()
    threading.Thread(target=exit_with_parent, daemon=True).start()
    print(
        json.dumps(
            {"smtp": server.sockets[0].getsockname()[1], "control": control.server_port}
        ),
        flush=True,
    )
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument("--starttls", metavar="DIR")
    modes.add_argument("--smtps", metavar="DIR")
    asyncio.run(main(parser.parse_args()))
