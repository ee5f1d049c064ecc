"""Golden tensors for the LCM scheduler and the UNet's timestep / guidance embeddings.

Writes tests/data/golden/lcm_scheduler.safetensors (relative to the repository root) from
diffusers' LCMScheduler, get_timestep_embedding and the LCM pipeline's
get_guidance_scale_embedding, all on the CPU. Run from the repository root with the pinned
reference environment (tools/reference/requirements.txt), e.g.
    /work/venvs/ref/bin/python tools/reference/gen_scheduler_goldens.py

Contents (F32 floats, I64 integers):
  {a,b}_alphas_cumprod             [1000]  config a = SD1.5/LCM (scaled_linear), b = linear
  timesteps_n{n}                   [n]     set_timesteps(n), n = 1..50 (original_inference_steps 50)
  timesteps_o{37,100}_all          concatenation of set_timesteps(n) for n = 1..orig with
                                   original_inference_steps = orig (n-th list starts at n(n-1)/2)
  c_skip, c_out                    [1000]  boundary scalings for t = 0..999, t an int64 tensor as
                                           the pipeline passes it (so computed in float32)
  {loop}_timesteps                 [T]     the schedule of each sampling loop
  {loop}_sample                    [1,4,8,8]   the initial latent
  {loop}_model_output              [T,1,4,8,8] fixed (seeded) model outputs, one per step
  {loop}_noise                     [T,1,4,8,8] the noise step j re-injects (unused on the last step)
  {loop}_prev_sample, _denoised    [T,1,4,8,8] LCMScheduler.step outputs, step j's prev_sample is
                                               step j+1's input
  {loop}_coef                      [T,6]   the step's float32 scalars as torch computed them:
                                           sqrt(a_t), sqrt(1-a_t), sqrt(a_prev), sqrt(1-a_prev),
                                           c_skip, c_out (torch's CPU sqrt is not correctly
                                           rounded, so these let a test separate that from the
                                           elementwise arithmetic)
  temb_t                           [6]     timesteps for the sinusoid goldens
  temb_d320, temb_d256, temb_d7    [6,dim] Timesteps(dim, flip_sin_to_cos=True, shift=0)
  temb_d320_noflip_shift1          [6,320] get_timestep_embedding(t, 320, False, 1)
  gemb_w                           [4]     w = guidance_scale - 1
  gemb_d256, gemb_d32              [4,dim] get_guidance_scale_embedding(w, dim)
Metadata: library versions, torch's CPU capability, each config as diffusers JSON, and the
loops' configs, seeds and prediction types.
"""
import json
import os
import struct

import numpy as np
import torch
from safetensors.torch import save_file

import diffusers
from diffusers import LCMScheduler, LatentConsistencyModelPipeline
from diffusers.models.embeddings import get_timestep_embedding

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(REPO, "tests", "data", "golden", "lcm_scheduler.safetensors")

# LCM_Dreamshaper_v7's schedule (set_alpha_to_one False); b exercises the other beta schedule.
CONFIG_A = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                set_alpha_to_one=False, original_inference_steps=50, timestep_scaling=10.0)
CONFIG_B = dict(beta_start=0.0001, beta_end=0.02, beta_schedule="linear", set_alpha_to_one=True)

SHAPE = (1, 4, 8, 8)
TEMB_T = [0, 1, 19, 259, 500, 999]
GEMB_W = [0.0, 1.0, 7.5, 0.5 - 1.0]

# name -> (config, prediction_type, steps or custom timestep list, first seed)
LOOPS = {
    "eps4": (CONFIG_A, "epsilon", 4, 1000),
    "eps1": (CONFIG_A, "epsilon", 1, 2000),
    "v2": (CONFIG_A, "v_prediction", 2, 3000),
    "x2": (CONFIG_A, "sample", 2, 4000),
    "lin_eps4": (CONFIG_B, "epsilon", 4, 5000),
    # semanticdraw's default stream: t_index_list [0,4,12,25,37] on the 50-step grid
    "custom5": (CONFIG_A, "epsilon", [999, 919, 759, 499, 259], 6000),
}


def randn(seed):
    return torch.randn(SHAPE, generator=torch.Generator().manual_seed(seed), dtype=torch.float32)


def step_scalars(sched, j, t):
    """The 0-d float32 tensors LCMScheduler.step derives for step j, by the same ops."""
    t_prev = sched.timesteps[j + 1] if j + 1 < len(sched.timesteps) else t
    a, a_prev = sched.alphas_cumprod[t], sched.alphas_cumprod[t_prev]
    c_skip, c_out = sched.get_scalings_for_boundary_condition_discrete(t)
    return torch.stack([a.sqrt(), (1 - a).sqrt(), a_prev.sqrt(), (1 - a_prev).sqrt(), c_skip, c_out])


def run_loop(config, prediction_type, steps, seed):
    """Run the pipeline's loop with fixed model outputs; return the tensors to record."""
    sched = LCMScheduler(**config, prediction_type=prediction_type)
    if isinstance(steps, list):
        sched.set_timesteps(timesteps=steps)
    else:
        sched.set_timesteps(steps)
    x = randn(seed)
    rec = {"timesteps": sched.timesteps.clone(), "sample": x.clone(),
           "model_output": [], "noise": [], "prev_sample": [], "denoised": [], "coef": []}
    for j, t in enumerate(sched.timesteps):  # t: a 0-d int64 tensor, as in the pipeline
        eps = randn(seed + 1 + j)
        noise_seed = seed + 100 + j
        # step() draws its noise with randn_tensor(shape, generator); the same seed here
        # reproduces it so the C test can feed it in.
        noise = randn(noise_seed)
        prev, denoised = sched.step(eps, t, x, generator=torch.Generator().manual_seed(noise_seed),
                                    return_dict=False)
        coef = step_scalars(sched, j, t)
        if j + 1 < len(sched.timesteps):
            check = coef[2] * denoised + coef[3] * noise
            assert torch.equal(check, prev), "recorded noise is not the noise step() used"
        for key, val in (("model_output", eps), ("noise", noise), ("prev_sample", prev),
                         ("denoised", denoised), ("coef", coef)):
            rec[key].append(val)
        x = prev
    for key in ("model_output", "noise", "prev_sample", "denoised", "coef"):
        rec[key] = torch.stack(rec[key])
    return rec


def timestep_tables(out):
    sched = LCMScheduler(**CONFIG_A)
    for n in range(1, 51):
        sched.set_timesteps(n)
        out[f"timesteps_n{n}"] = sched.timesteps.clone()
    for orig in (37, 100):
        lists = []
        for n in range(1, orig + 1):
            sched.set_timesteps(n, original_inference_steps=orig)
            lists.append(sched.timesteps.clone())
        out[f"timesteps_o{orig}_all"] = torch.cat(lists)


def scalings(out):
    sched = LCMScheduler(**CONFIG_A)
    cs, co, diff = [], [], 0.0
    for t in range(1000):
        c_skip, c_out = sched.get_scalings_for_boundary_condition_discrete(torch.tensor(t))
        cs.append(c_skip)
        co.append(c_out)
        # A plain Python int would give float64 scalings instead; report how far apart.
        p_skip, p_out = sched.get_scalings_for_boundary_condition_discrete(t)
        diff = max(diff, abs(p_skip - c_skip.item()) / p_skip, abs(p_out - c_out.item()) / max(p_out, 1e-30))
    out["c_skip"] = torch.stack(cs).float()
    out["c_out"] = torch.stack(co).float()
    print(f"c_skip/c_out: float32 (tensor t) vs float64 (int t) max relative difference {diff:.2e}")


def embeddings(out):
    t = torch.tensor(TEMB_T, dtype=torch.int64)
    out["temb_t"] = t
    for dim in (320, 256, 7):
        out[f"temb_d{dim}"] = get_timestep_embedding(t, dim, flip_sin_to_cos=True, downscale_freq_shift=0)
    out["temb_d320_noflip_shift1"] = get_timestep_embedding(t, 320, flip_sin_to_cos=False,
                                                            downscale_freq_shift=1)
    w = torch.tensor(GEMB_W, dtype=torch.float32)
    out["gemb_w"] = w
    for dim in (256, 32):
        # An instance method that never touches self.
        out[f"gemb_d{dim}"] = LatentConsistencyModelPipeline.get_guidance_scale_embedding(None, w, dim)


def sort_metadata(path):
    """Rewrite the header with __metadata__ in key order.

    safetensors keeps metadata in a hash map, so its order (and the file's bytes) change
    from run to run; the same keys in sorted order have the same length, so the header
    is rewritten in place and regenerating gives an identical file.
    """
    with open(path, "r+b") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        raw = f.read(n)
        header = json.loads(raw)
        header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
        text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
        assert len(text) <= n
        f.seek(8)
        f.write(text + b" " * (n - len(text)))


def main():
    out = {}
    meta = {"torch": torch.__version__, "diffusers": diffusers.__version__,
            "numpy": np.__version__, "torch_cpu_capability": torch.backends.cpu.get_cpu_capability()}
    for tag, config in (("a", CONFIG_A), ("b", CONFIG_B)):
        sched = LCMScheduler(**config)
        out[f"{tag}_alphas_cumprod"] = sched.alphas_cumprod.clone()
        # as a scheduler_config.json holds it, less diffusers' bookkeeping of which keys
        # took defaults (a list in set order, which would make the file differ per run)
        config_json = {k: v for k, v in dict(sched.config).items() if k != "_use_default_values"}
        meta[f"config_{tag}"] = json.dumps(config_json, sort_keys=True)
    timestep_tables(out)
    scalings(out)
    embeddings(out)
    loops = {}
    for name, (config, prediction_type, steps, seed) in LOOPS.items():
        for key, val in run_loop(config, prediction_type, steps, seed).items():
            out[f"{name}_{key}"] = val
        loops[name] = {"config": "a" if config is CONFIG_A else "b", "prediction_type": prediction_type,
                       "steps": steps, "seed": seed}
    meta["loops"] = json.dumps(loops, sort_keys=True)
    meta["temb_t"] = json.dumps(TEMB_T)
    meta["gemb_w"] = json.dumps(GEMB_W)
    for key, val in out.items():
        assert val.dtype in (torch.float32, torch.int64), key
        out[key] = val.contiguous()
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    save_file(out, OUT, metadata=meta)
    sort_metadata(OUT)
    print(f"wrote {os.path.relpath(OUT, REPO)}: {len(out)} tensors")


if __name__ == "__main__":
    main()
