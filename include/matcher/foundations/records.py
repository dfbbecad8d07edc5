"""The base of the project's stored records: JSON objects it writes to S3 and reads back as classes.

A :class:`Record` is a frozen pydantic model whose fields take JSON's own types, without coercion (a
metric given as ``"0.8"`` is refused, not read as 0.8). Two directions, one class:

- a **writer** builds its record with ``context={"writing": True}``: a key the class does not declare
  is refused there, so a writer that adds a field its readers do not know fails its tests at once;
- a **reader** skips keys it does not know (a record written by a later version stays readable) and
  refuses a wrong type, naming the field (``report.decision.promote: Input should be a valid boolean``).

``to_json`` writes only what was given (``exclude_unset``), so a record read and written again is the
same JSON.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, model_validator

from include.matcher.foundations.errors import NotFound

Count = Annotated[int, Field(ge=0)]
# An int stays an int (an epoch count reads "1", not "1.0"); a bool is neither.
Number = int | float


class UnreadableRecord(NotFound, ValueError):
    """Bytes where a record belongs that are not one this project wrote (or not JSON at all)."""


class Record(BaseModel):
    """A stored JSON object as a class (module docstring)."""

    model_config = ConfigDict(strict=True, frozen=True, extra="ignore", populate_by_name=True)
    # What errors call it ("report.decision.promote: ..."), and what they raise.
    record_name: ClassVar[str] = ""
    unreadable: ClassVar[type[UnreadableRecord]] = UnreadableRecord

    @model_validator(mode="before")
    @classmethod
    def _every_key_written_is_declared(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, dict) and (info.context or {}).get("writing") and cls.model_config.get("extra") != "allow":
            declared = {field.alias or name for name, field in cls.model_fields.items()}
            unknown = sorted(set(data) - declared)
            if unknown:
                raise ValueError(f"written but not declared by {cls.__name__}: {', '.join(map(str, unknown))}")
        return data

    @classmethod
    def written(cls, data: dict):
        """The record a writer is about to store: every key it puts must be declared."""
        return cls.load(data, writing=True)

    @classmethod
    def load(cls, data: dict | bytes, *, writing: bool = False):
        """The record of stored JSON (bytes or parsed); :class:`UnreadableRecord`, naming the field, if not."""
        try:
            if isinstance(data, bytes | str):
                return cls.model_validate_json(data, context={"writing": writing})
            return cls.model_validate(data, context={"writing": writing})
        except ValidationError as error:
            parsed = (
                json.loads(data)
                if isinstance(data, bytes | str) and error.errors()[0]["type"] != "json_invalid"
                else data
            )
            raise cls.unreadable(first_problem(error, cls.record_name or cls.__name__, parsed)) from None

    def to_json(self) -> dict:
        """The JSON object this record is stored as."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


def checked_json(record: type[Record]):
    """A field held as the JSON its own module reads and writes, checked against ``record`` on the way in."""

    def check(value: dict, info: ValidationInfo) -> dict:
        record.model_validate(value, context=info.context)
        return value

    return Annotated[dict, AfterValidator(check)]


def first_problem(error: ValidationError, root: str, data: Any = None) -> str:
    """The first thing wrong, as ``root.field.path: what``: no input value (it may be anything, a CV's too).

    Where a field takes one of several types, pydantic's path also names the type it tried; the path
    is walked through ``data`` (the input) so only the fields and items it really has are named."""
    first = error.errors(include_url=False, include_input=False)[0]
    if first["type"] == "json_invalid":
        return f"{root}: not JSON ({first['msg'].removeprefix('Invalid JSON: ')})"
    path, here, loc = "", data, first["loc"]
    for index, part in enumerate(loc):
        if first["type"] == "missing" and index == len(loc) - 1:
            path += f".{part}"  # the field that is not there
            break
        if data is not None and not _holds(here, part):
            continue  # the name of a type in a union, not a step into the data
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
        here = here[part] if data is not None else None
    return f"{root}{path}: {first['msg']}"


def _holds(value: Any, part: str | int) -> bool:
    if isinstance(value, dict):
        return part in value
    return isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value)
