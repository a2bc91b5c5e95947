"""Trim quoted history and signatures from a plain-text reply, for display only.

The full text is always kept (content["text_full"]); this only decides what the conversation view
shows first. Rules, in order, each cutting everything from the matched line on:
- an attribution line ("On Tue, 3 Mar 2025 at 10:00, Ana <ana@x> wrote:" and its translations,
  possibly wrapped over two lines), followed by quoted lines;
- Outlook's "-----Original Message-----" and "From: ... / Sent: ..." header blocks;
- a trailing block of ">"-quoted lines;
- the RFC 3676 signature separator "-- " and mobile footers ("Sent from my iPhone").
"""

import re

_ATTRIBUTION = re.compile(
    r"^\s*(on\b.+\bwrote|am\b.+\bschrieb|le\b.+\ba écrit|el\b.+\bescribió|em\b.+\bescreveu|"
    r"il\b.+\bha scritto|op\b.+\bschreef|.+\bnapisał)\s*:\s*$",
    re.IGNORECASE,
)
_ORIGINAL = re.compile(
    r"^\s*(-{2,}\s*(original message|ursprüngliche nachricht|message d'origine|mensaje original|"
    r"mensagem original|forwarded message)\s*-{2,}|_{20,})\s*$",
    re.IGNORECASE,
)
_HEADER_BLOCK = re.compile(r"^\s*\*?(from|von|de|da|van)\s*:\*?\s+.+$", re.IGNORECASE)
_HEADER_FOLLOW = re.compile(
    r"^\s*\*?(sent|date|gesendet|envoyé|enviado|to|an|à|para|subject|betreff|objet|asunto)\s*:", re.IGNORECASE
)
_SIGNATURE = re.compile(r"^--\s?$")
_MOBILE = re.compile(
    r"^\s*(sent from my|get outlook for|enviado desde mi|von meinem .+ gesendet)\b", re.IGNORECASE
)


def trim_reply(text: str) -> str:
    """The new part of a plain-text reply: quoted history and signature removed, outer blank lines too."""
    lines = (text or "").replace("\r\n", "\n").split("\n")
    cut = len(lines)
    for index, line in enumerate(lines):
        wrapped = index + 1 < len(lines) and lines[index + 1].rstrip().endswith(":")
        if _ATTRIBUTION.match(line) or (wrapped and _ATTRIBUTION.match(f"{line} {lines[index + 1]}")):
            cut = index
            break
        if _ORIGINAL.match(line):
            cut = index
            break
        if _HEADER_BLOCK.match(line) and any(
            _HEADER_FOLLOW.match(item) for item in lines[index + 1 : index + 4]
        ):
            cut = index
            break
        if _SIGNATURE.match(line) or _MOBILE.match(line):
            cut = index
            break
    kept = lines[:cut]
    # A trailing run of quoted lines (bottom-posting clients quote without an attribution line).
    end = len(kept)
    while end and (not kept[end - 1].strip() or kept[end - 1].lstrip().startswith(">")):
        end -= 1
    if any(item.lstrip().startswith(">") for item in kept[end:]):
        kept = kept[:end]
    trimmed = "\n".join(kept).strip("\n")
    # Never trim a message down to nothing: a reply that is only a quote shows as it is.
    return trimmed.rstrip() if trimmed.strip() else (text or "").strip()
