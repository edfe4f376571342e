"""Turn operators' CustomResourceDefinition files into the schema files validate.py reads.

    .venv/bin/python deploy/crds/vendor.py "cloudnative-pg/cloudnative-pg v1.30.0" \
        postgresql.cnpg.io_clusters.yaml postgresql.cnpg.io_databases.yaml

For every served version of every CRD it writes `<group>_<version>_<Kind>.json`: the version's
`openAPIV3Schema` exactly as published, less its `description` texts (they are most of the
bytes and never change what validates), plus where it came from.
"""
import json
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
# PyYAML reads a bare `=` (an enum value in the AlertmanagerConfig CRD) as YAML 1.1's "value" tag.
yaml.SafeLoader.add_constructor("tag:yaml.org,2002:value", yaml.SafeLoader.construct_scalar)
SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf")


def without_descriptions(schema):
    """A copy of an OpenAPI v3 schema without `description` keywords (property names stay)."""
    if not isinstance(schema, dict):
        return schema
    copy = {key: value for key, value in schema.items() if key != "description"}
    if "properties" in copy:
        copy["properties"] = {name: without_descriptions(sub) for name, sub in copy["properties"].items()}
    for key in ("items", "additionalProperties", "not"):
        if isinstance(copy.get(key), dict):
            copy[key] = without_descriptions(copy[key])
    for key in SUBSCHEMA_LISTS:
        if key in copy:
            copy[key] = [without_descriptions(sub) for sub in copy[key]]
    return copy


def vendor(source, crd_path):
    crd = yaml.safe_load(Path(crd_path).read_text(encoding="utf-8"))
    group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
    written = []
    for version in crd["spec"]["versions"]:
        if not version.get("served", True):
            continue
        schema = without_descriptions(version["schema"]["openAPIV3Schema"])
        schema["x-fupin-source"] = f"{source} {Path(crd_path).name}"
        target = HERE / f"{group}_{version['name']}_{kind}.json"
        target.write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        written.append(target.name)
    return written


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    source, paths = argv[0], argv[1:]
    for path in paths:
        for name in vendor(source, path):
            print(f"wrote deploy/crds/{name}")


if __name__ == "__main__":
    main(sys.argv[1:])
