"""Reads a feed the way a feed reader would and prints what it understood, as JSON.

Usage: parse_feed.py CONTENT-TYPE < body

RSS and Atom go through feedparser, the parser behind many readers; JSON Feed (which
feedparser 6.0 does not read) through jsonfeed-util plus the JSON Feed 1.1 rules that
library leaves unchecked. Either way the output has one shape, so the end-to-end tests
compare formats without knowing each one's field names:

    {"bozo": false, "bozo_exception": null, "version": "atom10",
     "feed": {"title", "link", "self", "language", "updated"},
     "entries": [{"id", "link", "title", "summary", "content", "published", "updated",
                  "tags"}]}

Dates are UTC, "YYYY-MM-DDTHH:MM:SSZ". A field the feed does not carry is null, so a
test can tell "no title" from "empty title". The exit code is 0 whenever a feed was
read at all; problems with it are reported through "bozo", as feedparser does.
"""

import calendar
import json
import re
import sys
from datetime import datetime, timezone

import feedparser
import jsonfeed


def utc_iso(parsed_time):
    """feedparser's UTC struct_time as an ISO string."""
    if parsed_time is None:
        return None
    seconds = calendar.timegm(parsed_time)
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def from_xml(body, content_type):
    # Relative URLs are left alone: the tests must see whether the server made them
    # absolute, not whether feedparser could.
    parsed = feedparser.parse(
        body,
        response_headers={"content-type": content_type},
        resolve_relative_uris=False,
    )
    feed = parsed.feed
    self_link = next(
        (l.get("href") for l in feed.get("links", []) if l.get("rel") == "self"), None
    )
    entries = []
    for entry in parsed.entries:
        content = entry.get("content")
        entries.append(
            {
                "id": entry.get("id"),
                "link": entry.get("link"),
                "title": entry.get("title"),
                # RSS has one text, <description>, which feedparser calls the summary;
                # Atom has <summary> and <content> apart.
                "summary": entry.get("summary") if content else None,
                "content": content[0].value if content else entry.get("summary"),
                "published": utc_iso(entry.get("published_parsed")),
                "updated": utc_iso(entry.get("updated_parsed")),
                "tags": [t.get("term") for t in entry.get("tags", [])],
            }
        )
    exception = parsed.get("bozo_exception")
    return {
        "bozo": bool(parsed.bozo),
        "bozo_exception": None if exception is None else repr(exception),
        "version": parsed.get("version"),
        "feed": {
            "title": feed.get("title"),
            "link": feed.get("link"),
            "self": self_link,
            "language": feed.get("language"),
            "updated": utc_iso(feed.get("updated_parsed")),
        },
        "entries": entries,
    }


# RFC 3339 date-time, which JSON Feed 1.1 requires for its dates.
RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"
)


def rfc3339_utc(value, problems, where):
    if value is None:
        return None
    if not isinstance(value, str) or not RFC3339.match(value):
        problems.append(f"{where}: {value!r} is not an RFC 3339 date")
        return None
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def from_json(body, content_type):
    problems = []
    media_type = content_type.split(";")[0].strip().lower()
    if media_type not in ("application/feed+json", "application/json"):
        problems.append(f"content type {content_type!r} is not a JSON Feed type")
    try:
        raw = json.loads(body)
        parsed = jsonfeed.Feed.parse(raw)
    except (ValueError, jsonfeed.ParseError, AttributeError, TypeError) as error:
        return {
            "bozo": True,
            "bozo_exception": repr(error),
            "version": None,
            "feed": {},
            "entries": [],
        }
    # What JSON Feed 1.1 requires and jsonfeed-util does not check.
    if raw.get("version") != "https://jsonfeed.org/version/1.1":
        problems.append(f"version is {raw.get('version')!r}")
    if not isinstance(raw.get("items"), list):
        problems.append("items is missing")
    entries = []
    for n, item in enumerate(parsed.items):
        where = f"item {n}"
        if not isinstance(item.id, str):
            problems.append(f"{where}: id must be a string")
        if item.content_html is None and item.content_text is None:
            problems.append(f"{where}: has neither content_html nor content_text")
        if not all(isinstance(t, str) for t in item.tags):
            problems.append(f"{where}: tags must be strings")
        entries.append(
            {
                "id": item.id,
                "link": item.url,
                "title": item.title,
                "summary": item.summary,
                "content": item.content_html,
                "published": rfc3339_utc(item.date_published, problems, where),
                "updated": rfc3339_utc(item.date_modified, problems, where),
                "tags": list(item.tags),
            }
        )
    return {
        "bozo": bool(problems),
        "bozo_exception": "; ".join(problems) or None,
        "version": "json11",
        "feed": {
            "title": parsed.title,
            "link": parsed.home_page_url,
            "self": parsed.feed_url,
            "language": parsed.language,
            "updated": None,
        },
        "entries": entries,
    }


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    content_type = sys.argv[1]
    body = sys.stdin.buffer.read()
    if "json" in content_type.lower():
        result = from_json(body, content_type)
    else:
        result = from_xml(body, content_type)
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
