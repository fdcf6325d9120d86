"""Deploy a fine-tuned model folder as ONNX and run it with ONNX Runtime.

``export_model_dir`` writes ``MODEL_DIR/model.onnx`` (the logits graph of
:func:`neuript.model.export.export_onnx`, with the folder's channel count, window length and
pooling groups fixed and the batch dynamic) and a sidecar ``model.onnx.json`` that records the
SHA-256 of the ``model.safetensors`` it came from, the graph's shapes and the largest logit
difference between ONNX Runtime and PyTorch on a check batch. :class:`OnnxClassifier` opens that
pair and refuses a graph whose weights no longer match the folder (re-trained or replaced since
the export), so ``neuript predict --engine onnx`` never silently runs a stale model.

:func:`quantize_model_dir` (``neuript export --int8``) adds ``model.int8.onnx``: the same graph
with the weights of every MatMul/Gemm stored as int8 in a 7-bit range and its activations
quantised per batch at run time (ONNX Runtime's dynamic quantisation; the 7-bit range because the
u8 x s8 kernels of x86 CPUs without VNNI saturate at 8 bits), for ``--engine onnx-int8``. Its
logits differ from PyTorch's by more than the fp32 export's tolerance, so its sidecar records the
difference instead of refusing it; ``benchmarks/results/int8.md`` measures the accuracy and
latency cost.

ONNX Runtime is the optional ``export`` extra (``pip install 'neuript[export]'``). On this
project's 2-core CPU it runs one window of the ``small`` preset in less time than eager PyTorch,
whose per-operator overhead dominates at batch 1 (``benchmarks/results/speed.md``). For that
reason :class:`OnnxClassifier` runs one-window calls (a live stream's) through a second session
whose batch axis is fixed to 1, so that ONNX Runtime folds the graph's shape arithmetic away.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from neuript.errors import ContractError, NeuriptError, read_json
from neuript.files import sha256_file

ONNX_NAME = "model.onnx"
SIDECAR_NAME = "model.onnx.json"
INT8_NAME = "model.int8.onnx"
"""The dynamically quantised export (:func:`quantize_model_dir`); its sidecar is ``<name>.json``."""
PARITY_ATOL = 1e-3
"""Largest |logit difference| between ONNX Runtime and PyTorch accepted at export."""
INPUT_NAMES: tuple[str, ...] = ("signals", "positions", "channel_mask", "group_mask")


class ExportResult(NamedTuple):
    """What :func:`export_model_dir` returns.

    Attributes
    ----------
    path : Path
        The ``.onnx`` file written.
    n_channels, n_samples, n_groups : int
        C, T and G fixed in the graph (the batch is dynamic).
    max_abs_diff : float
        Largest |logit| difference, ONNX Runtime vs PyTorch, on the check batch.
    """

    path: Path
    n_channels: int
    n_samples: int
    n_groups: int
    max_abs_diff: float



def _ort() -> Any:
    try:
        import onnxruntime
    except ImportError as err:
        raise NeuriptError("ONNX Runtime is not installed: pip install 'neuript[export]'") from err
    return onnxruntime


def graph_shapes(model_dir: str | os.PathLike) -> tuple[int, int, int]:
    """(C, T, G) of a fine-tuned model folder, from its input contract and pooling groups."""
    from neuript.model_folder import read_model_folder, window_shape

    folder = read_model_folder(model_dir)
    shape = window_shape(folder.contract, folder.info)
    if shape is None:
        raise ContractError(f"{model_dir}: the model has no fixed channel list, so its ONNX graph "
                            "has no channel count; export a model trained on a named montage")
    return shape


def ort_session(path: str | os.PathLike, threads: int | None, batch: int | None = None) -> Any:
    """An ONNX Runtime CPU session of an exported graph.

    Parameters
    ----------
    path : path-like
        ``model.onnx`` or ``model.int8.onnx``.
    threads : int | None
        Intra-op threads (None: ONNX Runtime's default, every core).
    batch : int | None
        Fix the graph's dynamic ``batch`` axis to this size. With every shape known, ONNX
        Runtime folds the graph's shape arithmetic into constants at load time (the small
        preset's optimised graph drops from 1,333 nodes to 614), which one-window calls pay
        for (about 4% of a window's time, ``benchmarks/results/speed.md``); the session then
        accepts only batches of that size. None: any batch.
    """
    ort = _ort()
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    if batch is not None:
        options.add_free_dimension_override_by_name("batch", batch)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _logits(session: Any, feed: dict[str, np.ndarray]) -> np.ndarray:
    """Run ``session`` on the inputs its graph declares (a baseline's graph drops the positions
    and masks it never reads)."""
    wanted = {i.name for i in session.get_inputs()}
    return session.run(["logits"], {k: v for k, v in feed.items() if k in wanted})[0]


def _torch_logits(model: torch.nn.Module, feed: dict[str, np.ndarray]) -> np.ndarray:
    """PyTorch logits (B, K) of a check batch."""
    with torch.no_grad():
        return model(*(torch.from_numpy(feed[k]) for k in INPUT_NAMES)).logits.numpy()


def _commit(tmp: Path, path: Path, sidecar: dict[str, Any]) -> None:
    """Move a checked graph from ``tmp`` to ``path`` and write its sidecar ``<path>.json``
    (through a temporary name too), so a failure leaves the earlier pair intact."""
    side = path.with_name(path.name + ".json")
    side_tmp = side.with_name(f".{side.name}.tmp")
    side_tmp.write_text(json.dumps(sidecar, indent=2))
    os.replace(tmp, path)
    os.replace(side_tmp, side)


def export_model_dir(model_dir: str | os.PathLike, out: str | os.PathLike | None = None,
                     opset: int = 17, seed: int = 0) -> ExportResult:
    """Export a fine-tuned model folder to ONNX and check it against PyTorch.

    Parameters
    ----------
    model_dir : path-like
        ``RUN/seed_<s>/model`` (NeurIPT or a baseline).
    out : path-like | None
        The ``.onnx`` path (default ``MODEL_DIR/model.onnx``); the sidecar is written next to it
        as ``<out>.json``. Both are written to temporary names and renamed, so a failed export
        leaves an earlier one intact.
    opset : int
        ONNX opset (>= 17).
    seed : int
        Seed of the random check batch (2 windows, real channel positions of the folder).

    Returns
    -------
    result : ExportResult

    Raises
    ------
    NeuriptError
        ONNX Runtime disagrees with PyTorch by more than ``PARITY_ATOL``.
    """
    from neuript.model.export import export_onnx
    from neuript.model.io import WEIGHTS_NAME
    from neuript.model_folder import load_classifier

    model_dir = Path(model_dir)
    loaded = load_classifier(model_dir)
    c, t, g = graph_shapes(model_dir)
    path = Path(out) if out is not None else model_dir / ONNX_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        export_onnx(loaded.model, tmp, n_channels=c, n_samples=t, n_groups=g, opset=opset)
        feed = check_batch(model_dir, c, t, g, seed)
        expected = _torch_logits(loaded.model, feed)
        got = _logits(ort_session(tmp, threads=1), feed)
        # the batch-1 session OnnxClassifier opens for one-window calls, checked too
        one = _logits(ort_session(tmp, threads=1, batch=1), {k: v[:1] for k, v in feed.items()})
    except BaseException:
        tmp.unlink(missing_ok=True)  # an earlier export at ``path`` stays intact
        raise
    diff = max(float(np.abs(got - expected).max()), float(np.abs(one - expected[:1]).max()))
    if not diff <= PARITY_ATOL:
        tmp.unlink(missing_ok=True)
        raise NeuriptError(f"{model_dir}: ONNX Runtime logits differ from PyTorch by {diff:.2e} "
                           f"(> {PARITY_ATOL}); the export was discarded")
    sidecar = {"weights_sha256": sha256_file(model_dir / WEIGHTS_NAME), "model_dir": str(model_dir),
               "n_channels": c, "n_samples": t, "n_groups": g, "opset": opset,
               "max_abs_diff": diff, "inputs": list(INPUT_NAMES), "outputs": ["logits"]}
    _commit(tmp, path, sidecar)
    return ExportResult(path, c, t, g, diff)


def quantize_model_dir(model_dir: str | os.PathLike, seed: int = 0) -> ExportResult:
    """Write ``MODEL_DIR/model.int8.onnx`` from the folder's fp32 export (int8 weights).

    Parameters
    ----------
    model_dir : path-like
        A folder with a current ``model.onnx`` (:func:`export_model_dir`).
    seed : int
        Seed of the check batch whose largest |logit| difference to PyTorch is recorded.

    Returns
    -------
    result : ExportResult
        ``path`` is the int8 graph; ``max_abs_diff`` its difference to PyTorch (recorded in the
        sidecar, not bounded: quantisation changes the logits).

    Raises
    ------
    ContractError
        No export, or one made from other weights (:class:`OnnxClassifier`'s checks).
    """
    from neuript.model_folder import load_classifier

    _ort()  # the install hint, not an ImportError traceback, without the export extra
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model_dir = Path(model_dir)
    fp32 = OnnxClassifier(model_dir, threads=1)  # refuses a missing or stale export
    c, t, g = (fp32.meta[k] for k in ("n_channels", "n_samples", "n_groups"))
    path = model_dir / INT8_NAME
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        # 7-bit weights: u8 x s8 products saturate in the AVX2 kernels of CPUs without VNNI
        # (this project's CI machine: logits off by 0.14 at 8 bits, 0.002 at 7), and the file
        # may run on either kind of CPU
        quantize_dynamic(str(model_dir / ONNX_NAME), str(tmp), weight_type=QuantType.QInt8,
                         reduce_range=True)
        feed = check_batch(model_dir, c, t, g, seed)
        expected = _torch_logits(load_classifier(model_dir).model, feed)
        got = _logits(ort_session(tmp, threads=1), feed)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    diff = float(np.abs(got - expected).max())
    sidecar = {**fp32.meta, "quantization": "dynamic int8 (MatMul/Gemm weights, 7-bit range)",
               "max_abs_diff": diff}
    _commit(tmp, path, sidecar)
    return ExportResult(path, c, t, g, diff)


def check_batch(model_dir: str | os.PathLike, c: int, t: int, g: int,
                seed: int = 0) -> dict[str, np.ndarray]:
    """Two random windows with the folder's positions and groups, as ONNX inputs."""
    from neuript.data.montage import channel_position
    from neuript.model_folder import read_model_folder

    folder = read_model_folder(model_dir)
    names = list(folder.contract.channels)
    rng = np.random.default_rng(seed)
    try:
        pos = np.stack([channel_position(n) for n in names]).astype(np.float32)
    except (NeuriptError, KeyError, ValueError):
        pos = rng.normal(0.0, 0.05, (c, 3)).astype(np.float32)
    groups = np.zeros((g, c), dtype=bool)
    if folder.info.group_names and len(names) == c:
        from neuript.data.montage import pooling_groups

        groups = pooling_groups(names, pos, folder.info.scheme).mask
    else:
        groups[:] = True
    return {
        "signals": rng.normal(0.0, 0.5, (2, c, t)).astype(np.float32),
        "positions": np.broadcast_to(pos, (2, c, 3)).copy(),
        "channel_mask": np.ones((2, c), dtype=bool),
        "group_mask": np.broadcast_to(groups, (2, g, c)).copy(),
    }


class OnnxClassifier:
    """An exported model folder opened with ONNX Runtime.

    Parameters
    ----------
    model_dir : path-like
        The folder :func:`export_model_dir` wrote into (``model.onnx`` + ``model.onnx.json``).
    threads : int | None
        ONNX Runtime intra-op threads (None: its default, every core).
    int8 : bool
        Open the quantised graph (``model.int8.onnx``, ``neuript export --int8``) instead.

    Raises
    ------
    ContractError
        No export in the folder, or the export was made from other weights than the folder's
        ``model.safetensors``.
    """

    def __init__(self, model_dir: str | os.PathLike, threads: int | None = None,
                 int8: bool = False) -> None:
        from neuript.model.io import WEIGHTS_NAME

        self.model_dir = Path(model_dir)
        name = INT8_NAME if int8 else ONNX_NAME
        path, side = self.model_dir / name, self.model_dir / f"{name}.json"
        if not path.is_file() or not side.is_file():
            raise ContractError(f"{self.model_dir}: no {'int8 ' if int8 else ''}ONNX export "
                                f"here; run `neuript export {self.model_dir}"
                                f"{' --int8' if int8 else ''}` first")
        self.meta: dict[str, Any] = read_json(side, "ONNX export sidecar", ContractError)
        if self.meta.get("weights_sha256") != sha256_file(self.model_dir / WEIGHTS_NAME):
            raise ContractError(f"{path}: exported from other weights than "
                                f"{self.model_dir / WEIGHTS_NAME} (the model changed since the "
                                "export); run `neuript export` again")
        self.path, self.threads = path, threads
        self.session = ort_session(path, threads)
        self._single: Any = None  # the batch-1 session, opened on the first one-window call

    def logits(self, signals: np.ndarray, positions: np.ndarray, group_mask: np.ndarray
               ) -> np.ndarray:
        """Class logits of a batch.

        Parameters
        ----------
        signals : ndarray, shape (B, C, T), float32
            Compressed windows (the model input).
        positions : ndarray, shape (C, 3), float32
        group_mask : ndarray, shape (G, C), bool

        Returns
        -------
        logits : ndarray, shape (B, K), float32
        """
        b, c, t = signals.shape
        want = (self.meta["n_channels"], self.meta["n_samples"])
        if (c, t) != want:
            raise ContractError(f"{self.model_dir}: input of {c} channels x {t} "
                                f"samples; the graph takes {want[0]} x {want[1]}")
        feed = {"signals": np.ascontiguousarray(signals, dtype=np.float32),
                "positions": np.broadcast_to(positions.astype(np.float32), (b, c, 3)).copy(),
                "channel_mask": np.ones((b, c), dtype=bool),
                "group_mask": np.broadcast_to(group_mask.astype(bool),
                                              (b,) + group_mask.shape).copy()}
        if b == 1:  # a live stream's call: the graph with its shapes folded
            if self._single is None:
                self._single = ort_session(self.path, self.threads, batch=1)
            return _logits(self._single, feed)
        return _logits(self.session, feed)
