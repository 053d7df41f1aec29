#!/usr/bin/env python3
"""Derive a compact table of facts from the official SESv2 API model.

The project carries these facts, not the model's prose: operations with their HTTP method,
URI template and error names; every exception with its HTTP status; and the limits (required,
location, min, max, pattern, enum) of every member reachable from the inputs of the operations
Sesame implements. Tests read `tests/data/model-facts.json`; CI re-runs this script and fails if
the checked-in file differs.

Usage:  python3 scripts/model-facts.py [MODEL_JSON] [OUTPUT_JSON]
Defaults: tests/data/sesv2-service-2.json (the official model, vendored so that CI always runs
this check; .ci/run also compares it with ../shared/reference/ where that exists) and
tests/data/model-facts.json.
"""
import json
import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_MODEL = REPO / "tests" / "data" / "sesv2-service-2.json"
DEFAULT_OUT = REPO / "tests" / "data" / "model-facts.json"

# The operations whose input limits Sesame enforces today.
IMPLEMENTED = [
    "CreateEmailIdentity",
    "GetEmailIdentity",
    "ListEmailIdentities",
    "DeleteEmailIdentity",
    "PutEmailIdentityDkimAttributes",
    "PutEmailIdentityDkimSigningAttributes",
    "PutEmailIdentityFeedbackAttributes",
    "TagResource",
    "UntagResource",
    "ListTagsForResource",
    "SendEmail",
]

CONSTRAINTS = ("min", "max", "pattern")


def target_facts(shapes, target):
    """The constraints of a target shape (type, min, max, pattern, sorted enum)."""
    shape = shapes[target]
    facts = {"shape": target, "type": shape["type"]}
    for key in CONSTRAINTS:
        if key in shape:
            facts[key] = shape[key]
    if "enum" in shape:
        facts["enum"] = sorted(shape["enum"])
    return facts


def collect_limits(shapes, root, limits, seen):
    """Walks structures, lists and maps reachable from `root`, recording member facts."""
    if root in seen:
        return
    seen.add(root)
    shape = shapes[root]
    kind = shape["type"]
    if kind == "structure":
        required = set(shape.get("required", []))
        for name, member in shape.get("members", {}).items():
            facts = target_facts(shapes, member["shape"])
            facts["required"] = name in required
            facts["location"] = member.get("location", "body")
            if "locationName" in member:
                facts["locationName"] = member["locationName"]
            limits[f"{root}.{name}"] = facts
            collect_limits(shapes, member["shape"], limits, seen)
    elif kind == "list":
        limits[f"{root}.member"] = target_facts(shapes, shape["member"]["shape"])
        collect_limits(shapes, shape["member"]["shape"], limits, seen)
    elif kind == "map":
        for part in ("key", "value"):
            limits[f"{root}.{part}"] = target_facts(shapes, shape[part]["shape"])
            collect_limits(shapes, shape[part]["shape"], limits, seen)


def facts(model):
    shapes = model["shapes"]
    meta = model["metadata"]
    operations = []
    for name in sorted(model["operations"]):
        op = model["operations"][name]
        operations.append(
            {
                "name": name,
                "method": op["http"]["method"],
                "uri": op["http"]["requestUri"],
                "errors": sorted(e["shape"] for e in op.get("errors", [])),
                "input": op.get("input", {}).get("shape"),
            }
        )
    errors = {
        name: shape["error"]["httpStatusCode"]
        for name, shape in sorted(shapes.items())
        if shape.get("exception")
    }
    limits, seen = {}, set()
    for name in IMPLEMENTED:
        collect_limits(shapes, model["operations"][name]["input"]["shape"], limits, seen)
    return {
        "metadata": {
            key: meta[key] for key in ("protocol", "signingName", "endpointPrefix", "apiVersion")
        },
        "operations": operations,
        "errors": errors,
        "limits": dict(sorted(limits.items())),
    }


def main():
    model_path = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_MODEL
    out_path = pathlib.Path(sys.argv[2]) if len(sys.argv) > 2 else DEFAULT_OUT
    model = json.loads(model_path.read_text())
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(facts(model), indent=1, sort_keys=True) + "\n")
    print(f"wrote {out_path} from {model_path}")


if __name__ == "__main__":
    main()
