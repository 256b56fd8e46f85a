//! `hbd schema`: the JSON schema editors use to check cluster.toml as it is typed.

use crate::error::Result;

/// The JSON schema of cluster.toml, pretty-printed with a final newline: exactly what
/// `hbd schema` prints and what schema/cluster.schema.json must contain.
pub fn schema_json() -> String {
    let schema = schemars::schema_for!(crate::config::Config);
    // Serializing a schema built from our own types cannot fail.
    let mut s = serde_json::to_string_pretty(&schema).unwrap_or_default();
    s.push('\n');
    s
}

pub fn run() -> Result<()> {
    print!("{}", schema_json());
    Ok(())
}
