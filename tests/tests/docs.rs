//! The documentation in the tree is the user's only rule book: every rule id the code can emit is defined
//! in `docs/protocol.md` (and nothing else is), every event kind is in `docs/design.md`'s table, and every
//! document a file points to is in the repository.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use sim_core::{EventKind, Rule};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The tracked files of the repository (what a fresh clone has).
fn tracked() -> Vec<PathBuf> {
    let out = std::process::Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(root())
        .output()
        .expect("git ls-files");
    assert!(out.status.success(), "git ls-files failed");
    out.stdout
        .split(|b| *b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| PathBuf::from(String::from_utf8_lossy(p).into_owned()))
        .filter(|p| root().join(p).exists())
        .collect()
}

#[test]
fn every_rule_is_defined_in_docs_protocol_md_and_every_definition_is_a_rule() {
    let doc = read("docs/protocol.md");
    let documented: Vec<&str> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("### "))
        .map(str::trim)
        .filter(|h| ["CP-", "AG-", "HARNESS-"].iter().any(|p| h.starts_with(p)))
        .collect();
    let code: Vec<&str> = Rule::ALL.iter().map(|r| r.id()).collect();
    let missing: Vec<&&str> = code.iter().filter(|id| !documented.contains(id)).collect();
    let unknown: Vec<&&str> = documented.iter().filter(|id| !code.contains(id)).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "rules the code has but docs/protocol.md does not define: {missing:?}; headings that are no rule: {unknown:?}"
    );
    assert_eq!(
        documented, code,
        "docs/protocol.md lists the rules in Rule::ALL's order"
    );
}

#[test]
fn every_event_kind_is_in_the_design_table_under_each_source_that_records_it() {
    let doc = read("docs/design.md");
    let mut pairs = BTreeSet::new();
    for line in doc.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let (Some(source), Some(kinds)) = (cells.get(1), cells.get(2)) else {
            continue;
        };
        for kind in kinds.split(',') {
            pairs.insert(format!(
                "{}.{}",
                source.trim_matches('`'),
                kind.trim().trim_matches('`')
            ));
        }
    }
    let mut missing = Vec::new();
    for kind in EventKind::ALL {
        for source in kind.sources() {
            let name = format!("{source}.{kind}");
            if !pairs.contains(&name) {
                missing.push(name);
            }
        }
    }
    assert!(
        missing.is_empty(),
        "event kinds missing from docs/design.md's table: {missing:?}"
    );
}

#[test]
fn no_file_points_to_a_document_outside_the_repository() {
    // Built from parts, so this file does not name them itself.
    let outside = [
        format!("{}.md", "PROTOCOL"),
        format!("{}.md", "DESIGN"),
        format!("{}.md", "STYLE"),
        format!("../{}/", "shared"),
    ];
    let mut found = Vec::new();
    for path in tracked() {
        let Ok(text) = std::fs::read_to_string(root().join(&path)) else {
            continue;
        };
        for (n, line) in text.lines().enumerate() {
            for o in &outside {
                if line.contains(o.as_str()) {
                    found.push(format!("{}:{}: {o}", path.display(), n + 1));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "references to documents users do not have:\n{}",
        found.join("\n")
    );
}

#[test]
fn every_relative_link_in_the_markdown_resolves() {
    let mut broken = Vec::new();
    for path in tracked()
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
    {
        let text = read(&path.to_string_lossy());
        let dir = root().join(&path).parent().expect("a folder").to_path_buf();
        let mut rest = text.as_str();
        while let Some(i) = rest.find("](") {
            rest = &rest[i + 2..];
            let Some(end) = rest.find(')') else { break };
            let target = &rest[..end];
            let file = target.split('#').next().unwrap_or("");
            let external = target.contains("://") || target.starts_with("mailto:");
            if !external && !file.is_empty() && !dir.join(file).exists() {
                broken.push(format!("{}: {target}", path.display()));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "links to files that do not exist:\n{}",
        broken.join("\n")
    );
}
