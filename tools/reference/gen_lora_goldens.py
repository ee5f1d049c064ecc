"""Synthetic LoRA files in every supported format, and the weights diffusers merges from them.

Writes tests/data/lora/ (relative to the repository root) for the tiny SD1.5 pipeline in
tests/data/models/tiny-sd15 (made by gen_models.py, read here, never rewritten). Run from the
repository root with the pinned reference environment (tools/reference/requirements.txt):
    /work/venvs/ref/bin/python tools/reference/gen_lora_goldens.py

LoRA files (seeded random factors; rank 4 unless noted, see UNET_TARGETS / TEXT_TARGETS):
  kohya_diffusers.safetensors  kohya keys on diffusers module paths, F32, per-key alpha
                               (0-d, one 1-element), alpha 8 != rank, ranks 4 and 8 (UNet),
                               4 and 2 (text). One off-rank module per component: with two,
                               diffusers 0.32.2's _maybe_adjust_config replaces every alpha by
                               the module's rank (lora_alpha = r, alpha_pattern = rank_pattern)
  kohya_ldm.safetensors        the same factors and alphas keyed by the original LDM paths
                               (input_blocks / middle_block / output_blocks, in_layers_2, op, ...)
  peft.safetensors             diffusers' own save_lora_weights output (unet. / text_encoder.,
                               lora_A / lora_B), F16 as LCM-LoRA ships, rank 4, no alpha (scale 1)
  peft_meta.safetensors        save_lora_weights output of adapters with lora_alpha != r,
                               rank_pattern and alpha_pattern, plus the __metadata__ entry
                               "lora_adapter_metadata" laid out as diffusers >= 0.34 writes it
                               (0.32.2 writes no alpha at all): JSON of LoraConfig.to_dict() per
                               component, keys prefixed "unet." / "text_encoder."
  attnproc.safetensors         the old attention-processor format (unet.<attn>.processor.
                               to_q_lora.down.weight, to_out_lora = to_out.0), no alpha

Goldens (F32, keyed "unet.<diffusers name>" / "text_encoder.<name>", the merged value of every
tensor the LoRA targets, base + 0.7 * delta):
  golden_kohya.safetensors     pipe.load_lora_weights(kohya_diffusers) + fuse_lora(0.7); also
                               the expected result of kohya_ldm (identical factors and alphas)
  golden_peft.safetensors      load_lora_weights(peft) + fuse_lora(0.7)
  golden_peft_meta.safetensors the adapters built in memory from the LoraConfigs the metadata
                               holds, fused by diffusers (0.32.2 cannot read the metadata back)
  golden_attnproc.safetensors  load_lora_weights(attnproc) + fuse_lora(0.7)
  golden_stack.safetensors     kohya_diffusers at 0.7 and peft at -0.3, both fused
Every golden is also recomputed here with the merge math of models.md 8.3 (scale = multiplier *
alpha / rank, W += scale * U @ D, reshaped for convolutions) in float64 and must agree with
diffusers' result; each file's metadata says which library produced it and how.
"""
import json
import os
import sys
import tempfile

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import diffusers
import peft
import safetensors
import transformers
from diffusers import LatentConsistencyModelPipeline
from peft import LoraConfig, get_peft_model_state_dict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_weight_names as names  # noqa: E402  (the LDM naming rules, models.md 7.3)

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODEL = os.path.join(REPO, "tests", "data", "models", "tiny-sd15")
OUT = os.path.join(REPO, "tests", "data", "lora")

MULT = 0.7
STACK = (0.7, -0.3)  # kohya_diffusers, peft
ALPHA = 8.0
SEED = 1234

# (diffusers module path, LDM module path, rank). Covers every layer kind LCM-LoRA adapts.
L0 = "down_blocks.0.attentions.0"
L0_LDM = "input_blocks.1.1"
ATTN_LAYERS = ["attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0",
               "attn2.to_q", "attn2.to_k", "attn2.to_v", "attn2.to_out.0",
               "ff.net.0.proj", "ff.net.2"]
UNET_TARGETS = (
    [(f"{L0}.proj_in", f"{L0_LDM}.proj_in", 4),            # a 1x1 convolution here
     (f"{L0}.proj_out", f"{L0_LDM}.proj_out", 4)]
    + [(f"{L0}.transformer_blocks.0.{n}", f"{L0_LDM}.transformer_blocks.0.{n}", 4)
       for n in ATTN_LAYERS]
    + [("down_blocks.0.resnets.0.conv1", "input_blocks.1.0.in_layers.2", 4),
       ("down_blocks.0.resnets.0.conv2", "input_blocks.1.0.out_layers.3", 8),
       ("down_blocks.0.resnets.0.time_emb_proj", "input_blocks.1.0.emb_layers.1", 4),
       ("down_blocks.0.downsamplers.0.conv", "input_blocks.3.0.op", 4),
       ("down_blocks.2.resnets.0.conv_shortcut", "input_blocks.7.0.skip_connection", 4),
       ("mid_block.attentions.0.transformer_blocks.0.attn1.to_v",
        "middle_block.1.transformer_blocks.0.attn1.to_v", 4),
       ("mid_block.resnets.1.time_emb_proj", "middle_block.2.emb_layers.1", 4),
       ("up_blocks.0.upsamplers.0.conv", "output_blocks.2.1.conv", 4),  # level without attention
       ("up_blocks.2.upsamplers.0.conv", "output_blocks.8.2.conv", 4),
       ("up_blocks.3.resnets.2.conv_shortcut", "output_blocks.11.0.skip_connection", 4),
       ("up_blocks.3.attentions.0.proj_out", "output_blocks.9.1.proj_out", 4),
       ("up_blocks.3.attentions.2.transformer_blocks.0.attn2.to_out.0",
        "output_blocks.11.1.transformer_blocks.0.attn2.to_out.0", 4)])
TEXT_TARGETS = (
    [(f"text_model.encoder.layers.0.{n}", 4) for n in
     ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj", "mlp.fc1"]]
    + [("text_model.encoder.layers.0.mlp.fc2", 2),
       ("text_model.encoder.layers.4.self_attn.q_proj", 4),
       ("text_model.encoder.layers.4.mlp.fc2", 4)])
# kohya_diffusers stores this one's alpha as a 1-element tensor instead of a 0-d one.
ALPHA_1ELEM = "down_blocks.0.resnets.0.time_emb_proj"

# The old attention-processor file: two attention layers, rank 4, no alpha.
ATTNPROC_TARGETS = [f"{L0}.transformer_blocks.0.attn1.{n}" for n in ["to_q", "to_k", "to_v", "to_out.0"]] \
    + [f"mid_block.attentions.0.transformer_blocks.0.attn2.{n}" for n in ["to_q", "to_out.0"]]

# peft_meta: the adapters' configs (PEFT matches pattern keys as module-name suffixes).
META_UNET = dict(r=4, lora_alpha=8.0,
                 rank_pattern={"down_blocks.0.resnets.0.conv2": 8,
                               "mid_block.attentions.0.transformer_blocks.0.attn1.to_v": 2},
                 alpha_pattern={"up_blocks.3.attentions.0.proj_out": 2.0})
META_TEXT = dict(r=4, lora_alpha=6.0, rank_pattern={"text_model.encoder.layers.0.mlp.fc2": 2},
                 alpha_pattern={})


def versions():
    return {"torch": torch.__version__, "diffusers": diffusers.__version__,
            "transformers": transformers.__version__, "peft": peft.__version__,
            "safetensors": safetensors.__version__}


def load_pipe():
    return LatentConsistencyModelPipeline.from_pretrained(MODEL, safety_checker=None)


def base_weights():
    """Every base tensor, keyed "unet.<name>" / "text_encoder.<name>" as in the goldens."""
    out = {}
    for comp, file in [("unet", "unet/diffusion_pytorch_model.safetensors"),
                       ("text_encoder", "text_encoder/model.safetensors")]:
        for k, v in load_file(os.path.join(MODEL, file)).items():
            out[f"{comp}.{k}"] = v
    return out


def check_ldm_names():
    """The hand-written LDM paths above must follow gen_weight_names' rules."""
    with open(os.path.join(MODEL, "unet", "config.json")) as f:
        blocks = list(names.unet_blocks(json.load(f)))
    for dif, ldm, _ in UNET_TARGETS:
        _, got = names.to_ldm(dif + ".weight", blocks)
        assert got == ldm + ".weight", (dif, got, ldm)


class Lora:
    """One synthetic LoRA: per target "comp.path" -> (down, up, alpha or None)."""

    def __init__(self):
        self.mods = {}

    @staticmethod
    def random(seed, base, targets, dtype=torch.float32, alpha=None):
        """targets: [(comp.path, rank)]; factors shaped for the base layer (conv: kxk down)."""
        g = torch.Generator().manual_seed(seed)
        lora = Lora()
        for key, rank in targets:
            w = base[key + ".weight"]
            out_ch, in_ch = w.shape[0], w.shape[1]
            kern = tuple(w.shape[2:])
            down = torch.randn((rank, in_ch) + kern, generator=g) * 0.3
            up = torch.randn((out_ch, rank) + (1,) * len(kern), generator=g) * 0.3
            # Round to the file's dtype first so every consumer sees the same numbers.
            lora.mods[key] = (down.to(dtype).float(), up.to(dtype).float(), alpha)
        return lora

    def expected(self, base, mult, alpha_of=None):
        """models.md 8.3 in float64: {key.weight: merged} for every target."""
        out = {}
        for key, (down, up, alpha) in self.mods.items():
            rank = down.shape[0]
            if alpha_of is not None:
                alpha = alpha_of(key)
            scale = mult * (rank if alpha is None else alpha) / rank
            w = base[key + ".weight"].double()
            delta = up.double().reshape(up.shape[0], rank) @ down.double().reshape(rank, -1)
            out[key + ".weight"] = w + scale * delta.reshape(w.shape)
        return out


def targets_all():
    return [("unet." + d, r) for d, _, r in UNET_TARGETS] + \
           [("text_encoder." + t, r) for t, r in TEXT_TARGETS]


def kohya_key(key, ldm_of=None):
    comp, path = key.split(".", 1)
    if comp == "unet":
        return "lora_unet_" + (ldm_of[path] if ldm_of else path).replace(".", "_")
    return "lora_te_" + path.replace(".", "_")


def write_kohya(lora, path, ldm_of=None, dtype=torch.float32):
    tensors = {}
    for key, (down, up, alpha) in lora.mods.items():
        k = kohya_key(key, ldm_of)
        tensors[k + ".lora_down.weight"] = down.to(dtype).contiguous()
        tensors[k + ".lora_up.weight"] = up.to(dtype).contiguous()
        a = torch.tensor(alpha, dtype=dtype)
        tensors[k + ".alpha"] = a.reshape(1) if key == "unet." + ALPHA_1ELEM else a
    save(tensors, path, {"format": "pt"})


def split(lora, comp):
    return {k[len(comp) + 1:]: v for k, v in lora.mods.items() if k.startswith(comp + ".")}


def add_adapter(pipe, lora, unet_cfg, text_cfg):
    """Attach in-memory PEFT adapters holding the factors of `lora` (adapter "default")."""
    for comp, cfg in [("unet", unet_cfg), ("text_encoder", text_cfg)]:
        mods = split(lora, comp)
        if not mods:
            continue
        model = getattr(pipe, comp)
        model.add_adapter(LoraConfig(target_modules=sorted(mods), init_lora_weights=False, **cfg))
        with torch.no_grad():
            for name, (down, up, _) in mods.items():
                layer = model.get_submodule(name)
                layer.lora_A["default"].weight.copy_(down.reshape(layer.lora_A["default"].weight.shape))
                layer.lora_B["default"].weight.copy_(up.reshape(layer.lora_B["default"].weight.shape))


def save_peft(pipe, path, dtype, metadata=None):
    """diffusers' save_lora_weights of the in-memory adapters, optionally with alpha metadata."""
    layers = {}
    for comp in ("unet", "text_encoder"):
        sd = get_peft_model_state_dict(getattr(pipe, comp))
        layers[comp + "_lora_layers"] = {k: v.to(dtype) for k, v in sd.items()}
    with tempfile.TemporaryDirectory() as tmp:
        type(pipe).save_lora_weights(tmp, weight_name="lora.safetensors", **layers)
        tensors = load_file(os.path.join(tmp, "lora.safetensors"))
        with safe_open(os.path.join(tmp, "lora.safetensors"), "pt") as f:
            meta = dict(f.metadata() or {})
    if metadata is not None:
        meta["lora_adapter_metadata"] = json.dumps(metadata, indent=2, sort_keys=True)
    save(tensors, path, meta)


def adapter_metadata(pipe):
    """LoraConfig.to_dict() of each component, prefixed as diffusers >= 0.34 packs it."""
    out = {}
    for comp in ("unet", "text_encoder"):
        cfg = getattr(pipe, comp).peft_config["default"].to_dict()
        cfg["base_model_name_or_path"] = None  # transformers records a local path here
        for k, v in cfg.items():
            out[f"{comp}.{k}"] = sorted(v) if isinstance(v, set) else v
    return out


def write_attnproc(lora, path):
    tensors = {}
    for key, (down, up, _) in lora.mods.items():
        comp, path_ = key.split(".", 1)
        attn, _, proj = path_.rpartition(".to_")
        if proj == "out.0":
            attn, proj = path_[: -len(".to_out.0")], "out"
        k = f"{comp}.{attn}.processor.to_{proj}_lora"
        tensors[k + ".down.weight"] = down.contiguous()
        tensors[k + ".up.weight"] = up.contiguous()
    save(tensors, path, {"format": "pt"})


def fused(pipe, keys):
    """The current values of the pipeline's tensors named "comp.name.weight"."""
    out = {}
    for key in keys:
        comp, name = key.split(".", 1)
        sd = getattr(pipe, comp).state_dict()
        # PEFT wraps the layer: its weight lives at "<path>.base_layer.weight".
        wrapped = name[: -len(".weight")] + ".base_layer.weight"
        out[key] = (sd[wrapped] if wrapped in sd else sd[name]).detach().clone().float()
    return out


def fuse_file(files, scales):
    """Load LoRA files with diffusers and fuse them, each at its own scale; return the pipeline.

    Loading an adapter unmerges fused ones, so several files are loaded first, weighted with
    set_adapters and fused together."""
    pipe = load_pipe()
    adapters = [f"l{i}" for i in range(len(files))]
    for file, name in zip(files, adapters):
        pipe.load_lora_weights(file, adapter_name=name)
    if len(files) == 1:
        pipe.fuse_lora(components=["unet", "text_encoder"], lora_scale=scales[0])
    else:
        pipe.set_adapters(adapters, adapter_weights=list(scales))
        pipe.fuse_lora(components=["unet", "text_encoder"], lora_scale=1.0, adapter_names=adapters)
    return pipe


def agree(got, want, what):
    """diffusers' merge must match the 8.3 math (fp32 rounding only)."""
    assert set(got) == set(want), (what, sorted(set(got) ^ set(want)))
    for k in want:
        w = want[k]
        err = ((got[k].double() - w).norm() / w.norm()).item()
        assert err < 1e-6, f"{what}: {k}: rel err {err:.3g}"


def save(tensors, path, metadata):
    """save_file, unless the file already holds exactly this: safetensors writes the metadata
    in hash order, so rewriting identical content would still change the bytes."""
    if os.path.exists(path):
        with safe_open(path, "pt") as f:
            same = f.metadata() == metadata and set(f.keys()) == set(tensors) and all(
                f.get_tensor(k).dtype == v.dtype and torch.equal(f.get_tensor(k), v)
                for k, v in tensors.items())
        if same:
            return
    save_file(tensors, path, metadata=metadata)


def save_golden(name, tensors, meta):
    meta = {**{k: str(v) for k, v in meta.items()}, **versions(), "seed": str(SEED)}
    save({k: v.float().contiguous() for k, v in sorted(tensors.items())},
         os.path.join(OUT, name), meta)


def kohya_files(base):
    lora = Lora.random(SEED, base, targets_all(), alpha=ALPHA)
    ldm_of = {d: l for d, l, _ in UNET_TARGETS}
    a = os.path.join(OUT, "kohya_diffusers.safetensors")
    b = os.path.join(OUT, "kohya_ldm.safetensors")
    write_kohya(lora, a)
    write_kohya(lora, b, ldm_of)
    want = lora.expected(base, MULT)
    got = fused(fuse_file([a], [MULT]), want)
    agree(got, want, "kohya_diffusers")
    ldm_note = kohya_ldm_note(b, want)
    print("kohya_ldm:", ldm_note)
    save_golden("golden_kohya.safetensors", got, {
        "source": "diffusers LatentConsistencyModelPipeline.load_lora_weights(kohya_diffusers."
                  "safetensors) + fuse_lora(components=[unet, text_encoder], lora_scale=0.7); "
                  "checked against the models.md 8.3 math in float64",
        "lora_files": "kohya_diffusers.safetensors, kohya_ldm.safetensors (same factors)",
        "kohya_ldm": ldm_note, "multiplier": MULT})
    return lora


def kohya_ldm_note(path, want):
    """Whether diffusers itself can fuse the LDM-path file (0.32.2 cannot; say why)."""
    try:
        agree(fused(fuse_file([path], [MULT]), want), want, "kohya_ldm")
        return "diffusers fuses kohya_ldm to the same values"
    except (AssertionError, ValueError, KeyError, RuntimeError) as e:
        # The message lists a set (unordered): keep only its kind for a stable file.
        first = f"{type(e).__name__} on LDM block names such as down_blocks.1.1"
    pipe = load_pipe()
    sd, _ = pipe.lora_state_dict(path, unet_config=pipe.unet.config)
    remapped = "unet.up_blocks.0.attentions.2.conv.lora.down.weight" in sd
    return ("diffusers 0.32.2 cannot fuse it, so its expected values are golden_kohya's: its SD1 "
            "load_lora_weights does not remap LDM block names (" + first + "...)"
            + ("; its SDXL remap (given unet_config) maps output_blocks.2.1.conv to "
               "up_blocks.0.attentions.2.conv: it assumes attention in every up level" if remapped else ""))


def peft_file(base):
    lora = Lora.random(SEED + 1, base, [(k, 4) for k, _ in targets_all()], dtype=torch.float16)
    pipe = load_pipe()
    cfg = dict(r=4, lora_alpha=4)
    add_adapter(pipe, lora, cfg, cfg)
    path = os.path.join(OUT, "peft.safetensors")
    save_peft(pipe, path, torch.float16)
    want = lora.expected(base, MULT)
    got = fused(fuse_file([path], [MULT]), want)
    agree(got, want, "peft")
    save_golden("golden_peft.safetensors", got, {
        "source": "diffusers load_lora_weights(peft.safetensors) + fuse_lora(lora_scale=0.7); the "
                  "file is diffusers' save_lora_weights of PEFT adapters (F16, r 4, lora_alpha 4); "
                  "checked against the models.md 8.3 math in float64",
        "lora_files": "peft.safetensors", "multiplier": MULT})
    return lora


def pattern_alpha(cfg):
    def alpha_of(key):
        path = key.split(".", 1)[1]
        return cfg["alpha_pattern"].get(path, cfg["lora_alpha"])
    return alpha_of


def peft_meta_file(base):
    rank_of = {**{"unet." + k: v for k, v in META_UNET["rank_pattern"].items()},
               **{"text_encoder." + k: v for k, v in META_TEXT["rank_pattern"].items()}}
    targets = [(k, rank_of.get(k, 4)) for k, _ in targets_all()]
    lora = Lora.random(SEED + 2, base, targets)
    pipe = load_pipe()
    add_adapter(pipe, lora, META_UNET, META_TEXT)
    path = os.path.join(OUT, "peft_meta.safetensors")
    save_peft(pipe, path, torch.float32, adapter_metadata(pipe))
    pipe.fuse_lora(components=["unet", "text_encoder"], lora_scale=MULT)
    want = {}
    for comp, cfg in [("unet", META_UNET), ("text_encoder", META_TEXT)]:
        part = Lora()
        part.mods = {k: v for k, v in lora.mods.items() if k.startswith(comp + ".")}
        want.update(part.expected(base, MULT, pattern_alpha(cfg)))
    got = fused(pipe, want)
    agree(got, want, "peft_meta")
    save_golden("golden_peft_meta.safetensors", got, {
        "source": "PEFT adapters built in memory from the LoraConfigs that peft_meta.safetensors' "
                  "lora_adapter_metadata holds, fused by diffusers fuse_lora(lora_scale=0.7) "
                  "(diffusers 0.32.2 writes and reads no alpha metadata; the file adds it in the "
                  "layout of diffusers >= 0.34); checked against the models.md 8.3 math",
        "lora_files": "peft_meta.safetensors", "multiplier": MULT,
        "unet_config": json.dumps(META_UNET), "text_encoder_config": json.dumps(META_TEXT)})


def attnproc_file(base):
    lora = Lora.random(SEED + 3, base, [("unet." + t, 4) for t in ATTNPROC_TARGETS])
    path = os.path.join(OUT, "attnproc.safetensors")
    write_attnproc(lora, path)
    want = lora.expected(base, MULT)
    got = fused(fuse_file([path], [MULT]), want)
    agree(got, want, "attnproc")
    save_golden("golden_attnproc.safetensors", got, {
        "source": "diffusers load_lora_weights(attnproc.safetensors) + fuse_lora(lora_scale=0.7); "
                  "checked against the models.md 8.3 math in float64 (no alpha: scale 0.7)",
        "lora_files": "attnproc.safetensors", "multiplier": MULT})


def stack_golden(base, kohya, peft_lora):
    files = [os.path.join(OUT, f) for f in ("kohya_diffusers.safetensors", "peft.safetensors")]
    want = kohya.expected(base, STACK[0])
    second = peft_lora.expected(base, STACK[1])
    for k, w in second.items():
        want[k] = want.get(k, base[k].double()) + (w - base[k].double())
    got = fused(fuse_file(files, STACK), want)
    agree(got, want, "stack")
    save_golden("golden_stack.safetensors", got, {
        "source": "diffusers: load_lora_weights of kohya_diffusers and of peft, set_adapters(weights "
                  "[0.7, -0.3]), fuse_lora(lora_scale=1.0) of both; checked against the models.md "
                  "8.3 math in float64",
        "lora_files": "kohya_diffusers.safetensors, peft.safetensors",
        "multipliers": json.dumps(list(STACK))})


def main():
    torch.set_grad_enabled(False)
    os.makedirs(OUT, exist_ok=True)
    check_ldm_names()
    base = base_weights()
    kohya = kohya_files(base)
    peft_lora = peft_file(base)
    peft_meta_file(base)
    attnproc_file(base)
    stack_golden(base, kohya, peft_lora)
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"wrote {OUT} ({total / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
