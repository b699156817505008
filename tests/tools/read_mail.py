"""Reads RFC 5322 messages (.eml files) with Python's own email package, an independent
MIME parser, and prints what a mail client would see as JSON: one object a message with
its headers (unfolded), its parts' content types and their decoded text.

Usage: read_mail.py FILE...
"""

import json
import sys
from email import policy
from email.parser import BytesParser


def read(path):
    with open(path, "rb") as f:
        message = BytesParser(policy=policy.default).parse(f)
    headers = {}
    for name, value in message.items():
        headers.setdefault(name.lower(), []).append(str(value))
    parts = []
    for part in message.walk():
        if part.is_multipart():
            continue
        parts.append({"type": part.get_content_type(), "text": part.get_content()})
    return {
        "file": path,
        "content_type": message.get_content_type(),
        "headers": headers,
        "parts": parts,
    }


if __name__ == "__main__":
    json.dump([read(p) for p in sys.argv[1:]], sys.stdout)
