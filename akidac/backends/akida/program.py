"""The akidac program binary: a compiled Akida program as one self-describing byte string.

A `Program` is everything the Akida side of a hybrid model needs at run time: the target device,
the layer records (types, parameters, integer variables) in topological order, the program's
input and output tensors, which neural processors (NPs) each layer is mapped to, how the layer
sequence is split into hardware passes, and which ONNX nodes each layer came from.

BrainChip's own program binary is a FlatBuffer whose layout is undocumented, so akidac stores
programs in its own format, documented byte by byte in `docs/program-format.md`: little-endian,
versioned, sectioned, 8-byte aligned weights, and a CRC32 at the end. `encode_program` is
deterministic (the same Program always gives the same bytes) and `decode_program` is its exact
inverse. The decoder treats its input as untrusted: any malformed byte string raises a
`ProgramError` naming what is wrong and at which byte offset; it never crashes, hangs or
allocates more than the buffer it was given could describe.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from numbers import Integral
from typing import TypeVar

import numpy as np

from akidac.errors import ProgramError
from akidac.target.layer_record import ENUM_PARAMS, LAYER_TYPES, LayerRecord

#: The first four bytes of every program.
MAGIC: bytes = b"AKDC"
#: The format version this module writes.
FORMAT_VERSION: int = 1
#: Fixed header: magic, version, flags, total length, section count, reserved.
HEADER_SIZE: int = 16
#: Each section starts with a 4-byte ASCII tag and a u32 payload length.
SECTION_HEADER_SIZE: int = 8
#: Sections and variable data start at offsets that are multiples of this.
ALIGNMENT: int = 8
#: The CRC32 trailer.
CRC_SIZE: int = 4
#: Largest number of dimensions a variable may have (NumPy's own limit is 64).
MAX_NDIM: int = 32
#: Bound on the product of a variable's non-zero dimensions times its item size, so that even an
#: empty array with huge dimensions is one NumPy can represent.
MAX_NOMINAL_BYTES: int = 2**62
#: Largest byte length of a string (its length field is a u16).
MAX_STRING_BYTES: int = 0xFFFF
#: The sections of a version-1 program, in their mandatory order.
SECTION_TAGS_V1: tuple[bytes, ...] = (
    b"DEVC",  # target device
    b"LAYR",  # layer table
    b"VARS",  # variables (weights, shifts, scales, LUTs)
    b"INOU",  # program input and output
    b"NPAS",  # NP assignment
    b"PASS",  # hardware passes
    b"ORIG",  # ONNX origins of each layer
)
#: Variable dtypes and their codes (0 is never valid).
DTYPE_CODES: dict[str, int] = {
    "int8": 1,
    "uint8": 2,
    "int16": 3,
    "uint16": 4,
    "int32": 5,
    "uint32": 6,
    "int64": 7,
    "uint64": 8,
}
DTYPE_NAMES: dict[int, str] = {code: name for name, code in DTYPE_CODES.items()}
#: dtypes allowed for the program input and output tensors.
TENSOR_DTYPES: tuple[str, ...] = ("uint8", "int8", "int16", "int32")
#: Tags of a parameter value.
PARAM_TAG_INT: int = 0
PARAM_TAG_ENUM: int = 1

_U16_MAX = 0xFFFF
_U32_MAX = 0xFFFF_FFFF
_I64_MIN = -(2**63)
_I64_MAX = 2**63 - 1

_HEADER = struct.Struct("<4sHHIHH")
_SECTION_HEADER = struct.Struct("<4sI")
_U8 = struct.Struct("<B")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_I64 = struct.Struct("<q")
_Item = TypeVar("_Item")


@dataclass
class ProgramTensor:
    """The program input or output: `(H, W, C)` dims without the batch axis, and a dtype name."""

    dims: tuple[int, int, int]
    dtype: str


@dataclass(eq=False)
class Program:
    """A compiled Akida program, as stored in the akidac program binary.

    `layers` is in topological order. `np_assignment` maps a layer name to the indices of the
    NPs it runs on (layers the host does not map, such as InputData, may be absent). `passes`
    splits the sequence into hardware passes, each a list of layer names (one pass for a
    single-pass program). `origins` maps a layer name to the ONNX node names it was built from.
    Two programs are equal when every field is, variables compared by dtype, shape and value.
    """

    device: str
    layers: list[LayerRecord]
    input: ProgramTensor
    output_layer: str
    output: ProgramTensor
    np_assignment: dict[str, list[int]] = field(default_factory=dict)
    passes: list[list[str]] = field(default_factory=list)
    origins: dict[str, list[str]] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Program):
            return NotImplemented
        return (
            self.device == other.device
            and self.format_version == other.format_version
            and _tensors_equal(self.input, other.input)
            and self.output_layer == other.output_layer
            and _tensors_equal(self.output, other.output)
            and self.np_assignment == other.np_assignment
            and self.passes == other.passes
            and self.origins == other.origins
            and len(self.layers) == len(other.layers)
            and all(map(records_equal, self.layers, other.layers))
        )

    __hash__ = None  # type: ignore[assignment]  # mutable, like any dataclass with eq


def records_equal(first: LayerRecord, second: LayerRecord) -> bool:
    """Whether two layer records are equal, variables compared by dtype, shape and value."""
    if (
        first.name != second.name
        or first.layer_type != second.layer_type
        or list(first.inbounds) != list(second.inbounds)
        or first.params != second.params
        or tuple(first.output_dims) != tuple(second.output_dims)
        or first.variables.keys() != second.variables.keys()
    ):
        return False
    for name, array in first.variables.items():
        other = second.variables[name]
        if array.dtype != other.dtype or array.shape != other.shape:
            return False
        if not np.array_equal(array, other):
            return False
    return True


def _tensors_equal(first: ProgramTensor, second: ProgramTensor) -> bool:
    return tuple(first.dims) == tuple(second.dims) and first.dtype == second.dtype


# --------------------------------------------------------------------------------------------
# Encoder


def _encode_error(message: str) -> ProgramError:
    return ProgramError(f"cannot encode program: {message}")


def _padding(offset: int) -> int:
    return -offset % ALIGNMENT


class _Writer:
    """Appends little-endian fields to a byte buffer."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def u8(self, value: int) -> None:
        self.buffer += _U8.pack(value)

    def u16(self, value: int) -> None:
        self.buffer += _U16.pack(value)

    def u32(self, value: int, what: str) -> None:
        if not 0 <= value <= _U32_MAX:
            raise _encode_error(f"{what} {value} does not fit an unsigned 32-bit field")
        self.buffer += _U32.pack(value)

    def i64(self, value: int, what: str) -> None:
        if not _I64_MIN <= value <= _I64_MAX:
            raise _encode_error(f"{what} {value} does not fit a signed 64-bit field")
        self.buffer += _I64.pack(value)

    def string(self, text: str, what: str) -> None:
        if not isinstance(text, str):
            raise _encode_error(f"{what} must be a string, not {type(text).__name__}")
        try:
            encoded = text.encode("utf-8", errors="strict")
        except UnicodeEncodeError:
            raise _encode_error(f"{what} {text!r} cannot be encoded as UTF-8") from None
        if len(encoded) > MAX_STRING_BYTES:
            raise _encode_error(f"{what} is {len(encoded)} bytes long (at most {MAX_STRING_BYTES})")
        self.u16(len(encoded))
        self.buffer += encoded

    def pad_to_alignment(self, base_offset: int) -> None:
        self.buffer += bytes(_padding(base_offset + len(self.buffer)))


def _sorted_keys(mapping: Mapping[str, object], what: str) -> list[str]:
    """The keys in the canonical (sorted) order; all must be strings."""
    for key in mapping:
        if not isinstance(key, str):
            raise _encode_error(f"{what} name {key!r} is not a string")
    return sorted(mapping)


def _as_int(value: object, what: str) -> int:
    if isinstance(value, Integral):
        return int(value)
    raise _encode_error(f"{what} must be an integer, not {type(value).__name__}")


def _encode_dims(writer: _Writer, dims: tuple[int, ...], what: str) -> None:
    for axis, size in enumerate(dims):
        writer.u32(_as_int(size, f"{what}[{axis}]"), f"{what}[{axis}]")


def _encode_tensor(writer: _Writer, tensor: ProgramTensor, what: str) -> None:
    dims = tuple(tensor.dims)
    if len(dims) != 3:
        raise _encode_error(f"{what} dims {dims} must be (H, W, C)")
    if tensor.dtype not in TENSOR_DTYPES:
        raise _encode_error(f"{what} dtype {tensor.dtype!r} is not one of {TENSOR_DTYPES}")
    _encode_dims(writer, dims, f"{what} dims")
    writer.u8(DTYPE_CODES[tensor.dtype])


def _encode_param(writer: _Writer, record: LayerRecord, key: str, value: int | str) -> None:
    what = f"parameter {key!r} of layer {record.name!r}"
    writer.string(key, f"{what} key")
    if key in ENUM_PARAMS:
        if not isinstance(value, str) or value not in ENUM_PARAMS[key]:
            raise _encode_error(f"{what} is {value!r}, not one of {ENUM_PARAMS[key]}")
        writer.u8(PARAM_TAG_ENUM)
        writer.string(value, what)
    else:
        writer.u8(PARAM_TAG_INT)
        writer.i64(_as_int(value, what), what)


def _encode_layers(program: Program, layer_indices: dict[str, int]) -> bytes:
    writer = _Writer()
    writer.u32(len(program.layers), "layer count")
    for record in program.layers:
        if record.layer_type not in LAYER_TYPES:
            raise _encode_error(f"layer {record.name!r} has unknown type {record.layer_type!r}")
        writer.u8(LAYER_TYPES.index(record.layer_type))
        writer.string(record.name, "layer name")
        writer.u32(len(record.inbounds), "inbound count")
        for inbound in record.inbounds:
            if layer_indices.get(inbound, len(program.layers)) >= layer_indices[record.name]:
                raise _encode_error(
                    f"layer {record.name!r} names inbound {inbound!r}, which is not an earlier "
                    "layer"
                )
            writer.string(inbound, f"inbound of layer {record.name!r}")
        dims = tuple(record.output_dims)
        if len(dims) > MAX_NDIM:
            raise _encode_error(f"layer {record.name!r} output_dims has {len(dims)} axes")
        writer.u8(len(dims))
        _encode_dims(writer, dims, f"output_dims of layer {record.name!r}")
        writer.u32(len(record.params), "parameter count")
        for key in _sorted_keys(record.params, f"parameter of layer {record.name!r}"):
            _encode_param(writer, record, key, record.params[key])
    return bytes(writer.buffer)


def _encode_variables(program: Program, payload_offset: int) -> bytes:
    writer = _Writer()
    writer.u32(sum(len(record.variables) for record in program.layers), "variable count")
    for layer_index, record in enumerate(program.layers):
        for name in _sorted_keys(record.variables, f"variable of layer {record.name!r}"):
            array = record.variables[name]
            what = f"variable {name!r} of layer {record.name!r}"
            if not isinstance(array, np.ndarray):
                raise _encode_error(f"{what} is a {type(array).__name__}, not a numpy array")
            if array.dtype.name not in DTYPE_CODES:
                raise _encode_error(f"{what} has unsupported dtype {array.dtype.str!r}")
            if array.ndim > MAX_NDIM:
                raise _encode_error(f"{what} has {array.ndim} axes (at most {MAX_NDIM})")
            if _nominal_bytes(array.shape, array.dtype.itemsize) > MAX_NOMINAL_BYTES:
                raise _encode_error(f"{what} has shape {array.shape}, too large to store")
            writer.u32(layer_index, "layer index")
            writer.string(name, "variable name")
            writer.u8(DTYPE_CODES[array.dtype.name])
            writer.u8(array.ndim)
            _encode_dims(writer, array.shape, f"shape of {what}")
            writer.pad_to_alignment(payload_offset)
            little_endian = array.dtype.newbyteorder("<")
            writer.buffer += np.ascontiguousarray(array, dtype=little_endian).tobytes()
    return bytes(writer.buffer)


def _nominal_bytes(shape: tuple[int, ...], itemsize: int) -> int:
    """The product of the non-zero dimensions times the item size."""
    size = itemsize
    for dim in shape:
        size *= max(dim, 1)
    return size


def _check_layer_name(name: str, layer_indices: dict[str, int], what: str) -> None:
    if name not in layer_indices:
        raise _encode_error(f"{what} names unknown layer {name!r}")


def _encode_in_out(program: Program, layer_indices: dict[str, int]) -> bytes:
    writer = _Writer()
    _encode_tensor(writer, program.input, "input")
    _check_layer_name(program.output_layer, layer_indices, "output_layer")
    writer.string(program.output_layer, "output_layer")
    _encode_tensor(writer, program.output, "output")
    return bytes(writer.buffer)


def _encode_layer_lists(
    mapping: dict[str, list],
    layer_indices: dict[str, int],
    what: str,
    *,
    count_what: str,
    item_count_what: str,
    write_item: Callable[[_Writer, str, object], None],
) -> bytes:
    """A map from layer names to lists (NP assignment, origins), in name order: its size, then
    per layer its name, the length of its list and each item (`write_item(writer, name, item)`).
    `what` names the map in messages."""
    writer = _Writer()
    writer.u32(len(mapping), count_what)
    for name in _sorted_keys(mapping, what):
        _check_layer_name(name, layer_indices, what)
        writer.string(name, f"{what} layer name")
        items = mapping[name]
        writer.u32(len(items), item_count_what)
        for item in items:
            write_item(writer, name, item)
    return bytes(writer.buffer)


def _write_np_index(writer: _Writer, name: str, index: object) -> None:
    writer.u32(_as_int(index, f"NP index of {name!r}"), f"NP index of {name!r}")


def _write_origin_node(writer: _Writer, name: str, node: object) -> None:
    writer.string(node, f"ONNX node name of {name!r}")  # type: ignore[arg-type]


def _encode_np_assignment(program: Program, layer_indices: dict[str, int]) -> bytes:
    return _encode_layer_lists(
        program.np_assignment,
        layer_indices,
        "np_assignment",
        count_what="NP assignment count",
        item_count_what="NP count",
        write_item=_write_np_index,
    )


def _encode_passes(program: Program, layer_indices: dict[str, int]) -> bytes:
    writer = _Writer()
    writer.u32(len(program.passes), "pass count")
    for pass_index, names in enumerate(program.passes):
        writer.u32(len(names), "pass length")
        for name in names:
            _check_layer_name(name, layer_indices, f"pass {pass_index}")
            writer.string(name, f"pass {pass_index} layer name")
    return bytes(writer.buffer)


def _encode_origins(program: Program, layer_indices: dict[str, int]) -> bytes:
    return _encode_layer_lists(
        program.origins,
        layer_indices,
        "origins",
        count_what="origin count",
        item_count_what="origin node count",
        write_item=_write_origin_node,
    )


def _layer_indices(program: Program) -> dict[str, int]:
    indices: dict[str, int] = {}
    for index, record in enumerate(program.layers):
        if not isinstance(record.name, str):
            raise _encode_error(f"layer {index} has a non-string name {record.name!r}")
        if record.name in indices:
            raise _encode_error(f"two layers are named {record.name!r}")
        indices[record.name] = index
    return indices


def encode_program(program: Program) -> bytes:
    """Encode a program as format-version-1 bytes; the same program always gives the same bytes.

    Raises `ProgramError` when the program cannot be stored (unknown layer type or dtype, a
    duplicate layer name, a reference to an unknown or later layer, a value out of range).
    """
    if program.format_version != FORMAT_VERSION:
        raise _encode_error(
            f"format_version is {program.format_version}; this akidac writes only "
            f"version {FORMAT_VERSION}"
        )
    layer_indices = _layer_indices(program)
    device_writer = _Writer()
    device_writer.string(program.device, "device")
    payload_builders = {
        b"DEVC": lambda _offset: bytes(device_writer.buffer),
        b"LAYR": lambda _offset: _encode_layers(program, layer_indices),
        b"VARS": lambda offset: _encode_variables(program, offset),
        b"INOU": lambda _offset: _encode_in_out(program, layer_indices),
        b"NPAS": lambda _offset: _encode_np_assignment(program, layer_indices),
        b"PASS": lambda _offset: _encode_passes(program, layer_indices),
        b"ORIG": lambda _offset: _encode_origins(program, layer_indices),
    }
    body = bytearray(HEADER_SIZE)
    for tag in SECTION_TAGS_V1:
        payload_offset = len(body) + SECTION_HEADER_SIZE
        payload = payload_builders[tag](payload_offset)
        if len(payload) > _U32_MAX:
            raise _encode_error(f"section {tag.decode()} is {len(payload)} bytes (at most 4 GiB)")
        body += _SECTION_HEADER.pack(tag, len(payload))
        body += payload
        body += bytes(_padding(len(body)))
    total_length = len(body) + CRC_SIZE
    if total_length > _U32_MAX:
        raise _encode_error(f"the program is {total_length} bytes (at most 4 GiB)")
    _HEADER.pack_into(body, 0, MAGIC, FORMAT_VERSION, 0, total_length, len(SECTION_TAGS_V1), 0)
    body += _U32.pack(zlib.crc32(body))
    return bytes(body)


# --------------------------------------------------------------------------------------------
# Decoder


def _corrupt(message: str) -> ProgramError:
    return ProgramError(f"corrupt program: {message}")


class _Reader:
    """Reads little-endian fields from `data[pos:end]`, never past `end`."""

    def __init__(self, data: bytes, start: int, end: int, region: str) -> None:
        self.data = data
        self.pos = start
        self.end = end
        self.region = region

    def take(self, size: int, what: str) -> int:
        """Advance past `size` bytes and return their start offset."""
        start = self.pos
        if size > self.end - start:
            raise _corrupt(
                f"{what} at byte {start} needs {size} bytes but the {self.region} ends at "
                f"byte {self.end}"
            )
        self.pos = start + size
        return start

    def u8(self, what: str) -> int:
        return _U8.unpack_from(self.data, self.take(1, what))[0]

    def u16(self, what: str) -> int:
        return _U16.unpack_from(self.data, self.take(2, what))[0]

    def u32(self, what: str) -> int:
        return _U32.unpack_from(self.data, self.take(4, what))[0]

    def i64(self, what: str) -> int:
        return _I64.unpack_from(self.data, self.take(8, what))[0]

    def count(self, what: str, min_item_size: int) -> int:
        """A u32 count of items each at least `min_item_size` bytes, checked against the rest."""
        offset = self.pos
        value = self.u32(what)
        remaining = self.end - self.pos
        if value * min_item_size > remaining:
            raise _corrupt(
                f"{what} {value} at byte {offset} cannot fit in the {remaining} bytes left in "
                f"the {self.region}"
            )
        return value

    def string(self, what: str) -> tuple[str, int]:
        """A u16-length-prefixed UTF-8 string and the offset of its length field."""
        offset = self.pos
        size = self.u16(f"length of {what}")
        start = self.take(size, what)
        try:
            text = self.data[start : start + size].decode("utf-8", errors="strict")
        except UnicodeDecodeError as error:
            raise _corrupt(
                f"{what} at byte {offset} is not valid UTF-8 (byte {start + error.start})"
            ) from None
        return text, offset

    def zero_padding(self, what: str) -> None:
        size = _padding(self.pos)
        start = self.take(size, what)
        if any(self.data[start : start + size]):
            raise _corrupt(f"{what} at byte {start} is not zero")

    def finish(self) -> None:
        if self.pos != self.end:
            raise _corrupt(
                f"{self.end - self.pos} unread bytes at byte {self.pos} at the end of the "
                f"{self.region}"
            )


def _read_dims(reader: _Reader, ndim: int, what: str) -> tuple[int, ...]:
    return tuple(reader.u32(f"{what}[{axis}]") for axis in range(ndim))


def _read_tensor(reader: _Reader, what: str) -> ProgramTensor:
    height, width, channels = _read_dims(reader, 3, f"{what} dims")
    offset = reader.pos
    code = reader.u8(f"{what} dtype code")
    dtype = DTYPE_NAMES.get(code)
    if dtype not in TENSOR_DTYPES:
        raise _corrupt(f"{what} dtype code {code} at byte {offset} is not one of {TENSOR_DTYPES}")
    return ProgramTensor(dims=(height, width, channels), dtype=dtype)


def _read_layer_name(reader: _Reader, layer_indices: dict[str, int], what: str) -> tuple[str, int]:
    name, offset = reader.string(what)
    if name not in layer_indices:
        raise _corrupt(f"{what} {name!r} at byte {offset} is not a layer of the program")
    return name, offset


def _read_params(reader: _Reader, layer_name: str) -> dict[str, int | str]:
    params: dict[str, int | str] = {}
    previous_key: str | None = None
    # Smallest parameter: empty key (2) + tag (1) + empty enum string (2).
    for _ in range(reader.count(f"parameter count of layer {layer_name!r}", 5)):
        key, key_offset = reader.string(f"parameter key of layer {layer_name!r}")
        if previous_key is not None and key <= previous_key:
            raise _corrupt(
                f"parameter {key!r} of layer {layer_name!r} at byte {key_offset} is duplicated "
                "or out of order (keys must be sorted)"
            )
        previous_key = key
        what = f"parameter {key!r} of layer {layer_name!r}"
        tag_offset = reader.pos
        tag = reader.u8(f"tag of {what}")
        expected_tag = PARAM_TAG_ENUM if key in ENUM_PARAMS else PARAM_TAG_INT
        if tag != expected_tag:
            raise _corrupt(
                f"{what} has value tag {tag} at byte {tag_offset}, expected {expected_tag}"
            )
        if tag == PARAM_TAG_ENUM:
            value, value_offset = reader.string(what)
            if value not in ENUM_PARAMS[key]:
                raise _corrupt(
                    f"{what} at byte {value_offset} is {value!r}, not one of {ENUM_PARAMS[key]}"
                )
            params[key] = value
        else:
            params[key] = reader.i64(what)
    return params


def _read_layers(reader: _Reader) -> tuple[list[LayerRecord], dict[str, int]]:
    records: list[LayerRecord] = []
    layer_indices: dict[str, int] = {}
    # Smallest layer: type (1) + empty name (2) + inbound count (4) + ndim (1) + params (4).
    for _ in range(reader.count("layer count", 12)):
        type_offset = reader.pos
        type_code = reader.u8("layer type code")
        if type_code >= len(LAYER_TYPES):
            raise _corrupt(f"layer type code {type_code} at byte {type_offset} is unknown")
        name, name_offset = reader.string("layer name")
        if name in layer_indices:
            raise _corrupt(f"layer name {name!r} at byte {name_offset} is used twice")
        inbounds: list[str] = []
        for _ in range(reader.count(f"inbound count of layer {name!r}", 2)):
            inbound, inbound_offset = reader.string(f"inbound of layer {name!r}")
            if inbound not in layer_indices:
                raise _corrupt(
                    f"layer {name!r} names inbound {inbound!r} at byte {inbound_offset}, which "
                    "is not an earlier layer"
                )
            inbounds.append(inbound)
        ndim_offset = reader.pos
        ndim = reader.u8(f"output_dims rank of layer {name!r}")
        if ndim > MAX_NDIM:
            raise _corrupt(
                f"output_dims rank {ndim} of layer {name!r} at byte {ndim_offset} exceeds "
                f"{MAX_NDIM}"
            )
        output_dims = _read_dims(reader, ndim, f"output_dims of layer {name!r}")
        params = _read_params(reader, name)
        layer_indices[name] = len(records)
        records.append(
            LayerRecord(
                name=name,
                layer_type=LAYER_TYPES[type_code],
                inbounds=inbounds,
                params=params,
                output_dims=output_dims,
            )
        )
    return records, layer_indices


def _read_variables(reader: _Reader, records: list[LayerRecord]) -> None:
    previous: tuple[int, str] | None = None
    # Smallest variable: layer index (4) + empty name (2) + dtype (1) + ndim (1).
    for _ in range(reader.count("variable count", 8)):
        index_offset = reader.pos
        layer_index = reader.u32("variable layer index")
        if layer_index >= len(records):
            raise _corrupt(
                f"variable layer index {layer_index} at byte {index_offset} is out of range "
                f"(the program has {len(records)} layers)"
            )
        record = records[layer_index]
        name, name_offset = reader.string(f"variable name of layer {record.name!r}")
        if previous is not None and (layer_index, name) <= previous:
            raise _corrupt(
                f"variable {name!r} of layer {record.name!r} at byte {name_offset} is duplicated "
                "or out of order (sorted by layer, then name)"
            )
        previous = (layer_index, name)
        what = f"variable {name!r} of layer {record.name!r}"
        dtype_offset = reader.pos
        dtype_code = reader.u8(f"dtype code of {what}")
        if dtype_code not in DTYPE_NAMES:
            raise _corrupt(f"dtype code {dtype_code} of {what} at byte {dtype_offset} is unknown")
        dtype = np.dtype(DTYPE_NAMES[dtype_code])
        ndim_offset = reader.pos
        ndim = reader.u8(f"rank of {what}")
        if ndim > MAX_NDIM:
            raise _corrupt(f"rank {ndim} of {what} at byte {ndim_offset} exceeds {MAX_NDIM}")
        shape_offset = reader.pos
        shape = _read_dims(reader, ndim, f"shape of {what}")
        if _nominal_bytes(shape, dtype.itemsize) > MAX_NOMINAL_BYTES:
            raise _corrupt(f"shape {shape} of {what} at byte {shape_offset} is too large")
        reader.zero_padding(f"alignment padding of {what}")
        element_count = 1
        for size in shape:
            element_count *= size
        data_offset = reader.take(element_count * dtype.itemsize, f"data of {what}")
        array = np.frombuffer(
            reader.data, dtype=dtype.newbyteorder("<"), count=element_count, offset=data_offset
        )
        record.variables[name] = array.reshape(shape).astype(dtype)


def _read_layer_lists(
    reader: _Reader,
    layer_indices: dict[str, int],
    *,
    count_what: str,
    name_what: str,
    out_of_order: str,
    item_count_what: str,
    item_size: int,
    read_item: Callable[[str], _Item],
) -> dict[str, list[_Item]]:
    """What `_encode_layer_lists` wrote: per layer, in strictly increasing name order, a list of
    items of at least `item_size` bytes each (`read_item(name)`). `out_of_order` and
    `item_count_what` are messages with `{name}` (and `{offset}`) to fill in."""
    lists: dict[str, list[_Item]] = {}
    previous: str | None = None
    # Smallest entry: empty name (2) + item count (4).
    for _ in range(reader.count(count_what, 6)):
        name, offset = _read_layer_name(reader, layer_indices, name_what)
        if previous is not None and name <= previous:
            raise _corrupt(out_of_order.format(name=name, offset=offset))
        previous = name
        count = reader.count(item_count_what.format(name=name), item_size)
        lists[name] = [read_item(name) for _ in range(count)]
    return lists


def _read_np_assignment(reader: _Reader, layer_indices: dict[str, int]) -> dict[str, list[int]]:
    return _read_layer_lists(
        reader,
        layer_indices,
        count_what="NP assignment count",
        name_what="NP assignment layer",
        out_of_order="NP assignment of layer {name!r} at byte {offset} is duplicated or out of "
        "order",
        item_count_what="NP count of layer {name!r}",
        item_size=4,
        read_item=lambda name: reader.u32(f"NP index of layer {name!r}"),
    )


def _read_passes(reader: _Reader, layer_indices: dict[str, int]) -> list[list[str]]:
    passes: list[list[str]] = []
    for pass_index in range(reader.count("pass count", 4)):
        count = reader.count(f"length of pass {pass_index}", 2)
        passes.append(
            [
                _read_layer_name(reader, layer_indices, f"layer of pass {pass_index}")[0]
                for _ in range(count)
            ]
        )
    return passes


def _read_origins(reader: _Reader, layer_indices: dict[str, int]) -> dict[str, list[str]]:
    return _read_layer_lists(
        reader,
        layer_indices,
        count_what="origin count",
        name_what="origins layer",
        out_of_order="origins of layer {name!r} at byte {offset} are duplicated or out of order",
        item_count_what="origin node count of layer {name!r}",
        item_size=2,
        read_item=lambda name: reader.string(f"ONNX node name of {name!r}")[0],
    )


def _decode_v1(data: bytes, total_length: int) -> Program:
    file_reader = _Reader(data, HEADER_SIZE, total_length - CRC_SIZE, "program body")
    flags = _U16.unpack_from(data, 6)[0]
    if flags != 0:
        raise _corrupt(f"flags 0x{flags:04x} at byte 6 are not defined in format version 1")
    section_count = _U16.unpack_from(data, 12)[0]
    if section_count != len(SECTION_TAGS_V1):
        raise _corrupt(f"section count {section_count} at byte 12 should be {len(SECTION_TAGS_V1)}")
    reserved = _U16.unpack_from(data, 14)[0]
    if reserved != 0:
        raise _corrupt(f"reserved header field at byte 14 is {reserved}, not 0")

    sections: dict[bytes, _Reader] = {}
    for expected_tag in SECTION_TAGS_V1:
        header_offset = file_reader.take(SECTION_HEADER_SIZE, "section header")
        tag, length = _SECTION_HEADER.unpack_from(data, header_offset)
        if tag != expected_tag:
            raise _corrupt(
                f"section tag {tag!r} at byte {header_offset} should be {expected_tag!r}"
            )
        region = f"{expected_tag.decode()} section"
        payload_offset = file_reader.take(length, f"{region} payload")
        sections[expected_tag] = _Reader(data, payload_offset, payload_offset + length, region)
        file_reader.zero_padding(f"padding after the {region}")
    file_reader.finish()

    def read(tag: bytes, read_section: Callable[[_Reader], _Item]) -> _Item:
        """Read one whole section: what `read_section` leaves unread is corrupt."""
        value = read_section(sections[tag])
        sections[tag].finish()
        return value

    device = read(b"DEVC", lambda reader: reader.string("device")[0])
    records, layer_indices = read(b"LAYR", _read_layers)
    read(b"VARS", lambda reader: _read_variables(reader, records))
    program_input, output_layer, program_output = read(
        b"INOU",
        lambda reader: (
            _read_tensor(reader, "input"),
            _read_layer_name(reader, layer_indices, "output_layer")[0],
            _read_tensor(reader, "output"),
        ),
    )
    np_assignment = read(b"NPAS", lambda reader: _read_np_assignment(reader, layer_indices))
    passes = read(b"PASS", lambda reader: _read_passes(reader, layer_indices))
    origins = read(b"ORIG", lambda reader: _read_origins(reader, layer_indices))

    return Program(
        device=device,
        layers=records,
        input=program_input,
        output_layer=output_layer,
        output=program_output,
        np_assignment=np_assignment,
        passes=passes,
        origins=origins,
        format_version=1,
    )


#: One decoder per format version this akidac can read; older versions keep their decoder.
_DECODERS = {1: _decode_v1}


def decode_program(data: bytes) -> Program:
    """Decode program bytes; any malformed input raises `ProgramError` with a byte offset.

    Checks, in order: magic, format version, total length (truncation or trailing bytes), the
    CRC32, then every section field by field.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ProgramError(f"a program must be bytes, not {type(data).__name__}")
    data = bytes(data)
    if data[: len(MAGIC)] != MAGIC[: len(data)]:
        raise ProgramError(
            f"not an akidac program: magic at byte 0 is {data[: len(MAGIC)]!r}, expected {MAGIC!r}"
        )
    if len(data) < HEADER_SIZE:
        raise _corrupt(f"truncated: {len(data)} bytes, the header alone is {HEADER_SIZE}")
    _magic, version, _flags, total_length, _sections, _reserved = _HEADER.unpack_from(data, 0)
    if version > FORMAT_VERSION:
        raise ProgramError(
            f"program format version {version} is newer than this akidac supports "
            f"({FORMAT_VERSION}); field at byte 4; a newer akidac is needed to read it"
        )
    if version not in _DECODERS:
        raise _corrupt(f"format version {version} at byte 4 is not a valid version")
    if total_length > len(data):
        raise _corrupt(
            f"truncated: the total length at byte 8 is {total_length} bytes but only "
            f"{len(data)} are present"
        )
    if total_length < len(data):
        raise _corrupt(
            f"{len(data) - total_length} unexpected bytes after the end of the program at byte "
            f"{total_length} (total length at byte 8)"
        )
    if total_length < HEADER_SIZE + CRC_SIZE:
        raise _corrupt(
            f"total length {total_length} at byte 8 is smaller than a header and a CRC "
            f"({HEADER_SIZE + CRC_SIZE} bytes)"
        )
    crc_offset = total_length - CRC_SIZE
    stored_crc = _U32.unpack_from(data, crc_offset)[0]
    computed_crc = zlib.crc32(data[:crc_offset])
    if stored_crc != computed_crc:
        raise _corrupt(
            f"CRC32 mismatch: stored 0x{stored_crc:08x} at byte {crc_offset}, computed "
            f"0x{computed_crc:08x} over bytes 0..{crc_offset - 1}"
        )
    return _DECODERS[version](data, total_length)


# --------------------------------------------------------------------------------------------
# Summary


def _format_dims(dims: tuple[int, ...]) -> str:
    return "x".join(str(size) for size in dims) if dims else "-"


def program_summary(program: Program) -> str:
    """A short human-readable description: device, I/O, layers, NP assignment and passes."""
    layer_word = "layer" if len(program.layers) == 1 else "layers"
    pass_word = "pass" if len(program.passes) == 1 else "passes"
    lines = [
        f"akidac program (format {program.format_version}) for {program.device}",
        f"input:  {_format_dims(tuple(program.input.dims))} {program.input.dtype}",
        f"output: {_format_dims(tuple(program.output.dims))} {program.output.dtype}"
        f" from layer {program.output_layer!r}",
        f"{len(program.layers)} {layer_word} in {len(program.passes)} {pass_word}:",
    ]
    pass_of_layer = {
        name: pass_index for pass_index, names in enumerate(program.passes) for name in names
    }
    for record in program.layers:
        inbounds = ", ".join(record.inbounds) if record.inbounds else "program input"
        nps = program.np_assignment.get(record.name)
        placement = f"NPs {', '.join(map(str, nps))}" if nps else "no NPs"
        if record.name in pass_of_layer:
            placement += f", pass {pass_of_layer[record.name]}"
        lines.append(
            f"  {record.name} {record.layer_type} <- {inbounds} -> "
            f"{_format_dims(tuple(record.output_dims))} [{placement}]"
        )
        if record.params:
            params = " ".join(f"{key}={record.params[key]}" for key in sorted(record.params))
            lines.append(f"      params: {params}")
        if record.variables:
            variables = " ".join(
                f"{name}:{array.dtype.name}[{_format_dims(array.shape)}]"
                for name, array in sorted(record.variables.items())
            )
            lines.append(f"      variables: {variables}")
        if program.origins.get(record.name):
            lines.append(f"      from ONNX: {', '.join(program.origins[record.name])}")
    return "\n".join(lines)
