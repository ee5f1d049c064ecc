"""Tiny random models of the real architectures, and golden tensors from the reference.

Writes (relative to the repository root):
  tests/data/models/tiny-sd15/            diffusers folder (text_encoder/, tokenizer/, model_index.json)
  tests/data/models/tiny-sd15.safetensors the same weights as an LDM single file, stored F16
  tests/data/models/tiny-clip-gelu/       an SD2-style CLIP text encoder (exact GELU, other eos)
  tests/data/golden/clip_*.safetensors    inputs and expected outputs (F32)

Weights are rounded to fp16-representable values before anything is saved, so the F32
diffusers copy and the F16 single file hold identical numbers and share one golden.
Run with tools/reference/.venv/bin/python (see requirements.txt).
"""
import json
import os
import shutil

import torch
from safetensors.torch import save_file
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

import clip_bpe

REPO = clip_bpe.REPO
DATA = os.path.join(REPO, "tests", "data")
MODELS = os.path.join(DATA, "models")
GOLDEN = os.path.join(DATA, "golden")

PROMPTS = [
    "a photo of a cat",
    "an astronaut riding a horse on the moon, highly detailed, 8k",
    "a watercolor painting of a lighthouse on a cliff at dawn, " * 6,  # > 77 tokens: truncated
]


def versions():
    import diffusers
    import safetensors
    import transformers
    return {"torch": torch.__version__, "transformers": transformers.__version__,
            "diffusers": diffusers.__version__, "safetensors": safetensors.__version__}


def round_to_f16(model):
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())


def tiny_clip(seed, **config):
    torch.manual_seed(seed)
    model = CLIPTextModel(CLIPTextConfig(**config)).eval()
    round_to_f16(model)
    return model


def encode(model, ids, clip_skip=None):
    with torch.no_grad():
        out = model(input_ids=ids, output_hidden_states=True)
        result = {"last_hidden_state": out.last_hidden_state, "pooler_output": out.pooler_output}
        # diffusers' clip_skip=1: the penultimate layer's states through the final LayerNorm.
        penultimate = out.hidden_states[-2]
        result["last_hidden_state_clip_skip_1"] = model.text_model.final_layer_norm(penultimate)
    return {k: v.float().contiguous() for k, v in result.items()}


def save_golden(name, tensors, meta):
    os.makedirs(GOLDEN, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(GOLDEN, name),
              metadata={k: str(v) for k, v in meta.items()})


def ldm_single_file(model, path):
    """SD1 single-file naming: the HF CLIP names under cond_stage_model.transformer."""
    tensors = {"cond_stage_model.transformer." + k: v.half().contiguous()
               for k, v in model.state_dict().items() if not k.endswith("position_ids")}
    # Real SD1 files carry this buffer; loaders must skip it.
    tensors["cond_stage_model.transformer.text_model.embeddings.position_ids"] = \
        torch.arange(model.config.max_position_embeddings, dtype=torch.int64)[None]
    save_file(tensors, path, metadata={"format": "pt"})


def build_tiny_sd15(meta):
    # SD1.5's text_encoder/config.json, scaled down; it keeps the legacy eos id 2 (argmax pooling).
    model = tiny_clip(0, vocab_size=49408, hidden_size=32, intermediate_size=37,
                      num_hidden_layers=5, num_attention_heads=4, max_position_embeddings=77,
                      hidden_act="quick_gelu", layer_norm_eps=1e-5, projection_dim=32,
                      bos_token_id=0, eos_token_id=2, pad_token_id=1)
    root = os.path.join(MODELS, "tiny-sd15")
    shutil.rmtree(root, ignore_errors=True)
    model.save_pretrained(os.path.join(root, "text_encoder"), safe_serialization=True)
    clip_bpe.write_tokenizer_folder(os.path.join(root, "tokenizer"))
    index = {"_class_name": "StableDiffusionPipeline", "_diffusers_version": meta["diffusers"],
             "text_encoder": ["transformers", "CLIPTextModel"],
             "tokenizer": ["transformers", "CLIPTokenizer"]}
    with open(os.path.join(root, "model_index.json"), "w") as f:
        json.dump(index, f, indent=2)
    ldm_single_file(model, os.path.join(MODELS, "tiny-sd15.safetensors"))

    tok = CLIPTokenizer.from_pretrained(os.path.join(root, "tokenizer"))
    ids = tok(PROMPTS, padding="max_length", max_length=77, truncation=True,
              return_tensors="pt").input_ids
    out = encode(model, ids)
    save_golden("clip_tiny_sd15.safetensors", {"input_ids": ids.to(torch.int64), **out},
                dict(meta, model="tiny-sd15 text_encoder", prompts=json.dumps(PROMPTS)))


def build_tiny_clip_gelu(meta):
    # SD2-style: exact GELU; eos id != 2 selects "first eos position" pooling.
    model = tiny_clip(1, vocab_size=1000, hidden_size=48, intermediate_size=96,
                      num_hidden_layers=2, num_attention_heads=3, max_position_embeddings=77,
                      hidden_act="gelu", layer_norm_eps=1e-5, projection_dim=48,
                      bos_token_id=998, eos_token_id=999, pad_token_id=0)
    root = os.path.join(MODELS, "tiny-clip-gelu")
    shutil.rmtree(root, ignore_errors=True)
    model.save_pretrained(os.path.join(root, "text_encoder"), safe_serialization=True)

    g = torch.Generator().manual_seed(2)
    for length in (77, 20):
        ids = torch.randint(0, 998, (3, length), generator=g)
        ids[0, length // 2] = 999
        ids[0, length - 1] = 999      # a second eos: pooling takes the first
        ids[1, 3] = 999
        # row 2 has no eos: pooling falls back to position 0
        out = encode(model, ids)
        save_golden(f"clip_tiny_gelu_L{length}.safetensors", {"input_ids": ids, **out},
                    dict(meta, model="tiny-clip-gelu text_encoder"))


def main():
    meta = versions()
    os.makedirs(MODELS, exist_ok=True)
    build_tiny_sd15(meta)
    build_tiny_clip_gelu(meta)


if __name__ == "__main__":
    main()
