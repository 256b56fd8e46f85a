//! schema/cluster.schema.json is what editors load; it must be what `hbd schema` prints.

use std::path::Path;

#[test]
fn committed_schema_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/cluster.schema.json");
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let current = hbd::cli::schema_json();
    if committed != current {
        let line = committed
            .lines()
            .zip(current.lines())
            .position(|(a, b)| a != b)
            .map_or_else(
                || "the end of the file".to_string(),
                |i| format!("line {}", i + 1),
            );
        panic!(
            "schema/cluster.schema.json is stale (first difference at {line}); \
             regenerate it with:\n\n    cargo run -q -- schema > schema/cluster.schema.json\n"
        );
    }
}

#[test]
fn schema_is_json_and_closed() {
    let v: serde_json::Value =
        serde_json::from_str(&hbd::cli::schema_json()).expect("schema is valid JSON");
    assert_eq!(v["additionalProperties"], serde_json::Value::Bool(false));
    assert_eq!(v["required"], serde_json::json!(["cluster"]));
    for table in [
        "cluster", "timing", "auth", "failover", "link", "node", "group",
    ] {
        assert!(
            v["properties"].get(table).is_some(),
            "schema has no top-level property {table}"
        );
    }
}
