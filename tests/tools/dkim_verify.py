"""Verifies a message's DKIM signature with dkimpy, publishing the public key of the
given private key (PEM) as SELECTOR._domainkey.DOMAIN through dkimpy's DNS hook.

Usage: dkim_verify.py MESSAGE_FILE PRIVATE_KEY_PEM SELECTOR DOMAIN
Prints "pass" and exits 0 if the signature verifies, else prints why and exits 1.
"""

import base64
import sys

import dkim
from cryptography.hazmat.primitives import serialization


def main(message_file, key_file, selector, domain):
    with open(key_file, "rb") as f:
        private = serialization.load_pem_private_key(f.read(), password=None)
    public = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    name = f"{selector}._domainkey.{domain}."

    def dnsfunc(query, timeout=5):
        asked = query.decode() if isinstance(query, bytes) else query
        return record if asked.rstrip(".") + "." == name else None

    with open(message_file, "rb") as f:
        message = f.read()
    verifier = dkim.DKIM(message)
    ok = verifier.verify(dnsfunc=dnsfunc)
    if ok:
        print("pass")
        return 0
    print(f"fail: {verifier.signature_fields or 'no signature'}")
    return 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
