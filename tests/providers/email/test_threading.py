"""Pure helpers: threading headers, our Message-IDs, subject keys, quote trimming, HTML sanitizing."""

from providers.email.sanitize import sanitize_html
from providers.email.threading import (
    message_ids,
    our_message_pk,
    outbound_message_id,
    reply_headers,
    reply_subject,
    subject_key,
    thread_root,
)
from providers.email.trim import trim_reply


def test_thread_root_prefers_references_then_in_reply_to():
    assert thread_root(message_id="<c@x>", in_reply_to=["<b@x>"], references=["<a@x>", "<b@x>"]) == "<a@x>"
    assert thread_root(message_id="<c@x>", in_reply_to=["<b@x>"], references=[]) == "<b@x>"
    assert thread_root(message_id="<c@x>", in_reply_to=[], references=[]) == "<c@x>"
    assert message_ids("<a@x>\r\n <b@x> <a@x> junk") == ["<a@x>", "<b@x>"]


def test_our_message_ids_are_deterministic_and_unforgeable():
    mid = outbound_message_id(pk=42, key="token-1", domain="acme.example")
    assert mid == outbound_message_id(pk=42, key="token-1", domain="acme.example")
    assert mid.startswith("<alexia-42-") and mid.endswith("@acme.example>")
    assert our_message_pk(mid, key="token-1") == 42
    assert our_message_pk(mid, key="token-2") is None  # another channel's token
    assert our_message_pk(mid.replace("alexia-42-", "alexia-43-"), key="token-1") is None
    assert our_message_pk("<CAEPk3R@mail.example.org>", key="token-1") is None


def test_reply_headers_and_subject():
    headers = reply_headers(
        thread_root_id="<root@x>", in_reply_to="<last@x>", references=["<root@x>", "<mid@x>"]
    )
    assert headers == {"In-Reply-To": "<last@x>", "References": "<root@x> <mid@x> <last@x>"}
    assert reply_subject("Order late") == "Re: Order late"
    assert reply_subject("RE: Order late") == "RE: Order late"
    assert subject_key("Re: AW: [Ticket 7] Fwd:  Order   LATE") == "order late"


def test_trim_reply_cuts_attribution_outlook_blocks_and_signatures():
    gmail = "Thanks!\n\nOn Mon, 3 Mar 2025 at 10:00, Acme <s@acme.example>\nwrote:\n> old text\n"
    assert trim_reply(gmail) == "Thanks!"
    outlook = (
        "Fine by me.\n\nFrom: Acme Support <s@acme.example>\nSent: Monday\nTo: Marta\nSubject: Re: x\n\nold"
    )
    assert trim_reply(outlook) == "Fine by me."
    assert trim_reply("Yes.\n-- \nMarta\n+34 600 000 000") == "Yes."
    assert trim_reply("Ok\n\nSent from my iPhone") == "Ok"
    assert trim_reply("Bottom post\n\n> quoted\n> more\n") == "Bottom post"
    assert trim_reply("> only a quote") == "> only a quote"  # never trimmed to nothing


def test_sanitize_html_allow_list():
    dirty = (
        '<div onclick="x()" style="color:red"><script>alert(1)</script><p>Hi <b>there</b></p>'
        '<a href="javascript:alert(1)">bad</a><a href="https://acme.example/a?b=1&c=2">ok</a>'
        '<img src="cid:logo@x"><img src="https://t.example/p.gif"><iframe src="https://e"></iframe>'
        '<a href="java\tscript:x">tab</a><style>p{}</style></div>'
    )
    clean = sanitize_html(dirty)
    assert "script" not in clean and "onclick" not in clean and "style" not in clean and "iframe" not in clean
    assert "<a rel=" in clean and "javascript" not in clean
    assert 'href="https://acme.example/a?b=1&amp;c=2"' in clean
    assert '<img src="cid:logo@x">' in clean
    assert '<img src="https://t.example/p.gif" data-remote="1">' in clean
    assert clean.startswith("<div><p>Hi <b>there</b></p>") and clean.endswith("</div>")


def test_sanitize_trims_quoted_history_for_display():
    html = '<div>New answer</div><div class="gmail_quote"><div>On ... wrote:</div><blockquote>old</blockquote></div>'
    assert sanitize_html(html, trim_quotes=True) == "<div>New answer</div>"
    assert "old" in sanitize_html(html)
    outlook = '<p>Reply</p><div id="divRplyFwdMsg"><b>From:</b> x</div><p>older</p>'
    assert sanitize_html(outlook, trim_quotes=True) == "<p>Reply</p>"
    apple = '<p>Yes</p><blockquote type="cite"><p>Question?</p></blockquote>'
    assert sanitize_html(apple, trim_quotes=True) == "<p>Yes</p>"
