// The UI's side of the contract with Rust. crates/ferry-core/tests/ui_contract.rs writes one
// JSON fixture per event the engine sends (fixtures/events/) and fixtures/events.ts;
// src-tauri/tests/ui_contract.rs does the same for what the shell's commands return
// (fixtures/commands/, fixtures/commands.ts). `tsc --noEmit` checks the .ts files against the
// types in src/ipc.ts. This test makes sure the JSON and the typed halves agree, that every
// event is folded by the UI without surprises, and that progress is read as the overall count
// the engine sends.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import type { FerryEvent } from "../src/ipc";
import { initialState, reduce, type TransferState } from "../src/state";
import * as commands from "./fixtures/commands";
import { eventFixtures, pathKinds } from "./fixtures/events";

const fixtures = join(dirname(fileURLToPath(import.meta.url)), "fixtures");
const dir = join(fixtures, "events");
const readJson = (...p: string[]): unknown => JSON.parse(readFileSync(join(fixtures, ...p), "utf8"));

function onDisk(): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const f of readdirSync(dir)) {
    if (f.endsWith(".json") && f !== "path-kinds.json") out.set(f.slice(0, -".json".length), JSON.parse(readFileSync(join(dir, f), "utf8")));
  }
  return out;
}

function typed(): Map<string, FerryEvent> {
  const out = new Map<string, FerryEvent>();
  for (const cases of Object.values(eventFixtures)) {
    for (const [name, e] of Object.entries(cases as Record<string, FerryEvent>)) out.set(name, e);
  }
  return out;
}

test("the typed fixtures are the engine's JSON fixtures, every one", () => {
  const json = onDisk();
  const ts = typed();
  expect([...ts.keys()].sort()).toEqual([...json.keys()].sort());
  for (const [name, e] of json) expect(ts.get(name), name).toEqual(e);
  expect(readJson("events", "path-kinds.json")).toEqual([...pathKinds]);
});

test("the typed command fixtures are the shell's JSON fixtures, every one", () => {
  const files = readdirSync(join(fixtures, "commands")).sort();
  const history = Object.keys(commands.history).map((n) => `${n}.json`);
  const rest = ["command-error.json", "directions.json", "nearby-rooms.json", "settings.json", "themes.json", "transfer-states.json"];
  expect(files).toEqual([...history, ...rest].sort());
  for (const [name, row] of Object.entries(commands.history)) expect(readJson("commands", `${name}.json`), name).toEqual(row);
  expect(readJson("commands", "settings.json")).toEqual(commands.settings);
  expect(readJson("commands", "command-error.json")).toEqual(commands.commandError);
  expect(readJson("commands", "nearby-rooms.json")).toEqual(commands.nearbyRooms);
  expect(readJson("commands", "themes.json")).toEqual([...commands.themes]);
  expect(readJson("commands", "transfer-states.json")).toEqual([...commands.transferStates]);
  expect(readJson("commands", "directions.json")).toEqual([...commands.directions]);
});

test("each fixture is named after its event, and every declared event has one", () => {
  for (const [tag, cases] of Object.entries(eventFixtures)) {
    const names = Object.keys(cases);
    expect(names.length, tag).toBeGreaterThan(0);
    for (const [name, e] of Object.entries(cases as Record<string, FerryEvent>)) {
      expect(e.event).toBe(tag);
      expect(name === tag || name.startsWith(`${tag}.`), name).toBe(true);
    }
  }
});

test("the UI folds every event the engine sends, on either side", () => {
  for (const role of ["send", "receive"] as const) {
    for (const [name, e] of typed()) {
      const s: TransferState | undefined = reduce(initialState(role), e);
      expect(s, `${role} ${name}`).toBeDefined();
      expect(s.role).toBe(role);
    }
  }
});

test("progress counts the whole transfer, not the current file", () => {
  const offer = eventFixtures.offer.offer;
  const progress = eventFixtures.progress.progress;
  // The fixture's numbers only make sense overall: more bytes than the current file holds.
  const current = offer.files.find((f) => f.path === progress.file);
  expect(progress.bytes_done).toBeGreaterThan(current?.size ?? Infinity);
  expect(progress.bytes_done).toBeLessThanOrEqual(progress.total);
  expect(progress.total).toBe(offer.total);
  const s = [offer, eventFixtures["file-done"]["file-done"], progress].reduce(reduce, initialState("receive"));
  expect(s.total).toBe(offer.total);
  expect(s.bytesDone).toBe(progress.bytes_done);
  const resumed = [offer, eventFixtures.resuming.resuming].reduce(reduce, initialState("receive"));
  expect(resumed.bytesDone).toBe(eventFixtures.resuming.resuming.bytes_done);
  // The sender hears no offer: it takes the totals from progress alone.
  const sender = reduce(initialState("send"), progress);
  expect(sender.bytesDone).toBe(progress.bytes_done);
  expect(sender.total).toBe(progress.total);
});
