"""PII redaction and the sensitive-word filter, without a model (qa_api.privacy, chat relay)."""

import asyncio
import io
import logging

import pytest

from qa_api.chat import Answering, ChatService
from qa_api.config import Settings
from qa_api.metrics import Metrics
from qa_api.privacy import (StreamMasker, StreamRedactor, WordMatcher, id_number_valid,
                            install_log_redaction, luhn_valid, redact)
from tests.sse import parse_sse, stream_text

# Resident ID numbers: the last character is the ISO 7064 MOD 11-2 check of the 17 before.
VALID_IDS = ["11010519491231002X", "440301199003071230", "320106200012314563"]
INVALID_IDS = ["110105194912310021", "440301199003071231", "320106200012314560"]
# Luhn-valid card numbers (Visa test number, UnionPay-format 19 and 16 digits)
VALID_CARDS = ["4111111111111111", "6222021234567890128", "6225880123456783"]
INVALID_CARDS = ["4111111111111112", "6222021234567890127", "6225880123456784"]


@pytest.mark.parametrize("number", VALID_IDS)
def test_valid_resident_ids_are_redacted(number):
    assert id_number_valid(number)
    assert redact("身份证号%s，请核实" % number) == "身份证号[ID]，请核实"
    assert redact("id %s." % number.lower()) == "id [ID]."


@pytest.mark.parametrize("number", INVALID_IDS)
def test_ids_with_a_wrong_check_digit_stay(number):
    assert not id_number_valid(number)
    assert not luhn_valid(number)  # nor a card: the text is left exactly as it was
    assert redact("单号 %s 已登记" % number) == "单号 %s 已登记" % number


@pytest.mark.parametrize("number", VALID_CARDS)
def test_luhn_valid_cards_are_redacted_also_in_groups(number):
    assert luhn_valid(number)
    assert redact("卡号%s。" % number) == "卡号[CARD]。"
    grouped = " ".join(number[i:i + 4] for i in range(0, len(number), 4))
    assert redact("card %s ok" % grouped) == "card [CARD] ok"
    assert redact("card %s ok" % grouped.replace(" ", "-")) == "card [CARD] ok"


@pytest.mark.parametrize("number", INVALID_CARDS)
def test_luhn_invalid_numbers_stay(number):
    assert redact("ref %s" % number) == "ref %s" % number


@pytest.mark.parametrize("text", [
    "13812345678", "+8613812345678", "+86 138 1234 5678", "86-139-1234-5678",
    "0086 15012345678", "199-8765-4321", "+86-17712345678"])
def test_mainland_mobile_numbers_are_redacted(text):
    assert redact("请致电%s联系" % text) == "请致电[PHONE]联系"
    assert redact("call %s now" % text) == "call [PHONE] now"


@pytest.mark.parametrize("text", ["12812345678", "1381234567", "138123456789", "010-12345678",
                                  "2026-12-02 07:30"])
def test_other_numbers_are_not_phones(text):
    assert redact("x %s y" % text) == "x %s y" % text


def test_emails_and_mixed_chinese_text():
    text = ("患者张三，电话+86 138-1234-5678，邮箱zhang.san+ward3@hospital.example.com.cn，"
            "身份证11010519491231002X，工资卡6222 0212 3456 7890 128。Write to Ops@Bank.COM!")
    assert redact(text) == ("患者张三，电话[PHONE]，邮箱[EMAIL]，身份证[ID]，工资卡[CARD]。"
                            "Write to [EMAIL]!")
    assert redact("/v1/chat?mail=zhang.san%40bank.example.cn&x=1") == "/v1/chat?mail=[EMAIL]&x=1"
    assert redact("not an address: user@localhost, @home, a@b") == \
        "not an address: user@localhost, @home, a@b"


def test_log_lines_and_tracebacks_are_redacted():
    logger = logging.getLogger("privacy-test-logger")
    logger.propagate = False
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    try:
        install_log_redaction(logger)
        logger.warning("user %s wrote %s", "zhang@bank.cn", "13812345678")
        try:
            raise ValueError("bad card 4111111111111111")
        except ValueError:
            logger.exception("failed for id %s", "11010519491231002X")
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    for secret in ("zhang@bank.cn", "13812345678", "4111111111111111", "11010519491231002X"):
        assert secret not in out
    assert "user [EMAIL] wrote [PHONE]" in out
    assert "ValueError: bad card [CARD]" in out and "failed for id [ID]" in out


# ------------------------------------------------------------------ sensitive words

WORDS = ["内幕交易", "Insider Trading", "the", "洗钱"]


def test_matcher_folds_case_and_full_width_and_respects_word_boundaries():
    matcher = WordMatcher(WORDS)
    assert matcher.mask("The THE ｔｈｅ the.") == "*** *** *** ***."
    assert matcher.mask("there other bathe") == "there other bathe"  # ASCII: whole words
    assert matcher.mask("涉嫌内幕交易和洗钱。") == "涉嫌***和***。"  # Chinese: anywhere
    assert matcher.mask("an INSIDER   trading case") == "an INSIDER   trading case"
    assert matcher.mask("an INSIDER TRADING case") == "an *** case"
    assert matcher.contains("请问洗钱的处罚") and not matcher.contains("请问处罚")


def test_overlapping_words_are_masked_together():
    matcher = WordMatcher(["abc", "bcd", "交易所", "所得税"])
    assert matcher.mask("x abcd y") == "x abcd y"  # ASCII words: neither is a whole word
    assert matcher.mask("交易所得税") == "***"


def chunked(masker, pieces):
    return "".join(masker.feed(p) for p in pieces) + masker.flush()


@pytest.mark.parametrize("pieces", [
    ["内幕交易"], ["内", "幕", "交", "易"], ["涉嫌内幕", "交易和洗", "钱。"],
    ["ab", "c 内幕交", "易 t", "he ", "end"], ["the"], ["t", "h", "e"], ["th", "ere th", "e"]])
def test_stream_masker_cuts_words_split_across_chunks(pieces):
    matcher = WordMatcher(WORDS)
    text = "".join(pieces)
    assert chunked(StreamMasker(matcher), pieces) == matcher.mask(text)
    out = chunked(StreamMasker(matcher), pieces)
    assert "内幕交易" not in out and "洗钱" not in out


def test_stream_masker_boundary_decided_by_the_next_chunk():
    matcher = WordMatcher(["the"])
    assert chunked(StreamMasker(matcher), ["so the", "re it is"]) == "so there it is"
    assert chunked(StreamMasker(matcher), ["so the", " end"]) == "so *** end"
    assert chunked(StreamMasker(matcher), ["bathe", " the"]) == "bathe ***"


def test_stream_redactor_holds_pii_split_across_chunks():
    redactor = StreamRedactor()
    pieces = ["电话", "138", "1234", "5678，卡", "4111 1111", " 1111 1111", "。mail a", "@b.cn"]
    out = "".join(redactor.feed(p) for p in pieces) + redactor.flush()
    assert out == "电话[PHONE]，卡[CARD]。mail [EMAIL]"
    english = StreamRedactor()
    held = english.feed("Call the desk on +86 138 1234")
    assert held == "Call the desk on "  # words go on at once, the number waits
    assert english.feed(" 5678 today") + english.flush() == "[PHONE] today"


def test_settings_read_the_word_file_and_switches(tmp_path):
    path = tmp_path / "words.txt"
    path.write_text("# bank list\n内幕交易\n\nInsider Trading, Inc.\n洗钱\n", encoding="utf-8")
    settings = Settings.from_env({"QA_SENSITIVE_WORDS_FILE": str(path),
                                  "QA_SENSITIVE_WORDS": "extra, more"})
    assert settings.sensitive_words == ("内幕交易", "Insider Trading, Inc.", "洗钱", "extra", "more")
    assert Settings.from_env({"QA_SENSITIVE_WORDS": '["a,b", "c"]'}).sensitive_words == ("a,b", "c")
    assert settings.pii_redact is True and settings.pii_redact_answers is False
    off = Settings.from_env({"QA_PII_REDACT": "off", "QA_PII_REDACT_ANSWERS": "on"})
    assert off.pii_redact is False and off.pii_redact_answers is True
    with pytest.raises(ValueError, match="QA_PII_REDACT"):
        Settings.from_env({"QA_PII_REDACT": "maybe"})
    with pytest.raises(OSError):
        Settings.from_env({"QA_SENSITIVE_WORDS_FILE": str(tmp_path / "missing.txt")})


# ------------------------------------------------------------- the chat relay itself

class FakeInference:
    def __init__(self, pieces):
        self.pieces = pieces

    async def iter_deltas(self, upstream):
        for index, piece in enumerate(self.pieces):
            yield piece, ("length" if index == len(self.pieces) - 1 else None)


class FakeUpstream:
    async def aclose(self):
        pass


class FakeCache:
    def __init__(self):
        self.stored = {}
        self.ttls = {}

    async def put(self, key, value, ttl):
        self.stored[key] = value
        self.ttls[key] = ttl


def relay(pieces, **settings):
    settings = Settings(sensitive_words=("内幕交易", "the"), **settings)
    cache = FakeCache()
    service = ChatService(settings, None, cache, None, Metrics(), None)
    answering = Answering("smollm2-135m-instruct", FakeInference(pieces), "k", 3600)
    hits = [{"source": "policy.md", "chunk": 0, "score": 1.0,
             "text": "热线13812345678；禁止内幕交易。"}]

    async def collect():
        return "".join([event async for event in service._relay(FakeUpstream(), hits, answering)])

    events = parse_sse(asyncio.run(collect()))
    assert cache.ttls["k"] == 3600
    return events, cache.stored["k"]


def test_relay_masks_split_words_keeps_finish_reason_and_caches_filtered_redacted():
    pieces = ["根据制度，内", "幕交", "易被禁止。Call t", "he desk at 1381234", "5678 now"]
    events, stored = relay(pieces)
    text = stream_text(events)
    assert "内幕交易" not in text and " the " not in text
    assert text.startswith("根据制度，***被禁止。Call *** desk at 13812345678 now\n\nSources: policy.md")
    assert events[-1] == "[DONE]"
    final = events[-2]
    assert final["choices"][0]["finish_reason"] == "length"
    assert final["sources"][0]["text"] == "热线13812345678；禁止***。"  # live: PII kept (default)
    # Redis gets what the user got, with PII redacted (the default QA_PII_REDACT=on)
    assert stored["content"] == text.replace("13812345678", "[PHONE]")
    assert stored["sources"][0]["text"] == "热线[PHONE]；禁止***。"
    assert stored["finish_reason"] == "length"


def test_relay_with_live_redaction_and_without_cache_redaction():
    events, stored = relay(["Call 138", "1234 5678 or mail a@b.cn"], pii_redact_answers=True,
                           pii_redact=False)
    text = stream_text(events)
    assert text.startswith("Call [PHONE] or mail [EMAIL]")
    assert events[-2]["sources"][0]["text"] == "热线[PHONE]；禁止***。"
    assert stored["content"] == text
    dummy, stored = relay(["Call 13812345678"], pii_redact=False)
    assert "13812345678" in stored["content"]  # off means off
