"""Keeps bovine (the library under fediverse-pasture and bovine-herd) off the internet.

bovine expands JSON-LD and downloads the contexts it meets, caching them in
`bovine_jsonld_cache.sqlite` in the working directory. Import this module before any
bovine module: it moves the working directory to a fresh temporary folder (so no cache
file lands in the source tree), pre-fills the cache with the contexts our server and the
test peers use, and makes any other context fail at once instead of waiting on a
download that cannot succeed here (bovine then falls back to an empty context, as it does
for any context it cannot load).
"""

import os
import sys
import tempfile

os.chdir(tempfile.mkdtemp(prefix="bovine-"))

import bovine.jsonld  # noqa: E402

SEC = "https://w3id.org/security#"

CONTEXTS = {
    "https://w3id.org/security/v1": {
        "id": "@id",
        "type": "@type",
        "sec": SEC,
        "dc": "http://purl.org/dc/terms/",
        "xsd": "http://www.w3.org/2001/XMLSchema#",
        "Key": "sec:Key",
        "owner": {"@id": "sec:owner", "@type": "@id"},
        "publicKey": {"@id": "sec:publicKey", "@type": "@id"},
        "publicKeyPem": "sec:publicKeyPem",
        "signature": "sec:signature",
        "signatureValue": "sec:signatureValue",
        "signatureAlgorithm": "sec:signingAlgorithm",
        "created": {"@id": "dc:created", "@type": "xsd:dateTime"},
        "creator": {"@id": "dc:creator", "@type": "@id"},
        "nonce": "sec:nonce",
    },
    "https://w3id.org/security/multikey/v1": {
        "id": "@id",
        "type": "@type",
        "Multikey": {"@id": SEC + "Multikey"},
        "controller": {"@id": SEC + "controller", "@type": "@id"},
        "publicKeyMultibase": {"@id": SEC + "publicKeyMultibase"},
    },
    "https://www.w3.org/ns/did/v1": {
        "@protected": True,
        "id": "@id",
        "type": "@type",
        "assertionMethod": {"@id": SEC + "assertionMethod", "@type": "@id", "@container": "@set"},
        "verificationMethod": {"@id": SEC + "verificationMethod", "@type": "@id"},
    },
    "https://schema.org/docs/jsonldcontext.jsonld": {"schema": "http://schema.org/", "PropertyValue": "schema:PropertyValue", "value": "schema:value"},
}

for url, context in CONTEXTS.items():
    bovine.jsonld.jsonld_cache.cache[url] = context


def _offline_loader(timeout=None):
    def load(url, options=None):
        print(f"bovine_offline: not downloading JSON-LD context {url}", file=sys.stderr)
        raise OSError(f"offline: {url}")

    return load


bovine.jsonld.requests_document_loader = _offline_loader
