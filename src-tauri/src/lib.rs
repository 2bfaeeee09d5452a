//! Ferry's Tauri shell: thin commands over `ferry-core`, transfer events streamed to the UI
//! over `tauri::ipc::Channel`, native pickers, notifications and deep links. File bytes never
//! cross IPC; Rust reads and writes by path.

mod commands;
mod engine;
mod nearby;
mod qr;
mod settings;
mod signal;

use std::sync::Mutex;

use tauri::{Emitter, Manager};
use tauri_plugin_deep_link::DeepLinkExt;

pub use settings::{Settings, Theme, TurnServer};
// What commands return, reachable so the UI contract test (tests/ui_contract.rs) can build them.
pub use commands::CmdError;
pub use engine::HistoryEntry;

/// The UI listens for this app event to open a `ferry://` link while running.
pub const DEEP_LINK_EVENT: &str = "ferry://link";

fn ferry_links(urls: impl IntoIterator<Item = String>) -> Option<String> {
    urls.into_iter()
        .find(|u| u.to_ascii_lowercase().starts_with("ferry://"))
}

/// Why the window cannot open here, if a Linux desktop has no display server to show it on
/// (`var` looks a variable up). GTK would otherwise panic deep inside, with a backtrace that
/// does not say what is missing.
#[cfg(any(target_os = "linux", test))]
fn missing_display(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> Option<&'static str> {
    let set = |k: &str| var(k).is_some_and(|v| !v.is_empty());
    (!set("DISPLAY") && !set("WAYLAND_DISPLAY")).then_some(
        "no display to open the window on: neither DISPLAY nor WAYLAND_DISPLAY is set \
         (start Ferry from a desktop session, or use the `ferry` command line)",
    )
}

#[cfg_attr(mobile, tauri::mobile_entry_point)]
pub fn run() {
    #[cfg(target_os = "linux")]
    if let Some(why) = missing_display(|k| std::env::var_os(k)) {
        eprintln!("ferry-app: {why}");
        std::process::exit(1);
    }
    ferry_core::tune_allocator();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FERRY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .try_init();

    let mut builder = tauri::Builder::default();

    // Single-instance must be registered first: a second launch (e.g. a clicked ferry://
    // link) hands its arguments to the running app instead of opening another window.
    #[cfg(desktop)]
    {
        builder = builder.plugin(tauri_plugin_single_instance::init(|app, argv, _cwd| {
            if let Some(w) = app.get_webview_window("main") {
                let _ = w.unminimize();
                let _ = w.set_focus();
            }
            if let Some(link) = ferry_links(argv) {
                let _ = app.emit(DEEP_LINK_EVENT, link);
            }
        }));
    }

    let result = builder
        .plugin(tauri_plugin_deep_link::init())
        .plugin(tauri_plugin_dialog::init())
        .plugin(tauri_plugin_notification::init())
        .plugin(tauri_plugin_opener::init())
        .setup(|app| {
            let config_dir = app.path().app_config_dir()?;
            let settings = Settings::load(&config_dir);
            let initial = app
                .deep_link()
                .get_current()
                .ok()
                .flatten()
                .and_then(|urls| ferry_links(urls.into_iter().map(String::from)))
                .or_else(|| ferry_links(std::env::args().skip(1)));
            // Schemes register only on install; in dev builds register so links work too.
            #[cfg(all(debug_assertions, any(target_os = "linux", windows)))]
            if std::env::var_os("FERRY_E2E").is_none()
                && let Err(e) = app.deep_link().register_all()
            {
                tracing::debug!("deep link registration: {e}");
            }
            let handle = app.handle().clone();
            app.deep_link().on_open_url(move |event| {
                if let Some(link) = ferry_links(event.urls().into_iter().map(String::from)) {
                    let _ = handle.emit(DEEP_LINK_EVENT, link);
                }
            });
            app.manage(commands::AppState {
                settings: Mutex::new(settings),
                config_dir,
                engine: engine::Engine::new(),
                transfers: Default::default(),
                initial_link: Mutex::new(initial),
            });
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            commands::pick_paths,
            commands::pick_folder,
            commands::send_start,
            commands::send_text,
            commands::receive_start,
            commands::receive_accept,
            commands::transfer_pause,
            commands::transfer_resume,
            commands::transfer_cancel,
            commands::extend_room,
            commands::close_room,
            commands::send_many_start,
            commands::receiver_stop,
            commands::history_list,
            commands::history_resume,
            commands::settings_get,
            commands::settings_set,
            commands::qr_svg,
            commands::reveal,
            commands::signal_url,
            commands::initial_link,
            nearby::nearby_rooms,
        ])
        .run(tauri::generate_context!());
    if let Err(e) = result {
        tracing::error!("ferry app failed: {e}");
        eprintln!("ferry: {e}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_ferry_link_out_of_arguments() {
        let args = ["--flag", "FERRY://join/ABC", "other"].map(String::from);
        assert_eq!(ferry_links(args).as_deref(), Some("FERRY://join/ABC"));
        assert_eq!(ferry_links(["https://x".to_string()]), None);
    }

    #[test]
    fn a_display_is_either_x11_or_wayland() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| std::ffi::OsString::from(v))
            }
        };
        assert!(missing_display(env(&[])).is_some());
        assert!(missing_display(env(&[("DISPLAY", "")])).is_some());
        assert!(missing_display(env(&[("DISPLAY", ":0")])).is_none());
        assert!(missing_display(env(&[("WAYLAND_DISPLAY", "wayland-0")])).is_none());
    }
}
