"""The spec language (flowsched.spec): defaults, the spellings of the shift alpha (a number, never a switch), "did
you mean" hints, and the layering."""

from __future__ import annotations

import importlib
import subprocess
import sys
import warnings

import numpy as np
import pytest

from flowsched import diffusers_rules, presets, schedules, spec
from flowsched.geometry import LatentGeometry

# -- defaults: keyword values from a geometry, used where the family takes them ----------------------------------


def test_defaults_fill_what_the_family_takes_and_the_spec_does_not_set():
    geo = LatentGeometry.from_pixels(512, 704, 161, "ltx-video")
    defaults = {"image_seq_len": geo.image_seq_len, "num_frames": geo.latent_frames, "seq_len": geo.seq_len}
    # ltx takes seq_len (and base_seq_len, which the spec sets): seq_len comes from the defaults
    got = spec.from_spec("ltx:base_seq_len=1024", num_steps=20, defaults=defaults)
    assert got == schedules.ltx(20, geo.seq_len, base_seq_len=1024)
    # opensora takes image_seq_len and num_frames, not seq_len
    got = spec.from_spec("opensora", num_steps=10, defaults=defaults)
    assert got == schedules.opensora(10, geo.image_seq_len, geo.latent_frames)
    # the spec's own value wins over the defaults
    got = spec.from_spec("opensora:image_seq_len=256", num_steps=10, defaults=defaults)
    assert got.params["image_seq_len"] == 256
    # families without those keywords, and presets, ignore them
    assert spec.from_spec("shifted:alpha=3", num_steps=8, defaults=defaults) == schedules.shifted(8, 3.0)
    assert spec.from_spec("flux.1-dev", defaults=defaults) == presets.get_preset("flux.1-dev").schedule()
    # a flow_match_euler spec takes **config: only its named keywords are filled
    assert spec.from_spec("flow_match_euler:shift=3", num_steps=5, defaults=defaults).num_steps == 5


def test_defaults_steps_and_num_steps():
    assert spec.from_spec("shifted:alpha=2", defaults={"steps": 7}).num_steps == 7
    assert spec.from_spec("shifted:alpha=2", num_steps=9, defaults={"steps": 7}).num_steps == 9
    with pytest.raises(TypeError, match="defaults must be a mapping"):
        spec.from_spec("linear", defaults=[("num_steps", 3)])


# -- the shift alpha: one number, in the peers' spellings too; never a switch ----------------------------------


@pytest.mark.parametrize("text", ["wan2.1-t2v-480p:steps=30,alpha=3", "wan2.1-t2v-480p:steps=30,shift=3",
                                  "wan2.1-t2v-480p:steps=30,flow_shift=3", "wan2.1-t2v-480p:steps=30,shift_alpha=3",
                                  "preset:wan2.1-t2v-480p,steps=30,shift=3"])
def test_preset_static_shift_spellings(text):
    got = spec.from_spec(text)
    assert got.params["alpha"] == 3.0
    assert got == presets.get_preset("wan2.1-t2v-480p").schedule(None, 30, alpha=3.0)
    # the rule's flow_sigmas grid is kept with the new shift (Wan's own grid starts at float32(0.999))
    assert got == diffusers_rules.flow_sigmas(30, 3.0, solver="wan")


@pytest.mark.parametrize("text", ["flow_sigmas:steps=6,alpha=5", "flow_sigmas:steps=6,flow_shift=5",
                                  "flow_sigmas:steps=6,shift=5"])
def test_family_shift_spellings(text):
    assert spec.from_spec(text) == diffusers_rules.flow_sigmas(6, 5.0)


def test_shift_is_never_a_switch_and_is_given_once():
    assert spec.from_spec("wan2.1-t2v-480p:steps=10,alpha=none").params["alpha"] == 5.0  # none: the rule's
    for text in ("wan2.1-t2v-480p:steps=10,shift=false", "wan2.1-t2v-480p:shift=true", "opensora:shift=false"):
        with pytest.raises(ValueError, match="is the shift alpha, a number > 0, not a switch.*spec linear"):
            spec.from_spec(text)
    with pytest.raises(ValueError, match="alpha=3 and shift_alpha=4 each set the shift alpha; give one"):
        spec.from_spec("wan2.1-t2v-480p:alpha=3,shift_alpha=4")
    with pytest.raises(ValueError, match="shift must be a finite number > 0, got -3"):
        spec.from_spec("wan2.1-t2v-480p:shift=-3")
    with pytest.raises(ValueError, match="flux takes no parameter 'shift'"):
        spec.from_spec("flux:shift=3,image_seq_len=4096", num_steps=4)  # flux's shift is a mu rule


# -- hints ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,listed,not_listed",
    [
        ("wan", ["wan2.1-t2v-480p", "wan2.2-ti2v-5b"], ["sana"]),
        ("wan2.1", ["wan2.1-t2v-480p", "wan2.1-i2v-720p"], ["wan2.2-t2v-a14b"]),
        ("opensora", ["opensora-2.0-256px", "opensora-2.0-768px", "opensora-2.0-dcae"], []),
        ("hunyuanvideo-1.5", ["hunyuanvideo-1.5-480p-t2v", "hunyuanvideo-1.5-720p-i2v"], []),
    ],
)
def test_get_preset_lists_presets_starting_with_the_name(name, listed, not_listed):
    with pytest.raises(ValueError) as info:
        presets.get_preset(name)
    message = str(info.value)
    assert all(p in message for p in listed), message
    assert not any(p in message for p in not_listed), message


def test_spec_errors_list_presets_too():
    with pytest.raises(ValueError, match="wan2.1-t2v-480p.*wan2.1-i2v-720p") as info:
        spec.from_spec("wan2.1:steps=30")
    assert "wan2.2" not in str(info.value)
    # 'opensora' is a family; without its arguments the error names the presets as well
    with pytest.raises(ValueError, match="opensora needs image_seq_len, num_frames.*opensora-2.0-768px"):
        spec.from_spec("opensora", num_steps=10)
    with pytest.raises(ValueError, match="Did you mean 'shifted'"):
        spec.from_spec("shiftd:alpha=3")


# -- layering --------------------------------------------------------------------------------------------------


def test_moved_names_are_gone_from_schedules():
    """The spec language and diffusers' rules live in their own modules; schedules keeps no aliases."""
    for name in ("from_spec", "FAMILIES", "flow_match_euler", "FLOW_MATCH_EULER_CONFIG", "diffusers_default",
                 "partial"):
        assert not hasattr(schedules, name), name
    with pytest.raises(AttributeError, match="has no attribute 'from_spec'"):
        schedules.from_spec  # noqa: B018


def test_no_deprecated_path_is_used_inside_the_package():
    """Importing every module and building every preset through specs raises no DeprecationWarning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        for mod in ("flowsched.spec", "flowsched.presets", "flowsched.cli", "flowsched.quality"):
            importlib.import_module(mod)
        warnings.simplefilter("ignore", UserWarning)  # frame-count warnings of a preset's default size
        for name in presets.PRESETS:
            spec.from_spec(name, num_steps=3)


def test_layers_point_down():
    """schedules and presets import neither spec nor each other upward: importing schedules alone loads neither
    presets nor spec (the old schedules <-> presets cycle is gone)."""
    code = (
        "import sys; import flowsched.schedules, flowsched.diffusers_rules; "
        "print(sorted(m for m in sys.modules if m in ('flowsched.presets', 'flowsched.spec')))"
    )
    # flowsched/__init__ imports presets; import the modules without the package's own __init__ side effects
    out = subprocess.run(
        [sys.executable, "-c", "import importlib.util, sys, types;"
         "spec = importlib.util.find_spec('flowsched');"
         "pkg = types.ModuleType('flowsched'); pkg.__path__ = spec.submodule_search_locations;"
         "sys.modules['flowsched'] = pkg;" + code],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert out == "[]"


def test_numpy_values_in_defaults_are_accepted():
    got = spec.from_spec("flux", num_steps=4, defaults={"image_seq_len": np.int64(4096)})
    assert got == schedules.flux(4, 4096)
