"""ONNX → IR: loading, validation, static shapes, shape inference, one `onnx.*` op per node."""

from akidac.frontend.importer import import_model
from akidac.frontend.loader import load_model
from akidac.frontend.shapes import parse_input_shapes

__all__ = ["import_model", "load_model", "parse_input_shapes"]
