"""The corpus of `make bench-kb`: the evaluation corpus's documents (tests/eval/corpus, zh/ and
en/ man pages), optionally made larger, and the one-file edit of an incremental build.

A larger corpus (scale N) holds N copies. Copies 2..N are marked so that none of their chunks
equals a chunk of another copy: the builder embeds a chunk text once however often it occurs,
the seed's pipeline embeds every occurrence, so duplicated text would flatter the builder.
Every line ends with the copy's mark, and a long line also carries it every MARK_EVERY
characters: a chunk (at most chunk_size characters) always holds a mark.
"""

import os
import shutil

LANGUAGES = ("en", "zh")
EXTENSIONS = (".md",)
MARK_EVERY = 200  # characters between two marks in a long line; < any sensible chunk size
EDIT_HEADING = "## Bench edit"


class CorpusError(Exception):
    pass


def corpus_files(src, languages=LANGUAGES):
    """Relative paths (lang/name.md) of the corpus's documents, sorted."""
    found = []
    for lang in languages:
        folder = os.path.join(src, lang)
        if not os.path.isdir(folder):
            raise CorpusError("corpus %s has no %s/ folder: point --corpus at tests/eval/corpus"
                              % (src, lang))
        found.extend("%s/%s" % (lang, name) for name in sorted(os.listdir(folder))
                     if name.endswith(EXTENSIONS) and os.path.isfile(os.path.join(folder, name)))
    if not found:
        raise CorpusError("corpus %s holds no %s document under %s"
                          % (src, "/".join(EXTENSIONS), ", ".join(languages)))
    return found


def mark_line(line, mark, every=MARK_EVERY):
    """The line with `mark` after every `every` characters (cut after a space when there is
    one in the stretch, so words stay whole) and at its end; an empty line stays empty."""
    if not line.strip():
        return line
    out, rest = [], line
    while len(rest) > every:
        cut = rest.rfind(" ", 0, every) + 1 or every
        out.append(rest[:cut] + mark)
        rest = rest[cut:]
    out.append(rest + mark)
    return "".join(out)


def mark_copy(text, copy):
    """Copy number `copy` (1 = the original text) of a document."""
    if copy < 1:
        raise ValueError("copies are numbered from 1, got %d" % copy)
    if copy == 1:
        return text
    mark = " [%d]" % copy
    return "\n".join(mark_line(line, mark) for line in text.split("\n"))


def build_corpus(src, dest, scale=1):
    """Write the bench corpus under dest (copy 1 as lang/name.md, copy N as copyN/lang/name.md);
    -> {"files", "bytes", "scale"}."""
    if scale < 1:
        raise CorpusError("--scale must be >= 1 (copies of the corpus), got %d" % scale)
    files = corpus_files(src)
    written = 0
    for copy in range(1, scale + 1):
        for rel in files:
            target = os.path.join(dest, rel if copy == 1 else "copy%d/%s" % (copy, rel))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if copy == 1:
                shutil.copyfile(os.path.join(src, rel), target)
            else:
                with open(os.path.join(src, rel), encoding="utf-8") as handle:
                    text = mark_copy(handle.read(), copy)
                with open(target, "w", encoding="utf-8") as handle:
                    handle.write(text)
            written += os.path.getsize(target)
    return {"files": len(files) * scale, "bytes": written, "scale": scale}


def edit_text(text, round_index):
    """The text with one paragraph appended, different in every round (so the builder's
    cache never holds its chunk)."""
    return "%s\n\n%s %d\nThis paragraph was appended by make bench-kb in round %d to measure an " \
           "incremental build: one edited file, every other document unchanged.\n" \
           % (text.rstrip("\n"), EDIT_HEADING, round_index, round_index)


class EditedDocument:
    """Context manager: the first document of the corpus edited for one round, restored
    byte for byte on exit."""

    def __init__(self, root, round_index):
        self.path = os.path.join(root, corpus_files(root)[0])
        self.round_index = round_index
        self.original = None

    def __enter__(self):
        with open(self.path, "rb") as handle:
            self.original = handle.read()
        with open(self.path, "w", encoding="utf-8") as handle:
            handle.write(edit_text(self.original.decode("utf-8"), self.round_index))
        return self.path

    def __exit__(self, *exc):
        with open(self.path, "wb") as handle:
            handle.write(self.original)
        return False
