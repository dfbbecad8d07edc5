"""The trigger form: one Airflow ``Param`` per run setting, generated from the settings' declarations."""

from __future__ import annotations

from include.matcher.foundations.settings import deployment_flag

JSON_TYPES = {"int": "integer", "float": "number", "bool": "boolean", "str": "string"}


def dag_params() -> dict:
    """The trigger form, generated from the run settings' declarations
    (:func:`include.matcher.foundations.settings.setting`):
    one ``Param`` per setting, with its type, bounds, choices, help and section (Training / Gate / Data)."""
    from airflow.sdk import Param

    from include.matcher.foundations.settings import run_defaults, run_setting_fields

    params, deployment_defaults = {}, run_defaults()
    for _, f in run_setting_fields():
        meta = f.metadata
        limits = [
            f"{word} {meta[rule]:g}"
            for rule, word in (("minimum", "at least"), ("above", "above"), ("maximum", "at most"))
            if rule in meta
        ]
        schema = {
            "type": JSON_TYPES[str(f.type)],
            "title": f.name.replace("_", " ").capitalize(),
            "description": meta["help"] + (f" ({', '.join(limits)})" if limits else ""),
            "section": meta["section"],
        }
        for rule, keyword in (("minimum", "minimum"), ("maximum", "maximum"), ("above", "exclusiveMinimum")):
            if rule in meta:
                schema[keyword] = meta[rule]
        if "choices" in meta:
            schema["enum"] = list(meta["choices"])
        if "pattern" in meta:
            schema["pattern"] = f"^{meta['pattern']}$"
        default = deployment_defaults.get(f.name, f.default)
        if f.name == "require_approval":  # each deployment decides whether a person is in the loop
            default = deployment_flag("MATCHER_REQUIRE_APPROVAL")
        if default == "":  # the form counts an empty value of a non-null type as missing: Trigger greys out
            schema["type"], default = ["null", schema["type"]], None
        params[f.name] = Param(default, **schema)
    return params
