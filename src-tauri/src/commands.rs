//! The commands the UI invokes. Each is a thin wrapper: argument checks, a call into the
//! engine adapter, and events forwarded to the UI's channel as they come.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use ferry_core::Event;
use serde::Serialize;
use tauri::ipc::Channel;
use tauri::{AppHandle, Manager, State};
use tauri_plugin_dialog::DialogExt;
use tauri_plugin_notification::NotificationExt;
use tauri_plugin_opener::OpenerExt;
use tokio::sync::{mpsc, oneshot};

use crate::engine::{Engine, HistoryEntry, Running};
use crate::settings::Settings;

pub(crate) struct AppState {
    pub settings: Mutex<Settings>,
    pub config_dir: PathBuf,
    pub engine: Engine,
    pub transfers: Transfers,
    pub initial_link: Mutex<Option<String>>,
}

/// Running transfers by the small handle the UI holds.
#[derive(Default)]
pub(crate) struct Transfers {
    next: AtomicU32,
    map: Mutex<HashMap<u32, Running>>,
}

impl Transfers {
    fn insert(&self, r: Running) -> u32 {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        lock(&self.map).insert(id, r);
        id
    }
    fn with<T>(&self, id: u32, f: impl FnOnce(&mut Running) -> T) -> Result<T, CmdError> {
        lock(&self.map)
            .get_mut(&id)
            .map(f)
            .ok_or_else(|| CmdError::new("no-transfer", "That transfer is no longer running."))
    }
    fn remove(&self, id: u32) -> Option<Running> {
        lock(&self.map).remove(&id)
    }
}

/// A poisoned lock only means another command panicked; the data is still usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What a failed command gives the UI: the same `{code, message}` as engine error events.
#[derive(Debug, Serialize)]
pub struct CmdError {
    pub code: String,
    pub message: String,
}

impl CmdError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
        }
    }
}

impl From<ferry_core::FerryError> for CmdError {
    fn from(e: ferry_core::FerryError) -> Self {
        Self::new(e.code(), e.to_string())
    }
}

type CmdResult<T> = Result<T, CmdError>;

/// Test hook: with `FERRY_E2E_PICK` set (paths joined like `PATH`), the picker returns
/// those paths instead of opening a native dialog, which WebDriver cannot drive.
fn e2e_pick(var: &str) -> Option<Vec<String>> {
    let v = std::env::var_os(var)?;
    Some(
        std::env::split_paths(&v)
            .map(|p| p.display().to_string())
            .collect(),
    )
}

#[tauri::command]
pub(crate) async fn pick_paths(app: AppHandle, folder: bool) -> CmdResult<Vec<String>> {
    if let Some(paths) = e2e_pick("FERRY_E2E_PICK") {
        return Ok(paths);
    }
    let (tx, rx) = oneshot::channel();
    let dialog = app.dialog().file().set_title(if folder {
        "Choose a folder to send"
    } else {
        "Choose files to send"
    });
    if folder {
        dialog.pick_folder(move |p| {
            let _ = tx.send(p.into_iter().collect::<Vec<_>>());
        });
    } else {
        dialog.pick_files(move |p| {
            let _ = tx.send(p.unwrap_or_default());
        });
    }
    let picked = rx.await.unwrap_or_default();
    Ok(picked
        .into_iter()
        .filter_map(|p| p.into_path().ok())
        .map(|p| p.display().to_string())
        .collect())
}

#[tauri::command]
pub(crate) async fn pick_folder(app: AppHandle) -> CmdResult<Option<String>> {
    if let Some(paths) = e2e_pick("FERRY_E2E_PICK_FOLDER") {
        return Ok(paths.into_iter().next());
    }
    let (tx, rx) = oneshot::channel();
    app.dialog()
        .file()
        .set_title("Choose where to save")
        .pick_folder(move |p| {
            let _ = tx.send(p);
        });
    Ok(rx
        .await
        .ok()
        .flatten()
        .and_then(|p| p.into_path().ok())
        .map(|p| p.display().to_string()))
}

/// Forward engine events to the UI until the transfer ends; tell the OS when it finishes.
fn forward(app: AppHandle, id: u32, mut rx: mpsc::UnboundedReceiver<Event>, ui: Channel<Event>) {
    tauri::async_runtime::spawn(async move {
        // A snippet's words stay out of the notification: it may show on a locked screen.
        let mut text = false;
        while let Some(ev) = rx.recv().await {
            let end = match &ev {
                Event::Text { .. } => {
                    text = true;
                    false
                }
                Event::Done { .. } if text => {
                    notify(&app, "Text received", "Open Ferry to read and copy it.");
                    true
                }
                Event::Done { bytes, .. } => {
                    notify(
                        &app,
                        "Transfer complete",
                        &format!("{} moved", human_bytes(*bytes)),
                    );
                    true
                }
                Event::Error { message, .. } => {
                    // The message can quote the peer; a notification is plain text, shown
                    // by the OS, so nothing in it may reorder or hide what it says.
                    let shown = ferry_core::escape_display(message);
                    notify(&app, "Transfer failed", &shown);
                    true
                }
                _ => false,
            };
            if ui.send(ev).is_err() {
                tracing::debug!(id, "UI channel closed");
            }
            if end {
                break;
            }
        }
        if let Some(state) = app.try_state::<AppState>() {
            state.transfers.remove(id);
        }
    });
}

fn notify(app: &AppHandle, title: &str, body: &str) {
    // No notification daemon (headless, some desktops) is not worth failing anything over.
    if let Err(e) = app.notification().builder().title(title).body(body).show() {
        tracing::debug!("notification: {e}");
    }
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

fn settings_of(state: &AppState) -> Settings {
    lock(&state.settings).clone()
}

#[tauri::command]
pub(crate) async fn send_start(
    app: AppHandle,
    state: State<'_, AppState>,
    paths: Vec<String>,
    password: Option<String>,
    ttl_secs: Option<u64>,
    on_event: Channel<Event>,
) -> CmdResult<u32> {
    let paths = picked_paths(paths)?;
    let password = password.filter(|p| !p.trim().is_empty());
    let (tx, rx) = mpsc::unbounded_channel();
    let running = state
        .engine
        .send(&settings_of(&state), paths, password, None, ttl_secs, tx)
        .await?;
    let id = state.transfers.insert(running);
    forward(app, id, rx, on_event);
    Ok(id)
}

/// The paths the user picked, refused when there are none or one no longer exists.
fn picked_paths(paths: Vec<String>) -> CmdResult<Vec<PathBuf>> {
    if paths.is_empty() {
        return Err(CmdError::new(
            "no-files",
            "Choose at least one file or folder.",
        ));
    }
    let paths: Vec<PathBuf> = paths.into_iter().map(PathBuf::from).collect();
    if let Some(missing) = paths.iter().find(|p| !p.exists()) {
        return Err(CmdError::new(
            "not-found",
            format!("{} does not exist.", missing.display()),
        ));
    }
    Ok(paths)
}

/// Send to several receivers through one room: `receivers` in all (0: any number until the
/// room is closed or expires). Each receiver's events come as `receiver` events.
#[tauri::command]
pub(crate) async fn send_many_start(
    app: AppHandle,
    state: State<'_, AppState>,
    paths: Vec<String>,
    password: Option<String>,
    ttl_secs: Option<u64>,
    receivers: u32,
    on_event: Channel<Event>,
) -> CmdResult<u32> {
    let paths = picked_paths(paths)?;
    let password = password.filter(|p| !p.trim().is_empty());
    let (tx, rx) = mpsc::unbounded_channel();
    let running = state
        .engine
        .send_many(
            &settings_of(&state),
            paths,
            password,
            ttl_secs,
            receivers,
            tx,
        )
        .await?;
    let id = state.transfers.insert(running);
    forward(app, id, rx, on_event);
    Ok(id)
}

/// Stop one receiver of a room serving several; the others carry on.
#[tauri::command]
pub(crate) fn receiver_stop(state: State<'_, AppState>, id: u32, receiver: u32) -> CmdResult<()> {
    state.transfers.with(id, |r| r.stop_receiver(receiver))?
}

/// Send a text snippet typed in the app (the engine refuses one over its limit).
#[tauri::command]
pub(crate) async fn send_text(
    app: AppHandle,
    state: State<'_, AppState>,
    text: String,
    password: Option<String>,
    ttl_secs: Option<u64>,
    on_event: Channel<Event>,
) -> CmdResult<u32> {
    if text.is_empty() {
        return Err(CmdError::new("no-text", "Type or paste some text to send."));
    }
    let password = password.filter(|p| !p.trim().is_empty());
    let (tx, rx) = mpsc::unbounded_channel();
    let running = state
        .engine
        .send_text(&settings_of(&state), text, password, ttl_secs, tx)
        .await?;
    let id = state.transfers.insert(running);
    forward(app, id, rx, on_event);
    Ok(id)
}

#[tauri::command]
pub(crate) async fn receive_start(
    app: AppHandle,
    state: State<'_, AppState>,
    room: String,
    password: String,
    server: Option<String>,
    dest: String,
    on_event: Channel<Event>,
) -> CmdResult<u32> {
    if password.is_empty() {
        return Err(CmdError::new("wrong-password", "Enter the password."));
    }
    let dest = usable_dir(&dest)?;
    let (tx, rx) = mpsc::unbounded_channel();
    let running = state
        .engine
        .receive(&settings_of(&state), room, password, server, dest, tx)
        .await?;
    let id = state.transfers.insert(running);
    forward(app, id, rx, on_event);
    Ok(id)
}

/// The receive folder must exist (created if missing) before the offer: the engine looks
/// there for parts of an earlier attempt to resume.
fn usable_dir(dest: &str) -> CmdResult<PathBuf> {
    if dest.trim().is_empty() {
        return Err(CmdError::new("no-folder", "Choose a folder to save into."));
    }
    let dest = PathBuf::from(dest);
    std::fs::create_dir_all(&dest).map_err(|e| {
        CmdError::new(
            "permission-denied",
            format!("Can't use {}: {e}", dest.display()),
        )
    })?;
    Ok(dest)
}

#[tauri::command]
pub(crate) fn receive_accept(state: State<'_, AppState>, id: u32) -> CmdResult<()> {
    state.transfers.with(id, |r| r.accept())?
}

#[tauri::command]
pub(crate) fn transfer_pause(state: State<'_, AppState>, id: u32) -> CmdResult<()> {
    state.transfers.with(id, |r| r.pause())
}

#[tauri::command]
pub(crate) fn transfer_resume(state: State<'_, AppState>, id: u32) -> CmdResult<()> {
    state.transfers.with(id, |r| r.resume())
}

/// Sender: a new lifetime for the waiting room, `ttl_secs` from now (the server caps it; the
/// `room-extended` event gives the new end).
#[tauri::command]
pub(crate) fn extend_room(state: State<'_, AppState>, id: u32, ttl_secs: u64) -> CmdResult<()> {
    if ttl_secs == 0 {
        return Err(CmdError::new(
            "bad-lifetime",
            "Choose how long the room should stay open.",
        ));
    }
    state.transfers.with(id, |r| r.extend_room(ttl_secs))
}

/// Sender: close the waiting room now; a receiver opening the link is told it is gone.
#[tauri::command]
pub(crate) fn close_room(state: State<'_, AppState>, id: u32) -> CmdResult<()> {
    state.transfers.with(id, |r| r.close_room())
}

#[tauri::command]
pub(crate) fn transfer_cancel(state: State<'_, AppState>, id: u32) -> CmdResult<()> {
    if let Some(mut r) = state.transfers.remove(id) {
        r.cancel();
    }
    Ok(())
}

#[tauri::command]
pub(crate) async fn history_list(state: State<'_, AppState>) -> CmdResult<Vec<HistoryEntry>> {
    Ok(state.engine.history()?)
}

#[tauri::command]
pub(crate) async fn history_resume(
    app: AppHandle,
    state: State<'_, AppState>,
    transfer_id: String,
    on_event: Channel<Event>,
) -> CmdResult<u32> {
    let (tx, rx) = mpsc::unbounded_channel();
    // Sends resume by id (the store knows the files); a receive resumes by joining the
    // sender's new room into the same folder, which the UI does from the Receive screen.
    let running = state
        .engine
        .send(
            &settings_of(&state),
            Vec::new(),
            None,
            Some(transfer_id),
            None,
            tx,
        )
        .await?;
    let id = state.transfers.insert(running);
    forward(app, id, rx, on_event);
    Ok(id)
}

#[tauri::command]
pub(crate) fn settings_get(state: State<'_, AppState>) -> Settings {
    settings_of(&state)
}

#[tauri::command]
pub(crate) fn settings_set(state: State<'_, AppState>, settings: Settings) -> CmdResult<()> {
    settings
        .save(&state.config_dir)
        .map_err(|e| CmdError::new("invalid-settings", e.to_string()))?;
    *lock(&state.settings) = settings;
    Ok(())
}

#[tauri::command]
pub(crate) fn qr_svg(text: String) -> CmdResult<String> {
    crate::qr::svg(&text).map_err(|e| CmdError::new("qr", e.to_string()))
}

#[tauri::command]
pub(crate) fn reveal(app: AppHandle, path: String) -> CmdResult<()> {
    let p = Path::new(&path);
    let target = if p.exists() {
        p
    } else {
        p.parent().unwrap_or(p)
    };
    app.opener()
        .reveal_item_in_dir(target)
        .map_err(|e| CmdError::new("open-failed", e.to_string()))
}

/// The signaling server in use: the one in Settings, or the app's built-in one (started on
/// first use).
#[tauri::command]
pub(crate) async fn signal_url(state: State<'_, AppState>) -> CmdResult<String> {
    state.engine.signal_url(&settings_of(&state)).await
}

#[tauri::command]
pub(crate) fn initial_link(state: State<'_, AppState>) -> Option<String> {
    lock(&state.initial_link).take()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_for_notifications() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1_500_000), "1.5 MB");
    }

    #[cfg(unix)]
    #[test]
    fn e2e_pick_splits_like_path() {
        // SAFETY: tests in this module don't read this variable concurrently.
        unsafe { std::env::set_var("FERRY_TEST_PICK_X", "/a/b:/c d/e") };
        assert_eq!(
            e2e_pick("FERRY_TEST_PICK_X"),
            Some(vec!["/a/b".to_string(), "/c d/e".to_string()])
        );
        assert_eq!(e2e_pick("FERRY_TEST_PICK_UNSET"), None);
    }

    #[test]
    fn command_errors_carry_engine_codes() {
        let e: CmdError = ferry_core::FerryError::RoomExpired.into();
        assert_eq!(e.code, "room-expired");
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(json, r#"{"code":"room-expired","message":"room expired"}"#);
    }
}
