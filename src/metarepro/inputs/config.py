"""Reading and checking a researcher's config: every mistake at once, one line each, with its line.

:func:`load_config` reads YAML files strictly:

* a key given twice in one mapping is an error (YAML itself keeps only the last one silently);
* booleans are YAML 1.2's ``true``/``false`` only, so ``marker: NO`` or ``sample: on`` stay text
  (YAML 1.1, which PyYAML and Snakemake follow, reads them as False/True);
* keys are kept as written: an analysis ``2024:`` or ``001:`` is named "2024" / "001", not 2024 / 1;
* anchors and aliases are allowed, but a config whose expansion exceeds :data:`MAX_NODES` values or
  :data:`MAX_CHARACTERS` characters (a "billion laughs") is refused before anything walks it;
* a file that is not UTF-8 text (UTF-16, Latin-1), is empty, holds a YAML tag (``!!python/...``) or is
  not a mapping is refused with one line naming the file and what to do.

:func:`check_config` validates against ``workflow/schemas/config.schema.yaml`` and returns the
errors, each one line naming file, line and key, with "did you mean ...?" for near misses. Neither
ever prints a config value that is a list or mapping, or the schema. metarepro never evaluates a
config value as code (but see the README: Snakemake runs YTE templates).

The schema is the one statement of every option, its values and its default: :func:`resolve_settings` gives an
analysis's statistical settings (:class:`metarepro.pipeline.analysis.Settings` is built from it) and
:func:`analysis_default` a per-analysis option's default, both read from the schema, so no default is restated.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import os
import re
from pathlib import Path

import yaml

from metarepro._core.spellings import BINARY_MEASURES, metafor_spellings, percent_level
from metarepro.inputs.sheet import (
    IDENTITY,
    NUMERIC,
    TEXT,
    SheetError,
    did_you_mean,
    select_rows,
    sheet_columns,
)

MAX_NODES = 100_000  # values in a config once aliases are expanded; real configs have a few hundred
# characters of keys and values once aliases are expanded. The config's settings are each job's params, which
# Snakemake stores per output file (about 20 per analysis): 1 MB is 100x the default config (about 10 kB of
# values), and keeps that metadata near 20 MB per analysis at worst.
MAX_CHARACTERS = 1_000_000
MAX_ERRORS = 30
_BOOL = "tag:yaml.org,2002:bool"
SCHEMA = Path(__file__).resolve().parents[3] / "workflow" / "schemas" / "config.schema.yaml"
# what a preset sets, over the analysis's own method and vtype (the schema's preset describes them)
PRESETS = {
    "metafor": {},  # metafor's defaults (metarepro.stats.effects, metarepro.stats.tau2)
    "revman": {"method": "DL", "vtype": "RM5"},  # Review Manager 5: DerSimonian-Laird, approximate g and variance
}


@functools.cache
def schema() -> dict:
    """``workflow/schemas/config.schema.yaml``, read once per process (do not change the dict it returns)."""
    return yaml.load(SCHEMA.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _analysis_properties() -> dict:
    return schema()["properties"]["analyses"]["additionalProperties"]["properties"]


@functools.cache
def setting_defaults() -> dict:
    """The default of every setting an analysis takes or inherits from ``defaults`` (measure, method, test, level,
    vtype, preset, exclude_converted, unit, labels): the schema's ``defaults`` default, None where it gives none
    (``unit``: the rows' most common; ``labels``: the measure's words)."""
    given = schema()["properties"]["defaults"]["properties"]
    return {key: given.get(key, {}).get("default") for key, prop in _analysis_properties().items() if "$ref" in prop}


def analysis_default(key: str):
    """The default of a per-analysis option (``permutations``, ``seed``, ``cumulative_order``), as the schema's
    ``default`` states it."""
    return _analysis_properties()[key]["default"]


def analysis_option(analysis: dict, key: str):
    """A per-analysis option as the analysis gives it, else its default (:func:`analysis_default`)."""
    return analysis[key] if key in analysis else analysis_default(key)


def resolve_settings(analysis: dict, defaults: dict | None = None) -> dict:
    """One analysis's settings: the schema's defaults (:func:`setting_defaults`), over them the config's
    ``defaults``, over those the analysis's own; metafor's other spellings read as metafor reads them (FE is EE, a
    level 0.95 is 95) and the preset applied (``revman``: method DL and vtype RM5, over the analysis's; its vtype
    only for measures from means, as RevMan's SMD variance means nothing for counts)."""
    merged = {**setting_defaults(), **(defaults or {}), **analysis}
    merged["method"], merged["level"] = metafor_spellings(merged["method"], merged["level"])
    preset = PRESETS[merged["preset"]]
    if merged["measure"] in BINARY_MEASURES:
        preset = {key: value for key, value in preset.items() if key != "vtype"}
    return {**merged, **preset}


class ConfigError(ValueError):
    """A config that cannot be used; the message has one line per problem."""


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans, keys as written and duplicate keys refused."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def _construct_mapping(loader, node, deep=False):
    loader.flatten_mapping(node)  # '<<' merge keys
    mapping, first_line = {}, {}
    for key_node, value_node in node.value:
        key = key_node.value if isinstance(key_node, yaml.ScalarNode) else loader.construct_object(key_node)
        line = key_node.start_mark.line + 1
        if key in mapping:
            raise ConfigError(
                f"{loader.name}, line {line}: key '{key}' appears twice in the same mapping (first at line "
                f"{first_line[key]}); YAML would silently keep only the last. Rename or remove one."
            )
        mapping[key], first_line[key] = loader.construct_object(value_node, deep=deep), line
    return mapping


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _construct_undefined(loader, node):
    tag = node.tag.replace("tag:yaml.org,2002:", "!!")
    raise ConfigError(
        f"{loader.name}, line {node.start_mark.line + 1}: the YAML tag {tag} is not allowed; a config holds plain "
        "text, numbers, lists and mappings (metarepro never builds objects or runs code from it). Remove the tag."
    )


_Loader.add_constructor(None, _construct_undefined)  # every tag without a constructor of its own


def _expanded_size(node, memo: dict) -> tuple[int, int]:
    """(nodes, characters of keys and values) once aliases are expanded (memoised on the shared nodes, so linear
    in the file)."""
    if id(node) in memo:
        return memo[id(node)]
    memo[id(node)] = (1, 0)  # a recursive alias counts once
    if isinstance(node, yaml.MappingNode):
        parts = [_expanded_size(child, memo) for pair in node.value for child in pair]
    elif isinstance(node, yaml.SequenceNode):
        parts = [_expanded_size(child, memo) for child in node.value]
    else:
        parts = [(0, len(node.value))]
    memo[id(node)] = size = (1 + sum(n for n, _ in parts), sum(c for _, c in parts))
    return size


class _Lines(dict):
    """{path of keys: line}, with ``raw``: {path: text as written} of every plain scalar value."""

    def __init__(self):
        super().__init__()
        self.raw = {}


def _key_lines(node, path=(), lines=None, seen=None) -> _Lines:
    """Lines of every mapping key and the text of plain scalars, each node visited once (aliases are
    not re-walked)."""
    lines = _Lines() if lines is None else lines
    seen = set() if seen is None else seen
    if id(node) in seen:
        return lines
    seen.add(id(node))
    if isinstance(node, yaml.ScalarNode) and node.style is None:
        lines.raw[path] = node.value
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.start_mark.line)
            lines.setdefault((*path, key), key_node.start_mark.line + 1)
            _key_lines(value_node, (*path, key), lines, seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines.setdefault((*path, i), item.start_mark.line + 1)
            _key_lines(item, (*path, i), lines, seen)
    return lines


def _config_text(path: Path) -> str:
    """The file's text, or a :class:`ConfigError` saying how to save it as UTF-8 (Snakemake reads configs as UTF-8)."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ConfigError(f"{path}: cannot be read ({err.strerror or err.__class__.__name__}).") from None
    fix = "save it as UTF-8 (an editor's 'Save as', encoding UTF-8)"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in data:
        # with a byte-order mark, or without one: ASCII text as UTF-16 has a NUL byte beside every character
        raise ConfigError(f"{path}: the file is UTF-16 (Windows 'Unicode') text, not UTF-8; {fix}, or convert it: "
                          f"iconv -f UTF-16 -t UTF-8 {path.name} > utf8.yaml")  # fmt: skip
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ConfigError(f"{path}, line {line}: byte 0x{data[err.start]:02x} is not UTF-8 (probably Latin-1/"
                          f"Windows-1252 text); {fix}, or convert it: iconv -f WINDOWS-1252 -t UTF-8 {path.name} > "
                          "utf8.yaml") from None  # fmt: skip


def load_yaml(path) -> tuple[dict, dict]:
    """One config file: (mapping, {key path: line}). Raises :class:`ConfigError`."""
    path = Path(path)
    text = _config_text(path)
    loader = None
    try:
        loader = _Loader(text)  # checks every character first
        loader.name = str(path)
        node = loader.get_single_node()
        if node is None:
            raise ConfigError(f"{path}: the file is empty; a config needs at least 'analyses:' (start from "
                              "config/examples/template.yaml).")  # fmt: skip
        nodes, characters = _expanded_size(node, {})
        if nodes > MAX_NODES:
            raise ConfigError(
                f"{path}: expands to {nodes:,} values through YAML aliases (*name), more than {MAX_NODES:,}; "
                "a config needs a few hundred. Remove the aliases."
            )
        if characters > MAX_CHARACTERS:
            raise ConfigError(
                f"{path}: holds {characters:,} characters of keys and values once YAML aliases (*name) are "
                f"expanded, more than {MAX_CHARACTERS:,}; a config needs a few thousand. Remove the aliases or "
                "shorten the values."
            )
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f", line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{where}: not valid YAML ({err.problem or err.context}).") from None
    except yaml.reader.ReaderError as err:  # a control character; the reader gives its position only
        line = text[: err.position].count("\n") + 1
        raise ConfigError(f"{path}, line {line}: character U+{err.character:04X} is a control character, which YAML "
                          "does not allow; delete it (it is often invisible in an editor).") from None  # fmt: skip
    finally:
        if loader is not None:
            loader.dispose()
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config is a mapping of keys (analyses:, defaults:, ...), not {_kind(data)}; "
                          "start from config/examples/template.yaml.")  # fmt: skip
    return data, _key_lines(node)


def uses_yte(path) -> bool:
    """Whether Snakemake will run the file as a YTE template (then it is not plain YAML to re-read)."""
    try:
        return bool(re.search(r"^__use_yte__:\s*true\s*$", Path(path).read_text(encoding="utf-8"), re.MULTILINE))
    except (OSError, UnicodeDecodeError):
        return False


def merge(base: dict, update: dict) -> dict:
    """Snakemake's config merge: nested mappings are merged, everything else replaced."""
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


# ---------------------------------------------------------------------------------------------------------------
# schema validation, one line per error
# ---------------------------------------------------------------------------------------------------------------


def _short(value) -> str:
    if isinstance(value, dict | list):
        return "a mapping" if isinstance(value, dict) else "a list"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _kind(value) -> str:
    names = {bool: "true/false", int: "a number", float: "a number", str: "text", list: "a list", dict: "a mapping"}
    return "nothing (null)" if value is None else names.get(type(value), type(value).__name__)


_WANTED = {"string": "text", "number": "a number", "integer": "a whole number", "boolean": "true or false",
           "array": "a list", "object": "a mapping"}  # fmt: skip


def _resolve(schema, root):
    while isinstance(schema, dict) and "$ref" in schema:
        schema = root["$defs"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _message(error, root) -> tuple[tuple, str]:
    """(key path to locate, message without location) for one jsonschema error."""
    path, value, schema = tuple(error.absolute_path), error.instance, error.schema
    validator = error.validator
    if "propertyNames" in error.absolute_schema_path:
        return (*path, value), f"'{value}' is not a valid analysis name: use letters, digits, '_' and '-' only"
    if validator == "additionalProperties":
        allowed = list(schema.get("properties", {}))
        extra = [k for k in value if k not in allowed]
        key = extra[0]
        return (*path, key), f"unknown key '{key}'{did_you_mean(str(key), allowed)}"
    if validator == "required":
        missing = [k for k in error.validator_value if k not in value]
        return path, f"missing key '{missing[0]}'" + (f" ({_describe(schema, missing[0], root)})" if schema else "")
    if validator == "enum":
        options = [str(o) for o in error.validator_value]
        hint = did_you_mean(str(value), options) if isinstance(value, str) else ""
        return path, f"{_short(value)} is not one of {', '.join(options)}{hint}"
    if validator == "type":
        wanted = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        return path, f"must be {' or '.join(_WANTED.get(w, w) for w in wanted)}, not {_kind(value)}"
    if validator in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        side = "at least" if validator == "minimum" else "above" if validator == "exclusiveMinimum" else (
            "at most" if validator == "maximum" else "below")  # fmt: skip
        return path, f"{_short(value)} must be {side} {error.validator_value}"
    if validator in ("minProperties", "minItems", "minLength"):
        return path, "must not be empty"
    if validator in ("oneOf", "anyOf"):
        enums = [e for e in error.context if e.validator == "enum" and not e.relative_path]
        if enums:  # a value or a pair of values from a list (the zero-cell options)
            options = [str(o) for o in enums[0].validator_value]
            return path, (f"{_short(value)} is not one of {', '.join(options)} (or a pair of them)"
                          f"{did_you_mean(str(value), options) if isinstance(value, str) else ''}")  # fmt: skip
        if "description" in schema and "filter" not in str(error.schema_path):
            return path, f"{_short(value)} is not allowed here: {schema['description']}"
        return path, f"{_short(value)} is not allowed here; must be text or a number, or a list of them"
    if validator == "pattern":
        return path, f"{_short(value)} does not match the allowed form {error.validator_value}"
    if validator == "contains":
        wanted = error.validator_value.get("const", error.validator_value)
        return path, f"must include {wanted}" + (f" ({schema['description']})" if schema.get("description") else "")
    if validator == "uniqueItems":
        return path, "names an item twice; give each once"
    return path, f"{_short(value)} is not allowed here ({validator})"


def _describe(schema, key, root):
    prop = _resolve(schema.get("properties", {}).get(key, {}), root)
    return prop.get("description", "required")[:80]


def _locate(path, files_lines) -> str:
    """'file, line N (a → b)' for the first file that has the path (or its closest parent)."""
    shown = " → ".join(str(p) for p in path) or "top level"
    for cut in range(len(path), 0, -1):
        for file, lines in reversed(files_lines):  # later files override earlier ones
            if tuple(path[:cut]) in lines:
                return f"{file}, line {lines[tuple(path[:cut])]} ({shown})"
    return f"{files_lines[-1][0] if files_lines else 'config'} ({shown})"


def _fill_defaults(instance, schema, root):
    """Fill in the schema's ``default`` values (as Snakemake's ``validate(..., set_default=True)``)."""
    schema = _resolve(schema, root)
    if not isinstance(instance, dict):
        return
    for key, prop in schema.get("properties", {}).items():
        if key not in instance and "default" in prop:
            instance[key] = copy.deepcopy(prop["default"])
        if key in instance:
            _fill_defaults(instance[key], prop, root)


def _as_written(config, schema, files_lines) -> None:
    """A number where text is meant (``title: 2024``, ``unit: 1``) becomes the text as written."""
    from jsonschema import Draft202012Validator  # here: jobs that only resolve settings do not import it (1 s)

    for error in list(Draft202012Validator(schema).iter_errors(config)):
        wanted = error.validator_value if error.validator == "type" else None
        wanted = wanted if isinstance(wanted, list) else [wanted]
        path = tuple(error.absolute_path)
        if "string" not in wanted or not path or isinstance(error.instance, bool | dict | list | None):
            continue
        texts = [lines.raw[path] for _, lines in files_lines if path in getattr(lines, "raw", {})]
        _at(config, path[:-1])[path[-1]] = texts[-1] if texts else str(error.instance)
    # 'where' compares text with the sheet's cells: 'where: {study_id: 001}' means "001", not 1
    for _, lines in files_lines:
        for path, text in getattr(lines, "raw", {}).items():
            if len(path) >= 4 and path[0] == "analyses" and path[2] == "where":
                parent = _at(config, path[:-1])
                if _number(_at(parent, path[-1:])):
                    parent[path[-1]] = text


def _at(container, path):
    for key in path:
        if isinstance(container, dict) and key in container:
            container = container[key]
        elif isinstance(container, list) and isinstance(key, int) and key < len(container):
            container = container[key]
        else:
            return None
    return container


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _not_finite(value) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


def _non_finite(value, files_lines, path=()) -> list[tuple[tuple, str]]:
    """(key path, message) of every number that is NaN or infinite (``.nan``, ``.inf``, ``1.0e+999``). A NaN compares
    false with the schema's minimum and maximum, so it would pass them and fail in a job; an infinity is named the
    same way rather than as out of range."""
    if isinstance(value, dict | list):
        items = value.items() if isinstance(value, dict) else enumerate(value)
        return [found for key, item in items for found in _non_finite(item, files_lines, (*path, key))]
    if not _not_finite(value):
        return []
    written = [lines.raw[path] for _, lines in files_lines if path in getattr(lines, "raw", {})]
    return [(path, f"{_locate(path, files_lines)}: {written[-1] if written else value} is not a finite number (YAML "
                   "reads .nan as not-a-number and .inf as infinity); give a number")]  # fmt: skip


def schema_errors(config: dict, schema: dict, files_lines=()) -> list[str]:
    """Every schema violation and every number that is not finite, one line each, sorted by where it is."""
    _as_written(config, schema, list(files_lines))
    from jsonschema import Draft202012Validator

    errors = [(str(path), message) for path, message in _non_finite(config, list(files_lines))]
    for error in Draft202012Validator(schema).iter_errors(config):
        if _not_finite(error.instance):
            continue  # named above, as written
        path, message = _message(error, schema)
        errors.append((str(path), f"{_locate(path, list(files_lines))}: {message}"))
    return [message for _, message in sorted(errors)]


# ---------------------------------------------------------------------------------------------------------------
# checks the schema cannot express
# ---------------------------------------------------------------------------------------------------------------


def semantic_errors(config: dict, files_lines=()) -> list[str]:
    """A results folder outside the working directory, levels below 1, column mappings onto unknown names,
    dependence keys that do not fit together."""
    errors = results_location_errors(config, files_lines)
    known = (*IDENTITY, *NUMERIC, *TEXT)
    scopes = [(("defaults",), config.get("defaults") or {})]
    scopes += [(("analyses", name), a) for name, a in (config.get("analyses") or {}).items() if isinstance(a, dict)]
    for path, entry in scopes:
        if "level" in entry:
            try:
                percent_level(entry["level"])
            except ValueError as err:
                errors.append(f"{_locate((*path, 'level'), list(files_lines))}: {err}")
        for ours in entry.get("columns") or {}:
            if ours not in known:
                where = _locate((*path, "columns", ours), list(files_lines))
                errors.append(
                    f"{where}: '{ours}' is not a metarepro column{did_you_mean(str(ours), known)}; "
                    "the mapping reads {metarepro name: sheet column}"
                )
        if path[0] == "analyses":
            errors += _dependence_errors(path, entry, config.get("defaults") or {}, files_lines)
            errors += _threshold_errors(path, entry, config.get("defaults") or {}, files_lines)
            errors += _binary_errors(path, entry, config.get("defaults") or {}, files_lines)
    return errors


# metafor 3.8-1: the measures each pooling function takes (rma takes every measure)
FIT_MEASURES = {"rma.mh": ("OR", "RR", "RD"), "rma.peto": ("OR", "PETO"), "rma.glmm": ("OR", "PLO")}
TABLES = ("OR", "RR", "RD", "PETO")
PROPORTIONS = ("PR", "PLN", "PLO", "PAS", "PFT")
VTYPES = {"SMD": ("LS", "UB"), "RD": ("LS", "UB", "AV"), "PR": ("LS", "UB", "AV"), "PLN": ("LS", "AV"),
          "PLO": ("LS", "AV")}  # fmt: skip


def _binary_errors(path, analysis, defaults, files_lines) -> list[str]:
    """The combinations of measure, fit, model and zero-cell options that metafor refuses (or that do not apply),
    one line each."""
    where = lambda key: _locate((*path, key), list(files_lines))  # noqa: E731
    measure = analysis.get("measure", defaults.get("measure", "SMD"))
    fit = analysis.get("fit", "rma")
    errors = []
    if fit in FIT_MEASURES and measure not in FIT_MEASURES[fit]:
        errors.append(f"{where('fit')}: {fit} pools {', '.join(FIT_MEASURES[fit])} (metafor), not {measure}; "
                      f"use fit: rma for {measure}, or a measure {fit} takes")  # fmt: skip
    if "model" in analysis and (fit != "rma.glmm" or measure != "OR"):
        errors.append(f"{where('model')}: model is the type of rma.glmm's model for OR (metafor's model=); "
                      f"remove it, or use fit: rma.glmm with measure: OR")  # fmt: skip
    for key in ("add", "to", "drop00"):
        if key in analysis and measure not in TABLES + PROPORTIONS:
            errors.append(f"{where(key)}: {key} is a zero-cell option for counts (measures {', '.join(TABLES)}, "
                          f"{', '.join(PROPORTIONS)}), not {measure}; remove it")  # fmt: skip
        elif isinstance(analysis.get(key), list) and fit not in ("rma.mh", "rma.peto"):
            errors.append(f"{where(key)}: a pair of {key} values (studies, then pooled tables) is for fit rma.mh or "
                          f"rma.peto; give one value for {fit}")  # fmt: skip
    if "drop00" in analysis and measure in PROPORTIONS:
        errors.append(f"{where('drop00')}: drop00 applies to 2x2 tables (no events in both groups), not to a "
                      f"proportion ({measure}); remove it")  # fmt: skip
    if fit in ("rma.mh", "rma.peto"):
        for key in ("method", "test", "preset"):
            if key in analysis:
                errors.append(f"{where(key)}: {fit} is an equal-effects model without {key} (metafor); remove "
                              f"{key}, or use fit: rma for a random-effects model")  # fmt: skip
    if fit == "rma.glmm" and analysis.get("method", "ML") not in ("ML", "EE", "FE"):
        errors.append(f"{where('method')}: rma.glmm estimates by ML (or EE, equal effects), not "
                      f"{analysis['method']} (metafor); set method: ML or EE")  # fmt: skip
    if fit != "rma" and analysis.get("dependence"):
        errors.append(f"{where('fit')}: dependence is modelled with rma.mv on the rows' yi, vi; {fit} cannot; use "
                      "fit: rma")  # fmt: skip
    if fit != "rma" and analysis.get("moderators"):
        errors.append(f"{where('fit')}: {fit} has no moderators here; use fit: rma for a meta-regression")
    vtype = analysis.get("vtype", defaults.get("vtype", "LS"))
    if measure in TABLES + PROPORTIONS and vtype not in VTYPES.get(measure, ("LS",)):
        key = "vtype" if "vtype" in analysis else None
        errors.append(f"{where(key) if key else where('measure')}: vtype {vtype} does not apply to {measure}; metafor "
                      f"takes {', '.join(VTYPES.get(measure, ('LS',)))}")  # fmt: skip
    elif measure not in TABLES + PROPORTIONS and vtype == "AV":
        errors.append(f"{where('vtype')}: vtype AV is for RD, PR, PLN and PLO; {measure} takes LS or UB")
    return errors


def _threshold_errors(path, analysis, defaults, files_lines) -> list[str]:
    """``decision_threshold`` is on the reader's scale: a ratio (> 0) for log-ratio measures, an r in (−1, 1)
    for ZCOR (metarepro.pipeline.findings.analysis_scale takes it to the analysis scale)."""
    value = analysis.get("decision_threshold")
    if not _number(value):
        return []
    from metarepro.stats.effects import RATIO_MEASURES  # here: most configs set no threshold, and it costs 0.4 s

    measure = {**setting_defaults(), **defaults, **analysis}["measure"]
    where = _locate((*path, "decision_threshold"), list(files_lines))
    if measure in RATIO_MEASURES and value <= 0:
        return [f"{where}: decision_threshold {value:g} is not a ratio; {measure} thresholds are on the ratio scale "
                "(e.g. 1.2), > 0"]
    if measure == "ZCOR" and not -1 < value < 1:
        return [f"{where}: decision_threshold {value:g} is not a correlation; ZCOR thresholds are an r in (−1, 1)"]
    return []


OUTSIDE_OPT_IN = "allow_results_outside_workdir"


def results_location_errors(config: dict, files_lines=()) -> list[str]:
    """``results`` must lead inside the working directory (after '..', an absolute path and symlinks), unless the
    config says ``allow_results_outside_workdir: true``: a config from elsewhere must not write, or make Snakemake
    delete (the outputs of a failed job), files outside the folder the run started in."""
    results = config.get("results", schema()["properties"]["results"]["default"])
    if config.get(OUTSIDE_OPT_IN) is True or not isinstance(results, str):
        return []
    workdir = Path.cwd().resolve()
    written, target = Path(os.path.normpath(workdir / results)), (workdir / results).resolve()
    if target == workdir or workdir in target.parents:
        return []
    how = "through a symlink, " if written == workdir or workdir in written.parents else ""
    return [f"{_locate(('results',), list(files_lines))}: '{results}' leads {how}outside the working directory "
            f"{workdir} (to {target}); outputs stay inside it unless the config says so. Use a folder inside it "
            f"(e.g. results/my_review), or add {OUTSIDE_OPT_IN}: true"]  # fmt: skip


# the dependence keys each model reads (the schema lists them all); any other is a mistake worth naming
_DEPENDENCE_KEYS = {
    "multilevel": {"model", "levels", "rho", "shared_controls", "case_group", "dfs"},
    "multivariate": {"model", "outer", "inner", "struct", "rho", "shared_controls", "case_group", "primary", "dfs"},
    "aggregate": {"model", "cluster", "rho", "shared_controls", "case_group"},
}


def _dependence_errors(path, analysis, defaults, files_lines) -> list[str]:
    """A dependence model's keys, method and robust option fit together."""
    spec = analysis.get("dependence")
    where = lambda *keys: _locate((*path, *keys), list(files_lines))  # noqa: E731
    if spec is None:
        if "robust" in analysis:
            return [f"{where('robust')}: robust needs a dependence model (its clusters are the outermost level); "
                    "add dependence or remove robust"]  # fmt: skip
        return []
    model = spec["model"]
    errors = [
        f"{where('dependence', key)}: '{key}' does not apply to model {model} (it reads "
        f"{', '.join(sorted(_DEPENDENCE_KEYS[model] - {'model'}))})"
        for key in spec if key not in _DEPENDENCE_KEYS[model]
    ]  # fmt: skip
    if model == "multivariate" and "inner" not in spec:
        errors.append(f"{where('dependence')}: model multivariate needs 'inner', the column of the outcomes within "
                      "a cluster (e.g. inner: marker)")  # fmt: skip
    if model == "aggregate" and "rho" not in spec:
        errors.append(f"{where('dependence')}: model aggregate needs 'rho', the assumed correlation of the rows of "
                      "one cluster (e.g. rho: 0.6); metafor's aggregate() has no default")  # fmt: skip
    if spec.get("shared_controls") and "rho" in spec and model != "multivariate":
        errors.append(f"{where('dependence', 'rho')}: with shared_controls, rho correlates different outcomes "
                      "(model multivariate); for one outcome the shared control group alone gives the covariance. "
                      "Remove rho or shared_controls")  # fmt: skip
    if "case_group" in spec and not spec.get("shared_controls"):
        errors.append(f"{where('dependence', 'case_group')}: case_group only applies with shared_controls: true")
    levels = spec.get("levels", [])
    if len(set(levels)) < len(levels):
        errors.append(f"{where('dependence', 'levels')}: a column is named twice in levels")
    merged = {**setting_defaults(), **defaults, **analysis}
    method = PRESETS[merged["preset"]].get("method", merged["method"])
    if model != "aggregate" and method not in ("REML", "ML"):
        key = "preset" if "method" in PRESETS[merged["preset"]] else "method"
        errors.append(f"{where(key) if key in analysis else where('dependence')}: model {model} is fitted by "
                      f"metafor's rma.mv, which estimates REML or ML only, not {method}; set method: REML or ML "
                      "for this analysis")  # fmt: skip
    return errors


class CheckedInputs:
    """The inputs (sheet with its mapping and filter, or published sheet with the ids compared) that passed the
    whole pre-run check, each with its file's size, mtime and inode then. A run whose inputs have not changed since
    (a no-op rerun, a changed figure format) reads only the sheets' headers and never imports pandas; any change
    to a file or to how an analysis reads it checks it whole again. ``path`` None: nothing is remembered."""

    def __init__(self, path=None):
        self.path, self.entries = (Path(path) if path else None), {}
        if self.path and self.path.is_file():
            try:
                self.entries = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                self.entries = {}  # unreadable: check everything again

    @staticmethod
    def key(*parts) -> str:
        return json.dumps(parts, sort_keys=True, default=str)

    @staticmethod
    def _signature(file):
        try:
            stat = Path(file).stat()
        except OSError:
            return None
        return [str(Path(file).resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino]

    def known(self, key, file) -> bool:
        return self.path is not None and self.entries.get(key) == self._signature(file)

    def add(self, key, file) -> None:
        self.entries[key] = self._signature(file)

    def save(self) -> None:
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(self.entries, indent=0, sort_keys=True), encoding="utf-8")
        except OSError:
            pass  # a read-only working directory only costs the next run a full check


def sheet_errors(config: dict, files_lines=(), checked: CheckedInputs | None = None) -> list[str]:
    """Before any rule runs: every sheet read whole (every cell checked, as the jobs will read it, so that every
    problem of every file is listed at once), each analysis's ``where`` filter selecting rows, and the columns
    that subgroups, moderators, cumulative_order, where and dependence name existing in it (after the analysis's
    ``columns`` mapping). ``checked``: inputs that passed before and have not changed are not read again."""
    checked = checked or CheckedInputs()
    errors, sheets = [], {}  # sheets: (path, mapping) -> the sheet read whole, or None where it has problems
    headers: dict = {}  # (path, mapping) -> its columns, for inputs that passed before (read once, not per analysis)
    for name, analysis in (config.get("analyses") or {}).items():
        data, mapping, where = analysis["data"], analysis.get("columns"), analysis.get("where") or {}
        sheet_key, key = (data, json.dumps(mapping, sort_keys=True)), checked.key("sheet", data, mapping, where)
        if sheets.get(sheet_key, True) is None:
            continue  # its problems are listed once, with the first analysis that reads it
        try:
            if checked.known(key, data):
                if sheet_key not in headers:
                    headers[sheet_key] = sheet_columns(data, mapping)
                columns = headers[sheet_key]
            else:
                if sheet_key not in sheets:
                    from metarepro.inputs.sheet import read_sheet

                    sheets[sheet_key] = read_sheet(data, mapping)
                columns = list(sheets[sheet_key].attrs["columns"])
        except SheetError as err:
            errors.append(f"analysis {name}: {err}")
            sheets[sheet_key] = None
            continue
        if sheets.get(sheet_key) is not None:
            try:  # the filter's values (a missing column is named below, with the config line)
                select_rows(sheets[sheet_key], {c: v for c, v in where.items() if c in columns})
                checked.add(key, data)
            except SheetError as err:
                errors.append(f"analysis {name}: {err}")
        named = [("subgroups", c) for c in analysis.get("subgroups", [])]
        named += [("moderators", c) for c in analysis.get("moderators", [])]
        named += [("where", c) for c in where]
        if "cumulative_order" in analysis:
            named.append(("cumulative_order", analysis["cumulative_order"]))
        spec = analysis.get("dependence") or {}
        for option in ("levels", "outer", "inner", "cluster", "case_group"):
            given = spec.get(option) or []
            named += [(("dependence", option), c) for c in ([given] if isinstance(given, str) else given)]
        missing = _count_columns_missing(analysis.get("measure", (config.get("defaults") or {}).get("measure")),
                                         columns)  # fmt: skip
        if missing:
            located = _locate(("analyses", name, "measure"), list(files_lines))
            hint = mapping_hint_for(columns)
            errors.append(f"{located}: {data} has no column {missing}{'; map them: ' + hint if hint else ''}")
        for option, column in named:
            if column not in columns:
                keys = option if isinstance(option, tuple) else (option,)
                located = _locate(("analyses", name, *keys), list(files_lines))
                errors.append(
                    f"{located}: {data} has no column '{column}'{did_you_mean(str(column), columns)}"
                )
    return errors


def _count_columns_missing(measure, columns) -> str:
    """What a counts measure needs and the sheet lacks ("" when it has it): events_cases and events_controls with
    nonevents_* or n_* per group (a 2x2 table), or events with n (a proportion)."""
    if measure in TABLES:
        groups = [(f"events_{g}", f"nonevents_{g}", f"n_{g}") for g in ("cases", "controls")]
        lacking = [f"{events} (with {rest} or {total})" if events not in columns else f"{rest} or {total}"
                   for events, rest, total in groups
                   if events not in columns or (rest not in columns and total not in columns)]  # fmt: skip
        return "; ".join(lacking) + (f" ({measure} needs a 2x2 table per row)" if lacking else "")
    if measure in PROPORTIONS:
        lacking = [c for c in ("events", "n") if c not in columns]
        return ", ".join(lacking) + (f" ({measure} needs events of n per row)" if lacking else "")
    return ""


def mapping_hint_for(columns) -> str:
    """The ``columns`` mapping that would read a sheet's metafor-named count columns (ai, bi, ci, di, n1i, n2i,
    xi, ni), or ""."""
    from metarepro.inputs.sheet import METAFOR_NAMES

    pairs = [f"{METAFOR_NAMES[c]}: {c}" for c in columns if c in METAFOR_NAMES and METAFOR_NAMES[c] not in columns]
    return f"columns: {{{', '.join(pairs)}}}" if pairs else ""


def study_sheet_errors(config: dict, files_lines=(), checked: CheckedInputs | None = None) -> list[str]:
    """Before any rule runs: each ``compare_studies`` sheet (published study-level values) read whole, as the
    analysis job will read it."""
    checked = checked or CheckedInputs()
    errors = []
    for name, analysis in (config.get("analyses") or {}).items():
        spec = analysis.get("compare_studies")
        if not spec:
            continue
        key = checked.key("studies", spec["sheet"], spec.get("columns"))
        if checked.known(key, spec["sheet"]):
            continue
        from metarepro.inputs.published import read_study_values

        try:
            read_study_values(spec["sheet"], spec.get("columns"))
            checked.add(key, spec["sheet"])
        except SheetError as err:
            errors.append(f"analysis {name}, compare_studies: {err}")
    return errors


def published_errors(config: dict, files_lines=(), checked: CheckedInputs | None = None) -> list[str]:
    """Before any rule runs: the published-results sheet read whole with the extraction sheets' reader, and every
    ``compare_with`` id found in it (the report job, which reads it, runs after every analysis)."""
    checked = checked or CheckedInputs()
    compared = {name: a["compare_with"] for name, a in (config.get("analyses") or {}).items() if a.get("compare_with")}
    path = config.get("published")
    if not path:
        return [f"{_locate(('analyses', name, 'compare_with'), list(files_lines))}: compare_with needs the "
                "published-results sheet: add 'published: <path to its CSV>' at the top of the config"
                for name in compared]  # fmt: skip
    key = checked.key("published", path, sorted({pid for ids in compared.values() for pid in ids}))
    if checked.known(key, path):
        return []
    from metarepro.inputs.published import read_published

    try:
        ids = list(read_published(path).index)
    except SheetError as err:
        return [f"published: {err}"]
    errors = [
        f"{_locate(('analyses', name, 'compare_with'), list(files_lines))}: '{pid}' is not an id of {path}"
        f"{did_you_mean(str(pid), ids)}"
        for name, wanted in compared.items() for pid in wanted if pid not in ids
    ]  # fmt: skip
    if not errors:
        checked.add(key, path)
    return errors


def check_config(config: dict, schema_path, files_lines=(), sheets: bool = True, checked=None) -> list[str]:
    """All problems of a config (schema, then levels/mappings, then every sheet and the published-results sheet
    read whole), one line each; fills defaults. ``checked``: a file remembering inputs that passed before
    (:class:`CheckedInputs`), so that a rerun with unchanged sheets does not read them whole again."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    errors = schema_errors(config, schema, files_lines)
    if errors:
        return errors
    _fill_defaults(config, schema, schema)
    errors = semantic_errors(config, files_lines)
    if sheets and not errors:
        inputs = CheckedInputs(checked)
        errors = (sheet_errors(config, files_lines, inputs) + published_errors(config, files_lines, inputs)
                  + study_sheet_errors(config, files_lines, inputs))  # fmt: skip
        inputs.save()
    return errors


def format_errors(errors: list[str]) -> str:
    shown = errors[:MAX_ERRORS]
    more = [f"... and {len(errors) - MAX_ERRORS} more"] if len(errors) > MAX_ERRORS else []
    return "\n".join([f"metarepro: {len(errors)} problem(s) in the config:", *shown, *more])


def _shown(path) -> Path:
    """A path as the researcher gave it: relative to the working directory when inside it."""
    path = Path(path)
    try:
        return path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return path


def load_config(files, overrides: dict | None = None) -> tuple[dict, list]:
    """Merge config files (later ones win, as Snakemake) and command-line overrides, read strictly.

    Returns the config and, per file, its key lines for messages. A YTE template cannot be re-read
    as plain YAML; ``None`` is returned for it and the caller keeps Snakemake's reading.
    """
    config: dict = {}
    files_lines = []
    for path in map(_shown, files):
        if uses_yte(path):
            return None, []
        data, lines = load_yaml(path)
        merge(config, data)
        files_lines.append((str(path), lines))
    merge(config, overrides or {})
    return config, files_lines


def main(argv=None) -> int:
    """``python -m metarepro.inputs.config my.yaml``: the checks the workflow runs before any rule, without Snakemake.

    Snakemake reads a ``--configfile`` itself before the workflow's checks run; a file it cannot read (empty,
    UTF-16, a YAML tag, not a mapping) gets only its generic "not valid JSON or YAML". This names what is wrong."""
    import sys

    files = sys.argv[1:] if argv is None else argv
    if not files:
        print("usage: python -m metarepro.inputs.config CONFIG.yaml [MORE.yaml ...]", file=sys.stderr)
        return 2
    try:
        config, key_lines = load_config(files)
    except ConfigError as err:
        print(f"metarepro: {err}", file=sys.stderr)
        return 1
    if config is None:
        print(f"metarepro: {', '.join(files)}: a YTE template (__use_yte__) is read by Snakemake only", file=sys.stderr)
        return 1
    problems = check_config(config, SCHEMA, key_lines)
    print(format_errors(problems) if problems else f"metarepro: {', '.join(files)}: no problems found",
          file=sys.stderr if problems else sys.stdout)  # fmt: skip
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
