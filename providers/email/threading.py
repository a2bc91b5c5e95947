"""E-mail threading: Message-ID / In-Reply-To / References, our own Message-IDs, subjects.

How a customer's mail finds its conversation (RFC 5322 §3.6.4; RFC 5256 for the subject rules):
- parse() sets InboundMessage.thread_key to the thread's root Message-ID: the first id of
  References when present, else In-Reply-To, else the mail's own Message-ID (a new thread).
- Our outbound mail carries `References: <root> ... <parent>` and `In-Reply-To: <parent>`, where the
  root is the conversation's thread_key, so the customer's client copies the root into its reply's
  References and the reply's thread_key is the conversation's thread_key again.
- Our outbound Message-ID is `<alexia-{message pk}-{tag}@{domain}>`, where tag is an HMAC of the
  pk keyed by the channel's webhook token. It is deterministic (a retried send repeats the same id, so
  receivers de-duplicate it) and unforgeable (a stranger cannot thread a mail into someone else's
  conversation by guessing pks). parse() reports the newest of our ids a mail refers to as
  content["email"]["reply_to_our_message"], for conversations that have no root yet.
- Without usable headers, the pipeline falls back to (contact, normalized subject): subject_key().
"""

import hashlib
import hmac
import re

OUR_ID = re.compile(r"^<alexia-(?P<pk>\d+)-(?P<tag>[0-9a-f]{16})@[^>]+>$")
_MSGID = re.compile(r"<[^<>\s]+>")
# Reply and forward prefixes in the languages our customers write in (RFC 5256 "subj-refwd" plus the
# localized ones mail clients actually send: AW (de), SV (sv/da/no), VS (fi), RIF (it), Antw (nl),
# Odp (pl), Enc/RES (pt), TR (fr "transfert"), WG (de forward)).
_PREFIX = re.compile(
    r"^\s*((re|fw|fwd|aw|sv|vs|wg|rif|r|antw|odp|res|enc|tr)(\[\d+\])?\s*[:：]\s*|\[[^\]]*\]\s*)+",
    re.IGNORECASE,
)


def message_ids(value: str | None) -> list[str]:
    """The `<id>` tokens of a Message-ID / In-Reply-To / References header, in order, unique."""
    seen: list[str] = []
    for token in _MSGID.findall(value or ""):
        if token not in seen:
            seen.append(token)
    return seen


def thread_root(*, message_id: str, in_reply_to: list[str], references: list[str]) -> str:
    if references:
        return references[0]
    if in_reply_to:
        return in_reply_to[0]
    return message_id


def _tag(key: str, pk: int) -> str:
    return hmac.new(key.encode(), f"alexia-message:{pk}".encode(), hashlib.sha256).hexdigest()[:16]


def outbound_message_id(*, pk: int, key: str, domain: str) -> str:
    """Our Message-ID for outbound message `pk` (key: the channel's webhook token)."""
    return f"<alexia-{pk}-{_tag(key, pk)}@{domain or 'alexia.invalid'}>"


def our_message_pk(message_id: str, *, key: str) -> int | None:
    """The pk of our outbound message this Message-ID names, or None (not ours, or forged)."""
    match = OUR_ID.match(message_id.strip())
    if not match:
        return None
    pk = int(match["pk"])
    return pk if hmac.compare_digest(match["tag"], _tag(key, pk)) else None


def subject_key(subject: str) -> str:
    """The subject with reply/forward prefixes and list tags removed, case-folded, spaces collapsed."""
    stripped = _PREFIX.sub("", subject or "")
    stripped = re.sub(r"\s*\((fwd|fw)\)\s*$", "", stripped, flags=re.IGNORECASE)
    return " ".join(stripped.split()).casefold()


def reply_subject(subject: str) -> str:
    subject = (subject or "").strip()
    if not subject:
        return ""
    return subject if re.match(r"^re\s*:", subject, re.IGNORECASE) else f"Re: {subject}"


def reply_headers(*, thread_root_id: str, in_reply_to: str, references: list[str]) -> dict[str, str]:
    """In-Reply-To and References for a reply: the root first, the parent last (RFC 5322 §3.6.4)."""
    chain: list[str] = []
    for token in [*message_ids(thread_root_id), *references, *message_ids(in_reply_to)]:
        for item in message_ids(token):
            if item not in chain:
                chain.append(item)
    headers: dict[str, str] = {}
    parent = message_ids(in_reply_to)
    if parent:
        headers["In-Reply-To"] = parent[0]
    elif chain:
        headers["In-Reply-To"] = chain[-1]
    if chain:
        # Long References are folded by the e-mail library; keep at most the root and the last 20.
        kept = chain if len(chain) <= 21 else [chain[0], *chain[-20:]]
        headers["References"] = " ".join(kept)
    return headers
