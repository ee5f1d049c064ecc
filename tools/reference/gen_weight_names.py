#!/usr/bin/env python3
"""Write tests/data/sd15_weight_names.txt: every SD1.5 tensor in both namings.

Run from anywhere with the reference venv (CPU only, nothing is downloaded):
    /work/venvs/ref/bin/python tools/reference/gen_weight_names.py [--out PATH] [--compare PATH]

The diffusers names and shapes come from diffusers' and transformers' own
classes (UNet2DConditionModel, AutoencoderKL, CLIPTextModel) built from the
SD1.5 configs on the meta device, so nothing is allocated. The LDM names are
derived with the block rules of models.md section 7.3 (the same rules
daemon/engine/core/name_map.c implements) and then checked the other way
round: a state dict keyed by those LDM names goes through diffusers' own
single-file converters (convert_ldm_unet_checkpoint, convert_ldm_vae_checkpoint,
convert_ldm_clip_checkpoint), which must put every tensor exactly at its
diffusers name. The same check runs for an SDXL-shaped UNet, and asserts the
SDXL pairs tests/unit/test_name_map.c checks by hand.

One rule the converters cannot confirm: they take an up block's upsampler from
either output_blocks.N.1.conv or output_blocks.N.2.conv, whichever exists. The
index follows from the LDM module list (ResBlock, then the SpatialTransformer
if the level has attention, then Upsample): 1 without attention, 2 with. The
SDXL hand-checked pairs pin it (output_blocks.2.2.conv in SDXL's first up
block, which has attention; SD1.5's has none: output_blocks.2.1.conv).

Rows are ordered by block in forward order (conv_in, time embedding, down
blocks with each ResNet followed by its attention, mid block, up blocks,
output; the VAE encoder, quant convs, decoder middle then up blocks), and by
the model's state_dict order inside a block. --compare diffs the result with
another copy (e.g. the spec's) and exits non-zero when they differ.
"""
import argparse
import difflib
import os
import sys

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from diffusers.loaders.single_file_utils import (convert_ldm_clip_checkpoint,
                                                 convert_ldm_unet_checkpoint,
                                                 convert_ldm_vae_checkpoint)
from transformers import CLIPTextConfig, CLIPTextModel

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(REPO, "tests", "data", "sd15_weight_names.txt")

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
TEXT_PREFIX = "cond_stage_model.transformer."

# unet/config.json, vae/config.json and text_encoder/config.json of SD1.5 (models.md 2.1, 3.1, 5.1);
# the keys left out have the classes' defaults.
SD15_UNET = dict(
    sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
    block_out_channels=(320, 640, 1280, 1280),
    down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
    up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    cross_attention_dim=768, attention_head_dim=8, norm_num_groups=32, norm_eps=1e-5,
    flip_sin_to_cos=True, freq_shift=0, downsample_padding=1, act_fn="silu")
SD15_VAE = dict(
    in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, sample_size=512,
    block_out_channels=(128, 256, 512, 512), norm_num_groups=32, act_fn="silu",
    down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)
SD15_CLIP = dict(
    vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
    num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu",
    layer_norm_eps=1e-5, projection_dim=768, bos_token_id=0, eos_token_id=2, pad_token_id=1)
# models.md 2.8: SDXL base 1.0 as deltas of SD1.5.
SDXL_UNET = dict(
    SD15_UNET, sample_size=128, block_out_channels=(320, 640, 1280),
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    attention_head_dim=(5, 10, 20), transformer_layers_per_block=(1, 2, 10),
    cross_attention_dim=2048, use_linear_projection=True, addition_embed_type="text_time",
    addition_time_embed_dim=256, projection_class_embeddings_input_dim=2816)

# The spec's totals: a diffusers or transformers change that moves them must be noticed.
EXPECTED = {"UNet": (686, 859_520_964), "VAE": (248, 83_653_863), "CLIP": (196, 123_060_480)}

# Pairs that tests/unit/test_name_map.c checks by hand for an SDXL layout (LDM, diffusers).
SDXL_HAND_CHECKED = [
    ("output_blocks.2.2.conv.weight", "up_blocks.0.upsamplers.0.conv.weight"),
    ("output_blocks.5.2.conv.bias", "up_blocks.1.upsamplers.0.conv.bias"),
    ("input_blocks.4.1.transformer_blocks.0.attn1.to_q.weight",
     "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.weight"),
    ("input_blocks.7.1.transformer_blocks.9.ff.net.2.weight",
     "down_blocks.2.attentions.0.transformer_blocks.9.ff.net.2.weight"),
    ("label_emb.0.0.weight", "add_embedding.linear_1.weight"),
    ("label_emb.0.2.bias", "add_embedding.linear_2.bias"),
    ("input_blocks.1.0.in_layers.0.weight", "down_blocks.0.resnets.0.norm1.weight"),
    ("input_blocks.3.0.op.weight", "down_blocks.0.downsamplers.0.conv.weight"),
    ("input_blocks.6.0.op.bias", "down_blocks.1.downsamplers.0.conv.bias"),
    ("input_blocks.8.1.proj_in.weight", "down_blocks.2.attentions.1.proj_in.weight"),
    ("middle_block.1.transformer_blocks.9.attn2.to_k.weight",
     "mid_block.attentions.0.transformer_blocks.9.attn2.to_k.weight"),
    ("middle_block.2.emb_layers.1.weight", "mid_block.resnets.1.time_emb_proj.weight"),
    ("output_blocks.2.1.proj_out.weight", "up_blocks.0.attentions.2.proj_out.weight"),
    ("output_blocks.8.0.skip_connection.weight", "up_blocks.2.resnets.2.conv_shortcut.weight"),
    ("out.2.weight", "conv_out.weight"),
]

CONV_NOTE = "(LDM: 1x1 conv, shape [512, 512, 1, 1])"

# ---- the block rules (models.md 7.3): diffusers layer -> LDM layer inside a block ----

PARAM = {}  # the block is a single layer
UNET_RESNET = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1",
               "norm2": "out_layers.0", "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}
UNET_ATTN = {}  # SpatialTransformer and Transformer2DModel share their names
VAE_RESNET = {"conv_shortcut": "nin_shortcut"}
VAE_ATTN = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def has_attention(block_type):
    return block_type.startswith("CrossAttn")


def unet_blocks(config):
    """(LDM prefix, diffusers prefix, inner renames) for each UNet block, in forward order."""
    n, L = len(config["block_out_channels"]), config["layers_per_block"]
    up_attn = [has_attention(t) for t in config["up_block_types"]]
    yield "input_blocks.0.0", "conv_in", PARAM
    yield "time_embed.0", "time_embedding.linear_1", PARAM
    yield "time_embed.2", "time_embedding.linear_2", PARAM
    yield "time_embedding.cond_proj", "time_embedding.cond_proj", PARAM  # LCM keeps diffusers' name
    if config.get("addition_embed_type") == "text_time":
        yield "label_emb.0.0", "add_embedding.linear_1", PARAM
        yield "label_emb.0.2", "add_embedding.linear_2", PARAM
    for i, block_type in enumerate(config["down_block_types"]):
        for j in range(L):
            k = (L + 1) * i + j + 1
            yield f"input_blocks.{k}.0", f"down_blocks.{i}.resnets.{j}", UNET_RESNET
            if has_attention(block_type):
                yield f"input_blocks.{k}.1", f"down_blocks.{i}.attentions.{j}", UNET_ATTN
        if i < n - 1:
            yield f"input_blocks.{(L + 1) * (i + 1)}.0.op", f"down_blocks.{i}.downsamplers.0.conv", PARAM
    yield "middle_block.0", "mid_block.resnets.0", UNET_RESNET
    yield "middle_block.1", "mid_block.attentions.0", UNET_ATTN
    yield "middle_block.2", "mid_block.resnets.1", UNET_RESNET
    for i in range(n):
        for j in range(L + 1):
            k = (L + 1) * i + j
            yield f"output_blocks.{k}.0", f"up_blocks.{i}.resnets.{j}", UNET_RESNET
            if up_attn[i]:
                yield f"output_blocks.{k}.1", f"up_blocks.{i}.attentions.{j}", UNET_ATTN
        if i < n - 1:
            # After the level's last ResNet (and its attention, if any).
            conv = 2 if up_attn[i] else 1
            yield f"output_blocks.{(L + 1) * i + L}.{conv}.conv", f"up_blocks.{i}.upsamplers.0.conv", PARAM
    yield "out.0", "conv_norm_out", PARAM
    yield "out.2", "conv_out", PARAM


def vae_mid(coder):
    yield f"{coder}.mid.block_1", f"{coder}.mid_block.resnets.0", VAE_RESNET
    yield f"{coder}.mid.attn_1", f"{coder}.mid_block.attentions.0", VAE_ATTN
    yield f"{coder}.mid.block_2", f"{coder}.mid_block.resnets.1", VAE_RESNET


def vae_blocks(config):
    n, L = len(config["block_out_channels"]), config["layers_per_block"]
    yield "encoder.conv_in", "encoder.conv_in", PARAM
    for i in range(n):
        for j in range(L):
            yield f"encoder.down.{i}.block.{j}", f"encoder.down_blocks.{i}.resnets.{j}", VAE_RESNET
        if i < n - 1:
            yield f"encoder.down.{i}.downsample.conv", f"encoder.down_blocks.{i}.downsamplers.0.conv", PARAM
    yield from vae_mid("encoder")
    yield "encoder.norm_out", "encoder.conv_norm_out", PARAM
    yield "encoder.conv_out", "encoder.conv_out", PARAM
    yield "quant_conv", "quant_conv", PARAM
    yield "post_quant_conv", "post_quant_conv", PARAM
    yield "decoder.conv_in", "decoder.conv_in", PARAM
    yield from vae_mid("decoder")
    for i in range(n):
        level = n - 1 - i  # LDM numbers decoder levels by resolution
        for j in range(L + 1):
            yield f"decoder.up.{level}.block.{j}", f"decoder.up_blocks.{i}.resnets.{j}", VAE_RESNET
        if level > 0:
            yield f"decoder.up.{level}.upsample.conv", f"decoder.up_blocks.{i}.upsamplers.0.conv", PARAM
    yield "decoder.norm_out", "decoder.conv_norm_out", PARAM
    yield "decoder.conv_out", "decoder.conv_out", PARAM


def to_ldm(name, blocks):
    """(block index, LDM name) of a diffusers name; exactly one block must hold it."""
    hits = [(k, b) for k, b in enumerate(blocks) if name.startswith(b[1] + ".")]
    assert len(hits) == 1, f"{name}: in {len(hits)} blocks"
    k, (ldm, dif, renames) = hits[0]
    layer, _, leaf = name[len(dif) + 1:].rpartition(".")
    assert leaf in ("weight", "bias"), name
    if renames is PARAM:
        assert layer == "", name
        return k, f"{ldm}.{leaf}"
    return k, f"{ldm}.{renames.get(layer, layer)}.{leaf}"


# ---- models and diffusers' converters ----

def meta_model(build):
    with torch.device("meta"):
        return build()


def parameters(model):
    """name -> shape of the model's parameters, in state_dict order (buffers excluded)."""
    params = dict(model.named_parameters())
    return {k: tuple(v.shape) for k, v in model.state_dict().items() if k in params}


def ldm_checkpoint(ldm_shapes):
    return {k: torch.empty(s, device="meta") for k, s in ldm_shapes.items()}


def check_converted(converted, ckpt, dif_to_ldm, dif_shapes, what):
    """Every tensor landed at its diffusers name; returns the names reshaped on the way."""
    assert set(converted) == set(dif_shapes), (
        f"{what}: converter gave {sorted(set(converted) ^ set(dif_shapes))[:8]} differently")
    reshaped = set()
    for dif, tensor in converted.items():
        src = ckpt[dif_to_ldm[dif]]
        assert tensor is src or tensor._base is src, f"{what}: {dif} came from elsewhere"
        assert tuple(tensor.shape) == dif_shapes[dif], f"{what}: {dif} {tuple(tensor.shape)}"
        if tensor is not src:
            reshaped.add(dif)
    return reshaped


def is_vae_attn_linear(name):
    """The VAE mid-attention projections: 1x1 convs in LDM, Linear in diffusers."""
    return ".mid_block.attentions.0." in name and name.endswith(
        (".to_q.weight", ".to_k.weight", ".to_v.weight", ".to_out.0.weight"))


def unet_rows(config):
    model = meta_model(lambda: UNet2DConditionModel(**config))
    shapes = parameters(model)
    blocks = list(unet_blocks(model.config))
    order, dif_to_ldm = {}, {}
    for name in shapes:
        order[name], dif_to_ldm[name] = to_ldm(name, blocks)
    ckpt = ldm_checkpoint({UNET_PREFIX + dif_to_ldm[d]: s for d, s in shapes.items()})
    converted = convert_ldm_unet_checkpoint(ckpt, model.config)
    reshaped = check_converted(converted, ckpt, {d: UNET_PREFIX + l for d, l in dif_to_ldm.items()},
                               shapes, "unet")
    assert not reshaped
    return model, shapes, order, dif_to_ldm, converted, ckpt


def unet_section():
    _, shapes, order, dif_to_ldm, _, _ = unet_rows(SD15_UNET)
    names = sorted(shapes, key=lambda d: order[d])  # stable: state_dict order inside a block
    return [(d, UNET_PREFIX + dif_to_ldm[d], shapes[d], False) for d in names]


def vae_section():
    model = meta_model(lambda: AutoencoderKL(**SD15_VAE))
    shapes = parameters(model)
    blocks = list(vae_blocks(model.config))
    order, dif_to_ldm = {}, {}
    for name in shapes:
        order[name], dif_to_ldm[name] = to_ldm(name, blocks)
    conv = {d for d in shapes if is_vae_attn_linear(d)}
    assert len(conv) == 8 and all(len(shapes[d]) == 2 for d in conv), conv
    ldm_shapes = {VAE_PREFIX + dif_to_ldm[d]: s + ((1, 1) if d in conv else ()) for d, s in shapes.items()}
    ckpt = ldm_checkpoint(ldm_shapes)
    converted = convert_ldm_vae_checkpoint(ckpt, model.config)
    reshaped = check_converted(converted, ckpt, {d: VAE_PREFIX + l for d, l in dif_to_ldm.items()},
                               shapes, "vae")
    assert reshaped == conv, reshaped ^ conv
    names = sorted(shapes, key=lambda d: order[d])
    return [(d, VAE_PREFIX + dif_to_ldm[d], shapes[d], d in conv) for d in names]


def clip_section():
    model = meta_model(lambda: CLIPTextModel(CLIPTextConfig(**SD15_CLIP)))
    shapes = parameters(model)
    ckpt = ldm_checkpoint({TEXT_PREFIX + d: s for d, s in shapes.items()})
    converted = convert_ldm_clip_checkpoint(ckpt)
    check_converted(converted, ckpt, {d: TEXT_PREFIX + d for d in shapes}, shapes, "clip")
    return [(d, TEXT_PREFIX + d, s, False) for d, s in shapes.items()]


def check_lcm():
    """LCM-distilled UNets add exactly time_embedding.cond_proj.weight [320, 256]."""
    sd15 = parameters(meta_model(lambda: UNet2DConditionModel(**SD15_UNET)))
    lcm = parameters(meta_model(lambda: UNet2DConditionModel(**SD15_UNET, time_cond_proj_dim=256)))
    extra = {k: v for k, v in lcm.items() if k not in sd15}
    assert extra == {"time_embedding.cond_proj.weight": (320, 256)}, extra
    assert to_ldm("time_embedding.cond_proj.weight", list(unet_blocks(SD15_UNET)))[1] == \
        "time_embedding.cond_proj.weight"


def check_sdxl():
    """The same rules hold for SDXL's layout, by diffusers' converter; and the hand-checked pairs."""
    _, shapes, _, _, converted, ckpt = unet_rows(SDXL_UNET)
    # What the converter did, independent of our rules: which LDM tensor each diffusers name got.
    ldm_of = {id(t): k[len(UNET_PREFIX):] for k, t in ckpt.items()}
    by_converter = {ldm_of[id(t)]: d for d, t in converted.items()}
    for ldm, dif in SDXL_HAND_CHECKED:
        assert by_converter.get(ldm) == dif, f"SDXL {ldm}: converter says {by_converter.get(ldm)}"
    assert len(shapes) == 1680, len(shapes)


def shape_text(shape):
    return "[" + ", ".join(str(d) for d in shape) + "]"


def render(sections):
    counts = {k: (len(rows), sum(torch.Size(s).numel() for _, _, s, _ in rows)) for k, rows in sections}
    for key, want in EXPECTED.items():
        assert counts[key] == want, f"{key}: {counts[key]} != {want}"
    (un, up), (vn, vp), (cn, cp) = counts["UNet"], counts["VAE"], counts["CLIP"]
    lines = [
        "# Companion to models.md: complete SD1.5 tensor-name table (generated from the mapping rules in models.md §7;",
        f"# self-checked: UNet {un} tensors / {up:,} params; VAE {vn} tensors / {vp:,} params; "
        f"CLIP-L text {cn} tensors / {cp:,} params).",
        "# Columns: diffusers name (inside unet/, vae/, text_encoder/)   LDM single-file name   PyTorch shape "
        "(row-major, [out,in,kh,kw] for convs, [out,in] for linears)",
        "# LCM-distilled UNets (e.g. LCM_Dreamshaper_v7) add one tensor: time_embedding.cond_proj.weight [320, 256]"
        "  <->  model.diffusion_model.time_embedding.cond_proj.weight",
        "# Tensors that may also appear and must be ignored: text_model.embeddings.position_ids (int64 [1,77]), "
        "LDM buffers betas/alphas_cumprod/... , model_ema.*, logvar.",
        "# Columns are separated by two spaces. Eight VAE attention rows (q/k/v/proj_out of the encoder and decoder "
        "mid blocks) carry a trailing note",
        f"# '{CONV_NOTE}': LDM files hold those weights as 1x1 convs, diffusers files as Linear [512, 512]; "
        "the loader reshapes.",
        f"# Tensor counts per section: UNet {un}, VAE {vn}, CLIP {cn} ({un + vn + cn:,} rows).",
    ]
    for key, rows in sections:
        lines.append(f"### {key}")
        for dif, ldm, shape, conv in rows:
            lines.append(f"{dif}  {ldm}  {shape_text(shape)}" + (f"  {CONV_NOTE}" if conv else ""))
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--compare", help="a copy to diff the result with (exit 1 if different)")
    args = ap.parse_args()
    check_lcm()
    check_sdxl()
    text = render([("UNet", unet_section()), ("VAE", vae_section()), ("CLIP", clip_section())])
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"wrote {args.out}")
    if args.compare:
        with open(args.compare, encoding="utf-8") as f:
            other = f.read()
        diff = list(difflib.unified_diff(other.splitlines(), text.splitlines(), args.compare, args.out,
                                         lineterm=""))
        print("\n".join(diff[:200]) if diff else f"identical to {args.compare}")
        return 1 if diff else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
