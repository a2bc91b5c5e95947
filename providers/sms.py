"""SMS segment counting: how many billable message parts a text becomes on the carrier network.

An SMS PDU carries 140 octets of user data. GSM-7 packs 160 septets in it; UCS-2 (UTF-16) packs 70
code units. A longer text is sent as a concatenated SMS whose parts each lose room to the user data
header (UDH): 153 septets for GSM-7, 67 code units for UCS-2. A single character outside the GSM 03.38
alphabet switches the whole message to UCS-2.

Quirks that make naive `len(text) / 160` wrong:
- The GSM 03.38 extension table (`^ { } \\ [ ~ ] | €` and form feed) is reached through an escape
  septet, so each of these characters costs 2 septets.
- UCS-2 counts UTF-16 code units, so a character outside the Basic Multilingual Plane (most emoji)
  costs 2.
- Senders never split an escape sequence or a surrogate pair across two parts, so a part that cannot
  hold the whole character is closed early and the character starts the next part.

Twilio bills per segment and reports `num_segments` on the Message resource; this module is the
estimate used when that number is not available.
https://www.twilio.com/docs/glossary/what-sms-character-limit
https://en.wikipedia.org/wiki/GSM_03.38
"""

GSM7 = "GSM-7"
UCS2 = "UCS-2"

# GSM 03.38 basic character set, in table order (0x00-0x7F), without 0x1B (the escape to the extension
# table, which is not a character of its own).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ"
    "ÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# GSM 03.38 extension table (default language): each costs the escape septet plus its own.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

SINGLE_LIMIT = {GSM7: 160, UCS2: 70}
PART_LIMIT = {GSM7: 153, UCS2: 67}


def encoding(text: str) -> str:
    """Return "GSM-7" when every character is in the GSM 03.38 basic or extension table, else "UCS-2"."""
    for char in text:
        if char not in GSM7_BASIC and char not in GSM7_EXTENSION:
            return UCS2
    return GSM7


def _unit_costs(text: str, enc: str) -> list[int]:
    """The size of each character in the encoding's units (septets or UTF-16 code units)."""
    if enc == GSM7:
        return [2 if char in GSM7_EXTENSION else 1 for char in text]
    return [2 if ord(char) > 0xFFFF else 1 for char in text]


def length_in_units(text: str) -> int:
    """Total septets (GSM-7) or UTF-16 code units (UCS-2) the text occupies."""
    return sum(_unit_costs(text, encoding(text)))


def count_segments(text: str) -> int:
    """Number of SMS segments `text` is sent as; an empty text still occupies one segment."""
    enc = encoding(text)
    costs = _unit_costs(text, enc)
    if sum(costs) <= SINGLE_LIMIT[enc]:
        return 1
    room = PART_LIMIT[enc]
    segments, used = 1, 0
    for cost in costs:
        if used + cost > room:
            segments += 1
            used = 0
        used += cost
    return segments
