// The desktop app's engine: the Tauri shell's commands (ipc.ts), which run ferry-core itself.
// It can do everything the views offer.
import { ALL_CAPS, type Engine, type Picked } from "./engine";
import { api } from "./ipc";
import { webLink } from "./link";

function paths(what: Picked): string[] {
  // The shell's pickers and drops give paths; `File`s only come from a browser engine.
  if (what.kind !== "paths") throw { code: "unsupported", message: "the app sends files by their paths" };
  return what.paths;
}

export const tauriEngine: Engine = {
  caps: ALL_CAPS,
  pick: async (folder) => {
    const p = await api.pickPaths(folder);
    return p.length ? { kind: "paths", paths: p } : null;
  },
  pickFolder: api.pickFolder,
  sendStart: async (what, password, ttlSecs, onEvent) => api.sendStart(paths(what), password, ttlSecs, onEvent),
  sendManyStart: async (what, password, ttlSecs, receivers, onEvent) => api.sendManyStart(paths(what), password, ttlSecs, receivers, onEvent),
  receiverStop: api.receiverStop,
  sendText: api.sendText,
  extendRoom: api.extendRoom,
  closeRoom: api.closeRoom,
  receiveStart: api.receiveStart,
  receiveAccept: api.receiveAccept,
  pause: api.pause,
  resume: api.resume,
  cancel: api.cancel,
  history: api.history,
  historyResume: api.historyResume,
  settingsGet: api.settingsGet,
  settingsSet: api.settingsSet,
  qrSvg: api.qrSvg,
  reveal: api.reveal,
  signalUrl: api.signalUrl,
  initialLink: api.initialLink,
  nearbyRooms: api.nearbyRooms,
  browserLink: webLink,
};
