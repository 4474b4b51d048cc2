"""Regenerate qa_api/cjk_token_costs.txt: the tokens each CJK character costs in the served
model's tokenizer (run inside the llm-llamacpp image, which has llama_cpp and the GGUF):

  docker run --rm -v "$PWD/images/qa-api:/w" --entrypoint python llmops/llm-llamacpp:<tag> \
      /w/tests/bench/measure_cjk_costs.py /models/smollm2-135m-instruct.gguf /w/qa_api/cjk_token_costs.txt

Only characters cheaper than their 3 UTF-8 bytes are listed; tests/test_token_estimate_live.py
checks against the live server's /extras/tokenize that the estimate never undercounts.
"""

import collections
import sys

from llama_cpp import Llama

RANGES = [(0x3000, 0x303f), (0x3040, 0x30ff), (0x3400, 0x4dbf), (0x4e00, 0x9fff),
          (0xac00, 0xd7af), (0xf900, 0xfaff), (0xff00, 0xffef)]


def main(model, out):
    llm = Llama(model_path=model, vocab_only=True, verbose=False)
    costs = {}
    for low, high in RANGES:
        for point in range(low, high + 1):
            char = chr(point)
            costs[char] = len(llm.tokenize(char.encode("utf-8"), add_bos=False, special=False))
    print(collections.Counter(costs.values()), file=sys.stderr)
    with open(out, "w", encoding="utf-8") as handle:
        handle.write("# SmolLM2-135M-Instruct tokens per CJK/full-width character, measured with its GGUF\n"
                     "# tokenizer (tests/bench/measure_cjk_costs.py). Characters not listed cost 3 (their UTF-8 bytes).\n")
        for cost in (1, 2):
            handle.write("%d\t%s\n" % (cost, "".join(sorted(c for c, n in costs.items() if n == cost))))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
