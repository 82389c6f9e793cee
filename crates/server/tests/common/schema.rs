//! A small JSON Schema validator: enough of draft 2020-12 for the OpenAPI document of this
//! project (`type` including type lists, `const`, `enum`, `required`, `properties`,
//! `additionalProperties`, `items`, `oneOf`, `anyOf`, `allOf`, `minLength`, `maxLength`,
//! `minimum`, `maxItems` and local `$ref`s into the document). `pattern` and `format` are not
//! checked. Errors name the JSON pointer of the value at fault.
#![allow(dead_code)]

use serde_json::Value;

/// Validates `value` against `schema`, resolving `$ref`s against `root`.
pub fn validate(root: &Value, schema: &Value, value: &Value) -> Result<(), Vec<String>> {
    let mut errors = Vec::new();
    check(root, schema, value, "", &mut errors);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Follows `$ref` chains (`#/components/...`).
pub fn resolve<'a>(root: &'a Value, mut schema: &'a Value) -> &'a Value {
    for _ in 0..16 {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                schema = root
                    .pointer(r.strip_prefix('#').unwrap_or(r))
                    .unwrap_or_else(|| panic!("unresolvable $ref {r}"))
            }
            None => return schema,
        }
    }
    panic!("$ref chain too long")
}

fn type_matches(t: &str, v: &Value) -> bool {
    match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64(),
        other => panic!("unknown type {other} in schema"),
    }
}

fn check(root: &Value, schema: &Value, v: &Value, at: &str, errors: &mut Vec<String>) {
    let schema = resolve(root, schema);
    let Some(s) = schema.as_object() else {
        if schema == &Value::Bool(false) {
            errors.push(format!("{at}: no value is allowed here"));
        }
        return;
    };
    let mut fail = |msg: String| errors.push(format!("{at}: {msg}"));
    match s.get("type") {
        Some(Value::String(t)) if !type_matches(t, v) => {
            return fail(format!("expected {t}, got {v}"));
        }
        Some(Value::Array(ts)) if !ts.iter().any(|t| type_matches(t.as_str().unwrap_or(""), v)) => {
            return fail(format!("expected one of {ts:?}, got {v}"));
        }
        _ => {}
    }
    if let Some(c) = s.get("const")
        && c != v
    {
        fail(format!("expected {c}, got {v}"));
    }
    if let Some(Value::Array(e)) = s.get("enum")
        && !e.contains(v)
    {
        fail(format!("{v} is not one of {e:?}"));
    }
    if let Some(text) = v.as_str() {
        let n = text.chars().count() as u64;
        if s.get("minLength")
            .and_then(Value::as_u64)
            .is_some_and(|m| n < m)
        {
            fail(format!("shorter than minLength: {v}"));
        }
        if s.get("maxLength")
            .and_then(Value::as_u64)
            .is_some_and(|m| n > m)
        {
            fail(format!("longer than maxLength: {v}"));
        }
    }
    if let (Some(n), Some(min)) = (v.as_f64(), s.get("minimum").and_then(Value::as_f64))
        && n < min
    {
        fail(format!("{n} is below the minimum {min}"));
    }
    if let Some(obj) = v.as_object() {
        if let Some(Value::Array(req)) = s.get("required") {
            for r in req.iter().filter_map(Value::as_str) {
                if !obj.contains_key(r) {
                    fail(format!("required property {r:?} is missing"));
                }
            }
        }
        let props = s.get("properties").and_then(Value::as_object);
        for (k, child) in obj {
            let path = format!("{at}/{k}");
            match props.and_then(|p| p.get(k)) {
                Some(ps) => check(root, ps, child, &path, errors),
                None => match s.get("additionalProperties") {
                    Some(Value::Bool(false)) => {
                        errors.push(format!("{path}: property not allowed by the schema"))
                    }
                    Some(extra @ Value::Object(_)) => check(root, extra, child, &path, errors),
                    _ => {}
                },
            }
        }
    }
    if let Some(items) = v.as_array() {
        if let Some(max) = s.get("maxItems").and_then(Value::as_u64)
            && items.len() as u64 > max
        {
            errors.push(format!("{at}: more than {max} items"));
        }
        if let Some(item_schema) = s.get("items") {
            for (i, item) in items.iter().enumerate() {
                check(root, item_schema, item, &format!("{at}/{i}"), errors);
            }
        }
    }
    let passes = |sub: &Value| validate(root, sub, v).is_ok();
    if let Some(Value::Array(all)) = s.get("allOf") {
        for sub in all {
            check(root, sub, v, at, errors);
        }
    }
    if let Some(Value::Array(any)) = s.get("anyOf")
        && !any.iter().any(passes)
    {
        errors.push(format!("{at}: matches none of anyOf"));
    }
    if let Some(Value::Array(one)) = s.get("oneOf") {
        let n = one.iter().filter(|sub| passes(sub)).count();
        if n != 1 {
            let why: Vec<String> = one
                .iter()
                .filter_map(|sub| validate(root, sub, v).err())
                .flatten()
                .collect();
            errors.push(format!("{at}: matches {n} of oneOf, not 1 ({why:?})"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::validate;
    use serde_json::json;

    fn root() -> serde_json::Value {
        json!({"components": {"schemas": {
            "Item": {"type": "object", "required": ["id", "kind"], "additionalProperties": false,
                     "properties": {"id": {"type": "integer", "minimum": 1},
                                    "kind": {"type": "string", "enum": ["a", "b"]},
                                    "note": {"type": ["string", "null"], "maxLength": 3}}},
            "Page": {"type": "object", "required": ["items"],
                     "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Item"}},
                                    "v": {"const": 1},
                                    "either": {"oneOf": [{"type": "string"}, {"type": "integer"}]}}}}}})
    }

    #[test]
    fn a_valid_value_passes() {
        let r = root();
        let page = json!({"items": [{"id": 1, "kind": "a"}, {"id": 2, "kind": "b", "note": null}],
                          "v": 1, "either": 7, "extra": true});
        assert_eq!(
            validate(&r, &json!({"$ref": "#/components/schemas/Page"}), &page),
            Ok(())
        );
    }

    #[test]
    fn each_kind_of_violation_fails_and_is_named() {
        let r = root();
        let page = json!({"items": [{"id": 0, "kind": "c", "note": "long", "extra": 1}, {"kind": 5}, "x"],
                          "v": 2, "either": 1.5});
        let errors = validate(&r, &json!({"$ref": "#/components/schemas/Page"}), &page)
            .expect_err("must fail");
        for expected in [
            "/items/0/id: 0 is below",
            "/items/0/kind: \"c\" is not one of",
            "/items/0/note: longer than maxLength",
            "/items/0/extra: property not allowed",
            "/items/1: required property \"id\"",
            "/items/1/kind: expected string",
            "/items/2: expected object",
            "/v: expected 1",
            "/either: matches 0 of oneOf",
        ] {
            assert!(
                errors.iter().any(|e| e.starts_with(expected)),
                "{expected} not in {errors:#?}"
            );
        }
        assert_eq!(errors.len(), 9, "{errors:#?}");
    }
}
