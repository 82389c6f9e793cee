//! `GET /openapi.json`: the OpenAPI 3.1 document of the public API (`crates/server/openapi.json`,
//! written by hand and checked against the running server by `tests/openapi.rs`); and
//! `GET /docs`: the same document as a plain HTML page (no JavaScript, no external resources),
//! rendered once on first request.

use axum::http::header;
use axum::response::IntoResponse;
use serde_json::Value;
use std::fmt::Write;
use std::sync::OnceLock;

/// The document as served.
pub const OPENAPI_JSON: &str = include_str!("../../openapi.json");

pub async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON)
}

pub async fn docs() -> impl IntoResponse {
    static PAGE: OnceLock<String> = OnceLock::new();
    let page = PAGE.get_or_init(|| {
        let doc: Value = serde_json::from_str(OPENAPI_JSON).unwrap_or(Value::Null);
        render(&doc)
    });
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        page.as_str(),
    )
}

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

const STYLE: &str = "body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;\
padding:0 1rem;color:#1d1d1f}h1,h2,h3{line-height:1.2}h2{border-bottom:2px solid #ddd;\
padding-bottom:.2rem;margin-top:2.5rem}section.op{border:1px solid #ddd;border-radius:6px;\
padding:.2rem 1rem 1rem;margin:1.2rem 0}.m{display:inline-block;min-width:3.5rem;\
text-align:center;border-radius:4px;color:#fff;font-weight:600;padding:0 .4rem;\
margin-right:.5rem}.get{background:#2b7a3d}.post{background:#1f5fa8}.dep{text-decoration:\
line-through}table{border-collapse:collapse;width:100%;margin:.5rem 0}td,th{border:1px solid \
#ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}code,pre{font-family:ui-monospace,\
monospace;font-size:13px}pre{background:#f6f6f6;padding:.6rem;overflow-x:auto;border-radius:4px;\
margin:.3rem 0}code{background:#f2f2f2;padding:0 .2rem}.st{font-weight:600}";

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Escapes text and turns the document's `backtick` spans into `<code>`.
fn text(s: &str) -> String {
    s.split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                format!("<code>{}</code>", esc(part))
            } else {
                esc(part)
            }
        })
        .collect()
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Follows a local `$ref` (`#/components/...`) once.
fn deref<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => doc
            .pointer(r.trim_start_matches('#'))
            .unwrap_or(&Value::Null),
        None => v,
    }
}

fn anchor(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// A schema pretty-printed, with `$ref`s to component schemas as links to their section.
fn schema_block(schema: &Value) -> String {
    let pretty = serde_json::to_string_pretty(schema).unwrap_or_default();
    let mut out = String::from("<pre>");
    let prefix = "\"#/components/schemas/";
    let mut rest = pretty.as_str();
    while let Some(i) = rest.find(prefix) {
        out.push_str(&esc(&rest[..i]));
        let after = &rest[i + prefix.len()..];
        let end = after.find('"').unwrap_or(after.len());
        let name = &after[..end];
        let _ = write!(
            out,
            "&quot;<a href=\"#schema-{}\">#/components/schemas/{}</a>&quot;",
            anchor(name),
            esc(name)
        );
        rest = after.get(end + 1..).unwrap_or("");
    }
    out.push_str(&esc(rest));
    out.push_str("</pre>");
    out
}

fn type_of(schema: &Value) -> String {
    let mut t = match schema.get("type") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" | "),
        _ => String::new(),
    };
    for key in ["format", "pattern", "maxLength"] {
        if let Some(v) = schema.get(key) {
            let _ = write!(
                t,
                ", {key} {}",
                v.as_str().map_or(v.to_string(), str::to_owned)
            );
        }
    }
    if let Some(Value::Array(e)) = schema.get("enum") {
        let values: Vec<String> = e.iter().map(Value::to_string).collect();
        let _ = write!(t, ", one of {}", values.join(", "));
    }
    if let Some(c) = schema.get("const") {
        let _ = write!(t, ", always {c}");
    }
    t
}

fn operation(doc: &Value, out: &mut String, method: &str, path: &str, op: &Value) {
    let id = str_of(op, "operationId");
    let deprecated = op.get("deprecated") == Some(&Value::Bool(true));
    let _ = write!(
        out,
        "<section class=\"op\" id=\"op-{}\"><h3><span class=\"m {method}\">{}</span><code{}>{}</code></h3><p>{}</p>",
        anchor(id),
        method.to_uppercase(),
        if deprecated { " class=\"dep\"" } else { "" },
        esc(path),
        text(str_of(op, "summary"))
    );
    let description = str_of(op, "description");
    if !description.is_empty() {
        let _ = write!(out, "<p>{}</p>", text(description));
    }
    if let Some(Value::Array(alternatives)) = op.get("security") {
        let names: Vec<String> = alternatives
            .iter()
            .filter_map(Value::as_object)
            .map(|o| {
                o.keys()
                    .map(|k| format!("<code>{}</code>", esc(k)))
                    .collect::<Vec<_>>()
                    .join(" + ")
            })
            .collect();
        let _ = write!(
            out,
            "<p><b>Security:</b> {}</p>",
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(" or ")
            }
        );
    }
    if let Some(Value::Array(ps)) = op.get("parameters")
        && !ps.is_empty()
    {
        out.push_str("<h4>Parameters</h4><table><tr><th>Name</th><th>In</th><th>Required</th><th>Schema</th><th>Description</th></tr>");
        for p in ps {
            let p = deref(doc, p);
            let schema = p.get("schema").unwrap_or(&Value::Null);
            let _ = write!(
                out,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(str_of(p, "name")),
                esc(str_of(p, "in")),
                if p.get("required") == Some(&Value::Bool(true)) {
                    "yes"
                } else {
                    "no"
                },
                esc(&type_of(schema)),
                text(str_of(p, "description"))
            );
        }
        out.push_str("</table>");
    }
    if let Some(body) = op.get("requestBody") {
        out.push_str("<h4>Request body</h4>");
        content(doc, out, body);
    }
    if let Some(Value::Object(responses)) = op.get("responses") {
        out.push_str("<h4>Responses</h4>");
        for (status, r) in responses {
            let r = deref(doc, r);
            let _ = write!(
                out,
                "<p><span class=\"st\">{}</span> {}</p>",
                esc(status),
                text(str_of(r, "description"))
            );
            if let Some(Value::Object(headers)) = r.get("headers") {
                let names: Vec<String> = headers
                    .keys()
                    .map(|k| format!("<code>{}</code>", esc(k)))
                    .collect();
                let _ = write!(out, "<p>Headers: {}</p>", names.join(", "));
            }
            content(doc, out, r);
        }
    }
    out.push_str("</section>");
}

/// The media types of a request body or response, each with its schema; a schema that is a
/// reference to a component schema is shown resolved, one level deep.
fn content(doc: &Value, out: &mut String, holder: &Value) {
    if let Some(Value::Object(content)) = holder.get("content") {
        for (media, m) in content {
            let schema = m.get("schema").unwrap_or(&Value::Null);
            let _ = write!(out, "<p><code>{}</code>", esc(media));
            match schema
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
            {
                Some(name) => {
                    let _ = write!(
                        out,
                        " <a href=\"#schema-{}\">{}</a></p>",
                        anchor(name),
                        esc(name)
                    );
                    out.push_str(&schema_block(deref(doc, schema)));
                }
                None => {
                    out.push_str("</p>");
                    out.push_str(&schema_block(schema));
                }
            }
        }
    }
}

/// The HTML page of an OpenAPI document: operations grouped by tag, then the component schemas.
pub fn render(doc: &Value) -> String {
    let info = doc.get("info").unwrap_or(&Value::Null);
    let title = str_of(info, "title");
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
         content=\"width=device-width,initial-scale=1\"><title>{} reference</title><style>{STYLE}</style>\
         </head><body><h1>{} <small>{}</small></h1><p>{}</p><p>{}</p>\
         <p>The machine-readable document: <a href=\"/openapi.json\"><code>/openapi.json</code></a> (OpenAPI {}).</p>",
        esc(title),
        esc(title),
        esc(str_of(info, "version")),
        text(str_of(info, "summary")),
        text(str_of(info, "description")),
        esc(str_of(doc, "openapi"))
    );
    let empty = serde_json::Map::new();
    let paths = doc
        .get("paths")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let mut tags: Vec<(String, String)> = doc
        .get("tags")
        .and_then(Value::as_array)
        .map(|ts| {
            ts.iter()
                .map(|t| {
                    (
                        str_of(t, "name").to_owned(),
                        str_of(t, "description").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    tags.push(("Other".into(), String::new()));
    let ops: Vec<(&str, &str, &Value)> = paths
        .iter()
        .flat_map(|(path, item)| {
            METHODS
                .iter()
                .filter_map(move |m| item.get(*m).map(|op| (*m, path.as_str(), op)))
        })
        .collect();
    let tag_of = |op: &Value| {
        let t = op
            .pointer("/tags/0")
            .and_then(Value::as_str)
            .unwrap_or("Other");
        if tags.iter().any(|(n, _)| n == t) {
            t.to_owned()
        } else {
            "Other".to_owned()
        }
    };

    out.push_str("<nav><h2>Contents</h2><ul>");
    for (name, _) in &tags {
        let mine: Vec<_> = ops
            .iter()
            .filter(|(_, _, op)| tag_of(op) == *name)
            .collect();
        if mine.is_empty() {
            continue;
        }
        let _ = write!(out, "<li>{}<ul>", esc(name));
        for (m, path, op) in mine {
            let _ = write!(
                out,
                "<li><a href=\"#op-{}\">{} {}</a></li>",
                anchor(str_of(op, "operationId")),
                m.to_uppercase(),
                esc(path)
            );
        }
        out.push_str("</ul></li>");
    }
    out.push_str("<li><a href=\"#schemas\">Schemas</a></li></ul></nav>");

    for (name, description) in &tags {
        let mine: Vec<_> = ops
            .iter()
            .filter(|(_, _, op)| tag_of(op) == *name)
            .collect();
        if mine.is_empty() {
            continue;
        }
        let _ = write!(out, "<h2>{}</h2><p>{}</p>", esc(name), text(description));
        for (m, path, op) in mine {
            operation(doc, &mut out, m, path, op);
        }
    }

    if let Some(Value::Object(schemes)) = doc.pointer("/components/securitySchemes") {
        out.push_str("<h2>Security schemes</h2><table><tr><th>Name</th><th>Kind</th><th>Description</th></tr>");
        for (name, s) in schemes {
            let kind = match str_of(s, "type") {
                "apiKey" => format!("header <code>{}</code>", esc(str_of(s, "name"))),
                other => format!("{} {}", esc(other), esc(str_of(s, "scheme"))),
            };
            let _ = write!(
                out,
                "<tr><td><code>{}</code></td><td>{kind}</td><td>{}</td></tr>",
                esc(name),
                text(str_of(s, "description"))
            );
        }
        out.push_str("</table>");
    }
    if let Some(Value::Object(responses)) = doc.pointer("/components/responses") {
        out.push_str("<h2>Shared responses</h2>");
        for (name, r) in responses {
            let _ = write!(
                out,
                "<p><span class=\"st\">{}</span> {}</p>",
                esc(name),
                text(str_of(r, "description"))
            );
            content(doc, &mut out, r);
        }
    }
    out.push_str("<h2 id=\"schemas\">Schemas</h2>");
    if let Some(Value::Object(schemas)) = doc.pointer("/components/schemas") {
        for (name, s) in schemas {
            let _ = write!(
                out,
                "<h3 id=\"schema-{}\">{}</h3><p>{}</p>",
                anchor(name),
                esc(name),
                text(str_of(s, "description"))
            );
            out.push_str(&schema_block(s));
        }
    }
    out.push_str("</body></html>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_parses_and_renders_every_operation() {
        let doc: Value = serde_json::from_str(OPENAPI_JSON).expect("openapi.json is JSON");
        assert_eq!(doc["openapi"], "3.1.0");
        let html = render(&doc);
        for path in doc["paths"].as_object().expect("paths").keys() {
            assert!(html.contains(&esc(path)), "{path} missing from the page");
        }
        assert!(html.contains("<a href=\"#schema-Entry\">"));
        assert!(!html.contains("<script"));
    }

    #[test]
    fn text_escapes_and_marks_code() {
        assert_eq!(text("a `<b>` c"), "a <code>&lt;b&gt;</code> c");
    }
}
