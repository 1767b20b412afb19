//! README.md stays true: its findings table is the catalogue, and its test command is what
//! `.ci/run` runs.
#![cfg(test)]

use m365_posture::findings::FindingId;

const README: &str = include_str!("../README.md");
const CI_RUN: &str = include_str!("../.ci/run");

#[test]
fn findings_table_matches_the_catalogue() {
    let rows: Vec<String> = README
        .lines()
        .filter(|line| line.starts_with("| `") && line.matches('|').count() == 5)
        .map(str::to_owned)
        .collect();
    let expected: Vec<String> = FindingId::ALL
        .iter()
        .map(|id| {
            let meta = id.meta();
            format!(
                "| `{}` | {} | {} | {} |",
                meta.id, meta.title, meta.category, meta.severity
            )
        })
        .collect();
    assert_eq!(rows, expected);
    assert_eq!(rows.len(), 29);
}

#[test]
fn readme_starts_with_the_demo_and_test_commands() {
    let block: Vec<&str> = README
        .lines()
        .skip_while(|line| !line.starts_with("```"))
        .skip(1)
        .take_while(|line| !line.starts_with("```"))
        .collect();
    assert!(
        block[0].starts_with("cargo run --release -- demo"),
        "{block:?}"
    );
    assert!(block[1].starts_with("cargo test --workspace"), "{block:?}");
    assert!(
        CI_RUN
            .lines()
            .any(|line| line.trim() == "cargo test --workspace"),
        ".ci/run runs the README's test command"
    );
}
