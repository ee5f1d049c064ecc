#!/usr/bin/env python3
"""Write the CLIP tokenizer goldens under tests/data/tokenizer/.

Run from the repository root with the reference venv:
    /work/venvs/ref/bin/python tools/reference/gen_tokenizer_goldens.py

Writes
  * clip-vit-large/: a diffusers-style tokenizer folder built from the shipped
    merges file (vocab.json, merges.txt, special_tokens_map.json,
    tokenizer_config.json), which transformers loads offline;
  * golden.json: {"meta": {...}, "cases": [{"text", "hf", "openai", "hf_full"}]}
    with the ids of transformers' CLIPTokenizer (ftfy installed) and of
    openai/CLIP's SimpleTokenizer.

Prompts whose ftfy.fix_text result depends on fix_encoding (mojibake repair,
which the engine does not implement) are dropped and listed.
"""
import importlib.metadata
import importlib.util
import json
import os
import random
import sys
import unicodedata
import warnings

os.environ["HF_HUB_OFFLINE"] = "1"  # the folder must load without the network

import ftfy
import transformers
from transformers import CLIPTokenizer
from transformers.utils import logging as hf_logging

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clip_bpe  # noqa: E402  (the shared vocabulary builder)

REPO = clip_bpe.REPO
OUT_DIR = os.path.join(REPO, "tests", "data", "tokenizer")
FOLDER = os.path.join(OUT_DIR, "clip-vit-large")
CONTEXT, BOS, EOS = 77, 49406, 49407


def load_simple_tokenizer():
    """openai/CLIP's SimpleTokenizer, loaded by path (clip/__init__ needs torchvision)."""
    spec = importlib.util.find_spec("clip")
    path = os.path.join(os.path.dirname(spec.origin), "simple_tokenizer.py")
    module_spec = importlib.util.spec_from_file_location("clip_simple_tokenizer", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.SimpleTokenizer(bpe_path=clip_bpe.BPE_GZ)


ASCII = [
    "a photo of a cat", "A Photo of a CAT!!", "an astronaut riding a horse on the moon",
    "hello world", "don't", "1234", "a lovely cat", "  multiple   spaces\tand\nnewlines ",
    "a painting of a fox sitting in a field at sunrise in the style of Claude Monet",
    "masterpiece, best quality, ultra detailed, 8k, sharp focus, dramatic lighting",
    "portrait of a young woman, freckles, green eyes, red hair, soft light",
    "A cozy cabin in the snowy mountains, warm light in the windows, night sky with stars",
    "cyberpunk city street at night, neon signs, rain, reflections, blade runner style",
    "The quick brown fox jumps over the lazy dog.", "THE QUICK BROWN FOX", "tHe QuIcK bRoWn FoX",
    "low poly isometric room", "studio ghibli landscape, lush green hills, fluffy clouds",
    "an oil painting of a bowl of fruit on a wooden table", "photorealistic, unreal engine 5, octane render",
    "a red cube on top of a blue sphere", "three dogs playing poker", "x", "I", "a", "Z",
    "email me at someone@example.com", "https://example.com/path?q=1&r=2", "C:\\Users\\cat\\img.png",
    "snake_case_words and kebab-case-words", "CamelCaseWordsTogether", "semdraw", "jekyll",
    "steampunk airship over victorian london", "a watercolor of koi fish in a pond",
]
PUNCT = [
    "!!!", "...", "?!?!", "---", "((masterpiece))", "(((best quality)))", "[cat:dog:0.5]",
    "(red:1.3) (blue:0.8)", "a, b, c", "a,b,c", ":-) ;-) :D", "<3", "->", "=>", "#hashtag",
    "@mention", "$100", "100%", "5*3=15", "a/b\\c|d", "{json: true}", "~~~tilde~~~", "^_^",
    "'''", "\"quoted\"", "'single'", "`backtick`", "a--b", "end.", "...and then", "wow!!!?!",
    "__init__", "a;b;c", "1.5x", "-1", "+-*/", "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
]
CONTRACTIONS = [
    "I'm", "we'll", "they're", "you've", "he'd", "it's", "can't", "won't", "isn't",
    "IT'S", "WE'LL", "THEY'RE", "YOU'VE", "HE'D", "I'M", "it'S", "We'Ll", "rock'n'roll",
    "'s", "''s", "'s's", "o'clock", "y'all'd've", "the cat's toy", "the CAT'S TOY",
    "it\u2019s", "it\u02bcs", "it'\u017f", "Q'uarry",
]
NUMBERS = [
    "3.14159", "1,000,000", "4k 8k uhd", "2001: a space odyssey", "\uff11\uff12\uff13",
    "\u0663\u0664\u0665", "x\u00b2 + y\u00b2", "\u00bd cup", "\u216b o'clock", "\u2460\u2461\u2462",
    "0x1F600", "1e10", "007", "\u09e7\u09e8", "\U0001d7d9\U0001d7da", "2024-01-31",
]
HTML = [
    "&amp;", "fish &amp; chips", "&lt;cat&gt;", "&eacute;clair", "&EACUTE;CLAIR", "&Eacute;",
    "caf&eacute; &nbsp; bar", "&copy; 2024", "wait&hellip; what", "it&#39;s", "it&#8217;s",
    "it&#x2019;s", "&#X41;&#x42;&#67;", "&amp cat", "&lt", "a &lt b", "&copy2024", "&notit;",
    "this&not that", "&ampx;", "&amp;lt;b&amp;gt;", "&amp;amp;", "&amp;amp;amp;lt;",
    "<b>&amp;</b>", "a < b &amp; c", "&lt;3 love", "&lt;|endoftext|&gt;", "x &#0; y",
    "&#128; euro", "&#x85;", "&#59;", "&#x3b;", "&#13;x", "&#x1F600;", "&#xD800;",
    "&#1114112;", "&#9999999999;", "&SZLIG;", "&szlig;", "&DD;", "&dd;", "&#12ab;", "&;",
    "& ;", "&&amp;;", "&#;", "&#x;", "&#65", "&#x41", "&quot;hi&quot;", "&QUOT;", "&apos;",
    "&CounterClockwiseContourIntegral;", "&ThickSpace;", "&NewLine;x", "&Tab;y",
    "&#1;&#2;", "&#127;", "&#xFDD0;", "&#x10FFFF;", "&lt;\n&amp;", "&amp;\n<", "<\n&amp;",
    "&frac34;cup", "&frac34cup", "&AElig;&aelig;", "&nbspx", "&hearts;&spades;",
    "&#x1b;[31mred", "&#xFF21;", "&#x3000;x", "&#x301;e", "e&#x301;", "&#x130;",
]
QUOTES = [
    "\u201cquoted\u201d", "\u2018single\u2019", "\u201elow\u201c", "\u201btwisted\u201f",
    "don\u2019t stop", "\u00abguillemets\u00bb", "\u300cbrackets\u300d",
]
LATIN = [
    "caf\u00e9", "cafe\u0301", "na\u00efve", "nai\u0308ve", "\u00c5ngstr\u00f6m", "A\u030angstro\u0308m",
    "r\u00e9sum\u00e9", "\u00d1and\u00fa", "\u0152uvre", "stra\u00dfe", "\u1e9e", "\u00c6sir",
    "\u0110or\u0111e", "Ko\u0161ice", "\u0141\u00f3d\u017a", "\u1ec7 vi\u1ec7t", "e\u0301\u0301",
    "o\u0323\u0302", "o\u0302\u0323", "\u212b", "\u2126", "\u212a", "\u1e0a\u0323", "\u0345",
    "a\u0345b", "\u03b1\u0345", "\u1fb3", "\u00df", "\u0130",
]
GREEK = [
    "\u039f\u0394\u03a5\u03a3\u03a3\u0395\u03a5\u03a3", "\u03a3\u038a\u03a3\u03a5\u03a6\u039f\u03a3",
    "\u03a3", "\u0391\u03a3.", "\u0391\u03a3'\u0391", "\u03bb\u03cc\u03b3\u03bf\u03c2",
    "\u0391\u03a3\u0301", "\u0391\u03a3 \u0391", "\u0391\u03a3\u0391", "a\u03a3", "1\u03a3",
    "\u0391\u0301\u03a3", "\u0391\u00ad\u03a3", "\u03a3\u03a3\u03a3", "\u039a\u0391\u039b\u0397\u039c\u0395\u03a1\u0391",
]
TURKISH = ["\u0130stanbul", "D\u0130YARBAKIR", "\u0131I", "\u0130\u0307", "I\u0307", "\u0130i\u0131I"]
CJK = [
    "\u4e00\u53ea\u732b", "\u6771\u4eac\u30bf\u30ef\u30fc", "\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8",
    "\u4e2d\u6587\uff0c\u6807\u70b9\u3002", "\u732b\u306e\u5199\u771f", "\U00020000\U0002a6d6",
    "\u1100\u1161\u11a8", "\ufa11\uf900", "\u3131\u314f",
]
KANA = [
    "\uff76\uff80\uff76\uff85", "\uff76\uff9e\uff77\uff9e", "\u3072\u3089\u304c\u306a",
    "\u30ab\u30bf\u30ab\u30ca", "\u304b\u3099", "\uff8a\uff9f\uff9d", "\uff35\uff80\uff70\uff9d",
    "\uff61\uff62\uff63\uff64\uff65", "\uffa1\uffc2",
]
WIDE = [
    "\uff2c\uff2f\uff35\uff24\u3000\uff2e\uff2f\uff29\uff33\uff25\uff33", "\uff48\uff45\uff4c\uff4c\uff4f\uff01",
    "\uff08\uff3b\uff5b\uff5d\uff3d\uff09", "\uffe0\uffe1\uffe5\uffe6", "\uffe3", "\uff07quote\uff07",
]
LIGATURES = [
    "\ufb01sh \ufb02ower \ufb00 \ufb03 \ufb04 \ufb05 \ufb06", "\u0132ssel", "\u01c5", "\u01c4\u01c6",
    "\u01c7\u01c8\u01c9", "\u01ca\u01cb\u01cc", "\u01f1\u01f2\u01f3", "\u0149", "of\ufb01ce",
]
EMOJI = [
    "\U0001f431", "cat \U0001f431 dog \U0001f436", "\U0001f44d\U0001f3fd",
    "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466", "\U0001f3f3\ufe0f\u200d\U0001f308",
    "\u2764\ufe0f", "\U0001f1ef\U0001f1f5", "#\ufe0f\u20e3", "\U0001f600\U0001f600\U0001f600",
    "\U0001f9d1\U0001f3ff\u200d\U0001f680", "\u263a", "\U0001f3f4\U000e0067\U000e0062\U000e0077\U000e006c\U000e0073\U000e007f",
]
SPACES = [
    "a\tb", "a\nb", "a\r\nb", "a\rb", "a\u00a0b", "a\u2028b", "a\u2029b", "a\u3000b", "a\u0085b",
    "a\u180eb", "a\u200bb", "a\u202fb", "a\x0cb", "a\x0bb", "a\u1680b", "a\u2003b", "a\u205fb",
    "a\x1cb", "a\x1fb", "\u00a0lead", "trail\u00a0", "a\n\n\nb", "a\r\r\nb", "line1\nline2\nline3",
]
CONTROL = [
    "\x1b[31mred\x1b[0m", "\x07bell", "\x7fdel", "a\x01b", "\ufeffbom", "\x1b[1;32;40mx",
    "\x1b[m", "\x1b[\u0663m", "\x1b[x", "\x1b", "\x1b[", "a\x80b", "\u0080\u0081\u008d",
    "\u0091smart\u0092", "\u0096dash", "a\u206ab", "\ufff9\ufffa\ufffb\ufffc", "\u00ad soft",
    "\u200c\u200d\u200e\u200f", "\u202a\u202e", "\ufffd", "\ufffe", "\U0001d173",
]
EMPTY = ["", " ", "\t\n", "\u3000", "\u00a0\u00a0", "\r\n", "\x1b[0m", "\x01", "&nbsp;", "\ufeff"]
SPECIAL = [
    "a <|endoftext|> b", "<|startoftext|>x", "x<|endoftext|><|endoftext|>", "<|ENDOFTEXT|>",
    "<|endoftext", "<|startoftext<|endoftext|>", "<<|endoftext|>>", "<|endoftext|>",
    "<|startoftext|>", "<|\u017ftartoftext|>", "&amp;<|endoftext|>&amp;", "\uff1c|endoftext|\uff1e",
    "<|startoftext|><|endoftext|>", "a<|endoftext|>b<|startoftext|>c", " <|endoftext|> ",
    "&lt;|startoftext|&gt;x",
]
OTHER_SCRIPTS = [
    "\u041f\u0440\u0438\u0432\u0435\u0442 \u043c\u0438\u0440", "\u05e9\u05dc\u05d5\u05dd",
    "\u0645\u0631\u062d\u0628\u0627", "\u0928\u092e\u0938\u094d\u0924\u0947", "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35",
    "\u10d2\u10d0\u10db\u10d0\u10e0\u10ef\u10dd\u10d1\u10d0", "\u0531\u0532\u0533", "\u13a0\u13a1",
    "\U00010400\U00010428", "\u1e9b\u0323", "\u2c00\u2c30", "\ua640\ua641",
]

LONG = [
    " ".join(["a beautiful detailed landscape painting with mountains and rivers"] * 8),
    ", ".join(f"tag{i}" for i in range(60)),
    " ".join(str(i) for i in range(100)),
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut "
    "labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco "
    "laboris nisi ut aliquip ex ea commodo consequat. Duis aute irure dolor in reprehenderit in "
    "voluptate velit esse cillum dolore eu fugiat nulla pariatur.",
    "a" * 500, "ab" * 300, "supercalifragilisticexpialidocious" * 10, "!" * 200,
    "\U0001f600" * 50, "\u732b" * 100, "hello " * 90, "x&amp;" * 60,
    "pneumonoultramicroscopicsilicovolcanoconiosis antidisestablishmentarianism",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab",
    "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz qqqqqqqqqqqqqqqqqqqqqq",
    "\u00e9" * 120, "\u03a3" * 40, "ab\u0301" * 40,
]
MOJIBAKE = ["s\u00c3\u00b3", "\u00e2\u0153\u201d No problems", "voil\u00c3 le travail"]


def random_prompts(n):
    """Deterministic word salads, some with long letter runs (BPE worst cases)."""
    rng = random.Random(1234)
    letters = "abcdefghijklmnopqrstuvwxyz"
    out = []
    for i in range(n):
        if i % 3 == 0:
            out.append("".join(rng.choice(letters) for _ in range(rng.randint(30, 400))))
        else:
            words = ["".join(rng.choice(letters) for _ in range(rng.randint(1, 12)))
                     for _ in range(rng.randint(3, 40))]
            out.append(" ".join(words))
    return out


def all_prompts():
    groups = [ASCII, PUNCT, CONTRACTIONS, NUMBERS, HTML, QUOTES, LATIN, GREEK, TURKISH, CJK, KANA,
              WIDE, LIGATURES, EMOJI, SPACES, CONTROL, EMPTY, SPECIAL, OTHER_SCRIPTS, LONG, MOJIBAKE,
              random_prompts(30)]
    seen, out = set(), []
    for text in (t for g in groups for t in g):
        if text not in seen and "\x00" not in text:
            seen.add(text)
            out.append(text)
    return out


def needs_fix_encoding(text, hf_chunks):
    """True when ftfy's mojibake repair changes the text or one of HF's chunks."""
    return any(ftfy.fix_text(t) != ftfy.fix_text(t, fix_encoding=False) for t in [text] + hf_chunks)


def openai_ids(simple, text):
    content = simple.encode(text)[:CONTEXT - 2]
    ids = [BOS] + content + [EOS]
    return ids + [EOS] * (CONTEXT - len(ids))


def main():
    warnings.simplefilter("ignore")
    hf_logging.set_verbosity_error()
    clip_bpe.write_tokenizer_folder(FOLDER)
    tok = CLIPTokenizer.from_pretrained(FOLDER, local_files_only=True)
    assert tok.fix_text is not None, "ftfy must be installed"
    simple = load_simple_tokenizer()
    assert len(tok) == 49408 and tok.pad_token_id == EOS

    cases, dropped, differ = [], [], 0
    for text in all_prompts():
        if needs_fix_encoding(text, tok.tokens_trie.split(text)):
            dropped.append(text)
            continue
        hf = tok(text, padding="max_length", max_length=CONTEXT, truncation=True)["input_ids"]
        case = {"text": text, "hf": hf, "openai": openai_ids(simple, text),
                "hf_full": tok.encode(text, add_special_tokens=False)}
        assert len(hf) == CONTEXT and len(case["openai"]) == CONTEXT
        differ += case["hf"] != case["openai"]
        cases.append(case)

    meta = {
        "generator": "tools/reference/gen_tokenizer_goldens.py",
        "python": sys.version.split()[0], "transformers": transformers.__version__,
        "ftfy": ftfy.__version__, "regex": importlib.metadata.version("regex"),
        "unicodedata": unicodedata.unidata_version,
        "openai_clip": "1.0.1 (clip/simple_tokenizer.py)",
        "merges": "daemon/engine/assets/clip/bpe_simple_vocab_16e6.txt.gz",
        "hf": "CLIPTokenizer(padding='max_length', max_length=77, truncation=True)",
        "openai": "[49406] + SimpleTokenizer.encode(text)[:75] + [49407], padded with 49407",
        "hf_full": "CLIPTokenizer.encode(text, add_special_tokens=False)",
        "dropped_for_fix_encoding": dropped,
    }
    with open(os.path.join(OUT_DIR, "golden.json"), "w", encoding="ascii") as f:
        f.write('{"meta": ' + json.dumps(meta, ensure_ascii=True, indent=1) + ',\n"cases": [\n')
        f.write(",\n".join(json.dumps(c, ensure_ascii=True) for c in cases))  # a case a line
        f.write("\n]}\n")
    print(f"{len(cases)} cases ({len(dropped)} dropped for fix_encoding: {dropped!r})")
    print(f"{differ} cases where hf and openai differ")


if __name__ == "__main__":
    main()
