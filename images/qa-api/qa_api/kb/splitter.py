"""Recursive character splitter, aware of Chinese punctuation.

Tries the separators in order: a piece still longer than chunk_size is split
again with the next separator; small pieces are merged back up to chunk_size
with chunk_overlap characters carried over into the next chunk. A separator
stays at the end of the piece it closes, so a Chinese sentence keeps its "。".
Lengths are in characters (len), so CJK text is not undercounted as bytes.
"""

import re

DEFAULT_SEPARATORS = ["\n\n", "\n", "。", "！", "？", "；", ". ", "! ", "? ", "; ", "，", ", ", " ", ""]
DEFAULT_CHUNK_SIZE = 600
DEFAULT_CHUNK_OVERLAP = 80


class RecursiveCharacterSplitter:
    name = "recursive_character"

    def __init__(self, chunk_size=DEFAULT_CHUNK_SIZE, chunk_overlap=DEFAULT_CHUNK_OVERLAP,
                 separators=None):
        if chunk_size < 1:
            raise ValueError("chunk size must be >= 1, got %d" % chunk_size)
        if chunk_overlap < 0 or chunk_overlap >= chunk_size:
            raise ValueError("chunk overlap must be >= 0 and < chunk size (%d), got %d"
                             % (chunk_size, chunk_overlap))
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap
        self.separators = list(DEFAULT_SEPARATORS if separators is None else separators)

    def describe(self):
        """The manifest's "splitter" object."""
        return {
            "name": self.name,
            "chunk_size": self.chunk_size,
            "chunk_overlap": self.chunk_overlap,
            "separators": list(self.separators),
        }

    def split_text(self, text):
        chunks = (c.strip() for c in self._split(text, self.separators))
        return [c for c in chunks if c]

    @staticmethod
    def _split_keep(text, separator):
        if separator == "":
            return list(text)
        pieces = text.split(separator)
        out = [p + separator for p in pieces[:-1]]
        out.append(pieces[-1])
        return [p for p in out if p]

    def _split(self, text, separators):
        separator, rest = "", []
        for i, candidate in enumerate(separators):
            if candidate == "" or candidate in text:
                separator, rest = candidate, separators[i + 1:]
                break
        final, small = [], []
        for piece in self._split_keep(text, separator):
            if len(piece) <= self.chunk_size:
                small.append(piece)
                continue
            if small:
                final.extend(self._merge(small))
                small = []
            if rest:
                final.extend(self._split(piece, rest))
            else:
                # no separator left: hard cut (only reached with a custom list without "")
                final.extend(piece[i:i + self.chunk_size]
                             for i in range(0, len(piece), self.chunk_size - self.chunk_overlap))
        if small:
            final.extend(self._merge(small))
        return final

    def _merge(self, pieces):
        chunks, current, total = [], [], 0
        for piece in pieces:
            size = len(piece)
            if current and total + size > self.chunk_size:
                chunks.append("".join(current))
                # keep at most chunk_overlap characters of tail as the next chunk's head
                while current and (total > self.chunk_overlap or total + size > self.chunk_size):
                    total -= len(current.pop(0))
            current.append(piece)
            total += size
        if current:
            chunks.append("".join(current))
        return chunks


_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
_LEADING_HEADINGS = re.compile(r"(?:#{1,6}[ \t]+[^\n]*(?:\n+|$))*")


def heading_marks(text):
    """[(offset, "Parent > Child")] of the Markdown-style headings in text (HTML headings
    come out of the loader in this form too)."""
    marks, path = [], []
    for match in _HEADING.finditer(text):
        level = len(match.group(1))
        path = path[:level - 1] + [""] * max(0, level - 1 - len(path)) + [match.group(2).strip()]
        marks.append((match.start(), " > ".join(p for p in path if p)))
    return marks


def chunk_headings(text, chunks):
    """The heading each chunk starts under (None before the first heading), in one pass:
    chunks come in document order, so each is searched from where the previous began."""
    marks = heading_marks(text)
    found, cursor, mark, current = [], 0, 0, None
    for chunk in chunks:
        start = text.find(chunk, cursor)
        if start < 0:  # not a verbatim substring (never with this splitter): keep the last
            found.append(current)
            continue
        cursor = start
        # a chunk that opens with headings is under the last of them
        start += len(_LEADING_HEADINGS.match(chunk).group(0).rstrip())
        while mark < len(marks) and marks[mark][0] <= start:
            current = marks[mark][1]
            mark += 1
        found.append(current)
    return found
