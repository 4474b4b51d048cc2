"""The prompt fits the model's context: passages are dropped or cut, only those sent are cited."""

import pytest

from qa_api.config import Settings
from qa_api.prompt import (MESSAGE_OVERHEAD, MIN_PASSAGE, RESERVE, PromptTooLong, build_messages, cut_to_tokens,
                           estimate_tokens)

ZH = "差旅报销制度。员工出差产生的交通费用可以全额报销，发票必须在出差结束后三十天内提交给财务部。"
EN = "Employees get twenty-five days of paid leave per calendar year. "


def hits_of(*texts):
    return [{"source": "doc%d.md" % i, "chunk": i, "score": 1.0 - i / 10, "text": t}
            for i, t in enumerate(texts)]


def prompt_cost(llm_messages):
    return sum(estimate_tokens(m["content"]) for m in llm_messages)


def test_estimate_counts_measured_cjk_costs_digits_punctuation_and_letters_by_thirds():
    assert estimate_tokens("") == 0
    assert estimate_tokens("abc") == 1
    assert estimate_tokens("abcd") == 2
    # SmolLM2 (tests/bench/measure_cjk_costs.py): 报 2 tokens, 销 3, 端 and 口 2 each
    assert estimate_tokens("报销") == 5
    assert estimate_tokens("VPN 端口") == 1 + 1 + 4
    assert estimate_tokens("port 1194.") == 2 + 1 + 5  # a space before a digit is a token
    # each short word is at least a token; newlines are tokens (both undercounted before)
    assert estimate_tokens("OA 端口") == 1 + 1 + 4 and estimate_tokens("a\nb") == 3
    # unlisted characters cost their UTF-8 bytes, the byte-level BPE's worst case
    assert estimate_tokens("龘") == 3 and estimate_tokens("é") == 2


def test_estimate_of_common_chinese_is_about_two_tokens_per_character_not_three():
    # the old 3-per-character estimate sent a third fewer Chinese passages than fit
    assert len(ZH) * 1.5 <= estimate_tokens(ZH) <= len(ZH) * 2


def test_cut_to_tokens_is_the_longest_prefix_that_fits():
    text = ZH * 3
    cut = cut_to_tokens(text, 100)
    assert text.startswith(cut)
    assert estimate_tokens(cut) <= 100 < estimate_tokens(text[:len(cut) + 1])
    mixed = "使用 systemctl restart nginx 重启，the OA system 端口 8443。" * 5
    for budget in range(0, estimate_tokens(mixed) + 2):
        cut = cut_to_tokens(mixed, budget)
        assert mixed.startswith(cut) and estimate_tokens(cut) <= budget, budget
        assert len(cut) == len(mixed) or estimate_tokens(mixed[:len(cut) + 2]) > budget - 1


def test_no_budget_sends_every_passage():
    hits = hits_of(ZH * 40, EN * 40)
    llm_messages, used = build_messages([{"role": "user", "content": "q"}], hits, None)
    assert [h["text"] for h in used] == [h["sent"] for h in used] == [h["text"] for h in hits]
    assert ZH * 40 in llm_messages[0]["content"]


def test_passages_that_do_not_fit_are_dropped_or_cut_and_not_cited():
    hits = hits_of(EN * 10, ZH * 20, EN * 30, ZH * 30)
    question = [{"role": "user", "content": "How many days of leave?"}]
    budget = 1200
    llm_messages, used = build_messages(question, hits, budget)
    assert prompt_cost(llm_messages) <= budget
    # The best-ranked passage always goes first and whole.
    assert used[0] == dict(hits[0], sent=EN * 10) and EN * 10 in llm_messages[0]["content"]
    assert 1 <= len(used) < len(hits)
    for hit in hits[len(used):]:
        assert "(source: %s)" % hit["source"] not in llm_messages[0]["content"]
    assert llm_messages[1:] == question


def test_a_passage_is_cut_when_enough_room_is_left():
    hits = hits_of(ZH * 100)
    llm_messages, used = build_messages([{"role": "user", "content": "报销期限?"}], hits, 600)
    assert [h["chunk"] for h in used] == [0]
    system = llm_messages[0]["content"]
    assert ZH in system and ZH * 100 not in system
    # the citation carries exactly the cut text that was sent
    assert used[0]["sent"] in system and ZH * 100 != used[0]["sent"] and ZH.startswith(used[0]["sent"][:10])
    assert prompt_cost(llm_messages) <= 600


def test_room_smaller_than_a_useful_passage_sends_none():
    question = [{"role": "user", "content": "x" * 30}]
    empty, _hits = build_messages(question, [], 10_000)
    # What build_messages reserves besides passages (rounding: +-1 token).
    fixed = (prompt_cost(empty) - estimate_tokens("(no relevant documents found)")
             + 2 * MESSAGE_OVERHEAD + RESERVE)
    llm_messages, used = build_messages(question, hits_of(ZH * 100), fixed + MIN_PASSAGE - 5)
    assert used == []
    assert "(no relevant documents found)" in llm_messages[0]["content"]
    _sent, used = build_messages(question, hits_of(ZH * 100), fixed + MIN_PASSAGE + 5)
    assert len(used) == 1


def test_older_turns_are_dropped_before_the_question():
    chat = [{"role": "user", "content": EN * 20}, {"role": "assistant", "content": EN * 20},
            {"role": "user", "content": "And in Chinese offices?"}]
    llm_messages, _hits = build_messages(chat, hits_of(EN), 500)
    assert llm_messages[-1] == chat[-1]
    assert chat[0] not in llm_messages
    assert prompt_cost(llm_messages) <= 500


def test_a_question_longer_than_the_context_is_refused():
    with pytest.raises(PromptTooLong) as info:
        build_messages([{"role": "user", "content": ZH * 100}], hits_of(EN), 1000)
    assert info.value.needed > 1000 and info.value.budget == 1000
    assert "only 1000 fit" in str(info.value)


def test_settings_refuse_a_context_without_room_for_a_prompt():
    with pytest.raises(ValueError, match="QA_LLM_CONTEXT_TOKENS .512. leaves no room"):
        Settings.from_env({"QA_LLM_CONTEXT_TOKENS": "512", "QA_MAX_TOKENS": "256"})
    assert Settings.from_env({"QA_LLM_CONTEXT_TOKENS": "0"}).context_tokens == 0
    assert Settings.from_env({}).context_tokens == 2048


def test_only_as_many_old_turns_are_dropped_as_needed():
    chat = [{"role": "user" if i % 2 == 0 else "assistant", "content": EN * (i + 1)}
            for i in range(7)]
    budget = 600
    llm_messages, _hits = build_messages(chat, [], budget)
    kept = llm_messages[1:]
    assert kept == chat[len(chat) - len(kept):] and 1 <= len(kept) < len(chat)
    assert prompt_cost(llm_messages) <= budget
    # one more (older) turn would not have fitted
    older = chat[len(chat) - len(kept) - 1]
    assert (prompt_cost(llm_messages) + estimate_tokens(older["content"]) + MESSAGE_OVERHEAD
            + len(llm_messages) * MESSAGE_OVERHEAD + RESERVE > budget)


def test_passage_header_names_file_and_heading():
    hits = [{"source": "policy.md", "chunk": 0, "score": 1.0, "heading": "Leave > Sick leave",
             "text": "Sick leave needs a certificate."}]
    llm_messages, _used = build_messages([{"role": "user", "content": "q"}], hits, 1000)
    assert "[1] (source: policy.md > Leave > Sick leave)" in llm_messages[0]["content"]
