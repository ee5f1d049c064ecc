#!/usr/bin/env python3
"""Write the seeds of fuzz_safetensors and fuzz_lora from tests/data.

usage: python3 tests/fuzz/make_st_seeds.py   (from the repository root)

The test files are tens to hundreds of KB, mostly tensor data the parsers only
bounds-check; fuzzing is faster on small inputs. So the seeds keep a file's
header - names, dtypes, ranks, metadata - and shrink its tensors: each
dimension to at most 2, except a LoRA factor's rank dimension, which the
adapter metadata may pin. Data bytes are the start of the original tensor's
data. Handwritten files add the layouts the test data lacks. Standard library only.
"""
import json
import os
import struct

DATA = "tests/data"
OUT_ST = "tests/fuzz/corpus/fuzz_safetensors"
OUT_LORA = "tests/fuzz/corpus/fuzz_lora"
SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


def read(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    return header, raw[8 + n:]


def write(path, tensors, meta=None, pad=True):
    """tensors: list of (name, dtype, shape, bytes), laid out back to back in that order."""
    header, blobs, at = {}, [], 0
    if meta is not None:
        header["__metadata__"] = meta
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [at, at + len(data)]}
        blobs.append(data)
        at += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    if pad:  # as safetensors writes it: the header padded with spaces to 8 bytes
        text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def shrink(path, keep=None):
    """The file's tensors (the first `keep` names, sorted) at small shapes."""
    header, data = read(path)
    meta = header.pop("__metadata__", None)
    names = sorted(header)[:keep] if keep else sorted(header)
    tensors = []
    for name in names:
        t = header[name]
        shape = list(t["shape"])
        rank_dim = 0 if name.endswith(("lora_down.weight", "lora_A.weight", "down.weight")) else \
            1 if name.endswith(("lora_up.weight", "lora_B.weight", "up.weight")) else -1
        small = [d if i == rank_dim else min(d, 2) for i, d in enumerate(shape)]
        n = SIZES[t["dtype"]]
        for d in small:
            n *= d
        begin = t["data_offsets"][0]
        tensors.append((name, t["dtype"], small, data[begin:begin + n].ljust(n, b"\0")))
    return tensors, meta


def f32(*values):
    return struct.pack("<%df" % len(values), *values)


def f16(*values):
    return struct.pack("<%de" % len(values), *values)


def main():
    os.makedirs(OUT_ST, exist_ok=True)
    os.makedirs(OUT_LORA, exist_ok=True)
    # safetensors: real headers, shrunk
    for src, name in [("golden/lcm_scheduler.safetensors", "lcm_scheduler"),
                      ("golden/clip_tiny_gelu_L20.safetensors", "clip_golden"),
                      ("models/tiny-clip-gelu/text_encoder/model.safetensors", "clip_model"),
                      ("golden/unet_tiny_sd15.safetensors", "unet_golden")]:
        tensors, meta = shrink(os.path.join(DATA, src))
        write(f"{OUT_ST}/{name}.safetensors", tensors, meta)
    # every dtype, a scalar, an empty tensor, metadata
    all_dtypes = [(f"t_{dt.lower()}", dt, [2, 3], bytes(range(6 * SIZES[dt]))) for dt in SIZES]
    all_dtypes += [("scalar", "F32", [], f32(1.5)), ("empty", "F16", [0, 4], b"")]
    write(f"{OUT_ST}/dtypes.safetensors", all_dtypes, {"format": "pt", "note": "every dtype"})
    # gaps and unpadded header (both tolerated), a 0-d I64, trailing bytes after the last tensor
    header = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
              "b": {"dtype": "I64", "shape": [], "data_offsets": [16, 24]}}
    text = json.dumps(header).encode()
    with open(f"{OUT_ST}/gaps.safetensors", "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + bytes(range(32)))
    # an unsupported dtype (refused as such), and a tensor overlapping another (malformed)
    write(f"{OUT_ST}/f8.safetensors", [("x", "F8_E4M3", [4], b"\x01\x02\x03\x04")])
    text = json.dumps({"a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]},
                       "b": {"dtype": "U8", "shape": [4], "data_offsets": [2, 6]}}).encode()
    with open(f"{OUT_ST}/overlap.safetensors", "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + bytes(8))
    write(f"{OUT_ST}/header_only.safetensors", [], {"format": "pt"})

    # LoRA: each format's test file, shrunk, whole and as a few entries
    for src, name in [("kohya_diffusers", "kohya_diffusers"), ("kohya_ldm", "kohya_ldm"),
                      ("peft", "peft"), ("peft_meta", "peft_meta"), ("attnproc", "attnproc")]:
        path = os.path.join(DATA, "lora", src + ".safetensors")
        tensors, meta = shrink(path)
        write(f"{OUT_LORA}/{name}.safetensors", tensors, meta)
        few = 6 if src.startswith("kohya") else 4
        tensors, meta = shrink(path, keep=few)
        write(f"{OUT_LORA}/{name}_few.safetensors", tensors, meta)
    # kohya convolutions: a 3x3 down with a 1x1 up, mixed dtypes, a 0-d and a 1-element alpha
    conv = "lora_unet_down_blocks_0_resnets_0_conv1"
    lin = "lora_unet_down_blocks_0_attentions_0_proj_in"
    write(f"{OUT_LORA}/kohya_conv.safetensors", [
        (conv + ".lora_down.weight", "F16", [2, 2, 3, 3], f16(*[0.25] * 36)),
        (conv + ".lora_up.weight", "F32", [2, 2, 1, 1], f32(0.5, -0.5, 1.0, 2.0)),
        (conv + ".alpha", "F32", [], f32(1.0)),
        (lin + ".lora_down.weight", "BF16", [1, 2], b"\x80\x3f\x00\x40"),
        (lin + ".lora_up.weight", "F32", [2, 1], f32(1.0, 2.0)),
        (lin + ".alpha", "F16", [1], f16(0.5)),
    ], {"ss_network_dim": "2"})
    # PEFT with nested adapter metadata, an alpha pattern and a rank pattern
    meta = {"lora_adapter_metadata": json.dumps({"unet": {
        "r": 2, "lora_alpha": 4, "rank_pattern": {"to_k": 1}, "alpha_pattern": {"to_k": 2.0},
        "use_dora": False, "use_rslora": False}})}
    a = "unet.mid_block.attentions.0.transformer_blocks.0.attn1."
    write(f"{OUT_LORA}/peft_nested_meta.safetensors", [
        (a + "to_q.lora_A.weight", "F32", [2, 2], f32(1, 2, 3, 4)),
        (a + "to_q.lora_B.weight", "F32", [2, 2], f32(1, 0, 0, 1)),
        (a + "to_k.lora_A.weight", "F32", [1, 2], f32(1, 1)),
        (a + "to_k.lora_B.weight", "F32", [2, 1], f32(1, 1)),
    ], meta)


if __name__ == "__main__":
    main()
