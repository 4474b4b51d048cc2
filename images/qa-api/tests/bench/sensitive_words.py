"""Sensitive-word matching cost: Aho-Corasick (qa_api.privacy.WordMatcher) against one
compiled regex alternation (longest first), 5,000 words, a 4,000-character text.

    python -m tests.bench.sensitive_words      (in the image)
"""

import random
import re
import time

from qa_api.privacy import StreamMasker, WordMatcher, fold, redact

CJK = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)]
LATIN = "abcdefghijklmnopqrstuvwxyz"


def word_list(rng, count=5000):
    words = set()
    while len(words) < count:
        if rng.random() < 0.6:
            words.add("".join(rng.choice(CJK) for dummy in range(rng.randint(2, 6))))
        else:
            words.add("".join(rng.choice(LATIN) for dummy in range(rng.randint(4, 12))))
    return sorted(words)


def text_with(rng, words, size=4000, planted=10):
    parts, length = [], 0
    while length < size:
        piece = ("".join(rng.choice(CJK) for dummy in range(rng.randint(5, 30))) if rng.random() < 0.6
                 else " ".join("".join(rng.choice(LATIN) for dummy in range(rng.randint(2, 9)))
                               for dummy in range(rng.randint(2, 6))))
        parts.append(piece + "，")
        length += len(piece) + 1
    for dummy in range(planted):
        parts.insert(rng.randrange(len(parts)), " %s " % rng.choice(words))
    return "".join(parts)[:size]


def best(func, repeat=20):
    times = []
    for dummy in range(repeat):
        started = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - started)
    return min(times) * 1000, sorted(times)[len(times) // 2] * 1000, result


def main():
    rng = random.Random(7)
    words = word_list(rng)
    text = text_with(rng, words)

    started = time.perf_counter()
    matcher = WordMatcher(words)
    build_ac = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    alternation = re.compile("|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)))
    build_re = (time.perf_counter() - started) * 1000

    ac_min, ac_med, spans = best(lambda: matcher.spans(text))
    re_min, re_med, found = best(lambda: alternation.findall(fold(text)), repeat=5)
    pieces = [text[i:i + 3] for i in range(0, len(text), 3)]  # ~token-sized stream pieces

    def streamed():
        masker = StreamMasker(matcher)
        return "".join(masker.feed(p) for p in pieces) + masker.flush()

    st_min, st_med, masked = best(streamed, repeat=5)
    pii_min, pii_med, dummy = best(lambda: redact(text))
    assert masked == matcher.mask(text)
    print("words: %d (longest %d chars), text: %d chars, matches: %d (regex: %d)"
          % (len(words), matcher.max_len, len(text), len(spans), len(found)))
    print("aho-corasick  build %7.1f ms   scan min %6.2f ms  median %6.2f ms"
          % (build_ac, ac_min, ac_med))
    print("regex (alt.)  build %7.1f ms   scan min %6.2f ms  median %6.2f ms"
          % (build_re, re_min, re_med))
    print("stream of %d 3-char pieces through StreamMasker: min %.2f ms  median %.2f ms"
          % (len(pieces), st_min, st_med))
    print("PII redaction of the same text: min %.2f ms  median %.2f ms" % (pii_min, pii_med))


if __name__ == "__main__":
    main()
