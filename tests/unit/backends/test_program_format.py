"""The akidac program binary: exact round trips, determinism, and a decoder that only ever
raises ProgramError on malformed bytes (see docs/program-format.md)."""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from akidac.backends.akida.program import (
    ALIGNMENT,
    DTYPE_CODES,
    FORMAT_VERSION,
    HEADER_SIZE,
    MAGIC,
    SECTION_HEADER_SIZE,
    SECTION_TAGS_V1,
    TENSOR_DTYPES,
    Program,
    ProgramTensor,
    decode_program,
    encode_program,
    program_summary,
)
from akidac.errors import ProgramError
from akidac.target.layer_record import ENUM_PARAMS, LAYER_TYPES, LayerRecord

VECTOR_DIR = Path(__file__).resolve().parents[2] / "data" / "vectors"
VECTOR_CASES = sorted(VECTOR_DIR.glob("*.npz"))


# --------------------------------------------------------------------------------------------
# Helpers


def load_vector_layers(path: Path) -> list[LayerRecord]:
    """The layers of one test-vector case as LayerRecords, in the file's topological order."""
    with np.load(path, allow_pickle=False) as archive:
        keys = archive.files
        records: list[LayerRecord] = []
        for raw_name in archive["layers"]:
            name = str(raw_name)
            param_prefix, var_prefix = f"{name}.param.", f"{name}.var."
            params: dict[str, int | str] = {}
            variables: dict[str, np.ndarray] = {}
            for key in keys:
                if key.startswith(param_prefix):
                    value = archive[key]
                    params[key[len(param_prefix) :]] = (
                        str(value) if value.dtype.kind == "U" else int(value)
                    )
                elif key.startswith(var_prefix):
                    variables[key[len(var_prefix) :]] = archive[key]
            records.append(
                LayerRecord(
                    name=name,
                    layer_type=str(archive[f"{name}.type"]),
                    inbounds=[str(inbound) for inbound in archive[f"{name}.inbounds"]],
                    params=params,
                    variables=variables,
                    output_dims=tuple(int(size) for size in archive[f"{name}.output_dims"]),
                )
            )
    return records


def load_vector_tensor(path: Path, key: str) -> ProgramTensor:
    """The case's `input` or `output` array as a ProgramTensor (dims without the batch axis)."""
    with np.load(path, allow_pickle=False) as archive:
        array = archive[key]
    height, width, channels = (int(size) for size in array.shape[1:])
    return ProgramTensor(dims=(height, width, channels), dtype=array.dtype.name)


def vector_program(path: Path) -> Program:
    """A whole Program around one test-vector case, with synthetic NPs, passes and origins."""
    records = load_vector_layers(path)
    mapped = [record.name for record in records if record.layer_type != "InputData"]
    return Program(
        device="akida2-12n",
        layers=records,
        input=load_vector_tensor(path, "input"),
        output_layer=records[-1].name,
        output=load_vector_tensor(path, "output"),
        np_assignment={name: [2 * index, 2 * index + 1] for index, name in enumerate(mapped)},
        passes=[[record.name for record in records]],
        origins={record.name: [f"/model/{record.name}/Conv", "BatchNorm_7"] for record in records},
    )


def tiny_program() -> Program:
    """Two layers, a few small variables: small enough to corrupt byte by byte."""
    input_layer = LayerRecord(
        name="input_layer",
        layer_type="InputData",
        params={"input_bits": 8, "input_channels": 2, "input_height": 2, "input_width": 2},
        output_dims=(2, 2, 2),
    )
    conv_layer = LayerRecord(
        name="conv_layer",
        layer_type="Conv2D",
        inbounds=["input_layer"],
        params={"activation": "ReLU", "filters": 3, "kernel_size": 1, "padding": "Same"},
        variables={
            "bias": np.array([-1, 0, 5], dtype=np.int8),
            "output_shift": np.array([-3, -2, 1], dtype=np.int8),
            "weights": np.arange(6, dtype=np.int8).reshape(1, 1, 2, 3),
        },
        output_dims=(2, 2, 3),
    )
    return Program(
        device="akida2-2n",
        layers=[input_layer, conv_layer],
        input=ProgramTensor(dims=(2, 2, 2), dtype="int8"),
        output_layer="conv_layer",
        output=ProgramTensor(dims=(2, 2, 3), dtype="int8"),
        np_assignment={"conv_layer": [0]},
        passes=[["input_layer", "conv_layer"]],
        origins={"conv_layer": ["Conv_0", "Relu_1"]},
    )


def with_fixed_crc(data: bytes | bytearray) -> bytes:
    """The bytes with their CRC32 trailer recomputed, so corruption reaches the parser."""
    body = bytes(data[:-4])
    return body + struct.pack("<I", zlib.crc32(body))


def section_payloads(data: bytes) -> dict[bytes, tuple[int, int]]:
    """Section tag -> (payload offset, payload length), walking the documented layout."""
    offsets: dict[bytes, tuple[int, int]] = {}
    position = HEADER_SIZE
    for _ in SECTION_TAGS_V1:
        tag, length = struct.unpack_from("<4sI", data, position)
        offsets[tag] = (position + SECTION_HEADER_SIZE, length)
        position += SECTION_HEADER_SIZE + length
        position += -position % ALIGNMENT
    return offsets


def patched(data: bytes, offset: int, replacement: bytes) -> bytes:
    """`data` with `replacement` written at `offset` and the CRC fixed."""
    buffer = bytearray(data)
    buffer[offset : offset + len(replacement)] = replacement
    return with_fixed_crc(buffer)


def find_in_section(data: bytes, tag: bytes, needle: bytes, occurrence: int = 0) -> int:
    """The offset of the `occurrence`-th `needle` inside section `tag`."""
    start, length = section_payloads(data)[tag]
    position = start - 1
    for _ in range(occurrence + 1):
        position = data.index(needle, position + 1, start + length)
    return position


def assert_program_error(data: bytes, *fragments: str) -> ProgramError:
    """Decoding raises a one-line ProgramError containing every fragment."""
    with pytest.raises(ProgramError) as caught:
        decode_program(data)
    message = str(caught.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message
    return caught.value


# --------------------------------------------------------------------------------------------
# Round trips and determinism


@pytest.mark.parametrize("case", VECTOR_CASES, ids=lambda path: path.stem)
def test_every_vector_case_round_trips_to_an_equal_program_and_identical_bytes(case: Path) -> None:
    program = vector_program(case)
    encoded = encode_program(program)
    decoded = decode_program(encoded)
    assert decoded == program
    for original, restored in zip(program.layers, decoded.layers, strict=True):
        for name, array in original.variables.items():
            assert restored.variables[name].dtype == array.dtype
            assert restored.variables[name].shape == array.shape
            assert restored.variables[name].flags.writeable
    assert encode_program(decoded) == encoded


def test_the_vector_cases_are_all_present() -> None:
    assert len(VECTOR_CASES) == 39


def test_encoding_the_same_program_twice_gives_identical_bytes() -> None:
    program = vector_program(VECTOR_DIR / "add.npz")
    assert encode_program(program) == encode_program(program)


def test_dict_insertion_order_does_not_change_the_bytes() -> None:
    program = tiny_program()
    shuffled = tiny_program()
    for record in shuffled.layers:
        record.params = dict(reversed(record.params.items()))
        record.variables = dict(reversed(record.variables.items()))
    shuffled.np_assignment = {"conv_layer": [0], "input_layer": []}
    program.np_assignment = {"input_layer": [], "conv_layer": [0]}
    shuffled.origins = dict(reversed({"input_layer": ["Input"], "conv_layer": ["Conv_0"]}.items()))
    program.origins = {"input_layer": ["Input"], "conv_layer": ["Conv_0"]}
    assert encode_program(shuffled) == encode_program(program)


def test_the_header_holds_magic_version_flags_total_length_and_section_count() -> None:
    encoded = encode_program(tiny_program())
    magic, version, flags, total_length, section_count, reserved = struct.unpack_from(
        "<4sHHIHH", encoded, 0
    )
    assert (magic, version, flags, reserved) == (MAGIC, FORMAT_VERSION, 0, 0)
    assert total_length == len(encoded)
    assert section_count == len(SECTION_TAGS_V1)
    assert struct.unpack_from("<I", encoded, len(encoded) - 4)[0] == zlib.crc32(encoded[:-4])


def test_sections_come_in_the_documented_order_at_aligned_offsets() -> None:
    encoded = encode_program(tiny_program())
    payloads = section_payloads(encoded)
    assert list(payloads) == list(SECTION_TAGS_V1)
    for payload_offset, _length in payloads.values():
        assert payload_offset % ALIGNMENT == 0


def test_variable_data_starts_at_an_eight_byte_aligned_offset() -> None:
    encoded = encode_program(tiny_program())
    weights = np.arange(6, dtype=np.int8).tobytes()
    data_offset = find_in_section(encoded, b"VARS", weights)
    assert data_offset % ALIGNMENT == 0


def test_multi_byte_variables_are_stored_little_endian() -> None:
    program = tiny_program()
    program.layers[1].variables["lut_values"] = np.array([1, -2], dtype=">i4")
    encoded = encode_program(program)
    assert struct.pack("<ii", 1, -2) in encoded
    restored = decode_program(encoded).layers[1].variables["lut_values"]
    assert restored.dtype == np.dtype(np.int32)
    assert restored.tolist() == [1, -2]


def test_the_summary_names_the_device_layers_parameters_and_nps() -> None:
    summary = program_summary(vector_program(VECTOR_DIR / "add.npz"))
    assert "akida2-12n" in summary
    for fragment in ("branch_a Conv2D", "add Add <- branch_a, branch_b", "activation=ReLU"):
        assert fragment in summary
    assert "NPs 0, 1" in summary
    assert "weights:int8[3x3x8x8]" in summary
    assert "6x6x8 int8" in summary


@st.composite
def random_programs(draw: st.DrawFn) -> Program:
    """Programs with arbitrary names, parameters, dtypes, shapes and values."""
    names = draw(st.lists(st.text(max_size=6), min_size=1, max_size=5, unique=True))
    records: list[LayerRecord] = []
    int_keys = st.text(max_size=8).filter(lambda key: key not in ENUM_PARAMS)
    for index, name in enumerate(names):
        inbounds = draw(st.lists(st.sampled_from(names[:index]), max_size=2)) if index > 0 else []
        params: dict[str, int | str] = draw(
            st.dictionaries(int_keys, st.integers(-(2**63), 2**63 - 1), max_size=4)
        )
        for key in draw(st.lists(st.sampled_from(sorted(ENUM_PARAMS)), unique=True)):
            params[key] = draw(st.sampled_from(ENUM_PARAMS[key]))
        variables: dict[str, np.ndarray] = {}
        for variable_name in draw(st.lists(st.text(max_size=6), max_size=3, unique=True)):
            dtype = np.dtype(draw(st.sampled_from(sorted(DTYPE_CODES))))
            shape = draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=3))
            variables[variable_name] = draw(hnp.arrays(dtype, shape))
        records.append(
            LayerRecord(
                name=name,
                layer_type=draw(st.sampled_from(LAYER_TYPES)),
                inbounds=inbounds,
                params=params,
                variables=variables,
                output_dims=tuple(draw(st.lists(st.integers(0, 2**32 - 1), max_size=4))),
            )
        )
    dims = st.tuples(*[st.integers(0, 2**32 - 1)] * 3)
    tensors = st.builds(ProgramTensor, dims=dims, dtype=st.sampled_from(TENSOR_DTYPES))
    layer_names = st.sampled_from(names)
    return Program(
        device=draw(st.text(max_size=12)),
        layers=records,
        input=draw(tensors),
        output_layer=draw(layer_names),
        output=draw(tensors),
        np_assignment=draw(
            st.dictionaries(layer_names, st.lists(st.integers(0, 2**32 - 1), max_size=4))
        ),
        passes=draw(st.lists(st.lists(layer_names, max_size=4), max_size=3)),
        origins=draw(st.dictionaries(layer_names, st.lists(st.text(max_size=8), max_size=3))),
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_programs())
def test_random_programs_round_trip_exactly_and_re_encode_to_the_same_bytes(
    program: Program,
) -> None:
    encoded = encode_program(program)
    decoded = decode_program(encoded)
    assert decoded == program
    assert encode_program(decoded) == encoded


# --------------------------------------------------------------------------------------------
# The decoder refuses malformed bytes with ProgramError


def test_a_wrong_magic_is_refused() -> None:
    encoded = encode_program(tiny_program())
    assert_program_error(b"ONNX" + encoded[4:], "not an akidac program", "byte 0")


def test_a_newer_format_version_is_refused_with_a_clear_message() -> None:
    encoded = encode_program(tiny_program())
    newer = patched(encoded, 4, struct.pack("<H", 7))
    assert_program_error(
        newer, "program format version 7 is newer than this akidac supports (1)", "byte 4"
    )


def test_format_version_zero_is_refused() -> None:
    encoded = encode_program(tiny_program())
    assert_program_error(patched(encoded, 4, struct.pack("<H", 0)), "version 0", "byte 4")


def test_truncation_at_every_length_is_refused() -> None:
    encoded = encode_program(tiny_program())
    for length in range(len(encoded)):
        with pytest.raises(ProgramError, match=r"truncated|magic"):
            decode_program(encoded[:length])


def test_trailing_bytes_after_the_program_are_refused() -> None:
    encoded = encode_program(tiny_program())
    assert_program_error(encoded + b"\x00", "1 unexpected bytes", f"byte {len(encoded)}")


def test_a_crc_mismatch_is_refused() -> None:
    encoded = bytearray(encode_program(tiny_program()))
    encoded[HEADER_SIZE + 10] ^= 0x20
    assert_program_error(bytes(encoded), "CRC32 mismatch", f"byte {len(encoded) - 4}")


def test_flipping_any_single_byte_is_refused() -> None:
    encoded = encode_program(tiny_program())
    for offset in range(len(encoded)):
        for mask in (0x01, 0xFF):
            corrupted = bytearray(encoded)
            corrupted[offset] ^= mask
            with pytest.raises(ProgramError):
                decode_program(bytes(corrupted))


def test_a_single_byte_flip_with_a_recomputed_crc_is_refused_or_decodes_canonically() -> None:
    encoded = encode_program(tiny_program())
    for offset in range(len(encoded) - 4):
        for mask in (0x01, 0x80, 0xFF):
            corrupted = bytearray(encoded)
            corrupted[offset] ^= mask
            corrupted_bytes = with_fixed_crc(corrupted)
            try:
                decoded = decode_program(corrupted_bytes)
            except ProgramError as error:
                assert "\n" not in str(error)
                assert "byte" in str(error)
                continue
            assert encode_program(decoded) == corrupted_bytes


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_random_corruption_with_a_recomputed_crc_never_raises_anything_but_program_error(
    data: st.DataObject,
) -> None:
    encoded = bytearray(encode_program(tiny_program()))
    for _ in range(data.draw(st.integers(1, 6))):
        offset = data.draw(st.integers(0, len(encoded) - 5))
        encoded[offset] = data.draw(st.integers(0, 255))
    corrupted = with_fixed_crc(encoded)
    try:
        decoded = decode_program(corrupted)
    except ProgramError:
        return
    assert encode_program(decoded) == corrupted


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_program_error(data: bytes) -> None:
    with pytest.raises(ProgramError):
        decode_program(data)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_behind_a_valid_header_and_crc_raise_program_error(body: bytes) -> None:
    total_length = HEADER_SIZE + len(body) + 4
    header = struct.pack("<4sHHIHH", MAGIC, 1, 0, total_length, len(SECTION_TAGS_V1), 0)
    with pytest.raises(ProgramError):
        decode_program(with_fixed_crc(header + body + bytes(4)))


def test_unknown_flags_are_refused() -> None:
    encoded = encode_program(tiny_program())
    assert_program_error(patched(encoded, 6, b"\x01\x00"), "flags 0x0001", "byte 6")


def test_a_total_length_smaller_than_the_buffer_is_refused() -> None:
    encoded = encode_program(tiny_program())
    shorter = struct.pack("<I", len(encoded) - 8)
    assert_program_error(patched(encoded, 8, shorter), "unexpected bytes", "byte 8")


def test_a_wrong_section_tag_is_refused() -> None:
    encoded = encode_program(tiny_program())
    assert_program_error(patched(encoded, HEADER_SIZE, b"XXXX"), "section tag", "byte 16")


def test_a_section_length_pointing_outside_the_buffer_is_refused() -> None:
    encoded = encode_program(tiny_program())
    length_offset = section_payloads(encoded)[b"LAYR"][0] - 4
    assert_program_error(
        patched(encoded, length_offset, struct.pack("<I", 0xFFFF_FFF0)),
        "LAYR section payload",
        f"byte {length_offset + 4}",
    )


def test_a_string_length_pointing_outside_its_section_is_refused() -> None:
    encoded = encode_program(tiny_program())
    name_length_offset = section_payloads(encoded)[b"LAYR"][0] + 5
    assert_program_error(
        patched(encoded, name_length_offset, b"\xff\xff"), "layer name", "needs 65535 bytes"
    )


def test_a_huge_layer_count_is_refused_before_allocating() -> None:
    encoded = encode_program(tiny_program())
    count_offset = section_payloads(encoded)[b"LAYR"][0]
    assert_program_error(
        patched(encoded, count_offset, b"\xff\xff\xff\xff"),
        "layer count 4294967295",
        f"byte {count_offset}",
    )


def test_a_huge_variable_count_is_refused() -> None:
    encoded = encode_program(tiny_program())
    count_offset = section_payloads(encoded)[b"VARS"][0]
    assert_program_error(
        patched(encoded, count_offset, b"\xff\xff\xff\x7f"), "variable count", "cannot fit"
    )


def test_a_huge_variable_shape_is_refused() -> None:
    encoded = encode_program(tiny_program())
    # The first variable is "bias": index (4), name (2 + 4), dtype (1), ndim (1), then dims.
    dims_offset = section_payloads(encoded)[b"VARS"][0] + 4 + 4 + 6 + 2
    assert_program_error(
        patched(encoded, dims_offset, b"\xff\xff\xff\xff"), "data of variable 'bias'", "needs"
    )


def test_an_empty_variable_with_absurd_dimensions_is_refused() -> None:
    program = tiny_program()
    program.layers[1].variables["bias"] = np.zeros((0, 3, 3), dtype=np.int8)
    encoded = encode_program(program)
    assert decode_program(encoded) == program
    # "bias": index (4), name (2 + 4), dtype (1), ndim (1), then dims 0, 3, 3.
    second_dim_offset = section_payloads(encoded)[b"VARS"][0] + 4 + 4 + 6 + 2 + 4
    huge_dims = b"\xff\xff\xff\xff" * 2
    assert_program_error(
        patched(encoded, second_dim_offset, huge_dims),
        "too large",
        f"byte {second_dim_offset - 4}",
    )


def test_an_unknown_dtype_code_is_refused() -> None:
    encoded = encode_program(tiny_program())
    dtype_offset = section_payloads(encoded)[b"VARS"][0] + 4 + 4 + 6
    assert_program_error(
        patched(encoded, dtype_offset, b"\x63"), "dtype code 99", f"byte {dtype_offset}"
    )


def test_an_unknown_layer_type_is_refused() -> None:
    encoded = encode_program(tiny_program())
    type_offset = section_payloads(encoded)[b"LAYR"][0] + 4
    assert_program_error(
        patched(encoded, type_offset, b"\xc8"), "layer type code 200", f"byte {type_offset}"
    )


def test_an_inbound_naming_an_unknown_layer_is_refused() -> None:
    encoded = encode_program(tiny_program())
    inbound_offset = find_in_section(encoded, b"LAYR", b"input_layer", occurrence=1)
    assert_program_error(
        patched(encoded, inbound_offset, b"inpuX"),
        "inbound 'inpuX_layer'",
        f"byte {inbound_offset - 2}",
        "not an earlier layer",
    )


def test_an_unknown_output_layer_is_refused() -> None:
    encoded = encode_program(tiny_program())
    name_offset = find_in_section(encoded, b"INOU", b"conv_layer")
    assert_program_error(
        patched(encoded, name_offset, b"conX"), "output_layer 'conX_layer'", "not a layer"
    )


def test_a_non_utf8_layer_name_is_refused() -> None:
    encoded = encode_program(tiny_program())
    name_offset = find_in_section(encoded, b"LAYR", b"conv_layer")
    assert_program_error(
        patched(encoded, name_offset, b"\xff\xfe"), "not valid UTF-8", f"byte {name_offset - 2}"
    )


def test_a_bad_enum_value_is_refused() -> None:
    encoded = encode_program(tiny_program())
    value_offset = find_in_section(encoded, b"LAYR", b"ReLU")
    assert_program_error(
        patched(encoded, value_offset, b"ReLV"), "'ReLV'", "not one of", f"byte {value_offset - 2}"
    )


def test_non_zero_padding_is_refused() -> None:
    encoded = encode_program(tiny_program())
    payload_offset, length = section_payloads(encoded)[b"DEVC"]
    padding_offset = payload_offset + length
    assert padding_offset % ALIGNMENT != 0
    assert_program_error(patched(encoded, padding_offset, b"\x01"), "is not zero")


def test_a_non_bytes_argument_is_refused() -> None:
    with pytest.raises(ProgramError):
        decode_program("AKDC")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# The encoder refuses programs it cannot store


def test_the_encoder_refuses_an_unknown_layer_type() -> None:
    program = tiny_program()
    program.layers[1].layer_type = "MatMul"
    with pytest.raises(ProgramError, match="unknown type 'MatMul'"):
        encode_program(program)


def test_the_encoder_refuses_duplicate_layer_names() -> None:
    program = tiny_program()
    program.layers[1].name = "input_layer"
    with pytest.raises(ProgramError, match="two layers are named"):
        encode_program(program)


def test_the_encoder_refuses_an_inbound_that_is_not_an_earlier_layer() -> None:
    program = tiny_program()
    program.layers[0].inbounds = ["conv_layer"]
    with pytest.raises(ProgramError, match="not an earlier layer"):
        encode_program(program)


def test_the_encoder_refuses_float_variables() -> None:
    program = tiny_program()
    program.layers[1].variables["bias"] = np.zeros(3, dtype=np.float32)
    with pytest.raises(ProgramError, match="unsupported dtype"):
        encode_program(program)


def test_the_encoder_refuses_an_invalid_enum_value() -> None:
    program = tiny_program()
    program.layers[1].params["activation"] = "Sigmoid"
    with pytest.raises(ProgramError, match="not one of"):
        encode_program(program)


def test_the_encoder_refuses_an_integer_parameter_outside_int64() -> None:
    program = tiny_program()
    program.layers[1].params["filters"] = 2**63
    with pytest.raises(ProgramError, match="signed 64-bit"):
        encode_program(program)


def test_the_encoder_refuses_an_unknown_output_layer() -> None:
    program = tiny_program()
    program.output_layer = "missing"
    with pytest.raises(ProgramError, match="unknown layer 'missing'"):
        encode_program(program)


def test_the_encoder_refuses_a_name_that_is_not_encodable_as_utf8() -> None:
    program = tiny_program()
    program.device = "akida\udc80"
    with pytest.raises(ProgramError, match="cannot be encoded as UTF-8"):
        encode_program(program)


def test_the_encoder_refuses_a_future_format_version() -> None:
    program = tiny_program()
    program.format_version = 2
    with pytest.raises(ProgramError, match="writes only version 1"):
        encode_program(program)


# --------------------------------------------------------------------------------------------
# The documentation


def test_the_worked_example_in_the_docs_is_what_the_encoder_produces() -> None:
    dense = LayerRecord(
        name="fc",
        layer_type="Dense1D",
        params={"activation": "ReLU", "output_bits": 8, "units": 2},
        variables={
            "output_shift": np.array([-4, -3], dtype=np.int8),
            "weights": np.array([[1, -1], [2, -2], [3, -3]], dtype=np.int8),
        },
        output_dims=(1, 1, 2),
    )
    program = Program(
        device="akida2-2n",
        layers=[dense],
        input=ProgramTensor(dims=(1, 1, 3), dtype="int8"),
        output_layer="fc",
        output=ProgramTensor(dims=(1, 1, 2), dtype="int8"),
        np_assignment={"fc": [0]},
        passes=[["fc"]],
        origins={"fc": ["Gemm_0"]},
    )
    doc = (Path(__file__).resolve().parents[3] / "docs" / "program-format.md").read_text()
    dump_lines = re.findall(r"^([0-9a-f]{8})  ((?:[0-9a-f]{2} ?)+)", doc, flags=re.MULTILINE)
    documented = b"".join(bytes.fromhex(hex_bytes) for _offset, hex_bytes in dump_lines)
    assert documented == encode_program(program)
    assert program_summary(program) in doc
