"""Model runtimes for the scorer, and the choice between them.

* `torch` (`torch_runtime`): any Hugging Face checkpoint, local or from the hub, on CPU
  (dynamic int8) or GPU.
* `onnx` (`onnx_runtime`): a local checkpoint's ONNX export, CPU only, without torch.
* `auto` (the default): `onnx` when the checkpoint has a current ONNX export and no GPU
  is wanted, else `torch`.

torch is an optional extra (`pip install 'brandpulse[torch]'`): the container image and
any install without it score the default model with `onnx` only. Needing torch without
it installed is a `ModelLoadError` that says so, not an ImportError from deep inside.
"""

from __future__ import annotations

import logging
from pathlib import Path

from nlp.runtimes.base import ClassifierRuntime, ModelLoadError, TextEncoder

log = logging.getLogger(__name__)

RUNTIMES: tuple[str, ...] = ("auto", "torch", "onnx")


def gpu_present() -> bool:
    """An NVIDIA device node exists: worth importing torch to ask whether CUDA works."""
    return Path("/dev/nvidiactl").exists() or Path("/proc/driver/nvidia/gpus").is_dir()


def load_runtime(source: str, local_dir: Path | None, *, runtime: str = "auto",
                 device: str = "auto", quantize: bool | None = None,
                 threads: int | None = None) -> tuple[ClassifierRuntime, TextEncoder]:
    """Load `source` (a local checkpoint `local_dir`, or a hub name) with the chosen runtime."""
    if runtime not in RUNTIMES:
        raise ModelLoadError(f"unknown nlp.runtime {runtime!r}; expected one of {RUNTIMES}")
    if runtime == "onnx" and device == "cuda":
        raise ModelLoadError("nlp.runtime 'onnx' runs on the CPU; use runtime 'torch' for cuda")
    if runtime == "onnx" and local_dir is None:
        raise ModelLoadError(f"nlp.runtime 'onnx' needs a local checkpoint directory with an "
                             f"ONNX export, not the hub name {source!r}")
    if local_dir is not None and (runtime == "onnx"
                                  or (runtime == "auto" and _onnx_may_serve(device))):
        from nlp.runtimes.onnx_runtime import OnnxClassifier, export_problem

        quantized = quantize is not False
        # Once per load: the check hashes the checkpoint's weights.
        problem = export_problem(local_dir, quantized)
        if problem is None:
            return OnnxClassifier.load(local_dir, quantize=quantized, threads=threads)
        if runtime == "onnx":
            raise ModelLoadError(f"{problem}; run `python -m nlp.export_onnx {local_dir}`")
        log.warning("%s: scoring with torch instead, which needs about 1 GB more memory "
                    "(python -m nlp.export_onnx %s makes the export)", problem, local_dir)
    _require_torch(source)
    from nlp.runtimes.torch_runtime import TorchClassifier

    return TorchClassifier.load(source, device=device, quantize=quantize, threads=threads)


def torch_installed() -> bool:
    """torch and transformers are importable (the `torch` extra is installed)."""
    from importlib.util import find_spec

    return find_spec("torch") is not None and find_spec("transformers") is not None


def _require_torch(source: str) -> None:
    """A ModelLoadError naming the missing extra when the torch runtime cannot load."""
    if not torch_installed():
        raise ModelLoadError(
            f"scoring {source!r} needs the torch runtime, and torch/transformers are not "
            "installed (the image and a plain install score only ONNX exports): install "
            "'brandpulse[torch]', or give a local checkpoint with a current ONNX export "
            "(python -m nlp.export_onnx)")


def _onnx_may_serve(device: str) -> bool:
    """`auto` with a local checkpoint: no GPU wanted (the export itself is checked after)."""
    if device == "cuda":
        return False
    if device == "auto" and gpu_present() and torch_installed():
        from nlp.runtimes.torch_runtime import cuda_available

        return not cuda_available()
    return True


__all__ = ["RUNTIMES", "ClassifierRuntime", "ModelLoadError", "TextEncoder", "gpu_present",
           "load_runtime", "torch_installed"]
