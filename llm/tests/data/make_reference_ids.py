#!/usr/bin/env python3
"""Expected token ids of the default model's tokenizer, from llama.cpp.

llama.cpp is the reference for SmolLM2's GGUF tokenizer (transformers' GGUF
loader skips the digit split). Run once with llama-cpp-python installed:

    python3 llm/tests/data/make_reference_ids.py MODEL.gguf > llm/tests/data/reference_ids.json

Only the resulting ids are committed, not the Python environment.
"""
import json
import os
import sys

import llama_cpp

TEXTS = [
    "Hello",
    "Hello, world! How are you today?",
    " leading space and  double  spaces   and trailing ",
    "Numbers: 0 7 42 1234567890 3.14159 -12,345.67 1e10 0x1F",
    "Unicode digits: ١٢٣ ४५६ ５６７ ⅧⅨ ²³",
    "Emoji: 🙂🚀👩‍💻 and flags 🇫🇷🇯🇵",
    "中文文本，日本語のテキスト、한국어 텍스트.",
    "Tabs\tand\nnewlines\r\nand\n\n\nblank lines",
    "def f(x):\n    return {'a': [1, 2, 3]}[x] if x else None  # comment\n",
    "fn main() { let v: Vec<u32> = (0..10).collect(); println!(\"{v:?}\"); }",
    "URL https://example.com/path?q=1&r=2#frag and email a.b@c.org",
    "It's they're we've I'm you'll he'd — “quotes” ‘single’ «guillemets»",
    "Ωmega ßtraße Ünïcödé àéîõü ñ ç œ æ ø å",
    "    indented\n\tmixed \t whitespace\u00a0nbsp\u2003emspace",
    "The quick brown fox jumps over the lazy dog. " * 3,
    "<html><body class=\"x\">Text &amp; more</body></html>",
    "$$\\int_0^1 x^2\\,dx = \\frac{1}{3}$$",
    "",
]


def corpus_chunks(count=400):
    """Deterministic slices (60 to 800 characters) of the bundled human text."""
    path = os.path.join(os.path.dirname(__file__), "../../../bench/data/python-docs-topics.txt")
    corpus = open(path, encoding="utf-8").read()
    chunks = []
    for i in range(count):
        start = (i * 104729) % (len(corpus) - 1000)
        length = 60 + (i * 7919) % 740
        chunks.append(corpus[start:start + length])
    return chunks


def main():
    llm = llama_cpp.Llama(model_path=sys.argv[1], vocab_only=True, verbose=False)
    out = []
    for text in TEXTS + corpus_chunks():
        ids = llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
        out.append({"text": text, "ids": ids})
    reference = f"llama-cpp-python {llama_cpp.__version__}, vocab_only, add_bos=False, special=False"
    sys.stdout.write('{"reference": %s,\n "cases": [\n' % json.dumps(reference))
    sys.stdout.write(",\n".join(json.dumps(case, ensure_ascii=False) for case in out))
    sys.stdout.write("\n]}\n")


if __name__ == "__main__":
    main()
