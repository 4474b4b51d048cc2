"""Privacy for regulated deployments: PII redaction and the sensitive-word filter.

PII (mainland China mobile numbers, resident ID numbers with a valid ISO 7064 MOD 11-2
check digit, bank card numbers passing Luhn, e-mail addresses) becomes `[PHONE]`, `[ID]`,
`[CARD]`, `[EMAIL]` before anything reaches the log or the cache (QA_PII_REDACT), and in
live answers too when QA_PII_REDACT_ANSWERS is on.

Sensitive words (QA_SENSITIVE_WORDS_FILE, UTF-8, one per line, `#` comments; and/or
QA_SENSITIVE_WORDS, comma or newline separated, or a JSON list) are found by an
Aho-Corasick automaton: linear in the text whatever the size of the list. Matching folds
ASCII and full-width Latin letters and digits to lower-case ASCII (length-preserving, so
positions map back); a word made of ASCII letters/digits at an end only matches at a word
boundary there ("the" is not found in "there"); Chinese words
match anywhere. A question containing one is refused; in answers, every occurrence is
replaced by `***`, also when it is split across streamed chunks.
"""

import collections
import json
import logging
import re

MASK = "***"

# ---------------------------------------------------------------------------- PII

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"

_ID = re.compile(r"(?<![0-9A-Za-z])[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])"
                 r"(?:0[1-9]|[12]\d|3[01])\d{3}[0-9Xx](?![0-9A-Za-z])", re.ASCII)
# 1[3-9]x xxxx xxxx, optionally +86 / 0086 / 86 first, spaces or hyphens between groups
_PHONE = re.compile(r"(?<![\d+])(?:(?:\+|00)?86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}(?!\d)",
                    re.ASCII)
# 13-19 digits, single spaces or hyphens allowed between them (cards are written in groups)
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d])", re.ASCII)
# "@" may come percent-encoded (a query string in the access log)
_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}(?:@|%40)[A-Za-z0-9-]+"
                    r"(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}(?![A-Za-z0-9])", re.ASCII)


def id_number_valid(text):
    """An 18-character resident ID number whose last character is its MOD 11-2 check."""
    if len(text) != 18 or not text[:17].isdigit():
        return False
    total = sum(int(c) * w for c, w in zip(text[:17], ID_WEIGHTS))
    return ID_CHECK[total % 11] == text[17].upper()


def luhn_valid(digits):
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _id(match):
    return "[ID]" if id_number_valid(match.group()) else match.group()


def _card(match):
    digits = re.sub(r"[ -]", "", match.group())
    return "[CARD]" if 13 <= len(digits) <= 19 and luhn_valid(digits) else match.group()


def redact(text):
    """text with PII replaced by typed placeholders (IDs first: they are digit runs too)."""
    if not text:
        return text
    text = _ID.sub(_id, text)
    text = _PHONE.sub("[PHONE]", text)
    text = _CARD.sub(_card, text)
    return _EMAIL.sub("[EMAIL]", text)


def redact_value(value):
    """redact() every string in a JSON-like value (what is stored in the cache)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_value(v) for v in value]
    return value


class RedactingFilter(logging.Filter):
    """On a handler: every record it writes (message, arguments, traceback) is redacted."""

    def filter(self, record):
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to the handler to report
            return True
        record.msg, record.args = redact(message), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
            record.exc_info = None
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def install_log_redaction(logger=None):
    """Put a RedactingFilter on every handler of logger (root) and of uvicorn's loggers."""
    loggers = [logger or logging.getLogger()] + [logging.getLogger(n) for n in
                                                 ("uvicorn", "uvicorn.access", "uvicorn.error")]
    for each in loggers:
        for handler in each.handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(RedactingFilter())


# A character no PII match contains, or a space that is no separator inside a number
# (numbers are grouped by spaces between digits, "+86 138...").
_PII_SAFE_CUT = re.compile(r"[^0-9A-Za-z._%+@ \-]|(?<!\d) | (?![\d+])")


class StreamRedactor:
    """redact() over a stream: holds back the trailing run that could still be PII."""

    def __init__(self, limit=256):
        self.buf = ""
        self.limit = limit

    def feed(self, piece):
        self.buf += piece
        cut = 0
        # after the last character that no PII pattern contains
        for match in _PII_SAFE_CUT.finditer(self.buf):
            cut = match.end()
        if cut == 0 and len(self.buf) > self.limit:
            cut = len(self.buf) - 64
        out, self.buf = self.buf[:cut], self.buf[cut:]
        return redact(out)

    def flush(self):
        out, self.buf = self.buf, ""
        return redact(out)


# ---------------------------------------------------------------------------- words

def _fold_table():
    table = {ord(c): ord(c.lower()) for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"}
    for code in range(0xFF01, 0xFF5F):  # full-width ASCII -> ASCII
        table[code] = ord(chr(code - 0xFEE0).lower())
    table[0x3000] = ord(" ")
    return table


FOLD = _fold_table()


def fold(text):
    """Lower-case ASCII, full-width Latin to ASCII; one character for one (positions hold)."""
    return text.translate(FOLD)


def _wordchar(char):
    return char.isascii() and char.isalnum()


def parse_words(text, commas=False):
    """A word list: one per line (and comma separated when commas); blank lines and lines
    starting with `#` are skipped."""
    words = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        words.extend(w.strip() for w in (line.split(",") if commas else [line]) if w.strip())
    return words


class WordMatcher:
    """Aho-Corasick automaton over folded words; spans() lists (start, end) of matches."""

    def __init__(self, words):
        words = sorted({fold(w) for w in words if w and w.strip()})
        self.words = words
        self.max_len = max((len(w) for w in words), default=0)
        goto, fail, out = [{}], [0], [()]
        for word in words:
            state = 0
            for char in word:
                nxt = goto[state].get(char)
                if nxt is None:
                    nxt = len(goto)
                    goto[state][char] = nxt
                    goto.append({})
                    fail.append(0)
                    out.append(())
                state = nxt
            out[state] = (word,)
        queue = collections.deque(goto[0].values())
        while queue:  # breadth first: a state's fail target is done before it
            state = queue.popleft()
            for char, nxt in goto[state].items():
                queue.append(nxt)
                back = fail[state]
                while back and char not in goto[back]:
                    back = fail[back]
                target = goto[back].get(char, 0)
                fail[nxt] = target if target != nxt else 0
                out[nxt] = out[nxt] + out[fail[nxt]]
        # word -> (its length, needs a boundary before, needs one after)
        self._edges = {w: (len(w), _wordchar(w[0]), _wordchar(w[-1])) for w in words}
        self.goto, self.fail, self.out = goto, fail, out

    def __bool__(self):
        return bool(self.words)

    def spans(self, text, before="", final=True):
        """Matches in text as (start, end); before: the character preceding text; final:
        text ends here (else a match touching the end is not yet known to end a word)."""
        if not self.words:
            return []
        folded = fold(text)
        goto, fail, out, edges = self.goto, self.fail, self.out, self._edges
        found, state, size = [], 0, len(folded)
        for index, char in enumerate(folded):
            while state and char not in goto[state]:
                state = fail[state]
            state = goto[state].get(char, 0)
            if out[state]:
                end = index + 1
                for word in out[state]:
                    length, left, right = edges[word]
                    start = end - length
                    if left and _wordchar(folded[start - 1] if start else fold(before)[-1:] or " "):
                        continue
                    if right:
                        if end < size:
                            if _wordchar(folded[end]):
                                continue
                        elif not final:
                            continue  # the next character decides, later
                    found.append((start, end))
        return found

    def contains(self, text):
        return bool(self.spans(text))

    def mask(self, text, before="", final=True):
        spans = self.spans(text, before, final)
        if not spans:
            return text
        return _masked(text, spans)


def _merged(spans):
    merged = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return merged


def _masked(text, spans):
    parts, at = [], 0
    for start, end in _merged(spans):
        parts.append(text[at:start])
        parts.append(MASK)
        at = end
    parts.append(text[at:])
    return "".join(parts)


class StreamMasker:
    """WordMatcher.mask over a stream of pieces: words split across pieces are still
    masked. Holds back the last max_len characters (a word may start there, and the one
    after a word decides a word boundary)."""

    def __init__(self, matcher):
        self.matcher = matcher
        self.buf = ""
        self.before = ""

    def feed(self, piece):
        if not self.matcher:
            return piece
        self.buf += piece
        cut = len(self.buf) - self.matcher.max_len
        if cut <= 0:
            return ""
        spans = self.matcher.spans(self.buf, self.before, final=False)
        for start, end in sorted(spans, reverse=True):  # never cut through a match
            if start < cut < end:
                cut = start
        return self._emit(cut, [s for s in spans if s[1] <= cut])

    def flush(self):
        if not self.matcher:
            return ""
        return self._emit(len(self.buf), self.matcher.spans(self.buf, self.before))

    def _emit(self, cut, spans):
        head, self.buf = self.buf[:cut], self.buf[cut:]
        if head:
            self.before = head[-1]
        return _masked(head, spans) if spans else head


# ---------------------------------------------------------------------------- service

class Privacy:
    """What chat.py asks: is a request refused, how an answer is filtered for the user and
    for the cache."""

    def __init__(self, settings):
        self.redact_pii = settings.pii_redact
        self.redact_answers = settings.pii_redact_answers
        self.words = WordMatcher(settings.sensitive_words)

    def refused(self, messages):
        """Index of the first message holding a sensitive word, or None."""
        if self.words:
            for index, message in enumerate(messages):
                if self.words.contains(message["content"] or ""):
                    return index
        return None

    def answer(self, text):
        """A whole answer as the user gets it."""
        text = self.words.mask(text) if self.words else text
        return redact(text) if self.redact_answers else text

    def sources(self, refs):
        """The passages cited with an answer, as the user gets them."""
        return [dict(ref, text=self.answer(ref["text"])) if isinstance(ref.get("text"), str)
                else ref for ref in refs]

    def stream(self):
        return AnswerStream(self)

    def for_cache(self, value):
        return redact_value(value) if self.redact_pii else value


class AnswerStream:
    """Sensitive words, then (QA_PII_REDACT_ANSWERS) PII, over streamed pieces."""

    def __init__(self, privacy):
        self.words = StreamMasker(privacy.words)
        self.pii = StreamRedactor() if privacy.redact_answers else None

    def feed(self, piece):
        out = self.words.feed(piece)
        return self.pii.feed(out) if self.pii else out

    def flush(self):
        out = self.words.flush()
        return (self.pii.feed(out) + self.pii.flush()) if self.pii else out


def words_from_env(env):
    """QA_SENSITIVE_WORDS_FILE (UTF-8, one per line) and QA_SENSITIVE_WORDS, together."""
    words = []
    path = env.get("QA_SENSITIVE_WORDS_FILE")
    if path:
        with open(path, encoding="utf-8-sig") as handle:
            words.extend(parse_words(handle.read()))
    inline = env.get("QA_SENSITIVE_WORDS", "")
    if inline.strip():
        if inline.lstrip().startswith("["):
            words.extend(str(w).strip() for w in json.loads(inline) if str(w).strip())
        else:
            words.extend(parse_words(inline, commas=True))
    return tuple(words)
