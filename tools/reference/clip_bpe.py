"""The CLIP BPE vocabulary, built from openai/CLIP's merges file (models.md section 4).

Shared by the golden generators: they write diffusers-style tokenizer folders
(vocab.json + merges.txt) derived from the one merges file the project ships.
"""
import gzip
import json
import os

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BPE_GZ = os.path.join(REPO, "daemon", "engine", "assets", "clip", "bpe_simple_vocab_16e6.txt.gz")
N_MERGES = 48894


def byte_symbols():
    """The 256 byte symbols in vocabulary order: printable bytes first, then the rest remapped."""
    keep = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    rest = [b for b in range(256) if b not in keep]
    table = {b: chr(b) for b in keep}
    for n, b in enumerate(rest):
        table[b] = chr(256 + n)
    return [table[b] for b in keep + rest]


def read_merges(path=BPE_GZ):
    lines = gzip.open(path, "rt", encoding="utf-8").read().split("\n")
    return [tuple(line.split()) for line in lines[1:N_MERGES + 1]]


def vocabulary(merges):
    syms = byte_symbols()
    words = syms + [s + "</w>" for s in syms] + ["".join(m) for m in merges]
    words += ["<|startoftext|>", "<|endoftext|>"]
    return {w: i for i, w in enumerate(words)}


def write_tokenizer_folder(out_dir, pad_token="<|endoftext|>"):
    """A tokenizer/ folder as diffusers' save_pretrained lays it out."""
    merges = read_merges()
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocabulary(merges), f, ensure_ascii=False)
    with open(os.path.join(out_dir, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        f.writelines(f"{a} {b}\n" for a, b in merges)
    special = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
               "unk_token": "<|endoftext|>", "pad_token": pad_token}
    with open(os.path.join(out_dir, "special_tokens_map.json"), "w") as f:
        json.dump(special, f, indent=2)
    config = dict(special, tokenizer_class="CLIPTokenizer", model_max_length=77,
                  do_lower_case=True, errors="replace")
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w") as f:
        json.dump(config, f, indent=2)
