"""Messages sent to the LLM: the retrieved context in a system prompt, then the chat.

The prompt must fit the model's context window together with the answer
(QA_LLM_CONTEXT_TOKENS - max_tokens). qa-api has no tokenizer of the model, so
it counts with an upper-bound estimate and drops or cuts the lowest-ranked
passages until the prompt fits; only the passages sent are cited. A passage that
must be cut keeps the run of its sentences that shares most terms with the
question (focus), not blindly its beginning.
"""

import os
import re

from qa_api.kb.lexical import tokenize

SYSTEM_PROMPT = (
    "You are a helpful assistant that answers questions about the organisation's documents. "
    "Answer using only the context below. If the context does not contain the answer, say "
    "that you do not know. Be concise. Answer in the language of the question."
)
MAX_HISTORY = 8  # small models have small context windows
MESSAGE_OVERHEAD = 8  # chat-template tokens around each message
RESERVE = 32  # slack for the template's generation prompt and estimate error
MIN_PASSAGE = 48  # a cut passage shorter than this (tokens) is not worth sending
ASCII_CHARS_PER_TOKEN = 3  # English BPE averages ~4 letters a token; 3 stays on the safe side


class PromptTooLong(ValueError):
    """The question (and the chat it needs) alone does not fit the context window."""

    def __init__(self, needed, budget):
        super().__init__("the question needs about %d prompt tokens but only %d fit"
                         % (needed, max(budget, 0)))
        self.needed = needed
        self.budget = budget


def text_of(content):
    """OpenAI content is a string or a list of parts; keep the text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content
                         if isinstance(p, dict) and p.get("type") == "text")
    return ""


def last_user_text(messages):
    for message in reversed(messages):
        if message["role"] == "user" and message["content"].strip():
            return message["content"]
    return None


def _load_cjk_costs():
    """{char: tokens} for the CJK characters SmolLM2's tokenizer encodes in fewer tokens
    than their 3 UTF-8 bytes (measured: tests/bench/measure_cjk_costs.py); most common Chinese
    characters cost 2, a few 1, the rest their bytes."""
    costs = {}
    with open(os.path.join(os.path.dirname(__file__), "cjk_token_costs.txt"), encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            cost, chars = line.rstrip("\n").split("\t", 1)
            costs.update(dict.fromkeys(chars, int(cost)))
    return costs


CJK_COSTS = _load_cjk_costs()


# an ASCII letter run, or any one character
_SEGMENT = re.compile(r"[A-Za-z]+|.", re.DOTALL)


def _segments(text):
    """(start, end, tokens) of each segment of text, in order.

    Measured against SmolLM2's tokenizer on Chinese, English and mixed manuals (never
    below it on 671 samples, 1.02x the real count on Chinese, 1.46x on English):
    a run of ASCII letters 1 token per 3 letters (rounded up: short words in Chinese text
    are whole tokens); a space before a word is free (BPE merges it into the word), other
    whitespace, newlines, digits and punctuation 1 each; a CJK character its measured cost;
    other non-ASCII its UTF-8 bytes (a byte-level BPE never needs more).
    """
    for match in _SEGMENT.finditer(text):
        piece, end = match.group(0), match.end()
        if piece.isascii() and piece.isalpha():
            tokens = -(-len(piece) // ASCII_CHARS_PER_TOKEN)
        elif ord(piece) >= 128:
            tokens = CJK_COSTS.get(piece) or len(piece.encode("utf-8"))
        elif piece == " " and end < len(text) and text[end].isascii() and text[end].isalpha():
            tokens = 0
        else:
            tokens = 1
        yield match.start(), end, tokens


def estimate_tokens(text):
    """Upper-bound style estimate of the served model's token count (see _segments)."""
    return sum(tokens for _start, _end, tokens in _segments(text))


def cut_to_tokens(text, budget):
    """The longest prefix of text whose estimate fits budget, in one pass."""
    total = 0
    for start, end, tokens in _segments(text):
        if total + tokens > budget:
            if text[start].isascii() and text[start].isalpha():  # part of a long word
                start += (budget - total) * ASCII_CHARS_PER_TOKEN
            # a space counted free because a word followed costs 1 at the end
            return text[:start].rstrip(" ")
        total += tokens
    return text


# a line, or a sentence ending in Chinese or Latin punctuation (the mark stays with it)
_SENTENCE = re.compile(r"[^\n。！？；]*?(?:[\n。！？；]|[.!?;](?=\s)|$)", re.DOTALL)


def query_terms(query):
    """The question's lexical terms that mean something alone: words and CJK pairs (a single
    CJK character, or a one-letter option, matches almost any passage)."""
    terms = {t for t in tokenize(query or "") if len(t) > 1}
    return terms


def focus(text, terms, budget):
    """The contiguous run of text's sentences that fits budget (estimated tokens) and holds
    the most distinct terms (of equals the longest, then the earliest); with no term in
    common the beginning, as a plain cut. A sentence longer than the budget alone is cut."""
    pieces = [m.group(0) for m in _SENTENCE.finditer(text) if m.group(0)]
    if not terms or len(pieces) < 2:
        return cut_to_tokens(text, budget)
    found = [terms & set(tokenize(piece)) for piece in pieces]
    costs = [estimate_tokens(piece) for piece in pieces]  # the sum never undercounts the join
    best, best_key, start, used = None, (0, 0), 0, 0
    for end, cost in enumerate(costs):  # the longest window [start, end] that fits
        used += cost
        while used > budget and start <= end:
            used -= costs[start]
            start += 1
        if start > end:
            continue
        # most terms, then the most text (a window grown by a sentence without a term is no worse)
        key = (len(set().union(*found[start:end + 1])), used)
        if key[0] and key > best_key:
            best, best_key = (start, end), key
    if best is None:  # no run that fits holds a term: the best sentence, cut, or the beginning
        scores = [len(f) for f in found]
        top = max(range(len(pieces)), key=lambda i: (scores[i], -i))
        return cut_to_tokens(pieces[top] if scores[top] else text, budget).strip()
    return "".join(pieces[best[0]:best[1] + 1]).strip()


def _passage(index, hit, text):
    place = hit["source"] + (" > " + hit["heading"] if hit.get("heading") else "")
    return "[%d] (source: %s)\n%s" % (index, place, text)


def build_messages(messages, hits, prompt_budget=None, focused=True):
    """-> (LLM messages, the hits actually sent). prompt_budget None: no limit. focused: a passage
    cut to fit keeps its part nearest the last question (focus), else its beginning."""
    extra = [m["content"] for m in messages if m["role"] == "system"]
    chat = [m for m in messages if m["role"] in ("user", "assistant")][-MAX_HISTORY:]
    head = "\n\n".join([SYSTEM_PROMPT] + extra + ["Context:\n"])
    if prompt_budget is None:
        used = [dict(hit, sent=hit["text"]) for hit in hits]
        passages = [_passage(i + 1, h, h["text"]) for i, h in enumerate(used)]
    else:
        # each turn is estimated once; older turns go first, the last user message stays
        turns = [estimate_tokens(m["content"]) + MESSAGE_OVERHEAD for m in chat]
        fixed = estimate_tokens(head) + MESSAGE_OVERHEAD + RESERVE + sum(turns)
        dropped = 0
        while len(chat) - dropped > 1 and fixed > prompt_budget:
            fixed -= turns[dropped]
            dropped += 1
        chat = chat[dropped:]
        left = prompt_budget - fixed
        if left < 0:
            raise PromptTooLong(fixed, prompt_budget)
        used, passages = [], []
        terms = query_terms(last_user_text(chat))
        for hit in hits:
            frame = estimate_tokens(_passage(len(used) + 1, hit, "")) + 2  # + the blank line
            cost = frame + estimate_tokens(hit["text"])
            if cost <= left:
                body = hit["text"]
            elif left >= MIN_PASSAGE:
                body = (focus(hit["text"], terms, left - frame) if focused
                        else cut_to_tokens(hit["text"], left - frame))
                cost = left
            else:
                break
            # a copy with the text as sent: the response cites exactly that
            used.append(dict(hit, sent=body))
            passages.append(_passage(len(used), hit, body))
            left -= cost
    context = "\n\n".join(passages) or "(no relevant documents found)"
    return [{"role": "system", "content": head + context}] + chat, used
