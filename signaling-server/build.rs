//! Embeds the built browser page when asked: `FERRY_WEB_EMBED=<dist dir>` (the output of
//! `npm run build:web` in ui/). Unset, the binary carries no page and serves one only from
//! `--web-dir`, so a clean checkout builds without Node.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn files(root: &Path, dir: &Path, depth: usize, out: &mut Vec<(String, PathBuf)>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let Ok(kind) = e.file_type() else { continue };
        if name.starts_with('.') {
            continue;
        }
        let path = e.path();
        if kind.is_dir() && depth < 8 {
            files(root, &path, depth + 1, out);
        } else if kind.is_file()
            && let Ok(rel) = path.strip_prefix(root)
        {
            let rel: Vec<&str> = rel
                .components()
                .filter_map(|c| c.as_os_str().to_str())
                .collect();
            out.push((rel.join("/"), path.clone()));
        }
    }
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=FERRY_WEB_EMBED");
    let mut found = Vec::new();
    if let Some(dir) = std::env::var_os("FERRY_WEB_EMBED").filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        let dir = dir.canonicalize().unwrap_or(dir);
        println!("cargo:rerun-if-changed={}", dir.display());
        files(&dir, &dir, 0, &mut found);
        if !found
            .iter()
            .any(|(n, _)| n == "web.html" || n == "index.html")
        {
            println!(
                "cargo:warning=FERRY_WEB_EMBED={} holds no web.html; no page embedded",
                dir.display()
            );
            found.clear();
        }
    }
    found.sort();
    let mut src = String::from("static EMBEDDED: &[(&str, &[u8])] = &[\n");
    for (name, path) in &found {
        let _ = writeln!(
            src,
            "    ({name:?}, include_bytes!({:?})),",
            path.display().to_string()
        );
    }
    src.push_str("];\n");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default()).join("web_embed.rs");
    if let Err(e) = std::fs::write(&out, src) {
        panic!("cannot write {}: {e}", out.display());
    }
}
