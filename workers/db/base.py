"""The declarative base every table of the workers derives from, and the column types that
keep chain values exact on both SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import MetaData, Numeric, String
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator, TypeEngine

from workers.protocol import UINT256_MAX

#: Decimal digits of the largest uint256.
UINT256_DIGITS = len(str(UINT256_MAX))

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Every table of the workers. Modules add theirs by subclassing; Alembic creates them."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UInt(TypeDecorator[int]):
    """An unsigned chain integer up to 2**256 - 1, exact on every backend.

    PostgreSQL: NUMERIC(78, 0). SQLite (whose integers stop at 2**63 - 1 and whose NUMERIC is
    a float): text zero-padded to 78 digits, so equality, ordering and indexes still work.
    Python code always sees `int`.
    """

    impl = String(UINT256_DIGITS)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Numeric(UINT256_DIGITS, 0, asdecimal=True))
        return dialect.type_descriptor(String(UINT256_DIGITS))

    def process_bind_param(self, value: int | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        value = int(value)
        if not 0 <= value <= UINT256_MAX:
            raise ValueError(f"{value} is not a uint256")
        if dialect.name == "postgresql":
            return value
        return f"{value:0{UINT256_DIGITS}d}"

    def process_result_value(self, value: Any, dialect: Dialect) -> int | None:
        return None if value is None else int(value)


class Address(TypeDecorator[str]):
    """A 20-byte address, stored lower-case `0x…` (42 characters); input in any case."""

    impl = String(42)
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else value.lower()


class Bytes32(TypeDecorator[str]):
    """A 32-byte value (hash, root), stored lower-case `0x…` (66 characters)."""

    impl = String(66)
    cache_ok = True

    def process_bind_param(self, value: str | bytes | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if isinstance(value, bytes | bytearray):
            return "0x" + bytes(value).hex()
        return value.lower()
