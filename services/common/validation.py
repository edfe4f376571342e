"""Input checking at a service's door: marshmallow errors become a 400 with field messages."""
from datetime import date
from decimal import Decimal, InvalidOperation

from marshmallow import ValidationError, fields

from .errors import ValidationFailed


def parse_date(value, name):
    """A query argument that must be a date: ISO text or a date; anything else is a 400."""
    try:
        return value if isinstance(value, date) else date.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValidationFailed(f"{name} must be a date YYYY-MM-DD", {name: ["not a date"]}) from None


class WholeNumber(fields.Integer):
    """An integer given as a number or digits; 10.5 is refused instead of truncated to 10."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool):
            raise ValidationError("Not a valid integer.")
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise ValidationError("Not a valid integer.") from None
        if not number.is_finite() or number != number.to_integral_value():
            raise ValidationError("Not a valid integer.")
        return super()._deserialize(int(number), attr, data, **kwargs)


def validate(schema, data, partial=False):
    """Load `data` with a marshmallow schema instance; bad input raises ValidationFailed whose
    details map each field to its messages (nested fields as "parent.child")."""
    if not isinstance(data, dict):
        raise ValidationFailed("the request body must be a JSON object", {"_body": ["not an object"]})
    try:
        return schema.load(data, partial=partial)
    except ValidationError as error:
        raise ValidationFailed("some fields are invalid", _flatten(error.messages)) from None


def _flatten(messages, prefix=""):
    flat = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, dict):
                flat.update(_flatten(value, name))
            else:
                flat[name] = value if isinstance(value, list) else [value]
    else:
        flat[prefix or "_body"] = messages if isinstance(messages, list) else [messages]
    return flat
