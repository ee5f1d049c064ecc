"""SemanticDraw streaming reference (PyTorch on diffusers modules, float32, CPU).

The executable form of ../shared/spec/semanticdraw.md for the streaming mode (sections 4-10),
in both behaviour profiles (D1: `reference` = the published code's quirks P1-P4, `default` =
the paper's intent), and for the non-streaming single-call mode (section 11, D6; semdraw's
precise reading of it is written out above render_single). It reads the scene files of
docs/scene-format.md, the same files `semdrawd render --scene` reads, and produces the tensors
the C implementation is compared with (tools/reference/gen_semanticdraw_goldens.py drives it
over the parity scenes).

    semanticdraw_ref.py SCENE.json --frames N [--profile default|reference]
                        [--model DIR] [--taesd DIR] [--noise FILE] [--dump FILE] [--png-dir DIR]
    semanticdraw_ref.py SCENE.json --single [--model DIR] [--noise FILE] [--dump FILE] [--png-dir DIR]

--single: the noise file holds init_latent [1,4,h,w], boot_noise [max(bootstrap_steps,1),4,h,w]
and step_noise [max(T-1,1),4,h,w] (draw_single_noise); --dump writes final_latent [1,4,h,w] and
image [1,3,H,W] (floats in [0,1], after the background blend).

Numerics (fp32 CPU path; chosen so that a C implementation can match at ~1e-4):
  * schedule scalars (a_k, b_k, c_skip, c_out, the P2 background coefficients) are computed in
    float64 from the float32 alphas_cumprod of diffusers' LCMScheduler, then cast to float32;
  * mask blur in float64 (normalised float64 kernel, replicate borders, separable passes), cast
    to float32; cover alpha, strength and quantisation in float32 against float32 b_k;
  * every per-frame tensor operation is float32, in the order the spec writes it
    (D = c_out*((x - b*eps)/a) + c_skip*x; Y = (1-G)*A + G*Bg; buf = a*Y + b*N).

Choices where the spec or the scene format leaves room are marked "CHOICE:" below.
This is the project's own code, written from the spec (not derived from ironjr/semantic-draw).
"""
import argparse
import json
import math
import os
from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np
import torch
from PIL import Image

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODELS = os.path.join(REPO, "tests", "data", "models")

STREAM_DEFAULTS = dict(mask_std=8.0, mask_strength=1.0, prompt_strength=0.95)  # section 12
SINGLE_DEFAULTS = dict(mask_std=1.0, mask_strength=1.0, prompt_strength=1.0)   # section 11 / 12
DEFAULT_TIMESTEPS = [0, 4, 12, 25, 37]
WHITE_PROMPT = "simple white background"  # S2 (a), streaming
SINGLE_WHITE_PROMPT = "simple white background image"  # S2 (a), single-call mode
LEAK_SENSITIVITY = 0.2     # section 11 step 7: bootstrap_leak_sensitivity (fixed, always on)
SINGLE_TILE_SIZE = 768     # section 11 step 6 (SD1.5); the reference renders one tile only
F32 = torch.float32


class SceneError(ValueError):
    pass


# ----------------------------------------------------------------------------------------------
# Scene files (docs/scene-format.md)
# ----------------------------------------------------------------------------------------------

def _number(v, what, lo=None, hi=None):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise SceneError(f"{what}: expected a number, got {v!r}")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise SceneError(f"{what}: {v} outside [{lo}, {hi}]")
    return float(v)


def _int(v, what, lo=None, hi=None):
    if isinstance(v, bool) or not isinstance(v, int):
        raise SceneError(f"{what}: expected an integer, got {v!r}")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise SceneError(f"{what}: {v} outside [{lo}, {hi}]")
    return v


def _string(v, what):
    if not isinstance(v, str):
        raise SceneError(f"{what}: expected a string, got {v!r}")
    return v


def _check_keys(obj, allowed, what):
    if not isinstance(obj, dict):
        raise SceneError(f"{what}: expected an object")
    unknown = set(obj) - set(allowed)
    if unknown:
        raise SceneError(f"{what}: unknown keys {sorted(unknown)}")  # format: unknown keys are errors


def read_mask_png(path, width, height):
    """8-bit PNG -> m = a/255 float32 [H,W] (D2). The value is the alpha channel when the PNG has
    one, else the grey (L) or red (RGB) channel."""
    with Image.open(path) as im:
        im.load()
        mode = im.mode
        if mode not in ("L", "LA", "RGB", "RGBA"):
            raise SceneError(f"{path}: mask PNG mode {mode} is not 8-bit grey, grey+alpha, RGB or RGBA")
        if im.size != (width, height):
            raise SceneError(f"{path}: mask is {im.size[0]}x{im.size[1]}, canvas {width}x{height} (S8)")
        a = np.asarray(im, dtype=np.uint8)
    if mode == "L":
        a8 = a
    elif mode in ("LA", "RGBA"):
        a8 = a[..., -1]
    else:
        a8 = a[..., 0]
    return torch.from_numpy(a8.astype(np.float32)) / 255.0  # float32 division, D2


def read_rgb_png(path, width, height):
    """RGB or RGBA 8-bit PNG (alpha ignored) -> float32 [3,H,W] in [0,1]."""
    with Image.open(path) as im:
        im.load()
        if im.mode not in ("RGB", "RGBA"):
            raise SceneError(f"{path}: background PNG mode {im.mode} is not RGB or RGBA")
        if im.size != (width, height):
            raise SceneError(f"{path}: background is {im.size[0]}x{im.size[1]}, canvas {width}x{height} (S8)")
        a = np.asarray(im, dtype=np.uint8)[..., :3]
    return torch.from_numpy(a.astype(np.float32)).permute(2, 0, 1).contiguous() / 255.0


def color_image(rgb, width, height):
    """A plain colour as an image, float32 [3,H,W] in [0,1]."""
    c = torch.tensor([float(v) for v in rgb], dtype=F32) / 255.0
    return c[:, None, None].expand(3, height, width).contiguous()


@dataclass
class LayerSpec:
    prompt: str
    negative: str = ""
    mask: Optional[torch.Tensor] = None      # m = a/255, float32 [H,W]; None = all zero
    mask_std: float = STREAM_DEFAULTS["mask_std"]
    mask_strength: float = STREAM_DEFAULTS["mask_strength"]
    prompt_strength: float = STREAM_DEFAULTS["prompt_strength"]


@dataclass
class BackgroundSpec:
    """Fields present in a background object (None = not given)."""
    prompt: Optional[str] = None
    negative: Optional[str] = None
    image: Optional[torch.Tensor] = None     # float32 [3,H,W] in [0,1]
    is_photo: bool = False                   # True for `image`, False for `color`


@dataclass
class Edit:
    frame: int
    kind: str                                # layer | remove | add_layer | background | seed
    layer: Optional[int] = None
    fields: dict = field(default_factory=dict)  # layer fields given (mask already loaded)
    spec: object = None                      # LayerSpec (add_layer) or BackgroundSpec
    seed: Optional[int] = None


@dataclass
class Scene:
    path: str
    mode: str = "stream"                     # "stream" or "single": which defaults apply
    width: int = 512
    height: int = 512
    seed: int = 2024
    profile: str = "default"
    timesteps: List[int] = field(default_factory=lambda: list(DEFAULT_TIMESTEPS))
    guidance_scale: float = 1.0
    embedded_guidance_scale: float = 8.5
    bootstrap_steps: int = 1
    bootstrap_mix_steps: float = 1.0
    mask_type: str = "continuous"
    cover_alpha: float = 0.3
    decoder: str = "taesd"
    autoflush: bool = False
    suffix: Optional[str] = None
    background: Optional[BackgroundSpec] = None
    layers: List[LayerSpec] = field(default_factory=list)
    edits: List[Edit] = field(default_factory=list)

    @property
    def T(self):
        return len(self.timesteps)


LAYER_KEYS = ("prompt", "negative", "mask", "mask_std", "mask_strength", "prompt_strength")
BACKGROUND_KEYS = ("prompt", "negative", "image", "color")


def _layer_fields(obj, base, scene, what):
    """Parse the layer fields present in `obj` (the mask PNG is loaded)."""
    out = {}
    for key in LAYER_KEYS:
        if key not in obj:
            continue
        v = obj[key]
        if key in ("prompt", "negative"):
            out[key] = _string(v, f"{what}.{key}")
        elif key == "mask":
            out[key] = None if v is None else read_mask_png(
                os.path.join(base, _string(v, f"{what}.mask")), scene.width, scene.height)
        elif key == "mask_std":
            out[key] = _number(v, f"{what}.mask_std", 0.0)
        else:
            out[key] = _number(v, f"{what}.{key}", 0.0, 1.0)
    return out


def _parse_layer(obj, base, scene, what):
    _check_keys(obj, LAYER_KEYS, what)
    if "prompt" not in obj:
        raise SceneError(f"{what}: prompt is required")
    defaults = SINGLE_DEFAULTS if scene.mode == "single" else STREAM_DEFAULTS
    return LayerSpec(**dict(defaults, **_layer_fields(obj, base, scene, what)))


def _parse_background(obj, base, scene, what):
    _check_keys(obj, BACKGROUND_KEYS, what)
    if "image" in obj and "color" in obj:
        raise SceneError(f"{what}: image and color exclude each other")
    bg = BackgroundSpec()
    if "prompt" in obj:
        bg.prompt = _string(obj["prompt"], f"{what}.prompt")
    if "negative" in obj:
        bg.negative = _string(obj["negative"], f"{what}.negative")
    if "image" in obj:
        bg.image = read_rgb_png(os.path.join(base, _string(obj["image"], f"{what}.image")),
                                scene.width, scene.height)
        bg.is_photo = True
    elif "color" in obj:
        c = obj["color"]
        if not isinstance(c, list) or len(c) != 3:
            raise SceneError(f"{what}.color: expected [r, g, b]")
        bg.image = color_image([_int(x, f"{what}.color", 0, 255) for x in c], scene.width, scene.height)
    return bg


def _parse_edit(obj, base, scene, n):
    what = f"edits[{n}]"
    if not isinstance(obj, dict) or "frame" not in obj:
        raise SceneError(f"{what}: an object with a frame is required")
    frame = _int(obj["frame"], f"{what}.frame", 0)
    if "add_layer" in obj:
        _check_keys(obj, ("frame", "add_layer"), what)
        return Edit(frame, "add_layer", spec=_parse_layer(obj["add_layer"], base, scene, what + ".add_layer"))
    if "background" in obj:
        _check_keys(obj, ("frame", "background"), what)
        return Edit(frame, "background", spec=_parse_background(obj["background"], base, scene,
                                                                what + ".background"))
    if "seed" in obj:
        _check_keys(obj, ("frame", "seed"), what)
        return Edit(frame, "seed", seed=_int(obj["seed"], f"{what}.seed", 0))
    if "layer" in obj:
        layer = _int(obj["layer"], f"{what}.layer", 0)
        if "remove" in obj:
            _check_keys(obj, ("frame", "layer", "remove"), what)
            if obj["remove"] is not True:
                raise SceneError(f"{what}.remove: must be true")
            return Edit(frame, "remove", layer=layer)
        _check_keys(obj, ("frame", "layer") + LAYER_KEYS, what)
        fields = _layer_fields(obj, base, scene, what)
        if not fields:
            raise SceneError(f"{what}: a layer edit changes nothing")
        return Edit(frame, "layer", layer=layer, fields=fields)
    raise SceneError(f"{what}: not a layer, add_layer, background or seed edit")


SCENE_KEYS = ("width", "height", "seed", "profile", "timesteps", "guidance_scale",
              "embedded_guidance_scale", "bootstrap_steps", "bootstrap_mix_steps", "mask_type",
              "cover_alpha", "decoder", "autoflush", "suffix", "background", "layers", "edits")


def load_scene(path, mode="stream"):
    """Read and validate a scene file; PNGs are read relative to the scene file's folder.
    mode: "stream" or "single" (single-call mode): which defaults fill the keys the scene leaves
    out (mask_type, decoder, a layer's mask_std and prompt_strength; docs/scene-format.md)."""
    if mode not in ("stream", "single"):
        raise ValueError(mode)
    with open(path) as f:
        obj = json.load(f)
    _check_keys(obj, SCENE_KEYS, path)
    base = os.path.dirname(os.path.abspath(path))
    s = Scene(path=path, mode=mode)
    single = mode == "single"
    s.width = _int(obj.get("width", 512), "width", 8)
    s.height = _int(obj.get("height", 512), "height", 8)
    if s.width % 8 or s.height % 8:
        raise SceneError("width and height must be multiples of 8 (S10)")
    s.seed = _int(obj.get("seed", 2024), "seed", 0)
    s.profile = obj.get("profile", "default")
    if s.profile not in ("default", "reference"):
        raise SceneError(f"profile: {s.profile!r}")
    if "timesteps" in obj:
        ts = obj["timesteps"]
        if not isinstance(ts, list) or not 1 <= len(ts) <= 16:
            raise SceneError("timesteps: a list of 1..16 indices")
        s.timesteps = [_int(t, "timesteps", 0, 49) for t in ts]
        if any(b <= a for a, b in zip(s.timesteps, s.timesteps[1:])):
            raise SceneError("timesteps: must be strictly increasing")
    s.guidance_scale = _number(obj.get("guidance_scale", 1.0), "guidance_scale", 0.0)
    s.embedded_guidance_scale = _number(obj.get("embedded_guidance_scale", 8.5), "embedded_guidance_scale")
    s.bootstrap_steps = _int(obj.get("bootstrap_steps", 1), "bootstrap_steps", 0)
    s.bootstrap_mix_steps = _number(obj.get("bootstrap_mix_steps", 1.0), "bootstrap_mix_steps", 0.0)
    s.mask_type = obj.get("mask_type", "discrete" if single else "continuous")   # section 12
    if s.mask_type not in ("continuous", "semi-continuous", "discrete"):
        raise SceneError(f"mask_type: {s.mask_type!r}")
    s.cover_alpha = _number(obj.get("cover_alpha", 0.3), "cover_alpha", 0.0, 1.0)
    s.decoder = obj.get("decoder", "vae" if single else "taesd")                # section 12
    if s.decoder not in ("taesd", "vae"):
        raise SceneError(f"decoder: {s.decoder!r}")
    s.autoflush = obj.get("autoflush", False)
    if not isinstance(s.autoflush, bool):
        raise SceneError("autoflush: expected true or false")
    s.suffix = obj.get("suffix")
    if s.suffix is not None:
        _string(s.suffix, "suffix")
    if "background" in obj:
        s.background = _parse_background(obj["background"], base, s, "background")
    layers = obj.get("layers", [])
    if not isinstance(layers, list):
        raise SceneError("layers: expected a list")
    s.layers = [_parse_layer(l, base, s, f"layers[{i}]") for i, l in enumerate(layers)]
    edits = obj.get("edits", [])
    if not isinstance(edits, list):
        raise SceneError("edits: expected a list")
    s.edits = [_parse_edit(e, base, s, n) for n, e in enumerate(edits)]
    return s


# ----------------------------------------------------------------------------------------------
# Models
# ----------------------------------------------------------------------------------------------

class Models:
    """tokenizer + CLIP text encoder + UNet + LCM scheduler of a diffusers folder, and the
    stream autoencoder (TAESD) or the pipeline's own VAE."""

    def __init__(self, model_dir, taesd_dir=None, net_dtype=F32):
        """net_dtype: the networks' precision (float32 = the fp32 CPU path; float64 gives
        near-exact network outputs). Inputs are cast to it and outputs back to float32, so
        everything outside the networks stays float32 either way."""
        from diffusers import LCMScheduler, UNet2DConditionModel
        from transformers import CLIPTextModel, CLIPTokenizer
        self.model_dir = model_dir
        self.net_dtype = net_dtype
        self.taesd_dir = taesd_dir or os.path.join(MODELS, "taesd")
        self.tokenizer = CLIPTokenizer.from_pretrained(os.path.join(model_dir, "tokenizer"))
        self.text_encoder = CLIPTextModel.from_pretrained(
            os.path.join(model_dir, "text_encoder")).eval().to(net_dtype)
        self.unet = UNet2DConditionModel.from_pretrained(os.path.join(model_dir, "unet")).eval().to(net_dtype)
        self.scheduler = LCMScheduler.from_pretrained(os.path.join(model_dir, "scheduler"))
        self._autoencoders = {}

    def autoencoder(self, kind):
        if kind not in self._autoencoders:
            from diffusers import AutoencoderKL, AutoencoderTiny
            if kind == "taesd":
                ae = AutoencoderTiny.from_pretrained(self.taesd_dir)
            else:
                ae = AutoencoderKL.from_pretrained(os.path.join(self.model_dir, "vae"))
            self._autoencoders[kind] = ae.eval().to(self.net_dtype)
        return self._autoencoders[kind]

    @torch.no_grad()
    def encode_text(self, prompt):
        """CLIP last hidden state (after the final LayerNorm), 77 tokens, truncated (6.1).
        One prompt per call, so batching never changes the numbers."""
        ids = self.tokenizer([prompt], padding="max_length", max_length=77, truncation=True,
                             return_tensors="pt").input_ids
        default = torch.get_default_dtype()
        torch.set_default_dtype(self.net_dtype)   # transformers builds its causal mask with it
        try:
            return self.text_encoder(input_ids=ids)[0][0].to(F32)
        finally:
            torch.set_default_dtype(default)

    @torch.no_grad()
    def encode_image(self, kind, img01):
        """Section 10: z = scaling_factor * enc(2*img - 1); TAESD is deterministic (scaling 1.0),
        the VAE gives its posterior mean times 0.18215 (S6)."""
        ae = self.autoencoder(kind)
        x = (2.0 * img01 - 1.0)[None].to(self.net_dtype)
        z = ae.encode(x).latents if kind == "taesd" else ae.encode(x).latent_dist.mean
        return z[0].to(F32) * float(ae.config.scaling_factor)

    @torch.no_grad()
    def decode(self, kind, z):
        """Section 10: -> [3,H,W] in [0,1]. TAESD: clip(dec(z)/2 + 0.5, 0, 1) (diffusers'
        AutoencoderTiny outputs [-1,1]); VAE: clip(dec(z/0.18215)/2 + 0.5, 0, 1)."""
        ae = self.autoencoder(kind)
        z = (z[None] / float(ae.config.scaling_factor)).to(self.net_dtype)   # TAESD: scaling 1.0
        out = ae.decode(z).sample.to(F32)
        return (out[0] / 2 + 0.5).clamp(0, 1)

    @property
    def lcm_distilled(self):
        return self.unet.config.time_cond_proj_dim is not None

    def guidance_embedding(self, w_scale, batch):
        """S5 / 6.4: the LCM pipeline's w-embedding of w = embedded_guidance_scale - 1."""
        from diffusers import LatentConsistencyModelPipeline
        w = torch.tensor(w_scale - 1).repeat(batch)          # float32, as the LCM pipeline builds it
        emb = LatentConsistencyModelPipeline.get_guidance_scale_embedding(
            None, w, embedding_dim=self.unet.config.time_cond_proj_dim)
        return emb.to(F32)

    @torch.no_grad()
    def unet_eps(self, x, t, ctx, w_emb):
        d = self.net_dtype
        kw = {"timestep_cond": w_emb.to(d)} if w_emb is not None else {}
        return self.unet(x.to(d), t, encoder_hidden_states=ctx.to(d), **kw).sample.to(F32)


# ----------------------------------------------------------------------------------------------
# Schedule (section 4)
# ----------------------------------------------------------------------------------------------

class Schedule:
    """Per-slot scalars, float64 from the float32 alphas_cumprod, then float32 (0-d tensors).

    tau[k]    timestep of slot k (the 50-step LCM grid indexed by t_index_list)
    a[k],b[k] sqrt(abar), sqrt(1-abar) for k < T; a[T] = 1, b[T] = 0
    c_skip, c_out  LCM boundary scalings at s = timestep_scaling*tau, sigma_data = 0.5 (4.2)
    bg_a[k], bg_b[k]  P2: sqrt(abar(t')), sqrt(1-abar(t')), t' = t_index_list[k+1] (k < T-1)
    """

    def __init__(self, scheduler, t_index_list):
        scheduler.set_timesteps(50)                           # grid 999 - 20j (4.1)
        grid = [int(t) for t in scheduler.timesteps]
        abar = scheduler.alphas_cumprod                       # float32 [1000]
        assert abar.dtype == F32
        self.abar = abar
        self.t_index = list(t_index_list)
        self.tau = [grid[j] for j in t_index_list]
        T = len(self.tau)
        ab = [float(abar[t]) for t in self.tau]               # exact float32 values, as float64
        f32 = lambda v: torch.tensor(v, dtype=torch.float64).to(F32)
        self.a = [f32(math.sqrt(v)) for v in ab] + [torch.tensor(1.0, dtype=F32)]
        self.b = [f32(math.sqrt(1.0 - v)) for v in ab] + [torch.tensor(0.0, dtype=F32)]
        scaling, sigma_data = float(scheduler.config.timestep_scaling), 0.5
        self.c_skip, self.c_out = [], []
        for t in self.tau:
            s = scaling * t
            self.c_skip.append(f32(sigma_data ** 2 / (s * s + sigma_data ** 2)))
            self.c_out.append(f32(s / math.sqrt(s * s + sigma_data ** 2)))
        # P2: the published code uses the *list index* t_index_list[k+1] as a timestep.
        self.bg_a, self.bg_b = [], []
        for k in range(T - 1):
            v = float(abar[t_index_list[k + 1]])
            self.bg_a.append(f32(math.sqrt(v)))
            self.bg_b.append(f32(math.sqrt(1.0 - v)))

    def levels(self):
        """b_0..b_T as a float32 vector (mask quantisation thresholds)."""
        return torch.stack(self.b)


# ----------------------------------------------------------------------------------------------
# Mask preprocessing (section 5) and centering shifts (section 8.2)
# ----------------------------------------------------------------------------------------------

def gaussian_kernel_1d(std, ws):
    """Normalised 1-D Gaussian on integer offsets -(ws-1)/2..(ws-1)/2, float64. The spec's 2-D
    kernel exp(-(dx^2+dy^2)/(2 std^2)) normalised to sum 1 is exactly the outer product of two of
    these, so two separable passes give the same blur (5.2 step 2)."""
    d = torch.arange(ws, dtype=torch.float64) - (ws - 1) // 2
    g = torch.exp(-(d * d) / (2.0 * std * std))
    return g / g.sum()


def blur_replicate(m64, kernel):
    """Cross-correlation of a float64 [H,W] image with `kernel` along rows then columns, with
    replicate borders of ws//2 (5.2 step 2)."""
    ws = kernel.numel()
    r = ws // 2
    H, W = m64.shape
    off = torch.arange(ws) - r
    rows = (torch.arange(H)[:, None] + off[None, :]).clamp(0, H - 1)      # [H,ws]
    out = torch.einsum("hjw,j->hw", m64[rows], kernel)                     # vertical pass
    cols = (torch.arange(W)[:, None] + off[None, :]).clamp(0, W - 1)      # [W,ws]
    out = torch.einsum("hwj,j->hw", out[:, cols], kernel)                  # horizontal pass
    return out


def quantise(m, levels, mask_type):
    """Section 5.2 step 4: float32 [H,W] -> [T,H,W] against b_0..b_T (b_T = 0), float32."""
    T = levels.numel() - 1
    out = []
    for k in range(T):
        if mask_type == "discrete" or (mask_type == "semi-continuous" and k < T - 1):
            out.append((m > levels[k]).to(F32))                      # literal m > b_k
        elif mask_type == "semi-continuous":                         # last slot
            out.append((m / levels[T - 1]).clamp(0, 1))
        else:                                                        # continuous
            out.append(((m - levels[k + 1]) / (levels[k] - levels[k + 1])).clamp(0, 1))
    return torch.stack(out)


def process_masks(masks, stds, strengths, levels, mask_type, cover_alpha):
    """Section 5.2 steps 1-5 for P layers (bottom first). masks: list of float32 [H,W] (m = a/255).
    Returns M [P,T,h,w] float32 (no fp16 cast on the fp32 path)."""
    P = len(masks)
    if P == 0:
        return None
    m = cover_and_blur(masks, stds, cover_alpha)                  # 1-2
    # CHOICE (literal 5.2): steps 3-4 run at image resolution and step 5 samples the result; they
    # are pointwise, so sampling first gives the same numbers.
    out = []
    for x, strength in zip(m, strengths):
        x = x * torch.tensor(strength, dtype=F32)                  # 3. strength, float32
        q = quantise(x, levels, mask_type)                          # 4. [T,H,W]
        out.append(q[:, ::8, ::8])                                  # 5. nearest: pixel (8y, 8x)
    return torch.stack(out).contiguous()


def cover_and_blur(masks, stds, cover_alpha):
    """Section 5.2 steps 1-2 (cover alpha, Gaussian blur) at image resolution: list of float32
    [H,W] -> list of float32 [H,W]. (Also the single-call mode's pixel-space blend masks, 11.8.)"""
    P = len(masks)
    m = [x.clone() for x in masks]
    # 1. cover alpha: layer i is damped wherever any layer above it is non-zero. The layers above
    #    are still undamped when layer i is processed (ascending order), so the test uses the input
    #    masks. float32 multiply.
    alpha = torch.tensor(cover_alpha, dtype=F32)
    for i in range(P - 1):
        covered = torch.stack(masks[i + 1:]).sum(0) > 0
        m[i] = torch.where(covered, m[i] * alpha, m[i])
    # 2. Gaussian blur, float64, if any std > 0; zero stds become 1e-5 (a delta kernel);
    #    one window for all masks, ws = 2*ceil(3*max std) + 1.
    if any(s > 0 for s in stds):
        ws = 2 * math.ceil(3 * max(stds)) + 1
        m = [blur_replicate(x.double(), gaussian_kernel_1d(s if s > 0 else 1e-5, ws)).to(F32)
             for x, s in zip(m, stds)]
    return m


def counts(M, T, h, w):
    """Cnt[k] = sum_i M[i,k] (ascending i), G[k] = clip(1 - Cnt[k], 0, 1)."""
    cnt = torch.zeros(T, h, w, dtype=F32)
    if M is not None:
        for i in range(M.shape[0]):
            cnt = cnt + M[i]
    return cnt, (1 - cnt).clamp(0, 1)


def centering_shift(Mik):
    """Section 8.2: roll that moves the bbox centre of a quantised [h,w] mask to (h//2, w//2)."""
    h, w = Mik.shape
    rows = torch.nonzero(Mik.ne(0).any(1)).flatten()
    cols = torch.nonzero(Mik.ne(0).any(0)).flatten()
    if rows.numel() == 0:                                     # empty mask: t = b = l = r = 0
        t = b = l = r = 0
    else:
        t, b, l, r = int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])
    cy, cx = (t + b + 1) // 2, (l + r + 1) // 2
    return (h // 2 - cy, w // 2 - cx)


def roll(x, shift):
    """out[y][x] = in[(y - dy) mod h][(x - dx) mod w]."""
    return torch.roll(x, shifts=shift, dims=(-2, -1))


# ----------------------------------------------------------------------------------------------
# Noise
# ----------------------------------------------------------------------------------------------

def draw_noise(scene, frames):
    """The fixed per-slot noises and the slot-0 frame noises a parity run injects (S4 leaves the
    generator free; this is the one the goldens use):
      init_noise set 0 and frame_noise: one torch.Generator seeded with the scene seed, drawing
        randn(T,4,h,w) then randn(F,4,h,w);
      init_noise set s >= 1: randn(T,4,h,w) from a Generator seeded with the s-th seed edit's seed.
    Returns (init_noise [S,T,4,h,w], frame_noise [F,4,h,w])."""
    h, w, T = scene.height // 8, scene.width // 8, scene.T
    g = torch.Generator().manual_seed(scene.seed)
    sets = [torch.randn(T, 4, h, w, generator=g)]
    frame_noise = torch.randn(frames, 4, h, w, generator=g)
    for e in sorted(scene.edits, key=lambda e: e.frame):      # stable: list order within a frame
        if e.kind == "seed" and e.frame < frames:
            sets.append(torch.randn(T, 4, h, w, generator=torch.Generator().manual_seed(e.seed)))
    return torch.stack(sets), frame_noise


class NoiseFeed:
    """Hands out the injected noises: init_noise set s after the s-th seed edit; frame_noise in
    sequence, one per stepped frame."""

    def __init__(self, init_noise, frame_noise):
        self.sets = init_noise if init_noise.dim() == 5 else init_noise[None]
        self.frames = frame_noise
        self.n_sets = 0
        self.n_frames = 0

    def next_init(self):
        if self.n_sets >= self.sets.shape[0]:
            raise SceneError("init_noise: more seed edits than noise sets")
        self.n_sets += 1
        return self.sets[self.n_sets - 1].clone()

    def next_frame(self):
        if self.n_frames >= self.frames.shape[0]:
            raise SceneError("frame_noise: more frames stepped than noises given")
        self.n_frames += 1
        return self.frames[self.n_frames - 1].clone()


# ----------------------------------------------------------------------------------------------
# The canvas (sections 7 and 9)
# ----------------------------------------------------------------------------------------------

@dataclass
class Layer:
    id: int
    prompt: str
    negative: str
    mask: torch.Tensor          # cached normalised input mask m = a/255 [H,W] (zeros if none)
    mask_std: float
    mask_strength: float
    prompt_strength: float
    e_raw: torch.Tensor = None  # [77,D] raw prompt embedding (with the suffix, if any)
    e: torch.Tensor = None      # blended: lerp(E_bg, e_raw, s)
    e_neg_raw: torch.Tensor = None
    e_u: torch.Tensor = None    # blended unconditional: lerp(E_bg_neg, e_neg_raw, s) (CFG only)


class Canvas:
    """One streaming canvas: its settings, background, layers, noises, buffers and caches."""

    def __init__(self, models, scene, profile, noise):
        self.m = models
        self.sc = scene
        self.profile = profile
        self.noise = noise
        self.H, self.W = scene.height, scene.width
        self.h, self.w = scene.height // 8, scene.width // 8
        self.T = scene.T
        self.sched = Schedule(models.scheduler, scene.timesteps)
        self.levels = self.sched.levels()
        self.cfg = scene.guidance_scale > 1                 # D3
        self.w_emb = models.guidance_embedding(scene.embedded_guidance_scale, 1) \
            if models.lcm_distilled else None               # S5; ignored by plain UNets
        self.layers: List[Layer] = []
        self.next_id = 0
        self.M = None
        self.cnt, self.G = counts(None, self.T, self.h, self.w)
        self.shifts = []                                    # [P][T] (dy, dx)
        # 7.1: N drawn from the seed, S = 0, buf = 0. CHOICE: a new canvas counts as not flushed
        # (7.5 lists canvas creation with reset_latent), so autoflush flushes before frame 0.
        self.N = noise.next_init()
        self.S = torch.zeros(self.T, 4, self.h, self.w)
        self.buf = torch.zeros(self.T - 1, 4, self.h, self.w)
        self.flushed = False
        self.z_white = models.encode_image(scene.decoder, torch.ones(3, self.H, self.W))
        self._init_background(scene.background)
        for spec in scene.layers:
            self._insert_layer(spec)
        self.reprocess_all_masks()

    # ---- text (section 6) ----

    def _blend(self, e_bg, e_raw, s):
        """6.2: E = E_bg + s*(E_raw - E_bg), float32."""
        return e_bg + torch.tensor(s, dtype=F32) * (e_raw - e_bg)

    def _encode_layer_prompt(self, l):
        # 6.2: with a suffix, each foreground prompt is encoded as prompt + suffix + bg prompt.
        # CHOICE: the suffix applies to prompts only, never to negative prompts.
        text = l.prompt if self.sc.suffix is None else l.prompt + self.sc.suffix + self.bg_prompt
        l.e_raw = self.m.encode_text(text)

    def _blend_layer(self, l):
        l.e = self._blend(self.e_bg, l.e_raw, l.prompt_strength)
        if self.cfg:                                        # negatives only matter under CFG (D3)
            if l.e_neg_raw is None:
                l.e_neg_raw = self.m.encode_text(l.negative)
            l.e_u = self._blend(self.e_bg_neg, l.e_neg_raw, l.prompt_strength)

    # ---- background ----

    def _init_background(self, bg):
        """S2: absent -> white + 'simple white background'; an image without a prompt -> '';
        a colour without a prompt -> 'simple white background' (the format's default 'without an
        image')."""
        self.bg_prompt, self.bg_negative = WHITE_PROMPT, ""
        self.bg_prompt_set = False      # whether a prompt was ever given (S2 (b))
        image = torch.ones(3, self.H, self.W)
        if bg is not None:
            if bg.image is not None:
                image = bg.image
            if bg.prompt is not None:
                self.bg_prompt, self.bg_prompt_set = bg.prompt, True
            elif bg.is_photo:
                self.bg_prompt, self.bg_prompt_set = "", True
            if bg.negative is not None:
                self.bg_negative = bg.negative
        self.z_bg = self.m.encode_image(self.sc.decoder, image)
        self._build_boot()
        self.e_bg = self.m.encode_text(self.bg_prompt)
        self.e_bg_neg = self.m.encode_text(self.bg_negative) if self.cfg else None

    def _build_boot(self):
        """7.1: boot[k] = r_k z_white + (1 - r_k) z_bg, r_k = clip(mix - k, 0, 1) (float32)."""
        mix = torch.tensor(self.sc.bootstrap_mix_steps, dtype=F32)
        boot = []
        for k in range(self.T):
            r = (mix - k).clamp(0, 1)
            boot.append(r * self.z_white + (1 - r) * self.z_bg)
        self.boot = torch.stack(boot)

    def set_background(self, bg):
        """9.1 'Set background image / prompt / negative'."""
        if bg.image is not None:
            self.z_bg = self.m.encode_image(self.sc.decoder, bg.image)
            self._build_boot()
        prompt = bg.prompt
        if prompt is None and bg.is_photo and not self.bg_prompt_set:
            prompt = ""                 # S2 (b): first image without any prompt given before
        # CHOICE: a `color` is not an image for S2 (b): it keeps the current prompt, and a scene
        # background with a colour and no prompt gets 'simple white background' (the format's
        # default "without an image").
        # (S2 (c): otherwise an image-only update keeps the current prompt.)
        reblend = False
        if bg.negative is not None:
            self.bg_negative = bg.negative
            if self.cfg:
                self.e_bg_neg = self.m.encode_text(self.bg_negative)
            reblend = True
        if prompt is not None:
            self.bg_prompt, self.bg_prompt_set = prompt, True
            self.e_bg = self.m.encode_text(self.bg_prompt)
            reblend = True
            if self.profile == "default" and self.sc.suffix is not None:
                for l in self.layers:   # the raw embeddings depend on the background prompt
                    self._encode_layer_prompt(l)
        # P3: `default` re-blends every layer against the new background embeddings;
        # `reference` keeps the old blends (until a layer's own text edit re-blends it).
        if reblend and self.profile == "default":
            for l in self.layers:
                self._blend_layer(l)
        self.flushed = False

    # ---- layers ----

    def _insert_layer(self, spec):
        mask = spec.mask if spec.mask is not None else torch.zeros(self.H, self.W)
        l = Layer(self.next_id, spec.prompt, spec.negative, mask, spec.mask_std, spec.mask_strength,
                  spec.prompt_strength)
        self.next_id += 1
        self._encode_layer_prompt(l)
        self._blend_layer(l)
        self.layers.append(l)           # a new layer goes on top (ids ascend with z-order)
        return l

    def _find(self, layer_id):
        for idx, l in enumerate(self.layers):
            if l.id == layer_id:
                return idx
        raise SceneError(f"no layer with id {layer_id}")

    def add_layer(self, spec):
        self._insert_layer(spec)
        self.reprocess_all_masks()      # S7
        self.flushed = False

    def remove_layer(self, layer_id):
        """9.3: drop the layer; re-process the remaining masks (S7, both profiles); buf, N and S
        are untouched."""
        del self.layers[self._find(layer_id)]
        self.reprocess_all_masks()
        self.flushed = False

    def update_layer(self, layer_id, fields):
        idx = self._find(layer_id)
        l = self.layers[idx]
        text = {"prompt", "negative", "prompt_strength"} & set(fields)
        mask = MASK_FIELDS & set(fields)
        if text:
            if "prompt" in fields:
                l.prompt = fields["prompt"]
                self._encode_layer_prompt(l)
            if "negative" in fields:
                l.negative = fields["negative"]
                l.e_neg_raw = None
            if "prompt_strength" in fields:
                l.prompt_strength = fields["prompt_strength"]
            self._blend_layer(l)        # that layer only, against the current E_bg
            self.flushed = False
        if mask:                        # mask-only edits leave "flushed" alone (7.5)
            if "mask" in fields:
                l.mask = fields["mask"] if fields["mask"] is not None else torch.zeros(self.H, self.W)
            if self.profile == "reference":
                # P4: a single-layer mask edit without std / strength uses the canvas defaults
                # (the stream defaults: std 8, strength 1). CHOICE: this holds for every mask-field
                # edit of one layer (mask, std or strength), and the values used are stored on the
                # layer (so a later full re-processing sees them).
                l.mask_std = fields.get("mask_std", STREAM_DEFAULTS["mask_std"])
                l.mask_strength = fields.get("mask_strength", STREAM_DEFAULTS["mask_strength"])
                self.reprocess_single_layer(idx)
            else:
                if "mask_std" in fields:
                    l.mask_std = fields["mask_std"]
                if "mask_strength" in fields:
                    l.mask_strength = fields["mask_strength"]
                self.reprocess_all_masks()  # S7

    def set_seed(self, seed):
        """9.1: new fixed noises N, stock noise S = 0."""
        self.N = self.noise.next_init()
        self.S = torch.zeros_like(self.S)
        self.flushed = False

    # ---- masks ----

    def reprocess_all_masks(self):
        """S7: every layer from its cached normalised mask, cover alpha across all layers."""
        self.M = process_masks([l.mask for l in self.layers], [l.mask_std for l in self.layers],
                               [l.mask_strength for l in self.layers], self.levels,
                               self.sc.mask_type, self.sc.cover_alpha)
        self.cnt, self.G = counts(self.M, self.T, self.h, self.w)
        self.shifts = [[centering_shift(self.M[i, k]) for k in range(self.T)]
                       for i in range(len(self.layers))]

    def reprocess_single_layer(self, idx):
        """P4 (`reference`): the layer alone through section 5 (no cover alpha either way, its own
        blur window), Cnt <- (Cnt - M_old) + M_new, G = clip(1 - Cnt, 0, 1)."""
        l = self.layers[idx]
        new = process_masks([l.mask], [l.mask_std], [l.mask_strength], self.levels,
                            self.sc.mask_type, self.sc.cover_alpha)[0]
        self.cnt = (self.cnt - self.M[idx]) + new
        self.G = (1 - self.cnt).clamp(0, 1)
        self.M = self.M.clone()
        self.M[idx] = new
        self.shifts[idx] = [centering_shift(new[k]) for k in range(self.T)]

    # ---- one frame (section 7.2) ----

    def background_targets(self):
        """Step 10. `reference` (P2): Bg[k] = sqrt(abar(t'))z_bg + sqrt(1-abar(t'))S[k+1] with
        t' = t_index_list[k+1], k < T-1; `default`: z_bg. Bg[T-1] = z_bg in both."""
        bg = []
        for k in range(self.T):
            if k == self.T - 1 or self.profile == "default":
                bg.append(self.z_bg.clone())
            else:
                bg.append(self.sched.bg_a[k] * self.z_bg + self.sched.bg_b[k] * self.S[k + 1])
        return torch.stack(bg)

    def run_unet(self, x_in):
        """Step 6 (+ 8): x_in [T,P,4,h,w] -> eps [T,P,4,h,w] (CFG-combined). Samples are
        slot-major, n = k*P + i; under CFG the batch is [unconditional; conditional]."""
        T, P = x_in.shape[:2]
        x = x_in.reshape(T * P, 4, self.h, self.w)
        t = torch.tensor([self.sched.tau[n // P] for n in range(T * P)], dtype=torch.long)
        ctx = torch.stack([self.layers[n % P].e for n in range(T * P)])
        if self.cfg:
            ctx_u = torch.stack([self.layers[n % P].e_u for n in range(T * P)])
            x, t, ctx = torch.cat([x, x]), torch.cat([t, t]), torch.cat([ctx_u, ctx])
        w_emb = self.w_emb.expand(x.shape[0], -1) if self.w_emb is not None else None
        eps = self.m.unet_eps(x, t, ctx, w_emb)
        if self.cfg:
            eps_u, eps_c = eps.chunk(2)
            g = torch.tensor(self.sc.guidance_scale, dtype=F32)
            eps = eps_u + g * (eps_c - eps_u)               # D3 / 6.3
        return eps.reshape(T, P, 4, self.h, self.w)

    def step(self, x0_noise, record=None):
        """One frame; returns Y[T-1]. `record` (a dict) receives the frame's intermediates."""
        T, P, sc = self.T, len(self.layers), self.sched
        # 2-3. fresh slot 0, buffered slots 1..T-1; stock noise shifts in N_0.
        X = torch.cat([x0_noise[None], self.buf])
        self.S = torch.cat([self.N[:1], self.S[:-1]])
        D = torch.zeros(T, P, 4, self.h, self.w)
        if P:
            # 4. replicate over the layers.
            x_in = X[:, None].repeat(1, P, 1, 1, 1)
            rolled = [[False] * P for _ in range(T)]
            if self.sc.bootstrap_steps >= 1:
                # 5. bootstrapping of the slots k < bootstrap_steps: outside the layer's mask the
                #    latent becomes the noisy white / background mix B[k] = a_k boot[k] + b_k S[k]
                #    (slots k >= bootstrap_steps have M' = 1 and stay as they are).
                for k in range(min(self.sc.bootstrap_steps, T)):
                    Bk = sc.a[k] * self.boot[k] + sc.b[k] * self.S[k]
                    for i in range(P):
                        m = self.M[i, k]
                        x_in[k, i] = (1 - m) * Bk + m * x_in[k, i]
                # centering: `reference` rolls every slot, `default` the bootstrap slots (P1).
                for k in range(T):
                    if self.profile == "reference" or k < self.sc.bootstrap_steps:
                        for i in range(P):
                            x_in[k, i] = roll(x_in[k, i], self.shifts[i][k])
                            rolled[k][i] = True
            eps = self.run_unet(x_in)                       # 6 (+ 8)
            if record is not None:
                record["x_in"], record["eps"] = x_in.clone(), eps.clone()
            # 7. uncentering of eps and x_in.
            for k in range(T):
                for i in range(P):
                    if rolled[k][i]:
                        back = tuple(-s for s in self.shifts[i][k])
                        eps[k, i] = roll(eps[k, i], back)
                        x_in[k, i] = roll(x_in[k, i], back)
            # 9. Denoise: per-layer x0 estimates.
            for k in range(T):
                D[k] = sc.c_out[k] * ((x_in[k] - sc.b[k] * eps[k]) / sc.a[k]) + sc.c_skip[k] * x_in[k]
        # 10-11. background targets, latent pre-averaging in x0 space.
        Bg = self.background_targets()
        Y = torch.zeros(T, 4, self.h, self.w)
        for k in range(T):
            acc = torch.zeros(4, self.h, self.w)
            for i in range(P):
                acc = acc + self.M[i, k] * D[k, i]
            cnt = self.cnt[k]
            A = torch.where(cnt > 0, acc / torch.where(cnt > 0, cnt, torch.ones_like(cnt)),
                            torch.zeros_like(acc))
            Y[k] = (1 - self.G[k]) * A + self.G[k] * Bg[k]
        # 13. re-noise with the fixed per-slot noises and shift.
        self.buf = torch.stack([sc.a[k + 1] * Y[k] + sc.b[k + 1] * self.N[k + 1]
                                for k in range(T - 1)]) if T > 1 else self.buf
        if record is not None:
            record["D"], record["Y"] = D, Y.clone()
        return Y[T - 1].clone()                             # 12. output latent

    def flush(self):
        """7.5: T frames, neither decoded nor published. CHOICE: their slot-0 noises come from the
        same frame-noise sequence as the published frames (with injected noise, frame_noise then
        needs F + T*(number of flushes) entries)."""
        for _ in range(self.T):
            self.step(self.noise.next_frame())
        self.flushed = True

    # ---- edits ----

    def apply_edit(self, e):
        if e.kind == "layer":
            self.update_layer(e.layer, e.fields)
        elif e.kind == "remove":
            self.remove_layer(e.layer)
        elif e.kind == "add_layer":
            self.add_layer(e.spec)
        elif e.kind == "background":
            self.set_background(e.spec)
        elif e.kind == "seed":
            self.set_seed(e.seed)
        else:
            raise AssertionError(e.kind)

    def prompt_embeds(self, uncond=False):
        """The blended per-layer embeddings E_i (or E_u,i) [P,77,D]."""
        if not self.layers:
            return torch.zeros(0, 77, self.m.unet.config.cross_attention_dim)
        return torch.stack([l.e_u if uncond else l.e for l in self.layers]).clone()

    def debug_state(self):
        """Masks, counts, background weights and shifts of the current state."""
        P = len(self.layers)
        M = self.M if P else torch.zeros(0, self.T, self.h, self.w)
        shifts = torch.tensor(self.shifts, dtype=torch.int64).reshape(P, self.T, 2)
        return {"masks": M.clone(), "cnt": self.cnt.clone(), "g": self.G.clone(), "shifts": shifts}


MASK_FIELDS = {"mask", "mask_std", "mask_strength"}


def clears_flushed(e):
    """7.5: everything but a mask-only layer edit marks the canvas 'not flushed'."""
    return not (e.kind == "layer" and set(e.fields) <= MASK_FIELDS)


def count_flushes(scene, frames):
    """How many flushes an autoflush run of `frames` frames performs (a new canvas is not
    flushed)."""
    if not scene.autoflush:
        return 0
    flushed, n = False, 0
    for f in range(frames):
        if any(e.frame == f and clears_flushed(e) for e in scene.edits):
            flushed = False
        if not flushed:
            n, flushed = n + 1, True
    return n


def render(models, scene, frames, profile=None, init_noise=None, frame_noise=None,
           record_frames=3, record_edits=True, decode=True):
    """Stream `frames` frames of a scene, applying its edits at frame boundaries (9.2).

    Returns a dict: frame_latents [F,4,h,w], frames [F,3,H,W] (if decode), init_noise,
    frame_noise, the initial state's masks / cnt / g / shifts, and for frames f < record_frames:
    x_in_f{f} (UNet input after bootstrap + centering), eps_f{f} (UNet output, CFG-combined, in the
    same rolled frame as x_in), d_f{f} (x0 estimates, uncentered) [T,P,4,h,w], y_f{f} [T,4,h,w];
    after each frame f with edits: masks_f{f}, cnt_f{f}, g_f{f}, shifts_f{f} (the masks frame f
    runs under); 'stock_noise' and 'N' at the end, for the sanity checks."""
    profile = profile or scene.profile
    if init_noise is None or frame_noise is None:
        init_noise, frame_noise = draw_noise(scene, frames + scene.T * count_flushes(scene, frames))
    feed = NoiseFeed(init_noise, frame_noise)
    canvas = Canvas(models, scene, profile, feed)
    out = {"init_noise": init_noise, "frame_noise": frame_noise}
    out.update(canvas.debug_state())
    out["z_bg"], out["z_white"] = canvas.z_bg.clone(), canvas.z_white.clone()
    out["prompt_embeds"] = canvas.prompt_embeds()
    if canvas.cfg:
        out["prompt_embeds_uncond"] = canvas.prompt_embeds(uncond=True)
    # stable sort: list order within a frame; edits at frames >= `frames` never apply
    edits = sorted(scene.edits, key=lambda e: e.frame)
    latents, images = [], []
    for f in range(frames):
        applied = [e for e in edits if e.frame == f]
        for e in applied:
            canvas.apply_edit(e)
        if applied and record_edits:            # the state each edit frame starts from
            for k, v in canvas.debug_state().items():
                out[f"{k}_f{f}"] = v
        if scene.autoflush and not canvas.flushed:
            canvas.flush()
        rec = {} if f < record_frames else None
        y = canvas.step(feed.next_frame(), rec)
        latents.append(y)
        if decode:
            images.append(models.decode(scene.decoder, y))
        if rec is not None:
            for k, v in rec.items():
                out[f"{k.lower()}_f{f}"] = v
    out["frame_latents"] = torch.stack(latents)
    if decode:
        out["frames"] = torch.stack(images)
    out["stock_noise"], out["N"] = canvas.S.clone(), canvas.N.clone()
    out["canvas"] = canvas
    return out


# ----------------------------------------------------------------------------------------------
# Non-streaming single-call mode (section 11, D6)
# ----------------------------------------------------------------------------------------------
#
# semdraw's precise reading of section 11 (the C side implements the same text):
#   settings   the scene loaded with mode="single" (defaults: mask_type discrete, mask_std 1.0,
#              prompt_strength 1.0, decoder vae); `edits`, `profile` and `autoflush` are ignored;
#              leak suppression always on with lambda = 0.2; one tile (H, W <= 768).
#   masks      section 5 -> M [P,T,h,w], shifts (8.2); bg_mask[k] = clip(1 - sum_i M[i,k], 0, 1);
#              uncovered = any(bg_mask > 0).
#   background IMAGE if the scene has background.image or .color (z_bg = VAE posterior mean x
#              scaling of 2 img - 1, S6); else GENERATED if uncovered and a background prompt is
#              given (an extra bottom layer, index 0, mask bg_mask[k], embedding E_bg, negative
#              E_bg_neg, no z_bg composite); else IMAGE with the white image (z_bg = z_white) and
#              the prompt "simple white background image".
#   embeddings E_i = lerp(E_bg, E_i_raw, s_i) iff uncovered (else E_i_raw); under CFG (g > 1)
#              E_u,i = lerp(E_bg_neg, E_i_neg, s_i) (else E_i_neg).
#   init       x = init_latent; if tau_0 < 999 and IMAGE: x = a_0 z_bg + b_0 x.
#   step k     per layer: bootstrap (k < bootstrap_steps): r = clip(mix - k, 0, 1),
#              bg = r z_white + (1 - r)(z_bg if IMAGE else x), bg = a_k bg + b_k boot_noise[k],
#              X_i = (1 - M) bg + M x, roll; UNet; unroll eps and X_i; D_i (as the stream);
#              W_i = M[i,k] (x (2 sigmoid(leak/lambda) - 1) in bootstrap steps, leak = channel
#              mean of (D_i - bg)^2); x = sum W_i D_i / sum W_i (0 where the count is 0);
#              IMAGE: G = clip(1 - count, 0, 1), x = (1 - G) x + G z_bg; re-noise with
#              step_noise[k] unless k = T-1.
#   decode     full VAE; if the scene gave an image or a colour, blend in pixel space with
#              mask_px = clip(sum_i cover-alpha'd blurred mask_i, 0, 1) (scene layers only).

def draw_single_noise(scene):
    """The noises a single-call parity run injects, from one torch.Generator seeded with the scene
    seed, in this order: init_latent [1,4,h,w], boot_noise [max(bootstrap_steps,1),4,h,w] (the
    first bootstrap_steps used), step_noise [max(T-1,1),4,h,w] (re-noise after step k < T-1)."""
    h, w, T = scene.height // 8, scene.width // 8, scene.T
    g = torch.Generator().manual_seed(scene.seed)
    init_latent = torch.randn(1, 4, h, w, generator=g)
    boot_noise = torch.randn(max(scene.bootstrap_steps, 1), 4, h, w, generator=g)
    step_noise = torch.randn(max(T - 1, 1), 4, h, w, generator=g)
    return init_latent, boot_noise, step_noise


def _blend_emb(e_bg, e_raw, s):
    """6.2: E = E_bg + s*(E_raw - E_bg), float32 (the stream's Canvas._blend)."""
    return e_bg + torch.tensor(s, dtype=F32) * (e_raw - e_bg)


def render_single(models, scene, init_latent=None, boot_noise=None, step_noise=None):
    """Render a scene (loaded with mode="single") in the single-call mode. Returns a dict:
    final_latent [1,4,h,w], image [1,3,H,W] (after the blend), masks [P',T,h,w] (P' = P, or P+1
    with the generated background layer at index 0), shifts [P',T,2] (I64), z_white [4,h,w],
    z_bg [4,h,w] (IMAGE kinds only), step_x0 [T,4,h,w] (x of each step after the aggregation and
    the z_bg composite, before the re-noise), count [T,h,w] (sum of the leak-weighted masks),
    prompt_embeds [P',77,D] (+ prompt_embeds_uncond under CFG), the injected noises, and kind
    ('image', 'white' or 'generated'), bg_prompt, blend (bool)."""
    if scene.mode != "single":
        raise SceneError("render_single needs a scene loaded with mode='single' (its defaults)")
    H, W, h, w, T = scene.height, scene.width, scene.height // 8, scene.width // 8, scene.T
    if H > SINGLE_TILE_SIZE or W > SINGLE_TILE_SIZE:
        raise SceneError(f"single-call mode: {W}x{H} needs tiling (11.6), which the reference "
                         f"does not implement (canvases up to {SINGLE_TILE_SIZE} px)")
    if init_latent is None or boot_noise is None or step_noise is None:
        init_latent, boot_noise, step_noise = draw_single_noise(scene)
    if init_latent.shape != (1, 4, h, w):
        raise SceneError(f"init_latent: shape {tuple(init_latent.shape)}, want (1, 4, {h}, {w})")
    if boot_noise.dim() != 4 or boot_noise.shape[0] < min(scene.bootstrap_steps, T) \
            or boot_noise.shape[1:] != (4, h, w):
        raise SceneError(f"boot_noise: shape {tuple(boot_noise.shape)}")
    if step_noise.dim() != 4 or step_noise.shape[0] < T - 1 or step_noise.shape[1:] != (4, h, w):
        raise SceneError(f"step_noise: shape {tuple(step_noise.shape)}")
    dec = scene.decoder
    sched = Schedule(models.scheduler, scene.timesteps)
    a, b = sched.a, sched.b

    # 1. masks (section 5 with the scene's mask_type / cover_alpha and per-layer std, strength).
    specs = scene.layers
    P = len(specs)
    masks_in = [l.mask if l.mask is not None else torch.zeros(H, W) for l in specs]
    M = process_masks(masks_in, [l.mask_std for l in specs], [l.mask_strength for l in specs],
                      sched.levels(), scene.mask_type, scene.cover_alpha)
    _, bg_mask = counts(M, T, h, w)                 # clip(1 - sum_i M[i,k], 0, 1), ascending i
    uncovered = bool((bg_mask > 0).any())

    # 2. background kind (S2 single-call strings; a colour is a plain image).
    bg = scene.background
    white = torch.ones(3, H, W)
    z_white = models.encode_image(dec, white)
    bg_prompt = SINGLE_WHITE_PROMPT
    if bg is not None and bg.prompt is not None:
        bg_prompt = bg.prompt
    elif bg is not None and bg.is_photo:
        bg_prompt = ""                              # S2 (b): an image without a prompt
    bg_negative = bg.negative if bg is not None and bg.negative is not None else ""
    if bg is not None and bg.image is not None:
        kind, bg_img = "image", bg.image
        z_bg = models.encode_image(dec, bg_img)
    elif uncovered and bg is not None and bg.prompt is not None:
        kind, bg_img, z_bg = "generated", None, None
    else:
        kind, bg_img = "white", None
        bg_prompt = SINGLE_WHITE_PROMPT
        z_bg = z_white
    is_image = kind != "generated"

    # 3. embeddings (lerp against the background embedding iff some area is uncovered).
    cfg = scene.guidance_scale > 1                  # D3
    e_bg = models.encode_text(bg_prompt)
    e_bg_neg = models.encode_text(bg_negative) if cfg else None
    E, E_u = [], []
    for l in specs:
        # CHOICE: a scene suffix applies as in the stream (6.2): prompt + suffix + bg_prompt.
        text = l.prompt if scene.suffix is None else l.prompt + scene.suffix + bg_prompt
        raw = models.encode_text(text)
        E.append(_blend_emb(e_bg, raw, l.prompt_strength) if uncovered else raw)
        if cfg:
            neg = models.encode_text(l.negative)
            E_u.append(_blend_emb(e_bg_neg, neg, l.prompt_strength) if uncovered else neg)
    Ms = M if M is not None else torch.zeros(0, T, h, w)
    if kind == "generated":                         # the background prompt as the bottom layer
        Ms = torch.cat([bg_mask[None], Ms])
        E.insert(0, e_bg)
        if cfg:
            E_u.insert(0, e_bg_neg)
    Pp = Ms.shape[0]
    shifts = [[centering_shift(Ms[i, k]) for k in range(T)] for i in range(Pp)]
    w_emb = models.guidance_embedding(scene.embedded_guidance_scale, 1) \
        if models.lcm_distilled else None          # S5 / 6.4
    ctx = torch.stack(E) if Pp else None
    ctx_u = torch.stack(E_u) if (Pp and cfg) else None

    def unet(X, tau):
        """X [P',4,h,w] -> eps [P',4,h,w], CFG-combined; under CFG the batch is [uncond; cond]."""
        n = X.shape[0]
        t = torch.full((n,), tau, dtype=torch.long)
        x_, t_, c_ = X, t, ctx
        if cfg:
            x_, t_, c_ = torch.cat([X, X]), torch.cat([t, t]), torch.cat([ctx_u, ctx])
        we = w_emb.expand(x_.shape[0], -1) if w_emb is not None else None
        eps = models.unet_eps(x_, t_, c_, we)
        if cfg:
            eps_u, eps_c = eps.chunk(2)
            eps = eps_u + torch.tensor(scene.guidance_scale, dtype=F32) * (eps_c - eps_u)
        return eps

    # 4. init.
    x = init_latent[0].clone()
    if sched.tau[0] < 999 and is_image:
        x = a[0] * z_bg + b[0] * x
    lam = torch.tensor(LEAK_SENSITIVITY, dtype=F32)
    mix = torch.tensor(scene.bootstrap_mix_steps, dtype=F32)
    step_x0, counts_k = [], []
    # 5. steps.
    for k in range(T):
        boot = k < scene.bootstrap_steps
        count = torch.zeros(h, w)
        value = torch.zeros(4, h, w)
        if Pp:
            X = x[None].repeat(Pp, 1, 1, 1)
            if boot:
                r = (mix - k).clamp(0, 1)
                bgl = r * z_white + (1 - r) * (z_bg if is_image else x)
                bgl = a[k] * bgl + b[k] * boot_noise[k]
                for i in range(Pp):
                    X[i] = (1 - Ms[i, k]) * bgl + Ms[i, k] * X[i]
                    X[i] = roll(X[i], shifts[i][k])
            eps = unet(X, sched.tau[k])
            if boot:
                for i in range(Pp):
                    back = tuple(-s for s in shifts[i][k])
                    eps[i] = roll(eps[i], back)
                    X[i] = roll(X[i], back)
            for i in range(Pp):
                D = sched.c_out[k] * ((X[i] - b[k] * eps[i]) / a[k]) + sched.c_skip[k] * X[i]
                Wi = Ms[i, k]
                if boot:
                    d2 = (D - bgl) ** 2
                    leak = (((d2[0] + d2[1]) + d2[2]) + d2[3]) / 4
                    Wi = Wi * (2 * torch.sigmoid(leak / lam) - 1)
                count = count + Wi
                value = value + Wi * D
        x = torch.where(count > 0, value / torch.where(count > 0, count, torch.ones_like(count)),
                        torch.zeros_like(value))
        if is_image:
            G = (1 - count).clamp(0, 1)
            x = (1 - G) * x + G * z_bg
        step_x0.append(x.clone())
        counts_k.append(count)
        if k < T - 1:
            x = a[k + 1] * x + b[k + 1] * step_noise[k]

    # 6. decode and blend.
    img = models.decode(dec, x)
    blend = bg_img is not None
    if blend:
        mask_px = torch.zeros(H, W)
        if P:
            for m in cover_and_blur(masks_in, [l.mask_std for l in specs], scene.cover_alpha):
                mask_px = mask_px + m
        mask_px = mask_px.clamp(0, 1)
        img = img * mask_px + bg_img * (1 - mask_px)
    out = {"final_latent": x[None].clone(), "image": img[None].contiguous(),
           "masks": Ms.clone(), "shifts": torch.tensor(shifts, dtype=torch.int64).reshape(Pp, T, 2),
           "z_white": z_white.clone(), "step_x0": torch.stack(step_x0),
           "count": torch.stack(counts_k),
           "prompt_embeds": ctx.clone() if Pp else torch.zeros(0, 77, e_bg.shape[-1]),
           "init_latent": init_latent, "boot_noise": boot_noise, "step_noise": step_noise,
           "kind": kind, "bg_prompt": bg_prompt, "blend": blend, "uncovered": uncovered,
           "sched": sched}
    if cfg and Pp:
        out["prompt_embeds_uncond"] = ctx_u.clone()
    if is_image:
        out["z_bg"] = z_bg.clone()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("scene")
    ap.add_argument("--single", action="store_true",
                    help="single-call mode (section 11): one image; the scene's single-call "
                         "defaults apply and its edits are ignored; --frames and --profile unused")
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--profile", choices=("default", "reference"), help="override the scene's")
    ap.add_argument("--model", default=os.path.join(MODELS, "tiny-sd15"), help="diffusers folder")
    ap.add_argument("--taesd", default=os.path.join(MODELS, "taesd"))
    ap.add_argument("--noise", help="safetensors with init_noise and frame_noise (injected); "
                                     "--single: init_latent, boot_noise and step_noise")
    ap.add_argument("--dump", help="write frame_latents and frames (safetensors); "
                                   "--single: final_latent [1,4,h,w] and image [1,3,H,W]")
    ap.add_argument("--png-dir", help="write the frames as 8-bit PNGs (S9: truncation); "
                                      "--single: image.png")
    ap.add_argument("--network-dtype", choices=("float32", "float64"), default="float32",
                    help="precision of the networks (everything else is float32)")
    args = ap.parse_args()
    from safetensors.torch import load_file, save_file
    if args.single:
        return main_single(args)
    scene = load_scene(args.scene)
    models = Models(args.model, args.taesd, getattr(torch, args.network_dtype))
    init_noise = frame_noise = None
    if args.noise:
        t = load_file(args.noise)
        init_noise, frame_noise = t["init_noise"], t["frame_noise"]
    with torch.no_grad():
        out = render(models, scene, args.frames, args.profile, init_noise, frame_noise, record_frames=0)
    if args.dump:
        save_file({"frame_latents": out["frame_latents"].contiguous(),
                   "frames": out["frames"].contiguous()}, args.dump)
    if args.png_dir:
        os.makedirs(args.png_dir, exist_ok=True)
        for f, img in enumerate(out["frames"]):
            px = torch.floor(255 * img.clamp(0, 1)).to(torch.uint8).permute(1, 2, 0).numpy()
            Image.fromarray(px, "RGB").save(os.path.join(args.png_dir, f"frame_{f:04d}.png"))
    lat = out["frame_latents"]
    print(f"{args.scene}: {args.frames} frames, profile {args.profile or scene.profile}, "
          f"P = {len(out['canvas'].layers)}, latent mean {lat.mean():.5f} std {lat.std():.5f}")


def main_single(args):
    from safetensors.torch import load_file, save_file
    scene = load_scene(args.scene, mode="single")
    models = Models(args.model, args.taesd, getattr(torch, args.network_dtype))
    noise = {}
    if args.noise:
        t = load_file(args.noise)
        noise = {k: t[k] for k in ("init_latent", "boot_noise", "step_noise")}
    with torch.no_grad():
        out = render_single(models, scene, **noise)
    if args.dump:
        save_file({"final_latent": out["final_latent"].contiguous(),
                   "image": out["image"].contiguous()}, args.dump)
    if args.png_dir:
        os.makedirs(args.png_dir, exist_ok=True)
        px = torch.floor(255 * out["image"][0].clamp(0, 1)).to(torch.uint8).permute(1, 2, 0).numpy()
        Image.fromarray(px, "RGB").save(os.path.join(args.png_dir, "image.png"))
    lat = out["final_latent"]
    print(f"{args.scene}: single call, background {out['kind']}, P' = {out['masks'].shape[0]}, "
          f"latent mean {lat.mean():.5f} std {lat.std():.5f}")


if __name__ == "__main__":
    main()
