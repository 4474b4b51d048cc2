# -*- coding: utf-8 -*-
"""tests/eval/questions.yml, the set `make eval-kb` scores retrieval with: its shape, 30+
questions per language, and every answer found in its expected document and in no other
(else a passage of another page could never count, or the wrong page could)."""

import collections
import os

import pytest
import yaml

EVAL = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "eval")
CORPUS = os.path.join(EVAL, "corpus")
FIELDS = {"id", "question", "language", "expected_source", "answer"}


def _load():
    with open(os.path.join(EVAL, "questions.yml"), encoding="utf-8") as handle:
        return yaml.safe_load(handle)["questions"]


def _documents():
    docs = {}
    for lang in ("zh", "en"):
        for name in sorted(os.listdir(os.path.join(CORPUS, lang))):
            with open(os.path.join(CORPUS, lang, name), encoding="utf-8") as handle:
                docs[lang + "/" + name] = handle.read()
    return docs


QUESTIONS = _load()
DOCS = _documents()


def test_schema_and_counts():
    for q in QUESTIONS:
        assert set(q) == FIELDS, q
        assert all(isinstance(q[f], str) and q[f].strip() for f in FIELDS), q
        assert q["language"] in ("zh", "en"), q
        # a Chinese question is answered from the Chinese page, an English one from the English
        assert q["expected_source"].startswith(q["language"] + "/"), q
    ids = [q["id"] for q in QUESTIONS]
    assert len(ids) == len(set(ids)), [i for i, n in collections.Counter(ids).items() if n > 1]
    langs = collections.Counter(q["language"] for q in QUESTIONS)
    assert langs["zh"] >= 30 and langs["en"] >= 30, langs


def test_corpus_pairs_languages():
    """The same commands in both languages (the comparison is per language, not per page)."""
    zh = {d.split("/")[1] for d in DOCS if d.startswith("zh/")}
    en = {d.split("/")[1] for d in DOCS if d.startswith("en/")}
    assert zh == en and len(zh) >= 30


@pytest.mark.parametrize("q", QUESTIONS, ids=[q["id"] for q in QUESTIONS])
def test_answer_only_in_expected_document(q):
    found = [name for name, text in DOCS.items() if q["answer"] in text]
    assert found == [q["expected_source"]]
    # the user's wording, not the page's: the question does not quote its answer
    assert q["answer"] not in q["question"]
