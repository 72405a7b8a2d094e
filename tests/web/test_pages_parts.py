"""The pages' parts that need no server: sessions and their expiry, the login throttle and
login tokens, the text-only message view, and the SVG charts."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from vault.mailview import html_to_text, is_spam, parse, view
from vault.web.sessions import LoginThrottle, LoginTokens, SessionStore
from vault.web.svg import bars_with_median


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_sessions_end_when_idle_or_too_old_and_ids_are_256_bits():
    clock = Clock()
    store = SessionStore(idle=60, lifetime=300, clock=clock)
    s = store.create("jane", object(), "Jane")
    assert len(s.id) == 43 and len(s.csrf) == 43 and s.id != s.csrf
    clock.t += 59
    assert store.get(s.id) is s
    clock.t += 61
    assert store.get(s.id) is None  # idle too long
    s = store.create("jane", object(), "Jane")
    for _ in range(7):
        clock.t += 50
        store.get(s.id)
    assert store.get(s.id) is None  # used all along, but older than its lifetime
    s = store.create("jane", object(), "Jane")
    store.end(s.id)
    assert store.get(s.id) is None and store.get(None) is None and store.get("") is None


def test_the_throttle_counts_per_name_and_more_loosely_per_address():
    clock = Clock()
    throttle = LoginThrottle(attempts=3, window=60, clock=clock)
    for _ in range(3):
        assert not throttle.blocked("Jane", "10.0.0.1")
        throttle.failed("Jane", "10.0.0.1")
    assert throttle.blocked("jane", "10.0.0.9")  # the name, from anywhere
    assert not throttle.blocked("john", "10.0.0.1")  # the address is not blocked yet
    for n in range(9):
        throttle.failed(f"user{n}", "10.0.0.1")
    assert throttle.blocked("john", "10.0.0.1")  # 12 failures from one address
    clock.t += 61
    assert not throttle.blocked("jane", "10.0.0.1")


def test_login_tokens_are_bound_to_their_cookie():
    tokens = LoginTokens()
    assert tokens.valid("cookie-a", tokens.token("cookie-a"))
    assert not tokens.valid("cookie-b", tokens.token("cookie-a"))
    assert not tokens.valid(None, tokens.token("cookie-a")) and not tokens.valid("cookie-a", "")


def test_an_html_body_becomes_text_without_scripts_styles_or_markup():
    text = html_to_text(
        "<html><head><title>t</title><style>p{x}</style></head><body><p>Hello &amp; <b>welcome</b></p>"
        "<script>steal()</script><div>Line two</div><img src=x onerror=alert(1)></body></html>"
    )
    assert text == "Hello & welcome\n\nLine two"
    msg = (
        b"From: a@example.org\r\nSubject: hi\r\nMIME-Version: 1.0\r\nContent-Type: text/html\r\n\r\n"
        b"<p>Hi <a href='javascript:x()'>there</a></p>"
    )
    shown = view(msg)
    assert shown.from_html and shown.text == "Hi there" and ("Subject", "hi") in shown.headers


def test_spam_marks_in_headers():
    assert is_spam(parse(b"X-Spam-Flag: YES\r\n\r\n"))
    assert is_spam(parse(b"X-Spam-Status: Yes, score=7.2\r\n\r\n"))
    assert not is_spam(parse(b"X-Spam-Status: No, score=0.1\r\n\r\n"))
    assert not is_spam(parse(b"Subject: Yes\r\n\r\n"))


def test_the_chart_is_well_formed_svg_with_one_bar_per_week_and_the_median_line():
    svg = bars_with_median("Messages <received>", ["2026-01-05", "2026-01-12"], [3, 5], [4, 4])
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    bars = [r for r in root.iter(f"{ns}rect") if r.find(f"{ns}title") is not None]
    assert len(bars) == 2 and float(bars[1].get("height", 0)) > float(bars[0].get("height", 0))
    assert root.find(f"{ns}polyline") is not None
    assert "<received>" not in svg and "&lt;received&gt;" in svg
    assert "style=" not in svg and "<script" not in svg
