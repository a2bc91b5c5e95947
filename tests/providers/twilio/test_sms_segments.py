"""providers.sms: GSM-7 / UCS-2 detection and segment counting, boundaries included."""

import pytest

from providers.sms import GSM7, UCS2, count_segments, encoding, length_in_units


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", GSM7),
        ("Hello, world! 123 @ $ _ ?", GSM7),
        ("Ça coûte 5€ ?", UCS2),  # û is not in GSM 03.38
        ("Ça va? Très bien, à demain.", GSM7),  # Ç, è, à are
        ("ça", UCS2),  # only the capital Ç is in the basic table
        ("Straße £5 ¥3 §1 ¿¡ ÄÖÑÜäöñü ΔΦΓΛΩΠΨΣΘΞ", GSM7),
        ("line one\nline two\r\n", GSM7),
        ("price [5] {x} ~y | a\\b ^ €", GSM7),  # the extension table is still GSM-7
        ("back`tick", UCS2),
        ("cámara", UCS2),  # á is not in GSM 03.38 (à is)
        ("thanks 👍", UCS2),
        ("Привет", UCS2),
        ("\x1b", UCS2),  # the raw escape code is not a character of the alphabet
    ],
)
def test_encoding(text, expected):
    assert encoding(text) == expected


@pytest.mark.parametrize(
    "text, units",
    [
        ("abc", 3),
        ("€", 2),
        ("{}[]", 8),
        ("\f", 2),
        ("ç", 1),
        ("😀", 2),  # outside the BMP: a surrogate pair
        ("a😀", 3),
        ("a€ç", 3),  # UCS-2 as a whole, so € costs 1 code unit here
    ],
)
def test_length_in_units(text, units):
    assert length_in_units(text) == units


@pytest.mark.parametrize(
    "length, segments",
    [(0, 1), (1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4), (1530, 10)],
)
def test_gsm7_boundaries(length, segments):
    assert count_segments("a" * length) == segments


@pytest.mark.parametrize(
    "length, segments",
    [(1, 1), (70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)],
)
def test_ucs2_boundaries(length, segments):
    assert count_segments("ç" * length) == segments


def test_extension_characters_count_two_septets():
    assert count_segments("€" * 80) == 1  # 160 septets
    assert count_segments("€" * 81) == 2  # 162 septets
    assert count_segments("a" * 159 + "^") == 2  # 161 septets although 160 characters


def test_an_escape_sequence_is_never_split_across_segments():
    # 306 septets would fit two parts of 153, but the € at septets 153-154 moves to the second part.
    text = "a" * 152 + "€" + "a" * 152
    assert length_in_units(text) == 306
    assert count_segments(text) == 3


def test_emoji_count_two_code_units():
    assert count_segments("😀" * 35) == 1  # 70 code units
    assert count_segments("😀" * 36) == 2  # 72 code units


def test_a_surrogate_pair_is_never_split_across_segments():
    text = "a" * 66 + "😀" + "a" * 66
    assert length_in_units(text) == 134  # two parts of 67 by arithmetic
    assert count_segments(text) == 3


def test_one_non_gsm_character_switches_the_whole_message():
    ascii_text = "x" * 100
    assert count_segments(ascii_text) == 1
    assert count_segments(ascii_text + "✓") == 2  # 101 UCS-2 units > 70


def test_twilio_reported_one_segment_for_its_unicode_example():
    # The Message resource example in Twilio's API answers num_segments "1" for this body.
    assert count_segments("O Slash: Ø, PoP: 💩") == 1
    assert encoding("O Slash: Ø, PoP: 💩") == UCS2
