"""Messages sent to the LLM: the retrieved context in a system prompt, then the chat.

The prompt must fit the model's context window together with the answer
(QA_LLM_CONTEXT_TOKENS - max_tokens). qa-api has no tokenizer of the model, so
it counts with an upper-bound estimate and drops or cuts the lowest-ranked
passages until the prompt fits; only the passages sent are cited.
"""

import math

SYSTEM_PROMPT = (
    "You are a helpful assistant that answers questions about the organisation's documents. "
    "Answer using only the context below. If the context does not contain the answer, say "
    "that you do not know. Be concise. Answer in the language of the question."
)
MAX_HISTORY = 8  # small models have small context windows
MESSAGE_OVERHEAD = 8  # chat-template tokens around each message
RESERVE = 32  # slack for the template's generation prompt and estimate error
MIN_PASSAGE = 48  # a cut passage shorter than this (tokens) is not worth sending
ASCII_CHARS_PER_TOKEN = 3  # English BPE averages ~4; 3 keeps the estimate on the safe side


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


def estimate_tokens(text):
    """Upper-bound style estimate. A byte-level BPE never needs more tokens than UTF-8
    bytes, so non-ASCII counts its bytes; digits and punctuation are often one token
    each (SmolLM2 splits numbers digit by digit); letters and spaces 1 per 3."""
    words = other = 0
    for ch in text:
        if ord(ch) >= 128:
            other += len(ch.encode("utf-8"))
        elif ch.isalpha() or ch.isspace():
            words += 1
        else:
            other += 1
    return math.ceil(words / ASCII_CHARS_PER_TOKEN) + other


def cut_to_tokens(text, budget):
    """The longest prefix of text whose estimate fits budget (binary search)."""
    low, high = 0, len(text)
    while low < high:
        mid = (low + high + 1) // 2
        if estimate_tokens(text[:mid]) <= budget:
            low = mid
        else:
            high = mid - 1
    return text[:low]


def _passage(index, hit, text):
    return "[%d] (source: %s)\n%s" % (index, hit["source"], text)


def build_messages(messages, hits, prompt_budget=None):
    """-> (LLM messages, the hits actually sent). prompt_budget None: no limit."""
    extra = [m["content"] for m in messages if m["role"] == "system"]
    chat = [m for m in messages if m["role"] in ("user", "assistant")][-MAX_HISTORY:]
    head = "\n\n".join([SYSTEM_PROMPT] + extra + ["Context:\n"])
    if prompt_budget is None:
        used = list(hits)
        passages = [_passage(i + 1, h, h["text"]) for i, h in enumerate(used)]
    else:
        def fixed_cost(chat_part):
            return (estimate_tokens(head) + (len(chat_part) + 1) * MESSAGE_OVERHEAD + RESERVE
                    + sum(estimate_tokens(m["content"]) for m in chat_part))

        # Older turns go first; the last user message must stay.
        while len(chat) > 1 and fixed_cost(chat) > prompt_budget:
            chat = chat[1:]
        left = prompt_budget - fixed_cost(chat)
        if left < 0:
            raise PromptTooLong(fixed_cost(chat), prompt_budget)
        used, passages = [], []
        for hit in hits:
            full = _passage(len(used) + 1, hit, hit["text"])
            cost = estimate_tokens(full) + 2  # the blank line between passages
            if cost <= left:
                text = full
            elif left >= MIN_PASSAGE:
                text = _passage(len(used) + 1, hit,
                                cut_to_tokens(hit["text"], left - estimate_tokens(
                                    _passage(len(used) + 1, hit, "")) - 2))
                cost = left
            else:
                break
            used.append(hit)
            passages.append(text)
            left -= cost
    context = "\n\n".join(passages) or "(no relevant documents found)"
    return [{"role": "system", "content": head + context}] + chat, used
