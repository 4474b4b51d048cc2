"""A passage cut to fit the prompt keeps the sentences nearest the question (focus)."""

from qa_api.prompt import build_messages, cut_to_tokens, estimate_tokens, focus, query_terms

MANUAL = ("cp 命令用于复制文件和目录。-a, --archive 保持链接、属性和权限。"
          "-r, -R, --recursive 递归地复制目录。-u, --update 仅在源文件比目标文件更新时复制。"
          "-v, --verbose 解释正在做什么。--help 显示帮助并退出。--version 显示版本信息并退出。")


def test_terms_are_words_and_cjk_pairs_not_single_characters():
    terms = query_terms("cp 怎么递归复制目录？")
    assert {"cp", "递归", "复制", "目录"} <= terms
    assert not any(len(t) == 1 for t in terms)
    assert query_terms(None) == set() and query_terms("q") == set()


def test_focus_keeps_the_run_of_sentences_that_shares_most_terms_and_fits():
    terms = query_terms("cp 怎么把整个目录递归复制？")
    budget = estimate_tokens(MANUAL) // 2
    kept = focus(MANUAL, terms, budget)
    assert "递归地复制目录" in kept and kept in MANUAL
    assert estimate_tokens(kept) <= budget
    assert "递归地复制目录" not in cut_to_tokens(MANUAL, estimate_tokens("cp 命令用于复制文件和目录。"))


def test_focus_without_a_shared_term_is_the_plain_cut():
    for terms in (set(), {"nginx"}):
        for budget in (5, 40, 80):
            assert focus(MANUAL, terms, budget) == cut_to_tokens(MANUAL, budget).strip()


def test_focus_cuts_the_best_sentence_when_no_whole_sentence_fits():
    text = "第一句无关。" + "第二句很长并且提到了 tail -f 随文件增长即时输出新增数据以及更多的说明文字。"
    kept = focus(text, query_terms("tail 怎么实时查看日志？"), 12)
    assert kept.startswith("第二句") and estimate_tokens(kept) <= 12


def test_build_messages_sends_the_focused_part_and_cites_it():
    hits = [{"source": "zh/ls.md", "chunk": 0, "score": 1.0, "text": "无关的开头。" * 200},
            {"source": "zh/cp.md", "chunk": 3, "score": 0.9, "text": "无关的开头。" * 60 + MANUAL}]
    question = [{"role": "user", "content": "cp 怎么递归复制目录？"}]
    budget = estimate_tokens(hits[0]["text"]) + 300  # the first whole, a part of the second
    _messages, used = build_messages(question, hits, budget)
    assert len(used) == 2 and "递归地复制目录" in used[1]["sent"]
    _messages, plain = build_messages(question, hits, budget, focused=False)
    assert "递归地复制目录" not in plain[1]["sent"] and hits[1]["text"].startswith(plain[1]["sent"])


def test_focus_fills_the_budget_rather_than_stopping_at_the_first_match():
    sentence = "发票必须在出差结束后三十天内提交给财务部。"
    text = "差旅报销制度。" + sentence * 30
    kept = focus(text, query_terms("报销期限？"), 200)
    assert kept.startswith("差旅报销制度。") and 200 - estimate_tokens(sentence) < estimate_tokens(kept) <= 200
