"""Input checking at a service's door: marshmallow errors become a 400 with field messages."""
from marshmallow import ValidationError

from .errors import ValidationFailed


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
