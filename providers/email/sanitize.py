"""An allow-list HTML sanitizer for displaying customer e-mail in the agent inbox.

Built on html.parser (no third-party dependency). Everything not explicitly allowed is dropped:
unknown tags are unwrapped (their text kept), `script`/`style`/`head`/... are removed with their
content, every `on*` attribute and `style` goes, URLs must be http(s)/mailto/tel (or `cid:` for
inline images, which the inbox rewrites to the stored attachment), and links get
`rel="noopener noreferrer nofollow"` and `target="_blank"`. Remote images are kept but marked
`data-remote` so the UI can block them until the agent asks (tracking pixels).
"""

from html import escape
from html.parser import HTMLParser
from urllib.parse import urlsplit

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "col", "colgroup", "dd", "del",
    "div", "dl", "dt", "em", "font", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "li",
    "ol", "p", "pre", "q", "s", "small", "span", "strike", "strong", "sub", "sup", "table", "tbody",
    "td", "tfoot", "th", "thead", "tr", "u", "ul",
}  # fmt: skip
VOID_TAGS = {"br", "hr", "img", "col"}
# Dropped together with everything inside them.
DROP_CONTENT = {"script", "style", "head", "title", "template", "iframe", "object", "embed", "noscript",
                "svg", "math", "textarea", "select", "button", "form", "frameset", "frame", "applet"}  # fmt: skip
ALLOWED_ATTRS = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan", "align", "valign"},
    "th": {"colspan", "rowspan", "align", "valign", "scope"},
    "col": {"span"},
    "colgroup": {"span"},
    "table": {"border", "cellpadding", "cellspacing", "width"},
    "ol": {"start", "type"},
    "blockquote": {"cite"},
    "q": {"cite"},
    "font": {"color"},
    "abbr": {"title"},
}
URL_ATTRS = {"href", "src", "cite"}
LINK_SCHEMES = {"http", "https", "mailto", "tel"}
IMAGE_SCHEMES = {"http", "https", "cid"}


def _safe_url(value: str, schemes: set[str]) -> str | None:
    # Browsers ignore control characters and whitespace inside a scheme ("java\tscript:").
    cleaned = "".join(ch for ch in value if ch > " " and ch != "\x7f")
    if not cleaned:
        return None
    scheme = urlsplit(cleaned).scheme.lower()
    if not scheme:
        return value.strip() if not cleaned.startswith("//") else None
    return value.strip() if scheme in schemes else None


# Quoted history as the big clients mark it: Gmail, Apple Mail/Thunderbird (`type=cite`), Yahoo,
# Thunderbird's "On ... wrote:" line; Outlook starts the quoted part at divRplyFwdMsg / appendonsend.
QUOTE_CLASSES = {"gmail_quote", "gmail_extra", "yahoo_quoted", "moz-cite-prefix", "gmail_signature"}
QUOTE_REST_IDS = {"divrplyfwdmsg", "appendonsend", "mail-editor-reference-message-container"}


class _Sanitizer(HTMLParser):
    def __init__(self, trim_quotes: bool = False) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.open: list[str] = []
        self.dropping = 0
        self.trim_quotes = trim_quotes
        self.quote_tag = ""
        self.quote_depth = 0
        self.stopped = False
        self.trimmed = False

    def _quote_start(self, tag: str, attrs) -> bool:
        values = {name: (value or "") for name, value in attrs}
        if values.get("id", "").lower() in QUOTE_REST_IDS:
            self.stopped = self.trimmed = True
            return True
        classes = set(values.get("class", "").split())
        if (tag == "blockquote" and values.get("type", "").lower() == "cite") or classes & QUOTE_CLASSES:
            self.quote_tag, self.quote_depth, self.trimmed = tag, 1, True
            return True
        return False

    def handle_starttag(self, tag: str, attrs) -> None:
        if self.stopped:
            return
        if self.quote_depth:
            if tag == self.quote_tag:
                self.quote_depth += 1
            return
        if self.trim_quotes and tag not in VOID_TAGS and self._quote_start(tag, attrs):
            return
        if tag in DROP_CONTENT:
            if tag not in VOID_TAGS:
                self.dropping += 1
            return
        if self.dropping or tag not in ALLOWED_TAGS:
            return
        kept: list[tuple[str, str]] = []
        allowed = ALLOWED_ATTRS.get(tag, set())
        for name, value in attrs:
            if name not in allowed or value is None:
                continue
            if name in URL_ATTRS:
                value = _safe_url(value, IMAGE_SCHEMES if tag == "img" else LINK_SCHEMES)
                if value is None:
                    continue
            kept.append((name, value))
        if tag == "a":
            kept += [("rel", "noopener noreferrer nofollow"), ("target", "_blank")]
        if tag == "img":
            src = dict(kept).get("src", "")
            if not src:
                return
            if not src.lower().startswith("cid:"):
                kept.append(("data-remote", "1"))
        rendered = "".join(f' {name}="{escape(value, quote=True)}"' for name, value in kept)
        self.out.append(f"<{tag}{rendered}>")
        if tag not in VOID_TAGS:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID_TAGS and self.open and self.open[-1] == tag:
            self.open.pop()
            self.out.append(f"</{tag}>")

    def handle_endtag(self, tag: str) -> None:
        if self.stopped:
            return
        if self.quote_depth:
            if tag == self.quote_tag:
                self.quote_depth -= 1
            return
        if tag in DROP_CONTENT:
            self.dropping = max(0, self.dropping - 1)
            return
        if self.dropping or tag not in self.open:
            return
        # Close everything opened after it (mis-nested markup), then it.
        while self.open:
            current = self.open.pop()
            self.out.append(f"</{current}>")
            if current == tag:
                break

    def handle_data(self, data: str) -> None:
        if not self.dropping and not self.quote_depth and not self.stopped:
            self.out.append(escape(data, quote=False))

    def result(self) -> str:
        self.close()
        return "".join(self.out) + "".join(f"</{tag}>" for tag in reversed(self.open))


def sanitize_html(html: str, *, trim_quotes: bool = False) -> str:
    """Markup safe to render inside the agent UI (see the module docstring for the rules).

    trim_quotes also drops the quoted history of a reply (Gmail, Apple Mail, Thunderbird, Yahoo and
    Outlook markers), for the conversation view; the full mail stays in content["html"].
    """
    parser = _Sanitizer(trim_quotes=trim_quotes)
    parser.feed(html or "")
    return parser.result()
