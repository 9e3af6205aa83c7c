"""int8 copies of a trained model, made one way for both users: `export.quantize_export` (which writes
`model_int8.pt`) and a trial with `export.quantize` (which reports its copy's val accuracy and size).

Each layer gets the one of PyTorch's two post-training modes that works for it:

- static (FX graph mode: `prepare_fx`, calibration, `convert_fx`, the "x86" qconfig mapping) for each family
  network with convolutions (a cnn, alone or as a member of an ensemble or a fold): its conv and linear
  weights become int8 (per channel), its activations uint8 with scales observed on `CALIBRATION_ROWS`
  training rows, and conv + batch norm + relu are fused. Convolutions have no dynamic int8 kernel, so
  this is what shrinks them. The network quantises its input and dequantises its logits itself, so the
  copy is called like the float model.
- dynamic (`quantize_dynamic`) for the Linear, LSTM and GRU layers left (mlp, rnn): int8 weights,
  activations quantised on the fly, no calibration. LSTM/GRU have no static int8 module in PyTorch.

Both run on the CPU only. `torch.ao.quantization` is deprecated in favour of the separate `torchao`
package, which torch 2.13 still ships; its notices are silenced (`quiet`), as users can do nothing about them.
"""
from __future__ import annotations

import io
import re
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from copy import deepcopy
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from trainables.models import FAMILIES

#: version of `Int8Copy.payload`: 2 adds statically quantised networks (`static`); 1 (dynamic only) still loads
INT8_FORMAT = 2
READABLE_FORMATS = (1, INT8_FORMAT)
#: what dynamic quantisation replaces: layers that multiply by a weight matrix
DYNAMIC: dict[str, type[nn.Module]] = {"Linear": nn.Linear, "LSTM": nn.LSTM, "GRU": nn.GRU}
_RECURRENT = (nn.LSTM, nn.GRU)
_LAYERS = (nn.Linear, nn.modules.conv._ConvNd, *_RECURRENT)
#: training rows whose activations set the static scales: a few hundred cover the ranges well, and
#: calibration costs one forward pass over them
CALIBRATION_ROWS = 256
CALIBRATION_BATCH = 128
#: the qconfig mapping's backend (PyTorch's default engine on x86 CPUs): int8 weights per output channel
BACKEND = "x86"


@dataclass(frozen=True)
class Int8Copy:
    """An int8 copy of a model (CPU, eval mode), and how it was made: what rebuilds it from a file."""

    model: nn.Module
    #: the networks quantised statically, by name in the model ("" = the whole model)
    static: list[str]
    #: the layer types (keys of DYNAMIC) quantised dynamically
    dynamic: list[str]
    #: the dynamically quantised LSTM/GRU layers, by name
    recurrent: list[str]

    def payload(self) -> dict[str, Any]:
        """What `model_int8.pt` holds: plain and quantised tensors only, so it loads with `weights_only=True`.

        Quantised linear and conv layers keep their state as tensors already; a quantised LSTM/GRU keeps
        its weights in TorchScript objects that `weights_only` refuses, so those travel as their int8
        weight tensors (`get_weight()` / `get_bias()`) and are packed again by `set_weight_bias` on load.
        """
        modules = dict(self.model.named_modules())
        recurrent = {name: {**modules[name].get_weight(), **modules[name].get_bias()} for name in self.recurrent}
        state = self.model.state_dict()  # an OrderedDict whose `_metadata` (layout versions) load_state_dict needs
        for key in [key for key in state if _inside(key, recurrent)]:
            del state[key]
        return {"format": INT8_FORMAT, "quantized": "qint8", "static": list(self.static),
                "module_types": list(self.dynamic), "state_dict": state, "recurrent": recurrent}

    def size_bytes(self) -> int:
        """Bytes of `torch.save(payload())`: the size of `model_int8.pt` (up to its archive name, a few bytes)."""
        buffer = io.BytesIO()
        with quiet():
            torch.save(self.payload(), buffer)
        return buffer.getbuffer().nbytes


def quantize(model: nn.Module, train_x: Tensor) -> Int8Copy:
    """An int8 copy of `model`, calibrated on `calibration_rows(train_x)`; `model` itself is left as it was."""
    rows = calibration_rows(train_x)
    return _convert(model, rows, static=static_targets(model), dynamic=list(DYNAMIC), calibrate=True)


def restore(model: nn.Module, saved: Mapping[str, Any], input_shape: tuple[int, ...]) -> nn.Module:
    """The int8 copy that `saved` (a `payload`, format 1 or 2) holds, for the float `model` of the same
    architecture, whose weights do not matter: the same conversion without calibration gives the same
    modules, and the saved state (weights, scales, zero points) then replaces theirs."""
    example = torch.zeros(1, *input_shape)
    copy = _convert(model, example, static=list(saved.get("static", [])), dynamic=list(saved["module_types"]),
                    calibrate=False)
    modules = dict(copy.model.named_modules())
    state = saved["state_dict"]  # keeps its `_metadata`
    with quiet():
        for name, weights in saved["recurrent"].items():
            modules[name].set_weight_bias(weights)
        # the recurrent layers' packed objects, rebuilt just above, fill the entries the file left out
        state.update({key: value for key, value in copy.model.state_dict().items()
                      if _inside(key, saved["recurrent"])})
        copy.model.load_state_dict(state)
    return copy.model.eval()


def calibration_rows(x: Tensor) -> Tensor:
    """Up to CALIBRATION_ROWS rows of `x`, evenly spaced (the training split is in random order), on the CPU."""
    picked = torch.linspace(0, len(x) - 1, min(len(x), CALIBRATION_ROWS)).round().long()
    return x[picked.to(x.device)].cpu()


def static_targets(model: nn.Module) -> list[str]:
    """The outermost family networks in `model` that hold a convolution: what is quantised statically.

    A whole network, not single layers: FX traces it once, fuses its blocks and keeps activations int8
    from one layer to the next. An `Ensemble` around it is not traced (its mixture is not FX-traceable).
    """
    networks = tuple(family.module for family in FAMILIES.values())
    targets: list[str] = []
    for name, module in model.named_modules():
        if any(target == "" or name.startswith(f"{target}.") for target in targets):
            continue
        if isinstance(module, networks) and any(isinstance(m, nn.modules.conv._ConvNd) for m in module.modules()):
            targets.append(name)
    return targets


def quantized_layers(model: nn.Module, copy: nn.Module) -> list[str]:
    """The Linear, conv and LSTM/GRU layers of `model` that are int8 modules in `copy` (fused ones by the
    name of their conv or linear layer; a layer left float, such as an even-kernel 'same' conv, is not)."""
    after = dict(copy.named_modules())
    return [name for name, layer in model.named_modules()
            if isinstance(layer, _LAYERS) and name in after and "quantized" in type(after[name]).__module__.split(".")]


@contextmanager
def quiet() -> Iterator[None]:
    """Silence torch's deprecation notices for `torch.ao.quantization` and its observers' chatter."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=re.escape("torch.ao.quantization is deprecated"))
        warnings.filterwarnings("ignore", message=r"torch\.quantize_per_tensor, torch\.quantize_per_channel")
        warnings.filterwarnings("ignore", message="TypedStorage is deprecated")
        warnings.filterwarnings("ignore", message="Please use quant_min and quant_max")
        warnings.filterwarnings("ignore", message="must run observer before calling calculate_qparams")
        yield


def _convert(model: nn.Module, rows: Tensor, *, static: list[str], dynamic: list[str], calibrate: bool) -> Int8Copy:
    """The copy: `static` networks prepared, calibrated on `rows` (when `calibrate`) and converted, then the
    `dynamic` layer types that are still float quantised dynamically."""
    try:
        from torch.ao.quantization import QConfigMapping, get_default_qconfig_mapping, quantize_dynamic
        from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
    except ImportError as exc:  # a future torch without torch.ao.quantization
        raise RuntimeError(f"int8 export needs torch.ao.quantization, which torch {torch.__version__} does not "
                           "have") from exc
    copy = deepcopy(model).cpu().eval()
    with quiet():
        for name in static:
            target = copy.get_submodule(name)
            mapping: QConfigMapping = get_default_qconfig_mapping(BACKEND)
            for conv in _explicit_padding(target):
                mapping.set_module_name(conv, None)
            copy = _replace(copy, name, prepare_fx(target, mapping, example_inputs=(rows[:1],)))
        if static and calibrate:
            with torch.no_grad():
                for batch in rows.split(CALIBRATION_BATCH):
                    copy(batch)
        for name in static:
            copy = _replace(copy, name, convert_fx(copy.get_submodule(name)))
        recurrent = [name for name, module in copy.named_modules()
                     if type(module) in _RECURRENT and type(module).__name__ in dynamic]
        copy = quantize_dynamic(copy, {DYNAMIC[name] for name in dynamic}, dtype=torch.qint8, inplace=True)
    return Int8Copy(copy.eval(), static, dynamic, recurrent)


def _explicit_padding(network: nn.Module) -> list[str]:
    """Give each conv with string padding ('same', 'valid') the numbers it stands for, which quantised
    convs need; return the convs that cannot have them ('same' with an even kernel pads one side more),
    which stay float."""
    left_float = []
    for name, conv in network.named_modules():
        if not isinstance(conv, nn.modules.conv._ConvNd) or not isinstance(conv.padding, str):
            continue
        if conv.padding == "valid":
            conv.padding = (0,) * len(conv.kernel_size)
            continue
        total = [d * (k - 1) for d, k in zip(conv.dilation, conv.kernel_size)]
        if all(t % 2 == 0 for t in total):
            conv.padding = tuple(t // 2 for t in total)
        else:
            left_float.append(name)
    return left_float


def _replace(root: nn.Module, name: str, module: nn.Module) -> nn.Module:
    """`root` with its submodule `name` replaced by `module` ("" replaces the root itself)."""
    if name == "":
        return module
    parent, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent), child, module)
    return root


def _inside(key: str, names: Mapping[str, Any] | list[str]) -> bool:
    return any(key.startswith(f"{name}.") for name in names)
