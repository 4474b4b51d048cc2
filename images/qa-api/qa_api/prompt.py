"""Messages sent to the LLM: the retrieved context in a system prompt, then the chat."""

SYSTEM_PROMPT = (
    "You are a helpful assistant that answers questions about the organisation's documents. "
    "Answer using only the context below. If the context does not contain the answer, say "
    "that you do not know. Be concise. Answer in the language of the question."
)
MAX_HISTORY = 8  # small models have small context windows


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


def build_messages(messages, hits):
    context = "\n\n".join("[%d] (source: %s)\n%s" % (i + 1, h["source"], h["text"])
                          for i, h in enumerate(hits)) or "(no relevant documents found)"
    extra = [m["content"] for m in messages if m["role"] == "system"]
    system = "\n\n".join([SYSTEM_PROMPT] + extra + ["Context:\n" + context])
    chat = [m for m in messages if m["role"] in ("user", "assistant")][-MAX_HISTORY:]
    return [{"role": "system", "content": system}] + chat
