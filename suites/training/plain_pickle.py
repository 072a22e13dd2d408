"""Read a pickle of plain values without running anything it names (CIFAR-10's python batches).

``pickle.load`` calls whatever a file names, so a crafted batch file would run its own code.
Here the opcodes are read one at a time (``pickletools.genops``) and only plain values are built:
dict, list, tuple, str, bytes, int, float, bool and None, plus numpy arrays of plain numbers made
from their raw bytes. An array is recognized by the exact calls numpy's own pickles make, and
none of them is made: their arguments are checked and the array is built here with
``numpy.frombuffer``.

- ``numpy.core.multiarray._reconstruct(numpy.ndarray, (0,), b'b')``, then ``BUILD`` with the
  state ``([1,] shape, dtype, is_fortran, raw bytes)`` (protocols 0 to 4; the CIFAR-10 files);
- ``numpy.dtype(code, False, True)``, then ``BUILD`` with ``(3, byte order, None, None, None,
  -1, -1, 0)``, for ``code`` a plain number type (``u1``, ``i8``, ``f4``...);
- ``numpy.core.numeric._frombuffer(raw bytes, dtype, shape, order)`` (protocol 5);
- ``_codecs.encode(text, 'latin1')``: how Python 3 writes bytes at protocol 2.

The modules may be spelled ``numpy.core`` or ``numpy._core`` (numpy 1 and 2). Python 2 strings
(the CIFAR-10 files' keys and image bytes) are read as bytes. Anything else (another global,
another call, an object opcode, a truncated file) raises ``PickleRefused`` with one line.
"""

from __future__ import annotations

import io
import math
import pickletools
from pathlib import Path
from typing import Any

import numpy as np

# the plain number types an array may hold (no objects, no structured types)
DTYPE_CODES = frozenset(
    f"{kind}{size}"
    for kind, sizes in (("u", "1248"), ("i", "1248"), ("f", "248"))
    for size in sizes
) | {"b1"}
BYTE_ORDERS = ("|", "<", ">", "=")
RECONSTRUCT = "_reconstruct"
FROMBUFFER = "_frombuffer"
NDARRAY = "ndarray"
DTYPE = "dtype"
LATIN1 = "latin1"
GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): RECONSTRUCT,
    ("numpy.core.numeric", "_frombuffer"): FROMBUFFER,
    ("numpy._core.numeric", "_frombuffer"): FROMBUFFER,
    ("numpy", "ndarray"): NDARRAY,
    ("numpy", "dtype"): DTYPE,
    ("_codecs", "encode"): LATIN1,
}
_VALUE_OPCODES = {
    "NONE": lambda arg: None,
    "NEWTRUE": lambda arg: True,
    "NEWFALSE": lambda arg: False,
    **dict.fromkeys(
        ("INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4"), lambda arg: arg
    ),
    **dict.fromkeys(("FLOAT", "BINFLOAT"), float),
    # Python 2 strings: pickletools decodes them with latin-1; they were bytes
    **dict.fromkeys(("STRING", "BINSTRING", "SHORT_BINSTRING"), lambda arg: arg.encode("latin-1")),
    **dict.fromkeys(("BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8"), bytes),
    **dict.fromkeys(("UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8"), str),
    "EMPTY_DICT": lambda arg: {},
    "EMPTY_LIST": lambda arg: [],
    "EMPTY_TUPLE": lambda arg: (),
}
_IGNORED_OPCODES = frozenset({"PROTO", "FRAME"})


class PickleRefused(ValueError):
    """A pickle that is not plain values (or is cut short); the message says why, in one line."""


class _Global:
    """A global the pickle named: one of ``GLOBALS``, never imported."""

    def __init__(self, role: str) -> None:
        self.role = role


class _DType:
    """A ``numpy.dtype(code, False, True)`` call, its byte order set by ``BUILD``."""

    def __init__(self, code: str) -> None:
        self.code = code
        self.order = "|"

    def build(self, state: Any) -> None:
        if not (
            isinstance(state, tuple)
            and len(state) == 8
            and state[0] == 3
            and _text(state[1]) in BYTE_ORDERS
            and state[2:5] == (None, None, None)
            and state[5:] == (-1, -1, 0)
        ):
            raise PickleRefused(
                f"the dtype {self.code!r} has a state a plain number type never has"
            )
        self.order = _text(state[1])

    def numpy(self) -> np.dtype:
        order = self.order if self.order != "|" else "="
        return np.dtype(self.code).newbyteorder(order)


class _Array:
    """A ``_reconstruct(ndarray, (0,), b'b')`` call: the array ``BUILD`` fills in."""

    def __init__(self) -> None:
        self.value: np.ndarray | None = None

    def build(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 5 and state[0] == 1:
            state = state[1:]
        if not (isinstance(state, tuple) and len(state) == 4):
            raise PickleRefused("an array's state is not (shape, dtype, is_fortran, bytes)")
        shape, dtype, fortran, raw = state
        self.value = _array(raw, dtype, shape, "F" if fortran else "C")


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return value if isinstance(value, str) else None


def _array(raw: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    """An array from its raw bytes, every argument checked first."""
    if isinstance(raw, str):  # Python 2 bytes read as latin-1 text
        raw = raw.encode("latin-1")
    if not isinstance(raw, bytes) or not isinstance(dtype, _DType):
        raise PickleRefused("an array is not made of raw bytes and a plain number dtype")
    if not (isinstance(shape, tuple) and all(type(n) is int and n >= 0 for n in shape)):
        raise PickleRefused(f"an array's shape {shape!r} is not a tuple of sizes")
    if _text(order) not in ("C", "F"):
        raise PickleRefused(f"an array's order {order!r} is neither 'C' nor 'F'")
    kind = dtype.numpy()
    if math.prod(shape) * kind.itemsize != len(raw):
        raise PickleRefused(
            f"an array of shape {shape} and dtype {dtype.code} needs "
            f"{math.prod(shape) * kind.itemsize} bytes, the file gives {len(raw)}"
        )
    return np.frombuffer(bytearray(raw), dtype=kind).reshape(shape, order=_text(order))


def _call(function: _Global, args: Any) -> Any:
    """The value of one of the calls numpy's pickles make; any other call is refused."""
    if not isinstance(args, tuple):
        raise PickleRefused("a call without an argument tuple")
    role = function.role
    if role == RECONSTRUCT and len(args) == 3:
        cls, base, code = args
        if isinstance(cls, _Global) and cls.role == NDARRAY and base == (0,) and _text(code) == "b":
            return _Array()
    if role == DTYPE and len(args) == 3 and args[1:] in ((False, True), (0, 1)):
        code = _text(args[0])
        if code in DTYPE_CODES:
            return _DType(code)
        raise PickleRefused(f"a dtype {args[0]!r} that is not a plain number type")
    if role == FROMBUFFER and len(args) == 4:
        return _array(*args)
    if (
        role == LATIN1
        and len(args) == 2
        and isinstance(args[0], str)
        and args[1] in ("latin1", "latin-1")
    ):
        return args[0].encode("latin-1")
    raise PickleRefused(f"a call of {role} with arguments numpy's own pickles never use")


def _pop_to_mark(stack: list, marks: list) -> list:
    start = marks.pop()
    items = stack[start:]
    del stack[start:]
    return items


def _step(name: str, arg: Any, stack: list, marks: list, memo: dict) -> None:
    """Apply one opcode (all but STOP and the value ones) to the stack."""
    if name == "MARK":
        marks.append(len(stack))
    elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
        memo[arg] = stack[-1]
    elif name == "MEMOIZE":
        memo[len(memo)] = stack[-1]
    elif name in ("GET", "BINGET", "LONG_BINGET"):
        stack.append(memo[arg])
    elif name == "POP":
        stack.pop()
    elif name == "POP_MARK":
        _pop_to_mark(stack, marks)
    elif name == "DUP":
        stack.append(stack[-1])
    elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
        count = int(name[-1])
        items = tuple(stack[-count:])
        del stack[-count:]
        stack.append(items)
    elif name in ("TUPLE", "LIST"):
        items = _pop_to_mark(stack, marks)
        stack.append(tuple(items) if name == "TUPLE" else items)
    elif name == "DICT":
        stack.append(dict(_pairs(_pop_to_mark(stack, marks))))
    elif name == "APPEND":
        value = stack.pop()
        _container(stack[-1], list).append(value)
    elif name == "APPENDS":
        items = _pop_to_mark(stack, marks)
        _container(stack[-1], list).extend(items)
    elif name in ("SETITEM", "SETITEMS"):
        items = (
            [stack.pop(), stack.pop()][::-1] if name == "SETITEM" else _pop_to_mark(stack, marks)
        )
        _container(stack[-1], dict).update(_pairs(items))
    elif name == "GLOBAL":
        stack.append(_global(*arg.split(" ", 1)))
    elif name == "STACK_GLOBAL":
        name_, module = stack.pop(), stack.pop()
        stack.append(_global(module, name_))
    elif name == "REDUCE":
        args, function = stack.pop(), stack.pop()
        if not isinstance(function, _Global):
            raise PickleRefused("a call of something that is not a function")
        stack.append(_call(function, args))
    elif name == "BUILD":
        state = stack.pop()
        if not isinstance(stack[-1], _DType | _Array):
            raise PickleRefused("a state set on something that is not a numpy array or dtype")
        stack[-1].build(state)
    else:
        raise PickleRefused(f"opcode {name}, which only objects other than plain values need")


def _pairs(items: list) -> list[tuple[Any, Any]]:
    if len(items) % 2:
        raise PickleRefused("a dict with a key and no value")
    return list(zip(items[::2], items[1::2], strict=True))


def _container(value: Any, kind: type) -> Any:
    if type(value) is not kind:
        raise PickleRefused(f"adds items to a {type(value).__name__}, not a {kind.__name__}")
    return value


def _global(module: Any, name: Any) -> _Global:
    role = GLOBALS.get((module, name))
    if role is None:
        raise PickleRefused(
            f"it names {module}.{name}, which a pickle of plain values and numpy arrays never does"
        )
    return _Global(role)


def _resolve(value: Any, done: dict[int, Any], depth: int = 0) -> Any:
    """The finished value: every array placeholder replaced by its array. ``done`` keeps what
    is resolved by ``id``, so a value the memo shares is visited once."""
    if depth > 20:
        raise PickleRefused("values nested deeper than 20 levels (or a value that holds itself)")
    if isinstance(value, _Array):
        if value.value is None:
            raise PickleRefused("an array whose data never follows")
        return value.value
    if isinstance(value, _DType | _Global):
        raise PickleRefused("a bare numpy dtype or global where a value belongs")
    if type(value) not in (dict, list, tuple):
        return value
    if id(value) not in done:
        if type(value) is dict:
            done[id(value)] = {
                _resolve(k, done, depth + 1): _resolve(v, done, depth + 1) for k, v in value.items()
            }
        else:
            done[id(value)] = type(value)(_resolve(v, done, depth + 1) for v in value)
    return done[id(value)]


def load_plain_pickle(path: str | Path) -> Any:
    """The value pickled in ``path``, built from plain values only; ``PickleRefused`` otherwise
    (one line saying why: a global or opcode a plain pickle never has, a truncated file...)."""
    data = Path(path).read_bytes()  # in memory: a length field cannot make a read allocate more
    if not data:
        raise PickleRefused("the file is empty")
    stack: list[Any] = []
    marks: list[int] = []
    memo: dict[int, Any] = {}
    try:
        for opcode, arg, _ in pickletools.genops(io.BytesIO(data)):
            name = opcode.name
            if name == "STOP":
                if len(stack) != 1 or marks:
                    raise PickleRefused("the pickle ends with an unbalanced stack")
                return _resolve(stack.pop(), {})
            if name in _VALUE_OPCODES:
                stack.append(_VALUE_OPCODES[name](arg))
            elif name not in _IGNORED_OPCODES:
                _step(name, arg, stack, marks, memo)
    except PickleRefused:
        raise
    except ValueError as error:  # genops: a truncated or garbled opcode stream
        raise PickleRefused(f"not a complete pickle ({' '.join(str(error).split())})") from None
    except Exception as error:  # a stack or memo the opcodes do not fit
        raise PickleRefused(
            f"a malformed pickle ({type(error).__name__}: {' '.join(str(error).split())})"
        ) from None
    raise PickleRefused("the pickle ends before its STOP opcode")
