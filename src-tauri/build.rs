use std::path::Path;

fn main() {
    // `cargo clippy --workspace` runs before the UI is built, and tauri's context macro
    // refuses a missing frontendDist; a stub page keeps the crate compiling and tells the
    // user how to get the real UI.
    let dist = Path::new("../ui/dist");
    if !dist.join("index.html").exists() {
        let _ = std::fs::create_dir_all(dist);
        let _ = std::fs::write(
            dist.join("index.html"),
            "<!doctype html><title>Ferry</title><p>The UI is not built: run \
             <code>cd ui &amp;&amp; npm ci &amp;&amp; npm run build</code>, or <code>bash scripts/app.sh</code>.</p>",
        );
    }
    println!("cargo:rerun-if-changed=../ui/dist/index.html");
    tauri_build::build()
}
