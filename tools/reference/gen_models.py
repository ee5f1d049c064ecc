"""Tiny random models of the real architectures, and golden tensors from the reference.

Writes (relative to the repository root):
  tests/data/models/tiny-sd15/            diffusers folder: an LCM-distilled SD1.5-shaped pipeline
                                          (text_encoder/, tokenizer/, unet/ with time_cond_proj_dim,
                                          vae/, scheduler/, model_index.json)
  tests/data/models/tiny-sd15.safetensors the same pipeline as an LDM single file, stored F16
                                          (names by gen_weight_names' rules, checked by
                                          round-tripping through diffusers' own converters)
  tests/data/models/tiny-clip-gelu/       an SD2-style CLIP text encoder (exact GELU, other eos)
  tests/data/models/tiny-unet-sd15/       an SD1.5-shaped UNet without the LCM input (unet/ only)
  tests/data/models/tiny-unet-sdxl/       an SDXL-shaped UNet: linear projections, depth 2,
                                          text_time embedding (unet/ only)
  tests/data/models/taesd/                a full-width TAESD (AutoencoderTiny), random weights
  tests/data/models/tiny-sd15-plain/      tiny-sd15 with the plain UNet (symlinks), for the
                                          LCM-LoRA route: LoRA fused, classifier-free guidance
  tests/data/golden/*.safetensors         inputs and expected outputs (F32)

Weights are rounded to fp16-representable values before anything is saved, so the F32
diffusers copy and the F16 single file hold identical numbers and share one golden.
Run with tools/reference/.venv/bin/python (see requirements.txt).
"""
import json
import os
import shutil

import torch
from diffusers import AutoencoderKL, AutoencoderTiny, LCMScheduler, UNet2DConditionModel
from safetensors.torch import save_file
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

import clip_bpe
import gen_weight_names as names

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


def unchanged(path, tensors, metadata):
    """safetensors' header order is not stable; keep a file whose contents are already equal."""
    if not os.path.exists(path):
        return False
    from safetensors import safe_open
    with safe_open(path, "pt") as f:
        if f.metadata() != metadata or set(f.keys()) != set(tensors):
            return False
        return all(torch.equal(f.get_tensor(k), v) for k, v in tensors.items())


def save_golden(name, tensors, meta):
    os.makedirs(GOLDEN, exist_ok=True)
    path = os.path.join(GOLDEN, name)
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    metadata = {k: str(v) for k, v in meta.items()}
    if not unchanged(path, tensors, metadata):
        save_file(tensors, path, metadata=metadata)


def ldm_names(blocks, state):
    """diffusers name -> LDM name for a module's state dict."""
    blocks = list(blocks)
    return {k: names.to_ldm(k, blocks)[1] for k in state}


def check_with_diffusers(convert, ldm_state, state, **kw):
    """diffusers' own converter must give back exactly the diffusers state dict (its UNet
    converter does not carry LCM's cond_proj, which LCM files keep under the diffusers name)."""
    back = convert(dict(ldm_state), **kw)
    missing = set(state) - set(back) - {"time_embedding.cond_proj.weight"}
    assert set(back) <= set(state) and not missing, sorted(set(back) ^ set(state))[:8]
    for k, v in back.items():
        assert torch.equal(v.reshape(state[k].shape), state[k]), k


def ldm_single_file(text, unet, vae, path):
    from diffusers.loaders.single_file_utils import (convert_ldm_unet_checkpoint,
                                                     convert_ldm_vae_checkpoint)
    tensors = {}
    u = unet.state_dict()
    unet_map = ldm_names(names.unet_blocks(dict(unet.config)), u)
    ldm_unet = {"model.diffusion_model." + unet_map[k]: v for k, v in u.items()}
    check_with_diffusers(convert_ldm_unet_checkpoint, ldm_unet, u, config=dict(unet.config))
    tensors.update(ldm_unet)
    v = vae.state_dict()
    vae_map = ldm_names(names.vae_blocks(dict(vae.config)), v)
    # LDM stores the VAE attention projections as 1x1 convolutions.
    ldm_vae = {"first_stage_model." + vae_map[k]: (t[:, :, None, None] if names.is_vae_attn_linear(k) else t)
               for k, t in v.items()}
    check_with_diffusers(convert_ldm_vae_checkpoint, ldm_vae, v, config=dict(vae.config))
    tensors.update(ldm_vae)
    tensors.update({"cond_stage_model.transformer." + k: t for k, t in text.state_dict().items()
                    if not k.endswith("position_ids")})
    tensors = {k: t.half().contiguous() for k, t in tensors.items()}
    # Real SD1 files carry these buffers; loaders must skip them.
    tensors["cond_stage_model.transformer.text_model.embeddings.position_ids"] = \
        torch.arange(text.config.max_position_embeddings, dtype=torch.int64)[None]
    tensors["alphas_cumprod"] = torch.linspace(0.999, 0.005, 1000)
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

    tok = CLIPTokenizer.from_pretrained(os.path.join(root, "tokenizer"))
    build_tiny_sd15.text_encoder = model
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


# SD1 block layout at a tiny width; channels divisible by the 32 norm groups so the LDM
# single-file naming (4 levels, 2 ResNets per down block) applies unchanged.
UNET_SD15 = dict(sample_size=8, in_channels=4, out_channels=4, layers_per_block=2,
                 block_out_channels=(32, 32, 64, 64),
                 down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                 up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
                 cross_attention_dim=32, attention_head_dim=8, norm_num_groups=32)

UNET_SDXL = dict(sample_size=8, in_channels=4, out_channels=4, layers_per_block=2,
                 block_out_channels=(32, 64),
                 down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                 up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
                 transformer_layers_per_block=(1, 2), attention_head_dim=(2, 4),
                 use_linear_projection=True, cross_attention_dim=64, norm_num_groups=32,
                 addition_embed_type="text_time", addition_time_embed_dim=8,
                 projection_class_embeddings_input_dim=32 + 6 * 8)

VAE_SD15 = dict(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2,
                block_out_channels=(32, 32, 64, 64), norm_num_groups=32, sample_size=64,
                down_block_types=("DownEncoderBlock2D",) * 4,
                up_block_types=("UpDecoderBlock2D",) * 4, scaling_factor=0.18215)


def seeded(seed, build):
    torch.manual_seed(seed)
    model = build().eval()
    round_to_f16(model)
    return model


def randomize_norms(model, seed):
    """Fresh models have gamma 1, beta 0, which would hide a swapped gamma/beta; perturb them."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.add_((torch.rand(p.shape, generator=g) - 0.5) * 0.2)
                p.copy_(p.half().float())


def unet_inputs(unet, seed, batch=2, size=(16, 16), ctx_len=77, cond_dim=None, sdxl=False):
    g = torch.Generator().manual_seed(seed)
    cfg = unet.config
    inputs = {
        "sample": torch.randn(batch, cfg.in_channels, *size, generator=g),
        "timestep": torch.tensor([999.0, 259.0][:batch]),   # a different t per sample
        "encoder_hidden_states": torch.randn(batch, ctx_len, cfg.cross_attention_dim, generator=g),
    }
    if cond_dim:
        inputs["timestep_cond"] = torch.randn(batch, cond_dim, generator=g)
    if sdxl:
        inputs["text_embeds"] = torch.randn(batch, 32, generator=g)
        inputs["time_ids"] = torch.tensor([[64.0, 64.0, 0.0, 0.0, 64.0, 64.0],
                                           [96.0, 80.0, 8.0, 4.0, 64.0, 48.0]][:batch])
    return inputs


def run_unet(unet, inputs):
    kwargs = {}
    if "timestep_cond" in inputs:
        kwargs["timestep_cond"] = inputs["timestep_cond"]
    if "text_embeds" in inputs:
        kwargs["added_cond_kwargs"] = {"text_embeds": inputs["text_embeds"],
                                       "time_ids": inputs["time_ids"]}
    with torch.no_grad():
        return unet(inputs["sample"], inputs["timestep"], inputs["encoder_hidden_states"],
                    **kwargs).sample


def config_json(model):
    """The model's config for a golden's metadata, without diffusers' unordered bookkeeping."""
    return json.dumps({k: v for k, v in dict(model.config).items() if not k.startswith("_")})


def golden_unet(unet, name, seed, meta, **kw):
    inputs = unet_inputs(unet, seed, **kw)
    out = run_unet(unet, inputs)
    save_golden(name, dict(inputs, expected_sample=out), dict(meta, config=config_json(unet)))


def build_unets(meta):
    lcm = seeded(10, lambda: UNet2DConditionModel(**UNET_SD15, time_cond_proj_dim=32))
    build_unets.lcm = lcm
    randomize_norms(lcm, 10)
    lcm.save_pretrained(os.path.join(MODELS, "tiny-sd15", "unet"), safe_serialization=True)
    golden_unet(lcm, "unet_tiny_lcm.safetensors", 11, meta, cond_dim=32, ctx_len=77)

    plain = seeded(12, lambda: UNet2DConditionModel(**UNET_SD15))
    randomize_norms(plain, 12)
    root = os.path.join(MODELS, "tiny-unet-sd15")
    shutil.rmtree(root, ignore_errors=True)
    plain.save_pretrained(os.path.join(root, "unet"), safe_serialization=True)
    golden_unet(plain, "unet_tiny_sd15.safetensors", 13, meta, size=(24, 16))

    xl = seeded(14, lambda: UNet2DConditionModel(**UNET_SDXL))
    randomize_norms(xl, 14)
    root = os.path.join(MODELS, "tiny-unet-sdxl")
    shutil.rmtree(root, ignore_errors=True)
    xl.save_pretrained(os.path.join(root, "unet"), safe_serialization=True)
    golden_unet(xl, "unet_tiny_sdxl.safetensors", 15, meta, ctx_len=20, sdxl=True)


def build_vaes(meta):
    vae = seeded(20, lambda: AutoencoderKL(**VAE_SD15))
    randomize_norms(vae, 20)
    vae.save_pretrained(os.path.join(MODELS, "tiny-sd15", "vae"), safe_serialization=True)
    build_vaes.vae = vae
    g = torch.Generator().manual_seed(21)
    image = torch.rand(2, 3, 64, 48, generator=g) * 2 - 1
    latent = torch.randn(2, 4, 8, 6, generator=g)
    with torch.no_grad():
        mean = vae.encode(image).latent_dist.mean
        decoded = vae.decode(latent).sample
    save_golden("vae_tiny.safetensors", {"sample": image, "expected_latent_mean": mean,
                                         "latent": latent, "expected_sample": decoded},
                dict(meta, config=config_json(vae)))

    taesd = seeded(22, lambda: AutoencoderTiny())  # the real TAESD configuration, full width
    root = os.path.join(MODELS, "taesd")
    shutil.rmtree(root, ignore_errors=True)
    taesd.save_pretrained(root, safe_serialization=True)
    with torch.no_grad():
        t_mean = taesd.encode(image).latents
        t_decoded = taesd.decode(latent * 2).sample   # larger latents exercise the tanh clamp
    save_golden("taesd.safetensors", {"sample": image, "expected_latent_mean": t_mean,
                                      "latent": latent * 2, "expected_sample": t_decoded},
                dict(meta, config=config_json(taesd)))


def build_scheduler_and_index(meta):
    root = os.path.join(MODELS, "tiny-sd15")
    # LCM_Dreamshaper_v7's scheduler settings.
    LCMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                 set_alpha_to_one=True, original_inference_steps=50,
                 timestep_scaling=10.0).save_pretrained(os.path.join(root, "scheduler"))
    index = {"_class_name": "LatentConsistencyModelPipeline", "_diffusers_version": meta["diffusers"],
             "requires_safety_checker": False, "feature_extractor": [None, None],
             "safety_checker": [None, None], "image_encoder": [None, None],
             "scheduler": ["diffusers", "LCMScheduler"],
             "text_encoder": ["transformers", "CLIPTextModel"],
             "tokenizer": ["transformers", "CLIPTokenizer"],
             "unet": ["diffusers", "UNet2DConditionModel"],
             "vae": ["diffusers", "AutoencoderKL"]}
    with open(os.path.join(root, "model_index.json"), "w") as f:
        json.dump(index, f, indent=2)


class InjectedNoise:
    """Stands in for diffusers' randn_tensor inside the LCM scheduler: hands out fixed noise."""

    def __init__(self, noises):
        self.noises = list(noises)

    def __call__(self, shape, generator=None, device=None, dtype=None, layout=None):
        return self.noises.pop(0).reshape(shape).to(dtype=dtype or torch.float32)


def build_pipeline_golden(meta):
    """A 4-step LCM text-to-image run of diffusers' pipeline on tiny-sd15, noise injected."""
    import diffusers.schedulers.scheduling_lcm as lcm_module
    from diffusers import LatentConsistencyModelPipeline
    root = os.path.join(MODELS, "tiny-sd15")
    pipe = LatentConsistencyModelPipeline.from_pretrained(root, safety_checker=None,
                                                          feature_extractor=None,
                                                          requires_safety_checker=False)
    prompt, steps, guidance, size = "a photo of a cat", 4, 8.5, (64, 48)   # width, height
    g = torch.Generator().manual_seed(30)
    init = torch.randn(1, 4, size[1] // 8, size[0] // 8, generator=g)
    step_noise = torch.randn(steps - 1, 4, size[1] // 8, size[0] // 8, generator=g)
    original = lcm_module.randn_tensor
    lcm_module.randn_tensor = InjectedNoise(step_noise[i:i + 1] for i in range(steps - 1))
    try:
        with torch.no_grad():
            latent = pipe(prompt, num_inference_steps=steps, guidance_scale=guidance,
                          width=size[0], height=size[1], latents=init.clone(),
                          output_type="latent").images
            image = pipe.vae.decode(latent / pipe.vae.config.scaling_factor).sample
    finally:
        lcm_module.randn_tensor = original
    save_golden("txt2img_tiny_lcm.safetensors",
                {"init_latent": init, "step_noise": step_noise, "final_latent": latent, "image": image},
                dict(meta, prompt=prompt, steps=steps, guidance=guidance, width=size[0], height=size[1]))


def build_cfg_lora_golden(meta):
    """SD1.5 + LCM-LoRA style: a plain UNet, a LoRA fused at 0.7, CFG with a negative prompt."""
    import diffusers.schedulers.scheduling_lcm as lcm_module
    from diffusers import StableDiffusionPipeline
    root = os.path.join(MODELS, "tiny-sd15-plain")
    pipe = StableDiffusionPipeline.from_pretrained(root, safety_checker=None, feature_extractor=None,
                                                   requires_safety_checker=False)
    lora = os.path.join(DATA, "lora", "kohya_diffusers.safetensors")
    pipe.load_lora_weights(lora)
    pipe.fuse_lora(lora_scale=0.7)
    prompt, negative, steps, guidance, size = "a lighthouse at dawn", "blurry", 3, 2.0, (48, 64)
    g = torch.Generator().manual_seed(31)
    init = torch.randn(1, 4, size[1] // 8, size[0] // 8, generator=g)
    step_noise = torch.randn(steps - 1, 4, size[1] // 8, size[0] // 8, generator=g)
    original = lcm_module.randn_tensor
    lcm_module.randn_tensor = InjectedNoise(step_noise[i:i + 1] for i in range(steps - 1))
    try:
        with torch.no_grad():
            latent = pipe(prompt, negative_prompt=negative, num_inference_steps=steps,
                          guidance_scale=guidance, width=size[0], height=size[1],
                          latents=init.clone(), output_type="latent").images
            image = pipe.vae.decode(latent / pipe.vae.config.scaling_factor).sample
    finally:
        lcm_module.randn_tensor = original
    save_golden("txt2img_tiny_cfg_lora.safetensors",
                {"init_latent": init, "step_noise": step_noise, "final_latent": latent, "image": image},
                dict(meta, prompt=prompt, negative=negative, steps=steps, guidance=guidance,
                     width=size[0], height=size[1], lora="kohya_diffusers.safetensors:0.7"))


def build_plain_pipeline_folder(meta):
    """tiny-sd15 with the plain UNet: a diffusers folder of symlinks to the existing parts."""
    root = os.path.join(MODELS, "tiny-sd15-plain")
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    for part in ("text_encoder", "tokenizer", "vae", "scheduler"):
        os.symlink(os.path.join("..", "tiny-sd15", part), os.path.join(root, part))
    os.symlink(os.path.join("..", "tiny-unet-sd15", "unet"), os.path.join(root, "unet"))
    index = {"_class_name": "StableDiffusionPipeline", "_diffusers_version": meta["diffusers"],
             "requires_safety_checker": False, "feature_extractor": [None, None],
             "safety_checker": [None, None], "image_encoder": [None, None],
             "scheduler": ["diffusers", "LCMScheduler"],
             "text_encoder": ["transformers", "CLIPTextModel"],
             "tokenizer": ["transformers", "CLIPTokenizer"],
             "unet": ["diffusers", "UNet2DConditionModel"],
             "vae": ["diffusers", "AutoencoderKL"]}
    with open(os.path.join(root, "model_index.json"), "w") as f:
        json.dump(index, f, indent=2)


def main():
    meta = versions()
    os.makedirs(MODELS, exist_ok=True)
    build_tiny_sd15(meta)
    build_tiny_clip_gelu(meta)
    build_unets(meta)
    build_vaes(meta)
    build_scheduler_and_index(meta)
    ldm_single_file(build_tiny_sd15.text_encoder, build_unets.lcm, build_vaes.vae,
                    os.path.join(MODELS, "tiny-sd15.safetensors"))
    build_pipeline_golden(meta)
    build_plain_pipeline_folder(meta)
    if os.path.exists(os.path.join(DATA, "lora", "kohya_diffusers.safetensors")):
        build_cfg_lora_golden(meta)  # after gen_lora_goldens.py has written the LoRA


if __name__ == "__main__":
    main()
