import { listen } from "@tauri-apps/api/event";
import { getCurrentWebview } from "@tauri-apps/api/webview";
import { App } from "./app";
import { DEEP_LINK_EVENT } from "./ipc";
import "./style.css";

const app = new App(document.getElementById("main") as HTMLElement, document.getElementById("nav"));
// For the E2E test and debugging: the controller is reachable from the webview console.
(window as unknown as { ferry: App }).ferry = app;

// Tauri's drag-drop event carries real paths (HTML5 drop does not), for the whole window.
void getCurrentWebview()
  .onDragDropEvent((ev) => {
    const p = ev.payload;
    if (p.type === "enter" || p.type === "over") app.setDragging(true);
    else if (p.type === "leave") app.setDragging(false);
    else if (p.type === "drop") app.onDrop({ kind: "paths", paths: p.paths });
  })
  .catch((e) => console.warn("drag-drop unavailable", e));

void listen<string>(DEEP_LINK_EVENT, (ev) => app.openLink(ev.payload)).catch((e) => console.warn("deep links unavailable", e));

void app.init();
