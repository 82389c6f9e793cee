//! The result: one row per measurement with its target, as a plain table and as JSON.

use serde_json::{Value, json};

/// A target and whether a figure met it.
#[derive(Debug, Clone)]
pub struct Check {
    pub text: String,
    pub met: bool,
}

impl Check {
    pub fn at_least(figure: f64, min: f64, text: &str) -> Check {
        Check {
            text: text.into(),
            met: figure >= min,
        }
    }

    pub fn below(figure: f64, max: f64, text: &str) -> Check {
        Check {
            text: text.into(),
            met: figure < max,
        }
    }

    /// Both must hold.
    pub fn and(self, other: Check) -> Check {
        Check {
            text: format!("{}, {}", self.text, other.text),
            met: self.met && other.met,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Row {
    pub name: String,
    /// Throughput figure and its unit (`req/s`, `entries/s`, …).
    pub rate: Option<(f64, &'static str)>,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Anything else worth a figure: a ratio, MiB.
    pub note: String,
    pub check: Option<Check>,
}

impl Row {
    pub fn new(name: impl Into<String>) -> Row {
        Row {
            name: name.into(),
            rate: None,
            p50_ms: None,
            p99_ms: None,
            note: String::new(),
            check: None,
        }
    }
}

pub struct Report {
    pub context: Vec<(String, String)>,
    pub rows: Vec<Row>,
}

fn num(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

impl Report {
    pub fn table(&self) -> String {
        let mut out = String::new();
        for (k, v) in &self.context {
            out.push_str(&format!("{k:<22} {v}\n"));
        }
        out.push('\n');
        let header = [
            "measurement",
            "throughput",
            "p50 ms",
            "p99 ms",
            "notes",
            "target",
            "",
        ];
        let mut cells: Vec<[String; 7]> = vec![header.map(str::to_owned)];
        for r in &self.rows {
            cells.push([
                r.name.clone(),
                r.rate
                    .map(|(x, unit)| format!("{} {unit}", num(x)))
                    .unwrap_or_default(),
                r.p50_ms.map(num).unwrap_or_default(),
                r.p99_ms.map(num).unwrap_or_default(),
                r.note.clone(),
                r.check.as_ref().map(|c| c.text.clone()).unwrap_or_default(),
                match &r.check {
                    Some(c) if c.met => "met".into(),
                    Some(_) => "MISSED".into(),
                    None => String::new(),
                },
            ]);
        }
        let widths: Vec<usize> = (0..7)
            .map(|i| {
                cells
                    .iter()
                    .map(|c| c[i].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for (n, c) in cells.iter().enumerate() {
            let line: Vec<String> = c
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(i, (s, w))| {
                    // Figures right-aligned, words left-aligned.
                    if (1..=3).contains(&i) {
                        format!("{s:>w$}")
                    } else {
                        format!("{s:<w$}")
                    }
                })
                .collect();
            out.push_str(line.join("  ").trim_end());
            out.push('\n');
            if n == 0 {
                let total: usize = widths.iter().sum::<usize>() + 2 * (widths.len() - 1);
                out.push_str(&"-".repeat(total));
                out.push('\n');
            }
        }
        out
    }

    pub fn json(&self) -> Value {
        let context: serde_json::Map<String, Value> = self
            .context
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|r| {
                json!({
                    "name": r.name,
                    "rate": r.rate.map(|(x, _)| x),
                    "rateUnit": r.rate.map(|(_, u)| u),
                    "p50Ms": r.p50_ms,
                    "p99Ms": r.p99_ms,
                    "note": r.note,
                    "target": r.check.as_ref().map(|c| c.text.clone()),
                    "met": r.check.as_ref().map(|c| c.met),
                })
            })
            .collect();
        json!({ "context": context, "results": rows })
    }
}
