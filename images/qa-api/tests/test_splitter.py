import pytest

from qa_api.kb.splitter import DEFAULT_SEPARATORS, RecursiveCharacterSplitter

CONTRACT_SEPARATORS = ["\n\n", "\n", "。", "！", "？", "；", ". ", "! ", "? ", "; ", "，", ", ", " ", ""]


def english_text(sentences=60):
    return " ".join("Sentence number %d explains rule %d of the handbook in plain words." % (i, i)
                    for i in range(sentences))


def chinese_text(sentences=60):
    return "".join("第%d条规定员工在出差期间必须遵守公司的报销制度并按时提交发票。" % i
                   for i in range(sentences))


def test_defaults_match_the_contract():
    splitter = RecursiveCharacterSplitter()
    assert splitter.describe() == {"name": "recursive_character", "chunk_size": 600,
                                   "chunk_overlap": 80, "separators": CONTRACT_SEPARATORS}
    assert DEFAULT_SEPARATORS == CONTRACT_SEPARATORS


def test_short_text_is_one_chunk():
    assert RecursiveCharacterSplitter().split_text("  Just one line.  ") == ["Just one line."]


def test_english_chunks_respect_size_and_overlap():
    text = english_text()
    chunks = RecursiveCharacterSplitter(250, 80).split_text(text)
    assert len(chunks) > 5
    assert all(len(c) <= 250 for c in chunks)
    # split on ". ": chunks hold whole sentences
    assert all(c.startswith("Sentence number") for c in chunks)
    for previous, current in zip(chunks, chunks[1:]):
        first_sentence = current.split(". ")[0]
        assert first_sentence in previous, "no overlap between consecutive chunks"
    for i in range(60):
        assert any("Sentence number %d explains" % i in c for c in chunks)


def test_chinese_splits_after_sentence_end_marks():
    text = chinese_text()
    chunks = RecursiveCharacterSplitter(100, 40).split_text(text)
    assert len(chunks) > 10
    assert all(len(c) <= 100 for c in chunks)
    assert all(c.endswith("。") for c in chunks), "a Chinese sentence was cut in the middle"
    for previous, current in zip(chunks, chunks[1:]):
        head = current.split("。")[0] + "。"
        assert head in previous
    assert "".join(chunks).count("第59条") >= 1


def test_chinese_comma_used_when_sentences_are_too_long():
    sentence = "，".join("条件%d需要满足" % i for i in range(40)) + "。"
    chunks = RecursiveCharacterSplitter(60, 0).split_text(sentence)
    assert all(len(c) <= 60 for c in chunks)
    assert all(c.endswith("，") or c.endswith("。") for c in chunks)
    assert "".join(chunks) == sentence


def test_paragraphs_are_preferred_boundaries():
    text = ("A" * 50 + ".\n\n") + ("B" * 50 + ".\n\n") + ("C" * 50 + ".")
    chunks = RecursiveCharacterSplitter(60, 0).split_text(text)
    assert chunks == ["A" * 50 + ".", "B" * 50 + ".", "C" * 50 + "."]


def test_text_without_any_separator_is_cut_by_characters():
    chunks = RecursiveCharacterSplitter(100, 20).split_text("x" * 450)
    assert all(len(c) <= 100 for c in chunks)
    assert len(chunks) >= 5
    assert sum(len(c) for c in chunks) >= 450


@pytest.mark.parametrize("size,overlap", [(0, 0), (100, 100), (100, -1)])
def test_invalid_parameters_are_refused(size, overlap):
    with pytest.raises(ValueError):
        RecursiveCharacterSplitter(size, overlap)
