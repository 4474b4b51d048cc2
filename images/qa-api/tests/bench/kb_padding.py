"""What the model computes in a full build of `make bench-kb`, ours against the seed, without
timing anything (so a busy machine cannot blur it): tokens, padded tokens (each batch padded to
its longest text) and the attention term (batch x longest^2) of each side's batches of 32.

  python -m tests.bench.kb_padding --corpus /eval/corpus      (in the bench image)

seed: the seed's chunks (LangChain's splitter 600/80) in sentence-transformers' order (characters);
ours: what the builder embeds (heading path + chunk, each text once) in batches of similar token
counts (qa_api.kb.embedder.length_batches). Prints ONE JSON object.
"""

import argparse
import json
import os

from tests.bench.kb_corpus import corpus_files


def costs(lengths, batches):
    return {"texts": len(lengths), "tokens": sum(lengths),
            "padded_tokens": sum(max(lengths[i] for i in b) * len(b) for b in batches),
            "attention_batch_x_longest2": sum(max(lengths[i] for i in b) ** 2 * len(b) for b in batches)}


def main(argv=None):
    from langchain_text_splitters import RecursiveCharacterTextSplitter
    from tokenizers import Tokenizer

    from qa_api.config import default_embed_model
    from qa_api.kb.build import indexed_text
    from qa_api.kb.embedder import length_batches
    from qa_api.kb.splitter import RecursiveCharacterSplitter, chunk_headings

    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=256, help="the model's max_seq_length")
    args = parser.parse_args(argv)
    tokenizer = Tokenizer.from_file(os.path.join(default_embed_model(), "tokenizer.json"))
    tokenizer.enable_truncation(args.max_tokens)
    tokenizer.no_padding()
    texts = []
    for rel in corpus_files(args.corpus):
        with open(os.path.join(args.corpus, rel), encoding="utf-8") as handle:
            texts.append(handle.read())
    seed = [c for t in texts for c in RecursiveCharacterTextSplitter(chunk_size=600, chunk_overlap=80).split_text(t)]
    splitter, ours = RecursiveCharacterSplitter(600, 80), []
    for text in texts:
        pieces = splitter.split_text(text)
        ours.extend(indexed_text({"text": p, "heading": h}) for p, h in zip(pieces, chunk_headings(text, pieces)))
    ours = list(dict.fromkeys(ours))  # the builder embeds a text once
    size = args.batch_size
    seed_lengths = [len(e.ids) for e in tokenizer.encode_batch(seed)]
    ours_lengths = [len(e.ids) for e in tokenizer.encode_batch(ours)]
    result = {"batch_size": size,
              "seed": costs(seed_lengths, length_batches([len(t) for t in seed], size)),
              "ours": costs(ours_lengths, length_batches(ours_lengths, size))}
    result["seed_over_ours"] = {key: round(result["seed"][key] / result["ours"][key], 3)
                                for key in ("tokens", "padded_tokens", "attention_batch_x_longest2")}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    main()
