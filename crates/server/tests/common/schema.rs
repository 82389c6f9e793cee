//! JSON Schema checks against the OpenAPI document, by the `boon` crate (draft 2020-12, the
//! dialect of OpenAPI 3.1, with `pattern` and asserted `format`s such as `date` and
//! `date-time`). A schema is given as a value of the document (an inline schema or a `$ref`);
//! its `#/...` references point into the document.
#![allow(dead_code)]

use serde_json::Value;

/// Where the document is registered with the compiler; only a name, nothing is fetched.
const DOC_URL: &str = "urn:ledgerport:openapi";
const SCHEMA_URL: &str = "urn:ledgerport:checked";

/// Validates `value` against `schema`, whose `$ref`s point into `root` (the OpenAPI document).
/// Errors name the instance location and what failed there.
pub fn validate(root: &Value, schema: &Value, value: &Value) -> Result<(), Vec<String>> {
    let mut compiler = boon::Compiler::new();
    compiler.set_default_draft(boon::Draft::V2020_12);
    compiler.enable_format_assertions();
    let add = |compiler: &mut boon::Compiler, url: &str, json: Value| {
        compiler
            .add_resource(url, json)
            .unwrap_or_else(|e| panic!("the schema resource {url} is not usable: {e:#}"))
    };
    add(&mut compiler, DOC_URL, root.clone());
    add(&mut compiler, SCHEMA_URL, into_document(schema));
    let mut schemas = boon::Schemas::new();
    let index = compiler
        .compile(SCHEMA_URL, &mut schemas)
        .unwrap_or_else(|e| panic!("the schema {schema} does not compile: {e:#}"));
    schemas
        .validate(value, index)
        .map_err(|e| vec![format!("{e:#}")])
}

/// `schema` with its local `$ref`s (`#/components/...`) made to point into the document.
fn into_document(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| match (k.as_str(), v) {
                    ("$ref", Value::String(r)) if r.starts_with('#') => {
                        (k.clone(), Value::String(format!("{DOC_URL}{r}")))
                    }
                    _ => (k.clone(), into_document(v)),
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(into_document).collect()),
        other => other.clone(),
    }
}

/// Follows `$ref` chains (`#/components/...`) of the document's own objects (responses,
/// headers), which are not schemas.
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
