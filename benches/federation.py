"""Federation benchmark driver (run by benches/federation.sh, which builds the binary and
sets up the server's database). Two measurements against a running `rounds serve`:

fan-out  SERVERS receivers (one asyncio process, one loopback port each: a port is a
         server, since ids are host:port) with FOLLOWERS followers spread over them, all
         sharing their server's inbox. The followers are written straight into the
         database (SQLite, or PostgreSQL through psql); then one post is published with
         `rounds post publish`, and the time from the command's start until every shared
         inbox has its Create is measured. The receivers take any signed POST (they check
         a Signature header is there; the cost measured is ours, not theirs).
replies  REPLIES replies from ACTORS actors (served by the same receivers, so our inbox
         fetches their keys once), each signed ahead of time (draft-cavage rsa-sha256,
         like Mastodon), sent over CONCURRENCY keep-alive connections to the shared inbox;
         our inbox verifies each signature and digest and stores the reply. Prints
         replies/s and latency percentiles.

Usage: python federation.py BASE_URL DATABASE_URL ROUNDS_BIN DATA_DIR
"""

import asyncio
import base64
import email.utils
import hashlib
import json
import os
import resource
import sqlite3
import subprocess
import sys
import time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

SERVERS = int(os.environ.get("SERVERS", "1000"))
FOLLOWERS = int(os.environ.get("FOLLOWERS", "10000"))
REPLIES = int(os.environ.get("REPLIES", "5000"))
ACTORS = int(os.environ.get("ACTORS", "100"))
CONCURRENCY = int(os.environ.get("CONCURRENCY", "32"))

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PUBLIC_PEM = KEY.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
).decode()

first_create = {}  # port -> time its inbox first got a Create


async def read_request(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    return method, path, headers, body


def respond(writer, status, body=b"", content_type="application/activity+json"):
    reason = {200: "OK", 202: "Accepted", 401: "Unauthorized", 404: "Not Found"}[status]
    writer.write(
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode() + body
    )


def receiver(port, done):
    async def handle(reader, writer):
        try:
            while True:
                method, path, headers, body = await read_request(reader)
                if method == "GET" and path.startswith("/users/"):
                    name = path.split("/")[2]
                    actor = f"http://localhost:{port}/users/{name}"
                    document = {
                        "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
                        "id": actor, "type": "Person", "preferredUsername": name,
                        "inbox": f"{actor}/inbox", "endpoints": {"sharedInbox": f"http://localhost:{port}/inbox"},
                        "publicKey": {"id": f"{actor}#main-key", "owner": actor, "publicKeyPem": PUBLIC_PEM},
                    }
                    respond(writer, 200, json.dumps(document).encode())
                elif method == "POST":
                    if "signature" not in headers:
                        respond(writer, 401)
                    else:
                        if b'"Create"' in body and port not in first_create:
                            first_create[port] = time.time()
                            if len(first_create) == SERVERS:
                                done.set()
                        respond(writer, 202)
                else:
                    respond(writer, 404)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    return handle


def seed_followers(database_url, ports):
    now = "2026-01-01 00:00:00"
    rows = []
    for i in range(FOLLOWERS):
        port = ports[i % len(ports)]
        actor = f"http://localhost:{port}/users/f{i}"
        rows.append((actor, f"localhost:{port}", f"f{i}", f"{actor}/inbox", f"http://localhost:{port}/inbox", now, now))
    follow = ("INSERT INTO followers (blog_id, actor_id, status, follow_ap_id, created_at, updated_at)"
              f" SELECT 1, id, 'accepted', ap_id || '/follows/1', '{now}', '{now}' FROM actors"
              " WHERE username LIKE 'f%'")
    columns = "actors (ap_id, domain, username, inbox, shared_inbox, fetched_at, created_at)"
    if database_url.startswith("postgres"):
        copy = "".join("\t".join(row) + "\n" for row in rows)
        sql = f"COPY {columns} FROM STDIN;\n{copy}\\.\n{follow};\n"
        subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", database_url], input=sql.encode(), check=True)
        return
    db = sqlite3.connect(database_url.removeprefix("sqlite://"))
    with db:
        db.executemany(f"INSERT INTO {columns} VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        db.execute(follow)
    db.close()


def signed_reply(host, port_of_actor, n, post_url, blog):
    actor = f"http://localhost:{port_of_actor}/users/r{n % ACTORS}"
    note = f"{actor}/notes/{n}"
    body = json.dumps({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{note}/activity", "type": "Create", "actor": actor,
        "to": ["https://www.w3.org/ns/activitystreams#Public"], "cc": [blog],
        "object": {
            "id": note, "type": "Note", "attributedTo": actor, "inReplyTo": post_url,
            "content": f"<p>Reply number {n}, with <strong>some</strong> text.</p>",
            "to": ["https://www.w3.org/ns/activitystreams#Public"], "cc": [blog],
        },
    }).encode()
    date = email.utils.formatdate(usegmt=True)
    digest = "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()
    signed = f"(request-target): post /inbox\nhost: {host}\ndate: {date}\ndigest: {digest}"
    signature = base64.b64encode(KEY.sign(signed.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()
    header = (f'keyId="{actor}#main-key",algorithm="rsa-sha256",'
              f'headers="(request-target) host date digest",signature="{signature}"')
    return (
        f"POST /inbox HTTP/1.1\r\nHost: {host}\r\nDate: {date}\r\nDigest: {digest}\r\n"
        f"Signature: {header}\r\nContent-Type: application/activity+json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def send_all(host, port, requests):
    latencies, statuses = [], {}

    async def worker(share):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for request in share:
            start = time.perf_counter()
            writer.write(request)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            if length:
                await reader.readexactly(length)
            latencies.append(time.perf_counter() - start)
            statuses[status] = statuses.get(status, 0) + 1
        writer.close()

    start = time.perf_counter()
    await asyncio.gather(*[worker(requests[i::CONCURRENCY]) for i in range(CONCURRENCY)])
    return time.perf_counter() - start, sorted(latencies), statuses


def percentile(sorted_values, p):
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * p))]


async def main():
    base, database, rounds_bin, data_dir = sys.argv[1:5]
    host = base.removeprefix("http://")
    server_port = int(host.rsplit(":", 1)[1])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    done = asyncio.Event()
    servers, ports = [], []
    for _ in range(SERVERS):
        port_holder = []
        server = await asyncio.start_server(lambda r, w, h=port_holder: receiver(h[0], done)(r, w), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        port_holder.append(port)
        servers.append(server)
        ports.append(port)
    seed_followers(database, ports)

    env = {k: v for k, v in os.environ.items() if not k.startswith("ROUNDS_")}
    env.update({"ROUNDS_DATABASE_URL": database, "ROUNDS_DATA_DIR": data_dir, "ROUNDS_BASE_URL": base})
    start = time.time()
    published = await asyncio.create_subprocess_exec(
        rounds_bin, "post", "publish", "--blog", "ceo", "-",
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
    )
    out, _ = await published.communicate(b"One post for ten thousand followers.")
    post_url = out.decode().strip()
    published_at = time.time()
    try:
        await asyncio.wait_for(done.wait(), timeout=120)
    except asyncio.TimeoutError:
        pass
    served = len(first_create)
    last = max(first_create.values()) if first_create else float("nan")
    print(json.dumps({
        "fanout_servers": SERVERS, "fanout_followers": FOLLOWERS, "fanout_served": served,
        "publish_command_s": round(published_at - start, 3),
        "fanout_first_s": round(min(first_create.values()) - start, 3) if first_create else None,
        "fanout_s": round(last - start, 3),
        "fanout_after_command_s": round(last - published_at, 3),
        "deliveries_per_s": round(served / (last - start), 1) if served else 0,
    }), flush=True)

    blog = f"{base}/@ceo"
    actor_ports = ports[:ACTORS]
    warm = [signed_reply(host, actor_ports[n % len(actor_ports)], n, post_url, blog) for n in range(ACTORS)]
    await send_all(host, server_port, warm)  # our inbox fetches each actor's key once
    signing = time.perf_counter()
    requests = [signed_reply(host, actor_ports[n % len(actor_ports)], n, post_url, blog)
                for n in range(ACTORS, ACTORS + REPLIES)]
    signing = time.perf_counter() - signing
    elapsed, latencies, statuses = await send_all(host, server_port, requests)
    print(json.dumps({
        "replies": REPLIES, "concurrency": CONCURRENCY, "statuses": statuses,
        "replies_per_s": round(REPLIES / elapsed, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "client_signs_per_s": round(REPLIES / signing, 1),
    }), flush=True)
    for server in servers:
        server.close()


if __name__ == "__main__":
    asyncio.run(main())
