"""Personal data at rest (issue 22; PIPL 个人信息保护法, 等保 2.0 数据保密性).

ID and phone numbers of a household's members are encrypted with the household's own data key
(services/common/crypto.py) wherever they are stored: in the `member_added` and `member_updated`
event payloads (sealed on append, opened on load: services.common.store.PAYLOAD_CODECS) and in
the `households.detail` read model. The county-wide uniqueness of ID numbers is checked through
`living_id_numbers.id_hash`, a keyed hash (HMAC) of the number, never the number itself.

Erasing a household's personal data destroys its data key: the events stay as they were (the
store never forgets), but their ID and phone numbers can no longer be read by anyone and read as
null; statuses, incomes, assurances, exits and every score, which never needed them, are
unchanged. A household erased once takes no new personal data.

Events written before encryption existed hold plaintext: on start the registry seals them in
place (`seal_legacy_events`) and rebuilds its read models, and until then `open` passes
plaintext through (an upcaster in effect).
"""
import json
import os
import threading
from datetime import datetime, timezone

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from marshmallow import Schema, fields, validate as v
from sqlalchemy import Column, DateTime, MetaData, Table, Text, select, text, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert

from services.common.crypto import KeyUnavailable, decrypt_field, encrypt_field, is_encrypted, key_ring_from_config
from services.common.errors import RuleRefused
from services.common.store import PAYLOAD_CODECS

PERSONAL_FIELDS = ("id_number", "phone")
HOUSEHOLD = "household"
ERASED = object()  # a household whose data key was destroyed

metadata = MetaData()
# Not a read model: the keys cannot be rebuilt from the events (that is the point).
household_keys = Table(
    "household_keys", metadata,
    Column("household_id", Text, primary_key=True),
    Column("kek_id", Text),
    Column("wrapped_key", Text),  # NULL once erased
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("erased_at", DateTime(timezone=True)),
    Column("erased_by", JSONB),
    Column("erasure_reason", Text),
)


# The event store's hook (store.STORE_FUNCTIONS): a household's key row, as JSON [kek_id, wrapped_key],
# read under the household's lock in the command's first statement (NULL when it has none yet).
HOUSEHOLD_STREAM_KEY = """
CREATE OR REPLACE FUNCTION fupin_stream_key(p_type text, p_id text) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN p_type = 'household' THEN
        (SELECT json_build_array(kek_id, wrapped_key)::text FROM household_keys WHERE household_id = p_id) END
$$
"""
_PREFETCHED = "fupin.household_keys"  # session.info: {household_id: (transaction, (kek_id, wrapped_key))}


class ErasePersonalData(Schema):
    household_id = fields.String(required=True, validate=v.Length(min=1, max=100))
    reason = fields.String(required=True, validate=v.Length(min=2, max=500))


def _now():
    return datetime.now(timezone.utc)


def _personal_values(payload):
    values = [payload.get(name) for name in PERSONAL_FIELDS]
    if isinstance(payload.get("changes"), dict):
        values += [payload["changes"].get(name) for name in PERSONAL_FIELDS]
    return [value for value in values if value is not None]


def _map_fields(payload, function):
    result = dict(payload)
    for name in PERSONAL_FIELDS:
        if name in result:
            result[name] = function(result[name], name)
    if isinstance(result.get("changes"), dict):
        result["changes"] = {name: function(value, name) if name in PERSONAL_FIELDS else value
                             for name, value in result["changes"].items()}
    return result


class HouseholdCodec:
    """Seals and opens a household's personal fields with its data key (store.PayloadCodec)."""

    def __init__(self, ring):
        self.ring = ring

    # --- keys ----------------------------------------------------------------------------------
    def prefetched_key(self, session, stream_id, text):
        """The key row fupin_stream_key read with the household under its lock: this transaction's
        data_key uses it instead of another round trip (a sixth of a command's statements)."""
        session.info.setdefault(_PREFETCHED, {})[stream_id] = (session.get_transaction(), tuple(json.loads(text)))

    def data_key(self, session, household_id, create=False):
        known = session.info.get(_PREFETCHED, {}).get(household_id)
        if known is not None and known[0] is session.get_transaction():
            row = known[1]
        else:
            # On the driver cursor: a command on a long household reads its key for the snapshot,
            # and SQLAlchemy's statement layer cost more than the lookup (issue 17's profile).
            with session.connection().connection.cursor() as cursor:
                cursor.execute("SELECT kek_id, wrapped_key FROM household_keys WHERE household_id = %s",
                               (household_id,))
                row = cursor.fetchone()
        if row is None:
            if not create:
                return None
            kek_id, wrapped = self.ring.wrap(self.ring.new_data_key(), household_id)
            session.execute(pg_insert(household_keys).values(
                household_id=household_id, kek_id=kek_id, wrapped_key=wrapped, created_at=_now(),
            ).on_conflict_do_nothing())
            return self.data_key(session, household_id)
        kek_id, wrapped_key = row
        if wrapped_key is None:
            return ERASED
        return self.ring.unwrap(kek_id, wrapped_key, household_id)

    def data_keys(self, session, household_ids):
        rows = session.execute(select(household_keys).where(household_keys.c.household_id.in_(list(household_ids))))
        return {row.household_id: (ERASED if row.wrapped_key is None
                                   else self.ring.unwrap(row.kek_id, row.wrapped_key, row.household_id))
                for row in rows}

    def _sealer(self, key, household_id):
        if key is ERASED:
            raise RuleRefused("the personal data of this household was erased; it takes no new personal data",
                              {"rule": "personal_data_erased", "household_id": household_id})
        return lambda value, name: encrypt_field(key, value, household_id, name)

    @staticmethod
    def _opener(key, household_id):
        def open_value(value, name):
            if not is_encrypted(value):
                return value  # plaintext from before encryption (or null)
            if key is None or key is ERASED:
                return None
            try:
                return decrypt_field(key, value, household_id, name)
            except KeyUnavailable:
                return None
        return open_value

    # --- events --------------------------------------------------------------------------------
    def seal(self, session, stream_id, payloads):
        if not any(not is_encrypted(value) for payload in payloads for value in _personal_values(payload)):
            return payloads
        sealer = self._sealer(self.data_key(session, stream_id, create=True), stream_id)
        return [_map_fields(payload, sealer) for payload in payloads]

    def open(self, session, stream_id, payloads):
        if not any(is_encrypted(value) for payload in payloads for value in _personal_values(payload)):
            return payloads
        opener = self._opener(self.data_key(session, stream_id), stream_id)
        return [_map_fields(payload, opener) for payload in payloads]

    # --- snapshots of the household stream (EventStore.load_state) -------------------------------
    def seal_snapshot(self, session, stream_id, data):
        """The household's folded state (plaintext numbers in it) encrypted whole with its data
        key, so erasing the key makes old snapshots unreadable too; none after erasure."""
        key = self.data_key(session, stream_id, create=True)
        if key is ERASED:
            return None
        nonce = os.urandom(12)
        return nonce + AESGCM(key).encrypt(nonce, data, f"{stream_id}:snapshot".encode())

    def open_snapshot(self, session, stream_id, data):
        key = self.data_key(session, stream_id)
        if key is None or key is ERASED:
            return None  # the store then folds the whole stream
        try:
            return AESGCM(key).decrypt(data[:12], data[12:], f"{stream_id}:snapshot".encode())
        except InvalidTag:
            return None

    # --- the households read model -------------------------------------------------------------
    def seal_view(self, session, view):
        if not any(member.get(name) is not None and not is_encrypted(member.get(name))
                   for member in view["members"] for name in PERSONAL_FIELDS):
            return view
        sealer = self._sealer(self.data_key(session, view["household_id"], create=True), view["household_id"])
        return {**view, "members": [_map_fields(member, sealer) for member in view["members"]]}

    def open_views(self, session, views):
        keys = self.data_keys(session, {view["household_id"] for view in views})
        opened = []
        for view in views:
            opener = self._opener(keys.get(view["household_id"]), view["household_id"])
            opened.append({**view, "members": [_map_fields(member, opener) for member in view["members"]]})
        return opened

    def id_hash(self, id_number):
        return self.ring.keyed_hash(id_number)


_lock = threading.Lock()
_installed: dict = {}


def install(config):
    """Build the codec from the service's config and put it where the event store finds it.
    Raises RuntimeError outside development without FUPIN_PII_KEK."""
    codec = HouseholdCodec(key_ring_from_config(config))
    with _lock:
        _installed["codec"] = codec
        PAYLOAD_CODECS[HOUSEHOLD] = codec
    return codec


def codec():
    """The installed codec (the registry installs it on start); the development key otherwise."""
    return _installed.get("codec") or install({})


def erase(session, household_id, actor, reason):
    """Destroy the household's data key (or record that it has none and may take none), and forget
    the remembered answers of its idempotent commands (they hold masked numbers: 8 of 18 digits)."""
    session.info.get(_PREFETCHED, {}).pop(household_id, None)  # read before the key is destroyed
    values = {"kek_id": None, "wrapped_key": None, "erased_at": _now(), "erased_by": actor, "erasure_reason": reason}
    session.execute(pg_insert(household_keys).values(household_id=household_id, created_at=_now(), **values)
                    .on_conflict_do_update(index_elements=[household_keys.c.household_id], set_=values))
    session.execute(text("DELETE FROM idempotency_keys WHERE result->>'household_id' = :h"), {"h": household_id})


def rewrap_keys(session, ring):
    """Rewrap every live data key with the current KEK (after a rotation); returns how many."""
    rows = session.execute(select(household_keys).where(household_keys.c.wrapped_key.is_not(None),
                                                        household_keys.c.kek_id != ring.current_id)).all()
    for row in rows:
        kek_id, wrapped = ring.wrap(ring.unwrap(row.kek_id, row.wrapped_key, row.household_id), row.household_id)
        session.execute(update(household_keys).where(household_keys.c.household_id == row.household_id)
                        .values(kek_id=kek_id, wrapped_key=wrapped))
    return len(rows)


LEGACY_EVENTS = text("""
SELECT global_position, stream_id, payload FROM events
WHERE stream_type = 'household' AND event_type IN ('member_added', 'member_updated') AND (
     (payload->>'id_number' IS NOT NULL AND payload->>'id_number' NOT LIKE 'enc:v1:%')
  OR (payload->>'phone' IS NOT NULL AND payload->>'phone' NOT LIKE 'enc:v1:%')
  OR (payload->'changes'->>'id_number' IS NOT NULL AND payload->'changes'->>'id_number' NOT LIKE 'enc:v1:%')
  OR (payload->'changes'->>'phone' IS NOT NULL AND payload->'changes'->>'phone' NOT LIKE 'enc:v1:%'))
ORDER BY global_position
""")


def seal_legacy_events(session, household_codec):
    """Encrypt, in place, the personal fields of events written before encryption existed (the
    one rewrite of stored events the platform does: same event, same position, sealed fields).
    Returns how many events were sealed."""
    sealed = 0
    for row in session.execute(LEGACY_EVENTS).all():
        payload = household_codec.seal(session, row.stream_id, [row.payload])[0]
        session.execute(text("UPDATE events SET payload = CAST(:payload AS jsonb) WHERE global_position = :position"),
                        {"payload": _json(payload), "position": row.global_position})
        sealed += 1
    return sealed


def _json(payload):
    import json

    return json.dumps(payload, ensure_ascii=False)
