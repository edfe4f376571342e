"""schemathesis hooks for tests/api_fuzz (loaded through SCHEMATHESIS_HOOKS).

A list's `cursor` is a token only the API mints (a `next_cursor` it answered), like a bearer
token: a generated one is never "valid data", so positive cases send none. Negative cases still
send broken cursors, which must be refused with a 4xx.
"""
import schemathesis


@schemathesis.hook
def map_case(context, case):
    meta = case.meta
    if meta is not None and meta.generation.mode.is_positive and case.query:
        case.query.pop("cursor", None)
    return case
