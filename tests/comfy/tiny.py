"""Tiny seeded random models built from ComfyUI's own classes (tests only).

The configurations follow ``/work/shared/recipes/tiny_comfy_models.json``
(checked on CPU with ComfyUI 0.3.75). ComfyUI's ops skip weight
initialisation, so every parameter is filled here from a seeded generator:
the same call gives the same model on any machine.

In-process builders (tier 2): :func:`tiny_svd`, :func:`tiny_wan`,
:func:`tiny_clip_vision`; :func:`save_tiny_preview_decoder` writes a random
TAESD / TAEHV preview decoder for ComfyUI's ``models/vae_approx``. File writers (tier 3, for ComfyUI's own loader
nodes): :func:`save_tiny_wan_files`; :func:`save_tiny_svd_files` explains
why no tiny SVD checkpoint can be loaded by ComfyUI's loaders.
"""

from __future__ import annotations

import math
from pathlib import Path

import comfy.clip_vision
import comfy.ldm.wan.vae
import comfy.model_management
import comfy.model_patcher
import comfy.sd
import comfy.supported_models
import comfy.utils
import torch

DATA = Path(__file__).resolve().parent / "data"

WAN_TEXT_LEN = 8
"""Tokens in the tiny Wan text conditioning."""

# The recipe's configurations, copied so the tests do not depend on a file outside the repository.
WAN_IN_PROCESS = {
    "image_model": "wan2.1", "model_type": "t2v", "dim": 32, "ffn_dim": 64, "num_heads": 2,
    "num_layers": 1, "in_dim": 36, "out_dim": 16, "text_dim": 16, "freq_dim": 256,
    "patch_size": [1, 2, 2], "window_size": [-1, -1], "qk_norm": True, "cross_attn_norm": True, "eps": 1e-6,
}
WAN_LOADABLE = {
    "image_model": "wan2.1", "model_type": "t2v", "dim": 128, "ffn_dim": 256, "num_heads": 1,
    "num_layers": 2, "in_dim": 36, "out_dim": 16, "text_dim": 4096, "freq_dim": 256,
}
WAN_VAE = {
    "dim": 8, "z_dim": 16, "dim_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_scales": [],
    "temperal_downsample": [False, True, True], "dropout": 0.0,
}
SVD_UNET = {
    "use_checkpoint": False, "image_size": 32, "out_channels": 4, "use_spatial_transformer": True,
    "legacy": False, "num_classes": "sequential", "adm_in_channels": 768, "in_channels": 8,
    "model_channels": 64, "num_res_blocks": [1, 1], "transformer_depth": [1, 1], "channel_mult": [1, 2],
    "transformer_depth_middle": 1, "use_linear_in_transformer": True, "context_dim": 32,
    "transformer_depth_output": [1, 1, 1, 1], "use_temporal_resblock": True,
    "use_temporal_attention": True, "extra_ff_mix_layer": True, "use_spatial_context": True,
    "merge_strategy": "learned_with_images", "merge_factor": 0.0, "video_kernel_size": [3, 1, 1],
    "disable_temporal_crossattention": False, "max_ddpm_temb_period": 10000,
}
SD_VAE_CONFIG = {
    "params": {
        "embed_dim": 4,
        "ddconfig": {
            "double_z": True, "z_channels": 4, "resolution": 64, "in_channels": 3, "out_ch": 3, "ch": 32,
            "ch_mult": [1, 1, 1, 1], "num_res_blocks": 1, "attn_resolutions": [], "dropout": 0.0,
        },
    }
}
CLIP_VISION_JSON = DATA / "tiny_clip_vision.json"


def _randomize(named, seed: int) -> None:
    """Fill parameters from a seeded CPU generator, in name order.

    Norm scales (1-D ``weight``, any ``gamma``) start near 1, other 1-D
    parameters (biases, embeddings) near 0, matrices and kernels with
    variance 1 / fan_in so activations stay O(1) through the tiny nets.
    """
    generator = torch.Generator(device="cpu").manual_seed(seed)
    with torch.no_grad():
        for name, param in sorted(named, key=lambda item: item[0]):
            if not param.is_floating_point():
                continue
            shape = tuple(param.shape)
            noise = torch.randn(shape, generator=generator, dtype=torch.float32)
            leaf = name.rsplit(".", 1)[-1]
            if leaf == "gamma" or (param.ndim == 1 and leaf in ("weight", "scale")):
                value = 1.0 + 0.02 * noise
            elif param.ndim <= 1:
                value = 0.02 * noise
            else:
                fan_in = max(1, param.numel() // shape[0])
                value = noise / math.sqrt(fan_in)
            param.copy_(value.to(param.dtype))


def _patcher(model: torch.nn.Module) -> comfy.model_patcher.ModelPatcher:
    return comfy.model_patcher.ModelPatcher(
        model,
        load_device=comfy.model_management.get_torch_device(),
        offload_device=comfy.model_management.unet_offload_device(),
    )


def _wan_base_model(unet_config: dict, seed: int):
    config = comfy.supported_models.WAN21_T2V(dict(unet_config))
    config.set_inference_dtype(torch.float32, None)
    model = config.get_model({})
    _randomize(model.diffusion_model.named_parameters(), seed)
    return model


def _wan_vae_state_dict(seed: int) -> dict:
    vae_model = comfy.ldm.wan.vae.WanVAE(**WAN_VAE)
    sd = {k: v.detach().clone().float() for k, v in vae_model.state_dict().items()}
    _randomize(sd.items(), seed)
    return sd


def tiny_wan_vae(seed: int = 2) -> comfy.sd.VAE:
    """A Wan 2.1 VAE (spatial /8, temporal /4, 16 latent channels), dim 8."""
    return comfy.sd.VAE(sd=_wan_vae_state_dict(seed))


def tiny_wan(seed: int = 1):
    """Wan 2.2-14B-I2V-style model (in_dim 36, no CLIP-vision branch), Wan VAE, text conditioning.

    Returns ``(model_patcher, vae, positive, negative)``; the conditionings are
    ComfyUI CONDITIONING lists ``[[tensor [1, L, 16], {}]]``.
    """
    model = _wan_base_model(WAN_IN_PROCESS, seed)
    vae = tiny_wan_vae(seed + 1)
    generator = torch.Generator(device="cpu").manual_seed(seed + 2)
    text_dim = WAN_IN_PROCESS["text_dim"]
    positive = [[torch.randn((1, WAN_TEXT_LEN, text_dim), generator=generator), {}]]
    negative = [[torch.randn((1, WAN_TEXT_LEN, text_dim), generator=generator), {}]]
    return _patcher(model), vae, positive, negative


def tiny_clip_vision(seed: int = 3) -> comfy.clip_vision.ClipVisionModel:
    """A 2-layer CLIP vision model (hidden 32, projection 32, 28 px input)."""
    clip_vision = comfy.clip_vision.ClipVisionModel(str(CLIP_VISION_JSON))
    _randomize(clip_vision.model.named_parameters(), seed)
    return clip_vision


def tiny_sd_vae(seed: int = 4) -> comfy.sd.VAE:
    """A 2D SD-style VAE (spatial /8, 4 latent channels), 32 channels."""
    vae = comfy.sd.VAE(sd={}, config=SD_VAE_CONFIG)
    _randomize(vae.first_stage_model.named_parameters(), seed)
    return vae


def tiny_svd(seed: int = 5):
    """SVD img2vid (EDM v-prediction), SD-style VAE and CLIP vision (projection 32 = context_dim).

    Returns ``(model_patcher, vae, clip_vision)``. Latent batch = frames.
    """
    config = comfy.supported_models.SVD_img2vid(dict(SVD_UNET))
    config.set_inference_dtype(torch.float32, None)
    model = config.get_model({})
    _randomize(model.diffusion_model.named_parameters(), seed)
    return _patcher(model), tiny_sd_vae(seed + 1), tiny_clip_vision(seed + 2)


def save_tiny_wan_files(directory, seed: int = 11) -> dict[str, Path]:
    """Write a tiny Wan I2V diffusion model and Wan VAE that ComfyUI's loaders accept.

    Files (relative to ``directory``, ComfyUI's ``models/`` layout):

    - ``diffusion_models/chunkwise_tiny_wan_i2v.safetensors``: dim 128,
      2 layers, in_dim 36, text_dim 4096 (about 4.5 MB). ``UNETLoader``
      (``unet_name``, ``weight_dtype="default"``) detects it as WAN21_T2V
      with 36 input channels, i.e. Wan 2.2 14B I2V style. Its text
      conditioning must be ``[1, L, 4096]`` (umt5-xxl width).
    - ``vae/chunkwise_tiny_wan_vae.safetensors``: Wan 2.1 VAE, dim 8
      (``VAELoader``, ``vae_name``).

    Returns the paths by role: ``{"unet": ..., "vae": ...}``.
    """
    root = Path(directory)
    (root / "diffusion_models").mkdir(parents=True, exist_ok=True)
    (root / "vae").mkdir(parents=True, exist_ok=True)
    model = _wan_base_model(WAN_LOADABLE, seed)
    unet_sd = {k: v.detach().clone().contiguous() for k, v in model.diffusion_model.state_dict().items()}
    unet_path = root / "diffusion_models" / "chunkwise_tiny_wan_i2v.safetensors"
    comfy.utils.save_torch_file(unet_sd, str(unet_path))
    vae_path = root / "vae" / "chunkwise_tiny_wan_vae.safetensors"
    vae_sd = {k: v.contiguous() for k, v in _wan_vae_state_dict(seed + 1).items()}
    comfy.utils.save_torch_file(vae_sd, str(vae_path))
    return {"unet": unet_path, "vae": vae_path}


SVD_FILE_NOT_FEASIBLE = (
    "no tiny SVD checkpoint can be loaded by ComfyUI 0.3.75's loaders: ImageOnlyCheckpointLoader and "
    "UNETLoader only accept a UNet whose detected config matches SVD_img2vid exactly (model_channels 320, "
    "context_dim 1024, 4 levels: about 1.5 B parameters); the checkpoint's CLIP vision is only recognised "
    "with ViT-H's 32 layers of width 1280, and VAELoader builds SD VAEs with ch 128 whatever the file holds. "
    "Drive SVD end to end with in-process tiny models (tests/comfy/tiny.py tiny_svd) instead."
)


def save_tiny_svd_files(directory) -> dict[str, Path]:
    """Not feasible: see :data:`SVD_FILE_NOT_FEASIBLE` (checked by a tier-2 test)."""
    raise NotImplementedError(SVD_FILE_NOT_FEASIBLE)


def svd_checkpoint_state_dict(seed: int = 21) -> dict:
    """The tiny SVD parts under a real SVD checkpoint's key prefixes (to show the loaders refuse it)."""
    model, vae, clip_vision = tiny_svd(seed)
    sd = {}
    for k, v in model.model.diffusion_model.state_dict().items():
        sd["model.diffusion_model." + k] = v.detach().clone()
    for k, v in vae.first_stage_model.state_dict().items():
        sd["first_stage_model." + k] = v.detach().clone()
    return sd


def save_tiny_preview_decoder(directory, latent_format, seed: int = 31) -> Path:
    """A random-weight preview decoder where ComfyUI's ``latent_preview`` looks for it: TAESD for image
    latents (SD15: ``taesd_decoder``), TAEHV for Wan 2.1 / 2.2 and HunyuanVideo latents (``lighttaew2_1`` /
    ``lighttaew2_2``, ``taehv``; float32, which ``comfy.sd.VAE`` detects as the light TAE), named
    ``<latent_format.taesd_decoder_name>.safetensors``."""
    import comfy.taesd.taehv
    import comfy.taesd.taesd

    name = latent_format.taesd_decoder_name
    if name == "taesd_decoder":
        module = comfy.taesd.taesd.TAESD(latent_channels=latent_format.latent_channels).taesd_decoder
    elif name in ("lighttaew2_1", "lighttaew2_2", "taehv"):  # Wan 2.1 / HunyuanVideo (16 channels), Wan 2.2 (48)
        module = comfy.taesd.taehv.TAEHV(latent_channels=latent_format.latent_channels)
    else:
        raise ValueError(f"no tiny preview decoder for {name!r}; add one for taesd_decoder or lighttaew2_1/2")
    _randomize(module.named_parameters(), seed)
    path = Path(directory) / f"{name}.safetensors"
    comfy.utils.save_torch_file({k: v.detach().clone().contiguous() for k, v in module.state_dict().items()}, str(path))
    return path
