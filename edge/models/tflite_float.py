"""Rewrite a weight-quantised ("hybrid") TFLite model as a plain float32 model: bytes → bytes.

Why. `facex`'s MobileNetV2 (`facex/assets/model_optimized.tflite`, an old TOCO conversion with
post-training weight quantisation) stores 34 of its kernels as 8-bit integers: 33 CONV_2D
filters and the FULLY_CONNECTED kernel as symmetric int8 values in UINT8 tensors, run by
LiteRT's *hybrid* kernels, and the 15 depthwise filters as asymmetric uint8 behind DEQUANTIZE
ops. A hybrid kernel quantises its float input to int8 on every call and does the arithmetic
in integers; LiteRT's XNNPACK delegate does not take those ops, so on one x86-64 core the
shipped file needs 16-17 ms per face (p95 30 ms) where the float32 graph needs 6.3 ms
(`benchmarks/facex_speed.py`). The weights themselves are exactly representable in float32
(`int8 × scale`), so writing them out once gives a model that computes the same weights
without the per-call rounding of the activations, 2.4-2.7 times as fast, at four times the
file size (2,615,520 → 10,141,680 bytes). The answers stay the same: on 118 face crops of
the sample video the top label agrees on all crops but two near-ties (98.3 %), the median
largest probability difference is 0.001 — the size of the hybrid kernels' own rounding noise.

What. Every constant 8-bit filter of a CONV_2D, DEPTHWISE_CONV_2D or FULLY_CONNECTED that
takes a float32 input becomes float32 (int8 × scale, as the hybrid kernel reads it); every
DEQUANTIZE of a constant becomes the constant it computes ((q − zero point) × scale, as
LiteRT's DEQUANTIZE computes it), and the op is dropped. Tensors, buffers and operator codes
left unused are removed. Everything else (graph, names, options, the input and output
tensors) is kept as it was.

How. The model is read and written with the TFLite flatbuffer schema that `ai-edge-litert`
ships (`ai_edge_litert.schema_py_generated`, the same object API its `tools.flatbuffer_utils`
uses) and the `flatbuffers` builder. The result is deterministic: the same input bytes give
the same output bytes (no timestamps, no dict-order or random choices), so the asset cache
pins its sha256. Weight data is 16-byte aligned, as the schema asks (`force_align: 16`), which
the generated Python packer does not do by itself.
"""

from __future__ import annotations

import numpy as np

_FILE_IDENTIFIER = b"TFL3"
_ALIGN = 16


class TfliteRewriteError(ValueError):
    """The model is not one this rewrite understands; the message says what was found."""


def _schema():
    # Imported here so that importing this module costs nothing until a rewrite is asked for.
    from ai_edge_litert import schema_py_generated as schema

    return schema


def _op_name(schema, model, op) -> str:
    code = model.operatorCodes[op.opcodeIndex]
    builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
    for name, value in vars(schema.BuiltinOperator).items():
        if value == builtin and not name.startswith("_"):
            return name
    return str(builtin)


def _data(model, tensor) -> np.ndarray | None:
    """A constant tensor's raw bytes (uint8), or None when the tensor has no data."""
    data = model.buffers[tensor.buffer].data
    if data is None or len(data) == 0:
        return None
    return np.asarray(data, dtype=np.uint8)


def _scales(tensor, what: str) -> tuple[np.ndarray, np.ndarray, int]:
    q = tensor.quantization
    if q is None or q.scale is None or len(q.scale) == 0:
        raise TfliteRewriteError(f"{what} {tensor.name!r} is 8-bit but has no quantisation scale")
    scale = np.asarray(q.scale, dtype=np.float64)
    zero = np.zeros_like(scale) if q.zeroPoint is None else np.asarray(q.zeroPoint, np.float64)
    return scale, zero, int(q.quantizedDimension or 0)


def _broadcast(values: np.ndarray, shape: tuple[int, ...], axis: int) -> np.ndarray:
    """Per-tensor (one value) or per-channel (one value along `axis`) parameters, broadcast."""
    if values.size == 1:
        return values.reshape(())
    if axis >= len(shape) or shape[axis] != values.size:
        raise TfliteRewriteError(f"{values.size} quantisation scales do not fit shape {shape}")
    view = [1] * len(shape)
    view[axis] = values.size
    return values.reshape(view)


def _hybrid_filter(schema, tensor, raw: np.ndarray) -> np.ndarray:
    """The float32 weights a hybrid kernel uses: int8 × scale (UINT8 data is int8 in disguise)."""
    shape = tuple(int(s) for s in tensor.shape)
    scale, zero, axis = _scales(tensor, "filter")
    if np.any(zero != 0):
        # LiteRT's hybrid kernels ignore the zero point (symmetric quantisation); a non-zero one
        # means a model this rewrite was not written for.
        raise TfliteRewriteError(f"hybrid filter {tensor.name!r} has a non-zero zero point")
    q = raw.view(np.int8).astype(np.float64).reshape(shape)
    return (q * _broadcast(scale, shape, axis)).astype(np.float32)


def _dequantised(schema, tensor, raw: np.ndarray) -> np.ndarray:
    """What LiteRT's DEQUANTIZE makes of a constant: (q − zero point) × scale, or float16 → 32."""
    shape = tuple(int(s) for s in tensor.shape)
    t = schema.TensorType
    if tensor.type == t.FLOAT16:
        return raw.view(np.float16).astype(np.float32).reshape(shape)
    if tensor.type not in (t.UINT8, t.INT8):
        raise TfliteRewriteError(f"DEQUANTIZE of {tensor.name!r}: unsupported type {tensor.type}")
    q = (raw if tensor.type == t.UINT8 else raw.view(np.int8)).astype(np.float64).reshape(shape)
    scale, zero, axis = _scales(tensor, "DEQUANTIZE input")
    values = (q - _broadcast(zero, shape, axis)) * _broadcast(scale, shape, axis)
    return values.astype(np.float32)


class _AlignedBuffer:
    """A `Buffer` table whose data vector starts on a 16-byte boundary (schema: force_align 16).

    `schema_py_generated.BufferT.Pack` writes the vector with alignment 1, which would leave
    float32 weights at arbitrary offsets; this packs the same table with the alignment the
    schema asks for. Only `data` is carried: every buffer here lives inside the flatbuffer.
    """

    def __init__(self, data: bytes | None):
        self.data = data

    def Pack(self, builder):  # noqa: N802 - the name the generated ModelT.Pack calls
        schema = _schema()
        vector = None
        if self.data:
            builder.StartVector(1, len(self.data), _ALIGN)
            builder.head -= len(self.data)
            builder.Bytes[builder.head : builder.head + len(self.data)] = self.data
            vector = builder.EndVector(len(self.data))
        schema.BufferStart(builder)
        if vector is not None:
            schema.BufferAddData(builder, vector)
        return schema.BufferEnd(builder)


def to_float32(model_bytes: bytes, hybrid_filters: bool = True) -> bytes:
    """The same model with every 8-bit weight written out as float32 (see the module docstring).

    With `hybrid_filters=False` only the DEQUANTIZE ops are folded into constants and the
    hybrid kernels keep their 8-bit filters: a model that computes what the original computes,
    which lets a test check the folding arithmetic on its own.

    Raises TfliteRewriteError if the bytes are not a TFLite model, if the model has no 8-bit
    weights to rewrite, or if it has features the rewrite does not handle (several subgraphs,
    buffers outside the flatbuffer, a DEQUANTIZE of a non-constant, a quantised filter under
    an op with non-float input).
    """
    schema = _schema()
    buf = bytearray(model_bytes)
    if len(buf) < 8 or bytes(buf[4:8]) != _FILE_IDENTIFIER:
        raise TfliteRewriteError("not a TFLite flatbuffer (file identifier 'TFL3' missing)")
    try:
        model = schema.ModelT.InitFromPackedBuf(buf, 0)
    except Exception as exc:  # a truncated or corrupt flatbuffer fails anywhere inside
        raise TfliteRewriteError(f"not a readable TFLite model: {exc}") from exc
    if not model.subgraphs or len(model.subgraphs) != 1:
        raise TfliteRewriteError(f"expected one subgraph, found {len(model.subgraphs or [])}")
    if any(b.offset for b in model.buffers or []):
        raise TfliteRewriteError("buffers stored outside the flatbuffer are not supported")
    if model.signatureDefs or model.metadata:
        # Both refer to tensors and buffers by index; this rewrite renumbers them.
        raise TfliteRewriteError("models with signatures or metadata are not supported")
    graph = model.subgraphs[0]
    tensors = graph.tensors
    t = schema.TensorType
    eight_bit = (t.UINT8, t.INT8)
    new_data: dict[int, np.ndarray] = {}  # tensor index -> its float32 constant
    kept_ops = []
    for op in graph.operators:
        name = _op_name(schema, model, op)
        inputs = [int(i) for i in op.inputs]
        if name == "DEQUANTIZE":
            source, target = tensors[inputs[0]], int(op.outputs[0])
            raw = _data(model, source)
            if raw is None:
                raise TfliteRewriteError(f"DEQUANTIZE of a non-constant ({source.name!r})")
            new_data[target] = _dequantised(schema, source, raw)
            continue  # the op is dropped; its output becomes a constant
        hybrid = name in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
        if hybrid and hybrid_filters and len(inputs) > 1:
            kernel = tensors[inputs[1]]
            if kernel.type in eight_bit and _data(model, kernel) is not None:
                if tensors[inputs[0]].type != t.FLOAT32:
                    raise TfliteRewriteError(f"{name} with 8-bit filter and non-float input")
                new_data[inputs[1]] = _hybrid_filter(schema, kernel, _data(model, kernel))
        kept_ops.append(op)
    if not new_data:
        raise TfliteRewriteError("the model has no 8-bit weights to rewrite")
    buffers: list[bytes | None] = [
        None if b.data is None else np.asarray(b.data, np.uint8).tobytes() for b in model.buffers
    ]
    for index, values in new_data.items():
        tensor = tensors[index]
        if tuple(tensor.shape) != values.shape:
            raise TfliteRewriteError(f"{tensor.name!r}: shape {tensor.shape} vs {values.shape}")
        tensor.type = t.FLOAT32
        tensor.quantization = None
        buffers.append(values.astype("<f4").tobytes())
        tensor.buffer = len(buffers) - 1
    graph.operators = kept_ops

    # Drop what nothing refers to any more, renumbering tensors, buffers and operator codes.
    used = set(int(i) for i in graph.inputs) | set(int(i) for i in graph.outputs)
    for op in kept_ops:
        used.update(int(i) for i in op.inputs if i >= 0)
        used.update(int(i) for i in op.outputs)
        used.update(int(i) for i in (op.intermediates if op.intermediates is not None else []))
    tensor_map = {old: new for new, old in enumerate(sorted(used))}
    graph.tensors = [tensors[old] for old in sorted(used)]

    def remap(indices) -> list[int] | None:
        if indices is None:
            return None
        return [tensor_map[int(i)] if i >= 0 else -1 for i in indices]

    graph.inputs, graph.outputs = remap(graph.inputs), remap(graph.outputs)
    codes_used = sorted({op.opcodeIndex for op in kept_ops})
    code_map = {old: new for new, old in enumerate(codes_used)}
    model.operatorCodes = [model.operatorCodes[i] for i in codes_used]
    for op in kept_ops:
        op.inputs, op.outputs = remap(op.inputs), remap(op.outputs)
        op.intermediates = remap(op.intermediates)
        op.mutatingVariableInputs = (
            None if op.mutatingVariableInputs is None else list(op.mutatingVariableInputs)
        )
        op.opcodeIndex = code_map[op.opcodeIndex]
    # Buffer 0 stays the empty sentinel; the others keep their order.
    buffer_ids = sorted({0} | {int(x.buffer) for x in graph.tensors})
    buffer_map = {old: new for new, old in enumerate(buffer_ids)}
    for tensor in graph.tensors:
        tensor.buffer = buffer_map[int(tensor.buffer)]
        if tensor.shape is not None:
            tensor.shape = [int(s) for s in tensor.shape]
        if tensor.shapeSignature is not None:
            tensor.shapeSignature = [int(s) for s in tensor.shapeSignature]
    model.buffers = [_AlignedBuffer(buffers[old]) for old in buffer_ids]

    import flatbuffers

    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=_FILE_IDENTIFIER)
    return bytes(builder.Output())
