"""flowsched: seeded latent noise and timestep schedules for flow-matching image and video samplers.

The names a user starts from; everything else lives in its module (docs/python-api.md lists them). Light to import:
numpy only, torch is imported by the functions that make tensors.

    >>> import flowsched
    >>> geo = flowsched.LatentGeometry.from_pixels(576, 1024, 129, "hunyuan")
    >>> geo.noise_shape
    (1, 16, 33, 72, 128)
    >>> round(flowsched.schedules.opensora(50, geo.image_seq_len, geo.latent_frames).params["alpha"], 4)
    11.8721
    >>> flowsched.from_spec("shifted:alpha=3", num_steps=2).t
    array([1.  , 0.75, 0.  ])
"""

from . import schedules
from .frames import FrameSchedule
from .geometry import VAE, LatentGeometry, get_vae
from .noise import noise, portable_noise
from .presets import Preset, get_preset
from .sampling import euler
from .schedule import Schedule
from .shift import time_shift
from .spec import from_spec

__version__ = "0.2.0.dev0"

__all__ = [
    "VAE",
    "FrameSchedule",
    "LatentGeometry",
    "Preset",
    "Schedule",
    "euler",
    "from_spec",
    "get_preset",
    "get_vae",
    "noise",
    "portable_noise",
    "schedules",
    "time_shift",
    "__version__",
]
