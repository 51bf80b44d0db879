"""flowsched: seeded latent noise and timestep schedules for flow-matching image and video samplers.

Light to import: numpy only. torch is imported by the functions that make tensors.

    >>> import flowsched
    >>> geo = flowsched.LatentGeometry.from_pixels(576, 1024, 129, "hunyuan")
    >>> geo.noise_shape
    (1, 16, 33, 72, 128)
    >>> flowsched.schedules.opensora(50, geo.image_seq_len, geo.latent_frames).params["alpha"]  # doctest: +ELLIPSIS
    11.87209...
"""

from . import diffusers_rules, schedules, spec
from .geometry import VAE, VAES, LatentGeometry, get_vae
from .presets import PRESETS, Preset, get_preset
from .schedule import Schedule

__version__ = "0.2.0.dev0"

__all__ = [
    "VAE",
    "VAES",
    "PRESETS",
    "LatentGeometry",
    "Preset",
    "Schedule",
    "get_preset",
    "get_vae",
    "diffusers_rules",
    "schedules",
    "spec",
    "__version__",
]
