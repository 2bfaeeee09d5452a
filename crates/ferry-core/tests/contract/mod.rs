//! Comparing generated UI fixtures with the committed ones, or rewriting them (`FERRY_BLESS=1`).
//! Shared by the engine's contract test (`tests/ui_contract.rs`) and the app shell's
//! (`src-tauri/tests/ui_contract.rs`, which includes this file by path).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One module per enum the UI sees: `exhaustive` is a `match` on the listed patterns, so a
/// variant added to the enum stops the test compiling until it is listed; `NAMES` are the
/// listed patterns and `ordinal` which one a value matches, so the test then fails until the
/// new variant has a sample.
macro_rules! every_variant {
    ($m:ident, $t:ty: $($p:pat),+ $(,)?) => {
        mod $m {
            use super::*;

            pub(crate) fn exhaustive(v: &$t) {
                match v {
                    $($p => {})+
                }
            }

            pub(crate) fn ordinal(v: &$t) -> usize {
                let arms: &[fn(&$t) -> bool] = &[$(|v| matches!(v, $p)),+];
                arms.iter().position(|is| is(v)).unwrap()
            }

            pub(crate) const NAMES: &[&str] = &[$(stringify!($p)),+];
        }
    };
}

/// `ui/tests/fixtures`, found from the crate's folder upwards (crates sit at different depths).
pub(crate) fn fixtures_dir(manifest_dir: &str) -> PathBuf {
    Path::new(manifest_dir)
        .ancestors()
        .map(|d| d.join("ui/tests/fixtures"))
        .find(|d| d.is_dir())
        .expect("ui/tests/fixtures above the crate")
}

pub(crate) fn pretty(v: &impl serde::Serialize) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap();
    s.push('\n');
    s
}

/// `expected` maps paths under `dir` to their text. `owned` is the folder whose `.json` files
/// all belong to this test: one no sample produces any more is stale. With `FERRY_BLESS=1`
/// the files are rewritten (stale ones removed); otherwise every difference fails, naming
/// `bless` as the way to accept a change that is meant.
pub(crate) fn check_or_bless(
    dir: &Path,
    owned: &str,
    expected: &BTreeMap<String, String>,
    bless: &str,
) {
    let on_disk: Vec<String> = std::fs::read_dir(dir.join(owned))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| format!("{owned}/{}", e.file_name().to_string_lossy()))
                .filter(|n| n.ends_with(".json"))
                .collect()
        })
        .unwrap_or_default();
    let stale: Vec<&String> = on_disk
        .iter()
        .filter(|n| !expected.contains_key(*n))
        .collect();

    if std::env::var_os("FERRY_BLESS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(dir.join(owned)).unwrap();
        for n in &stale {
            std::fs::remove_file(dir.join(n)).unwrap();
        }
        for (n, text) in expected {
            std::fs::write(dir.join(n), text).unwrap();
        }
        return;
    }

    let mut problems = Vec::new();
    for n in stale {
        problems.push(format!(
            "ui/tests/fixtures/{n}: nothing of this shape is sent any more"
        ));
    }
    for (n, want) in expected {
        match std::fs::read_to_string(dir.join(n)) {
            Err(_) => problems.push(format!(
                "ui/tests/fixtures/{n}: missing (a new variant or case has no fixture yet)"
            )),
            Ok(got) if got != *want => problems.push(format!(
                "ui/tests/fixtures/{n}: differs from what Rust sends now\n--- fixture\n{got}--- Rust\n{want}"
            )),
            Ok(_) => {}
        }
    }
    assert!(
        problems.is_empty(),
        "The Rust types no longer match the UI's fixtures:\n\n{}\n\n\
         These JSON shapes are the UI's contract (ui/src/ipc.ts).\n\
         If the change is meant: {bless},\n\
         then update ui/src/ipc.ts until `cd ui && npx tsc --noEmit && npx vitest run` passes.",
        problems.join("\n\n")
    );
}
