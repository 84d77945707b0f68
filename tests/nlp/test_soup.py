"""nlp.soup: a weight-space average of stages is exact, on the committed artifacts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from nlp.build_default import ADAPTER_FILE, ARTIFACT_DIR, RECIPE_FILE, VOCAB_FILE
from nlp.soup import main, soup


def _deltas(folder: Path) -> dict[str, torch.Tensor]:
    """What the build adds to each base tensor: s * B @ A for LoRA targets, the tensor
    itself (with the class-bias offsets taken out of the classifier bias) otherwise."""
    state = load_file(str(folder / ADAPTER_FILE))
    recipe = json.loads((folder / RECIPE_FILE).read_text(encoding="utf-8"))
    out = {}
    for name, t in state.items():
        if name.endswith(".lora_A"):
            linear = name[: -len(".lora_A")]
            out[linear] = recipe["lora_scaling"] * (state[linear + ".lora_B"].float() @ t.float())
        elif not name.endswith(".lora_B"):
            out[name] = t.float()
    out["classifier.bias"] = out["classifier.bias"] - torch.tensor(recipe["class_bias"])
    return out


def _other_stage(tmp_path: Path) -> Path:
    """A second stage with the same layout: the committed one with its LoRA B factors and
    full tensors changed (the math of a soup does not care how a stage was trained)."""
    other = tmp_path / "other"
    other.mkdir()
    state = load_file(str(ARTIFACT_DIR / ADAPTER_FILE))
    gen = torch.Generator().manual_seed(0)
    changed = {k: (v.float() * -0.5 if k.endswith(".lora_B") else
                   v.float() + 0.01 * torch.randn(v.shape, generator=gen)).to(v.dtype)
               for k, v in state.items()}
    save_file(changed, str(other / ADAPTER_FILE))
    recipe = json.loads((ARTIFACT_DIR / RECIPE_FILE).read_text(encoding="utf-8"))
    recipe["class_bias"] = [0.4, 0.0, -0.2]
    (other / RECIPE_FILE).write_text(json.dumps(recipe), encoding="utf-8")
    shutil.copyfile(ARTIFACT_DIR / VOCAB_FILE, other / VOCAB_FILE)
    return other


def test_soup_of_a_stage_with_itself_is_that_stage(tmp_path: Path) -> None:
    recipe = soup([(ARTIFACT_DIR, 0.3), (ARTIFACT_DIR, 0.7)], tmp_path / "s")
    base = json.loads((ARTIFACT_DIR / RECIPE_FILE).read_text(encoding="utf-8"))
    assert recipe["lora_rank"] == 2 * base["lora_rank"]
    assert recipe["lora_alpha"] / recipe["lora_rank"] == base["lora_scaling"]
    want, got = _deltas(ARTIFACT_DIR), _deltas(tmp_path / "s")
    assert set(want) == set(got)
    for name in want:
        torch.testing.assert_close(got[name], want[name], atol=2e-3, rtol=1e-3, msg=name)
    assert (tmp_path / "s" / VOCAB_FILE).read_bytes() == (ARTIFACT_DIR / VOCAB_FILE).read_bytes()


def test_soup_is_the_weighted_mean_of_the_merged_stages(tmp_path: Path) -> None:
    other = _other_stage(tmp_path)
    soup([(ARTIFACT_DIR, 0.25), (other, 0.75)], tmp_path / "s")
    a, b, got = _deltas(ARTIFACT_DIR), _deltas(other), _deltas(tmp_path / "s")
    for name in a:
        torch.testing.assert_close(got[name], 0.25 * a[name] + 0.75 * b[name],
                                   atol=2e-3, rtol=1e-3, msg=name)
    recipe = json.loads((tmp_path / "s" / RECIPE_FILE).read_text(encoding="utf-8"))
    base_bias = json.loads((ARTIFACT_DIR / RECIPE_FILE).read_text(encoding="utf-8"))["class_bias"]
    want_bias = [0.25 * x + 0.75 * y for x, y in zip(base_bias, [0.4, 0.0, -0.2], strict=True)]
    assert recipe["class_bias"] == pytest.approx(want_bias, abs=1e-6)
    # the offsets are folded back into the saved classifier bias, as every stage has them
    saved = load_file(str(tmp_path / "s" / ADAPTER_FILE))["classifier.bias"]
    torch.testing.assert_close(saved, got["classifier.bias"] + torch.tensor(want_bias))


def test_bad_weights_and_mismatched_stages_are_named(tmp_path: Path, capsys) -> None:
    with pytest.raises(ValueError, match="sum to 1"):
        soup([(ARTIFACT_DIR, 0.5), (ARTIFACT_DIR, 0.6)], tmp_path / "s")
    with pytest.raises(ValueError, match="at least two"):
        soup([(ARTIFACT_DIR, 1.0)], tmp_path / "s")
    other = _other_stage(tmp_path)
    recipe = json.loads((other / RECIPE_FILE).read_text(encoding="utf-8"))
    recipe["layers"] = 12
    (other / RECIPE_FILE).write_text(json.dumps(recipe), encoding="utf-8")
    with pytest.raises(ValueError, match="differ in layers"):
        soup([(ARTIFACT_DIR, 0.5), (other, 0.5)], tmp_path / "s")
    assert main(["--out", str(tmp_path / "s"), f"{ARTIFACT_DIR}=0.5", "nowhere"]) == 1
    assert "FOLDER=WEIGHT" in capsys.readouterr().err
